"""Warehouse exports on demand and BI connection files.

``GET /exports/{dataset}.{format}`` produces the file for the caller, holding only the rows the
caller's site scope may see (the same rule as the OData feed), and streams it; every request,
served or refused, is recorded in the BI access audit. ``GET /bi/connection-files/{tool}`` gives
a .pbids (Power BI), .tds (Tableau) or .qvs (Qlik) file pointing at the OData feed with the
tables the caller may read.
"""

from __future__ import annotations

import datetime as dt
import shutil
import tempfile
import time
from pathlib import Path
from typing import Annotated, Final
from urllib.parse import urlsplit

import duckdb
from fastapi import APIRouter, Query, Request
from fastapi import Path as PathParam
from fastapi.responses import FileResponse, Response
from starlette.background import BackgroundTask

from maintainpro.analytics.access import (
    AccessEvent,
    access_ledger,
    can_read,
    record_access,
    site_scope,
)
from maintainpro.analytics.exports.connection_files import connection_file, parse_tool
from maintainpro.analytics.exports.datasets import Dataset, datasets
from maintainpro.analytics.exports.formats import SPECS, FileFormat, parse_format
from maintainpro.analytics.exports.hyper import HyperUnavailable
from maintainpro.analytics.exports.lineage import Output
from maintainpro.analytics.exports.runs import ExportResult, export_file
from maintainpro.analytics.exports.tabular import ExportTooLarge
from maintainpro.analytics.lineage import lineage_for
from maintainpro.analytics.odata.model import EntitySet, entity_sets
from maintainpro.analytics.warehouse import WarehouseError, open_read_only, warehouse_file
from maintainpro.api.deps import CurrentUser, SettingsDep
from maintainpro.api.problems import Problem
from maintainpro.config import Settings
from maintainpro.core.users import User

router = APIRouter(tags=["analytics"])

CHANNEL: Final = "export"
RETRY_AFTER_S: Final = "30"
FORMATS: Final = ", ".join(f.value for f in FileFormat)
MAX_TABLES: Final = 50


def _audit(
    request: Request,
    user: User,
    dataset: str,
    options: dict[str, str],
    began: float,
    *,
    status: int,
    rows: int = 0,
    error: str | None = None,
) -> None:
    record_access(
        access_ledger(request.app.state),
        AccessEvent(
            channel=CHANNEL,
            dataset=dataset,
            user_id=user.id,
            username=user.username,
            credential_id=None,
            credential_name=None,
            options=options,
            rows=rows,
            duration_ms=(time.perf_counter() - began) * 1000,
            status=status,
            error=error,
        ),
    )


def _readable(dataset: Dataset, user: User) -> None:
    if not dataset.permitted(user.permissions):
        raise Problem(403, f"the role {user.role.value} may not read this dataset")
    if not dataset.visible_to(site_scope(user)):
        raise Problem(403, "this dataset holds no site's rows: only users of every site read it")


def _resolve(filename: str) -> tuple[Dataset, FileFormat]:
    name, dot, extension = filename.rpartition(".")
    dataset = datasets().get(name) if dot else None
    if dataset is None:
        raise Problem(404, "no exportable dataset has that name")
    fmt = parse_format(extension)
    if fmt is None:
        raise Problem(400, f"unsupported format: use one of {FORMATS}", title="Unsupported format")
    return dataset, fmt


def _audited_name(filename: str) -> str:
    # Only a known dataset's name goes to the audit log, never the caller's text.
    name = filename.rpartition(".")[0]
    return name if name in datasets() else "-"


def _origin(settings: Settings) -> str:
    parts = urlsplit(settings.public_url)
    return f"{parts.scheme}://{parts.netloc}"


def _produce(
    request: Request,
    settings: Settings,
    user: User,
    dataset: Dataset,
    fmt: FileFormat,
    since: dt.date | None,
    path: Path,
) -> ExportResult:
    busy = {"Retry-After": RETRY_AFTER_S}
    try:
        connection = open_read_only(settings)
    except WarehouseError as exc:
        if not warehouse_file(settings).exists():
            raise Problem(503, "the warehouse has not been built yet") from exc
        raise Problem(503, "the warehouse is being written; try again", headers=busy) from exc
    except duckdb.Error as exc:
        raise Problem(503, "the warehouse cannot be opened now; try again", headers=busy) from exc
    try:
        return export_file(
            connection,
            dataset,
            fmt,
            path,
            lineage_for(settings, warehouse_file(settings)),
            scope=site_scope(user),
            since=since,
            output=Output(_origin(settings), request.url.path),
        )
    except HyperUnavailable as exc:
        raise Problem(501, str(exc), title="Format not installed") from exc
    except ExportTooLarge as exc:
        raise Problem(422, str(exc), title="Too large for the format") from exc
    finally:
        connection.close()


@router.get(
    "/exports/{filename}",
    response_class=FileResponse,
    responses={200: {"content": {s.media_type: {} for s in SPECS.values()}}},
)
def download_export(
    request: Request,
    user: CurrentUser,
    settings: SettingsDep,
    filename: Annotated[
        str, PathParam(max_length=100, description="dataset.format, e.g. fact_work_order.hyper")
    ],
    since: Annotated[
        dt.date | None, Query(description="only the days from this one (dated datasets)")
    ] = None,
) -> FileResponse:
    """A dataset as a file (hyper, qvd, parquet, csv, xlsx) with the rows the caller may see."""
    began = time.perf_counter()
    options = {"since": since.isoformat()} if since else {}
    audited = _audited_name(filename)
    scratch: str | None = None
    try:
        dataset, fmt = _resolve(filename)
        options["format"] = fmt.value
        _readable(dataset, user)
        if since is not None and not dataset.partitioned:
            raise Problem(400, "since applies to dated datasets only", title="Invalid request")
        scratch = tempfile.mkdtemp(prefix="maintainpro-export-")
        path = Path(scratch) / f"{dataset.name}.{fmt.value}"
        result = _produce(request, settings, user, dataset, fmt, since, path)
    except Problem as problem:
        _audit(request, user, audited, options, began, status=problem.status, error=problem.detail)
        if scratch is not None:
            shutil.rmtree(scratch, ignore_errors=True)
        raise
    except Exception as exc:
        _audit(request, user, audited, options, began, status=500, error=type(exc).__name__)
        if scratch is not None:
            shutil.rmtree(scratch, ignore_errors=True)
        raise
    _audit(request, user, dataset.name, options, began, status=200, rows=result.rows)
    return FileResponse(
        path,
        media_type=SPECS[fmt].media_type,
        filename=path.name,
        headers={"X-Row-Count": str(result.rows)},
        background=BackgroundTask(shutil.rmtree, scratch, ignore_errors=True),
    )


def _visible_sets(user: User) -> list[EntitySet]:
    scope = site_scope(user)
    return [
        s
        for s in entity_sets().values()
        if s.permissions & user.permissions and can_read(s.site_rule, scope)
    ]


@router.get(
    "/bi/connection-files/{tool}",
    responses={200: {"content": {"application/json": {}, "application/xml": {}, "text/plain": {}}}},
)
def bi_connection_file(
    user: CurrentUser,
    settings: SettingsDep,
    tool: Annotated[str, PathParam(max_length=20, description="powerbi, tableau or qlik")],
    tables: Annotated[
        str | None,
        Query(max_length=2000, description="comma-separated entity sets (default: all yours)"),
    ] = None,
) -> Response:
    """A connection file for a BI tool, pointing at the OData feed with the caller's tables."""
    chosen = parse_tool(tool)
    if chosen is None:
        raise Problem(404, "no connection file for that tool: use powerbi, tableau or qlik")
    visible = _visible_sets(user)
    if not visible:
        raise Problem(403, f"the role {user.role.value} may read no warehouse table")
    selected = visible
    if tables is not None:
        names = [n.strip() for n in tables.split(",") if n.strip()]
        by_name = {s.name: s for s in visible}
        if not names or len(names) > MAX_TABLES or any(n not in by_name for n in names):
            raise Problem(
                400,
                f"tables must name 1 to {MAX_TABLES} entity sets you may read",
                title="Invalid request",
            )
        selected = [by_name[n] for n in dict.fromkeys(names)]
    made = connection_file(chosen, settings.public_url, selected, one_table=tables is not None)
    return Response(
        made.text,
        media_type=made.media_type,
        headers={"Content-Disposition": f'attachment; filename="{made.filename}"'},
    )
