"""The dataset catalog and the ETL run record over the API (``audit:read``).

``GET /datasets`` lists every dataset the caller's role may read with its owner, classification,
refresh interval, sync state and row count (as the caller's site sees it); ``GET /datasets/{name}``
adds the columns with their operational sources and the lineage graph; ``GET /etl-runs`` pages
through the recorded ETL runs, newest first; ``GET /analytics/access-log`` pages through the BI
access audit (every read through OData, file exports, cube queries and event streams), newest
first with a keyset cursor, or downloads it as CSV.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import re
from collections.abc import Iterator
from typing import Annotated, Any, Final, Literal

import duckdb
from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import StreamingResponse
from pydantic import AwareDatetime, BaseModel, ConfigDict
from sqlalchemy.orm import Session, sessionmaker

from maintainpro.analytics.access import access_ledger, site_scope
from maintainpro.analytics.access_log import (
    AccessLogFilter,
    access_log_page,
    iter_access_log,
)
from maintainpro.analytics.catalog import (
    Dataset,
    DatasetStatus,
    Graph,
    catalog_for,
    snapshot,
)
from maintainpro.analytics.warehouse import (
    RunRecord,
    WarehouseError,
    open_read_only,
    read_runs,
    warehouse_file,
)
from maintainpro.api.deps import SessionDep, SettingsDep, require
from maintainpro.api.pagination import MAX_LIMIT, Page, WindowDep
from maintainpro.api.problems import Problem
from maintainpro.core.db import utcnow
from maintainpro.core.users import Permission, User

router = APIRouter(tags=["analytics"])
Auditor = Annotated[User, Depends(require(Permission.AUDIT_READ))]
NAME_PATTERN: Final = r"^[a-z][a-z0-9_]{0,63}$"
CHANNEL_PATTERN: Final = r"^[a-z][a-z0-9_.]{0,31}$"
AUDIT_CHUNK: Final = 1000
# Text a spreadsheet would run as a formula is written inert (OWASP CSV injection).
_FORMULA_START: Final = re.compile(r"^[=+\-@\t\r]")
CSV_COLUMNS: Final = (
    "id",
    "at",
    "channel",
    "dataset",
    "user_id",
    "username",
    "credential_id",
    "credential_name",
    "options",
    "rows",
    "duration_ms",
    "status",
    "outcome",
    "error",
)


class SyncOut(BaseModel):
    """Whether a dataset is up to date."""

    state: str
    last_success: dt.datetime | None
    last_run_at: dt.datetime | None
    last_status: str | None
    last_error: str | None
    age_s: float | None


class DatasetOut(BaseModel):
    """A catalogued dataset."""

    name: str
    kind: str
    description: str
    owner: str
    classification: str
    refresh_hours: float
    loaded_by: str | None
    inputs: list[str]
    sources: list[str]
    published: list[str]
    exists: bool | None
    visible: bool | None
    rows: int | None
    sync: SyncOut | None


class ColumnOut(BaseModel):
    """A column and the operational columns it comes from."""

    name: str
    type: str
    description: str
    sources: list[str]
    how: str


class NodeOut(BaseModel):
    """A lineage node."""

    id: str
    label: str
    kind: str
    dataset: str | None
    detail: str


class EdgeOut(BaseModel):
    """A lineage edge: data flows from source to target, carrying these columns."""

    source: str
    target: str
    columns: list[str]


class LineageOut(BaseModel):
    """The lineage graph of a dataset."""

    focus: str
    nodes: list[NodeOut]
    edges: list[EdgeOut]


class DatasetDetailOut(DatasetOut):
    """A dataset with its columns and lineage."""

    key: list[str]
    columns: list[ColumnOut]
    lineage: LineageOut


class DatasetList(BaseModel):
    """The catalog, and why statuses are missing when the warehouse cannot be read."""

    items: list[DatasetOut]
    problem: str | None


class RunOut(BaseModel):
    """One ETL job run."""

    run_id: str
    job: str
    mode: str
    window_start: dt.datetime | None
    window_end: dt.datetime
    started_at: dt.datetime
    finished_at: dt.datetime | None
    duration_s: float | None
    rows_in: int
    rows_out: int
    rows_rejected: int
    status: str
    error: str | None


def _dataset(dataset: Dataset, status: DatasetStatus | None) -> dict[str, Any]:
    freshness = status.freshness if status else None
    return {
        "name": dataset.name,
        "kind": dataset.kind,
        "description": dataset.description,
        "owner": dataset.owner,
        "classification": dataset.classification,
        "refresh_hours": dataset.refresh.total_seconds() / 3600,
        "loaded_by": dataset.loaded_by,
        "inputs": list(dataset.inputs),
        "sources": list(dataset.sources),
        "published": list(dataset.published),
        "exists": status.exists if status else None,
        "visible": status.visible if status else None,
        "rows": status.rows if status else None,
        "sync": None
        if freshness is None
        else SyncOut(
            state=freshness.state,
            last_success=freshness.last_success,
            last_run_at=freshness.last_run_at,
            last_status=freshness.last_status,
            last_error=freshness.last_error,
            age_s=freshness.age.total_seconds() if freshness.age is not None else None,
        ),
    }


def _lineage(graph: Graph) -> LineageOut:
    return LineageOut(
        focus=graph.focus,
        nodes=[
            NodeOut(id=n.id, label=n.label, kind=n.kind, dataset=n.dataset, detail=n.detail)
            for n in graph.nodes
        ],
        edges=[
            EdgeOut(source=e.source, target=e.target, columns=list(e.columns)) for e in graph.edges
        ],
    )


@router.get("/datasets", response_model=DatasetList)
def list_datasets(settings: SettingsDep, user: Auditor) -> DatasetList:
    """Every dataset the caller's role may read, with its sync state and row count."""
    loaded = catalog_for(settings)
    datasets = [d for d in loaded.catalog if d.readable_by(user.permissions)]
    seen = snapshot(
        settings,
        loaded.catalog,
        scope=site_scope(user),
        now=utcnow(),
        names=[d.name for d in datasets],
        run_limit=1,
    )
    problem = "; ".join([*loaded.notices, *([seen.problem] if seen.problem else [])]) or None
    return DatasetList(
        items=[DatasetOut(**_dataset(d, seen.statuses.get(d.name))) for d in datasets],
        problem=problem,
    )


@router.get("/datasets/{name}", response_model=DatasetDetailOut)
def get_dataset(name: str, settings: SettingsDep, user: Auditor) -> DatasetDetailOut:
    """One dataset with its columns, their sources, and its lineage graph."""
    loaded = catalog_for(settings)
    dataset = loaded.catalog.get(name)
    if dataset is None or not dataset.readable_by(user.permissions):
        raise Problem(404, "no catalogued dataset has that name")
    seen = snapshot(settings, loaded.catalog, scope=site_scope(user), now=utcnow(), names=[name])
    return DatasetDetailOut(
        **_dataset(dataset, seen.statuses.get(name)),
        key=list(dataset.key),
        columns=[
            ColumnOut(
                name=c.name,
                type=c.type,
                description=c.description,
                sources=list(c.sources),
                how=c.how,
            )
            for c in dataset.columns
        ],
        lineage=_lineage(loaded.catalog.lineage(name)),
    )


def _run(record: RunRecord) -> RunOut:
    return RunOut(
        run_id=record.run_id,
        job=record.job,
        mode=record.mode,
        window_start=record.window_start,
        window_end=record.window_end,
        started_at=record.started_at,
        finished_at=record.finished_at,
        duration_s=record.duration_s,
        rows_in=record.rows_in,
        rows_out=record.rows_out,
        rows_rejected=record.rows_rejected,
        status=record.status,
        error=record.error,
    )


@router.get("/etl-runs", response_model=Page[RunOut])
def list_etl_runs(
    settings: SettingsDep,
    user: Auditor,
    page: WindowDep,
    job: Annotated[str | None, Query(pattern=NAME_PATTERN, description="one job's runs")] = None,
) -> Page[RunOut]:
    """Recorded ETL runs, newest first."""
    if not warehouse_file(settings).exists():
        raise Problem(503, "the warehouse has not been built yet")
    try:
        connection = open_read_only(settings)
    except (WarehouseError, duckdb.Error) as exc:
        raise Problem(503, "the warehouse is being written; try again") from exc
    try:
        where, params = ("WHERE job = ?", [job]) if job else ("", [])
        counted = connection.execute(
            f"SELECT count(*) FROM etl_runs {where}",  # noqa: S608 - fixed text
            params,
        ).fetchall()
        total = int(counted[0][0]) if counted else 0
        records = []
        if page.offset < total:
            records = read_runs(connection, limit=page.offset + page.limit, job=job)
    except duckdb.Error as exc:
        raise Problem(503, "the warehouse has not been built yet") from exc
    finally:
        connection.close()
    return Page[RunOut](
        items=[_run(r) for r in records[page.offset :]],
        total=total,
        limit=page.limit,
        offset=page.offset,
    )


# --------------------------------------------------------------------------- BI access audit


class AccessLogOut(BaseModel):
    """One read through a BI channel."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    at: dt.datetime
    channel: str
    dataset: str
    user_id: int | None
    username: str | None
    credential_id: int | None
    credential_name: str | None
    options: dict[str, str]
    rows: int
    duration_ms: float
    status: int
    outcome: str
    error: str | None


class AccessLogPage(BaseModel):
    """A page of the access audit, newest first; ``next_cursor`` fetches the next (older) one."""

    items: list[AccessLogOut]
    limit: int
    next_cursor: int | None


def _csv_cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, dt.datetime):
        return value.isoformat()
    if isinstance(value, dict):
        value = json.dumps(value, ensure_ascii=False, sort_keys=True)
    text = str(value)
    return "'" + text if _FORMULA_START.match(text) else text


def _csv_lines(factory: sessionmaker[Session], where: AccessLogFilter) -> Iterator[str]:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    # A byte-order mark: spreadsheets then read the file as UTF-8.
    out.write("\ufeff")
    writer.writerow(CSV_COLUMNS)
    for count, record in enumerate(iter_access_log(factory, where, chunk=AUDIT_CHUNK), 1):
        writer.writerow([_csv_cell(getattr(record, c)) for c in CSV_COLUMNS])
        if count % AUDIT_CHUNK == 0:
            yield out.getvalue()
            out.seek(0)
            out.truncate()
    yield out.getvalue()


@router.get(
    "/analytics/access-log",
    response_model=AccessLogPage,
    responses={200: {"content": {"text/csv": {}}, "description": "JSON page or CSV download"}},
)
def list_access_log(
    request: Request,
    db: SessionDep,
    user: Auditor,
    channel: Annotated[
        str | None,
        Query(
            pattern=CHANNEL_PATTERN,
            description="odata, export, cube, stream.sse, stream.ws, report, report_download",
        ),
    ] = None,
    username: Annotated[
        str | None, Query(alias="user", max_length=64, description="a user's name")
    ] = None,
    user_id: Annotated[int | None, Query(ge=1, description="a user's id")] = None,
    dataset: Annotated[str | None, Query(max_length=128, description="a dataset")] = None,
    since: Annotated[AwareDatetime | None, Query(description="at or after (ISO 8601)")] = None,
    until: Annotated[AwareDatetime | None, Query(description="before (ISO 8601)")] = None,
    outcome: Annotated[Literal["ok", "error"] | None, Query()] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT, description="rows per page")] = 100,
    cursor: Annotated[
        int | None, Query(ge=1, description="next_cursor of the previous page")
    ] = None,
    fmt: Annotated[
        Literal["json", "csv"],
        Query(alias="format", description="csv: every matching row as a download"),
    ] = "json",
) -> AccessLogPage | StreamingResponse:
    """The BI access audit, newest first: a page (keyset cursor) or every matching row as CSV."""
    if since is not None and until is not None and since >= until:
        raise Problem(400, "since must be before until")
    where = AccessLogFilter(
        channel=channel,
        username=username,
        user_id=user_id,
        dataset=dataset,
        since=since,
        until=until,
        outcome=outcome,
    )
    # Accesses recorded before this request are written first, so the caller sees them.
    access_ledger(request.app.state).flush()
    if fmt == "csv":
        factory: sessionmaker[Session] = request.app.state.session_factory
        stamp = utcnow().strftime("%Y%m%dT%H%M%SZ")
        return StreamingResponse(
            _csv_lines(factory, where),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": f'attachment; filename="bi-access-{stamp}.csv"'},
        )
    rows, next_cursor = access_log_page(db, where, before_id=cursor, limit=limit)
    return AccessLogPage(
        items=[AccessLogOut.model_validate(r) for r in rows], limit=limit, next_cursor=next_cursor
    )
