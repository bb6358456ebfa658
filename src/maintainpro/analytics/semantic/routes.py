"""The semantic layer over HTTP: ``/api/v1/semantic/load`` and ``/api/v1/semantic/meta``.

``POST /semantic/load`` takes ``{"query": {...}}`` (or the query itself), ``GET /semantic/load``
takes ``?query=<JSON>``, both answering in Cube's shape from a pre-aggregation when one covers the
query, else from the facts. Every answer holds only the rows of the caller's sites (the same rule
as every BI channel: ``analytics.access``) and every request, answered or refused, is recorded in
the BI access audit (channel ``cube``). ``GET /semantic/meta`` lists the cubes the caller may
read, with measures, dimensions, hierarchies, titles and types, for a query builder.
"""

from __future__ import annotations

import datetime as dt
import json
import time
from typing import Annotated, Any, Final

import duckdb
from fastapi import APIRouter, Body, Query, Request

from maintainpro.analytics.access import AccessEvent, access_ledger, record_access, site_scope
from maintainpro.analytics.semantic.load import Answer, answer
from maintainpro.analytics.semantic.meta import meta
from maintainpro.analytics.semantic.model import SemanticModel, default_model
from maintainpro.analytics.semantic.plan import Access
from maintainpro.analytics.semantic.query import QueryError
from maintainpro.analytics.warehouse import WarehouseError, open_read_only, warehouse_file
from maintainpro.api.deps import CurrentUser, SettingsDep
from maintainpro.api.problems import Problem
from maintainpro.config import Settings
from maintainpro.core.users import User

router = APIRouter(prefix="/semantic", tags=["analytics"])

CHANNEL: Final = "cube"
RETRY_AFTER_S: Final = "30"
MAX_QUERY_TEXT: Final = 16_384
MAX_LOGGED_QUERY: Final = 2_000


def semantic_model(request: Request) -> SemanticModel:
    """The app's model: ``app.state.semantic_model`` when set, else the one shipped."""
    model = getattr(request.app.state, "semantic_model", None)
    return model if isinstance(model, SemanticModel) else default_model()


def _access(user: User) -> Access:
    return Access(user.permissions, site_scope(user))


def _audit(
    request: Request,
    user: User,
    dataset: str,
    query: str,
    began: float,
    *,
    status: int,
    rows: int = 0,
    error: str | None = None,
    source: str | None = None,
) -> None:
    options = {"query": query[:MAX_LOGGED_QUERY]}
    if source is not None:
        options["source"] = source
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


def _open(settings: Settings) -> duckdb.DuckDBPyConnection:
    busy = {"Retry-After": RETRY_AFTER_S}
    try:
        return open_read_only(settings)
    except WarehouseError as exc:
        if not warehouse_file(settings).exists():
            raise Problem(503, "the warehouse has not been built yet") from exc
        raise Problem(503, "the warehouse is being written; try again", headers=busy) from exc
    except duckdb.Error as exc:
        raise Problem(503, "the warehouse cannot be opened now; try again", headers=busy) from exc


def _answer(request: Request, settings: Settings, user: User, raw: Any) -> dict[str, Any]:
    began = time.perf_counter()
    logged = json.dumps(raw, default=str)[:MAX_LOGGED_QUERY]
    try:
        connection = _open(settings)
        try:
            result: Answer = answer(
                connection,
                semantic_model(request),
                raw,
                _access(user),
                today=dt.datetime.now(dt.UTC).date(),
            )
        finally:
            connection.close()
    except QueryError as exc:
        _audit(request, user, "-", logged, began, status=exc.status, error=str(exc))
        title = "Forbidden" if exc.status == 403 else "Invalid query"
        raise Problem(exc.status, str(exc), title=title) from exc
    except Problem as problem:
        _audit(request, user, "-", logged, began, status=problem.status, error=problem.detail)
        raise
    except Exception as exc:
        _audit(request, user, "-", logged, began, status=500, error=type(exc).__name__)
        raise
    _audit(
        request,
        user,
        result.cube,
        logged,
        began,
        status=200,
        rows=result.rows,
        source=result.source,
    )
    return result.body


def _unwrap(body: Any) -> Any:
    # Cube's clients send {"query": {...}}; a bare query object is taken as well.
    if isinstance(body, dict) and set(body) == {"query"}:
        return body["query"]
    return body


@router.post("/load")
def load_post(
    request: Request,
    user: CurrentUser,
    settings: SettingsDep,
    body: Annotated[Any, Body(description='{"query": {...}} in Cube\'s query format')],
) -> dict[str, Any]:
    """Answer a query (measures, dimensions, timeDimensions, filters, order, limit)."""
    return _answer(request, settings, user, _unwrap(body))


@router.get("/load")
def load_get(
    request: Request,
    user: CurrentUser,
    settings: SettingsDep,
    query: Annotated[str, Query(max_length=MAX_QUERY_TEXT, description="the query as JSON")],
) -> dict[str, Any]:
    """Answer a query given as JSON in the ``query`` parameter."""
    try:
        raw = json.loads(query)
    except ValueError:
        began = time.perf_counter()
        _audit(request, user, "-", "(not JSON)", began, status=400, error="query is not JSON")
        raise Problem(400, "the query parameter is not JSON", title="Invalid query") from None
    return _answer(request, settings, user, _unwrap(raw))


@router.get("/meta")
def meta_get(request: Request, user: CurrentUser) -> dict[str, Any]:
    """The cubes the caller may query: measures, dimensions, hierarchies, joins."""
    return meta(semantic_model(request), _access(user))
