"""The semantic layer over HTTP: ``/api/v1/semantic/load`` and ``/api/v1/semantic/meta``.

``POST /semantic/load`` takes ``{"query": {...}}`` (or the query itself), ``GET /semantic/load``
takes ``?query=<JSON>``, both answering in Cube's shape from a pre-aggregation when one covers the
query, else from the facts. Every answer holds only the rows of the caller's sites (the same rule
as every BI channel: ``analytics.access``) and every request, answered or refused, is recorded in
the BI access audit (channel ``cube``). ``GET /semantic/meta`` lists the cubes the caller may
read, with measures, dimensions, hierarchies, titles and types, for a query builder.
The answering itself (warehouse, site scope, audit) is ``answering.answer_query``; this module
gives it the app's model and audit ledger and turns its refusals into problem details.
"""

from __future__ import annotations

import json
from typing import Annotated, Any, Final

from fastapi import APIRouter, Body, Query, Request

from maintainpro.analytics.access import access_ledger
from maintainpro.analytics.semantic.answering import (
    Unanswered,
    access_of,
    answer_query,
    record_refusal,
)
from maintainpro.analytics.semantic.meta import meta
from maintainpro.analytics.semantic.model import SemanticModel, default_model
from maintainpro.api.deps import CurrentUser, SettingsDep
from maintainpro.api.problems import Problem
from maintainpro.config import Settings
from maintainpro.core.users import User

router = APIRouter(prefix="/semantic", tags=["analytics"])

MAX_QUERY_TEXT: Final = 16_384


def semantic_model(request: Request) -> SemanticModel:
    """The app's model: ``app.state.semantic_model`` when set, else the one shipped."""
    model = getattr(request.app.state, "semantic_model", None)
    return model if isinstance(model, SemanticModel) else default_model()


def problem_of(refusal: Unanswered) -> Problem:
    """A refused query as problem details (with ``Retry-After`` when the warehouse is busy)."""
    headers = None
    if refusal.retry_after_s is not None:
        headers = {"Retry-After": str(refusal.retry_after_s)}
    return Problem(refusal.status, refusal.detail, title=refusal.title, headers=headers)


def answer_for(request: Request, settings: Settings, user: User, raw: Any) -> dict[str, Any]:
    """``answer_query`` for a request: the app's model and audit ledger, refusals as problems."""
    try:
        return answer_query(
            settings,
            semantic_model(request),
            user,
            raw,
            ledger=access_ledger(request.app.state),
        )
    except Unanswered as refusal:
        raise problem_of(refusal) from None


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
    return answer_for(request, settings, user, _unwrap(body))


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
        ledger = access_ledger(request.app.state)
        record_refusal(ledger, user, "(not JSON)", 400, "query is not JSON")
        raise Problem(400, "the query parameter is not JSON", title="Invalid query") from None
    return answer_for(request, settings, user, _unwrap(raw))


@router.get("/meta")
def meta_get(request: Request, user: CurrentUser) -> dict[str, Any]:
    """The cubes the caller may query: measures, dimensions, hierarchies, joins."""
    return meta(semantic_model(request), access_of(user))
