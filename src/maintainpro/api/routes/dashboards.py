"""Saved questions and dashboards over HTTP, for API clients and for the analytics pages.

Callers sign in with a bearer token or, from the pages, with the session cookie; a session
request that changes something must carry the page's CSRF token in ``X-CSRF-Token``. Questions
run through the semantic layer as the caller (``semantic.answering.answer_query``, the code
behind ``/semantic/load``), so a site-bound user sees its site's rows of a question shared by
anyone, and the BI access audit records every run. A dashboard's member filters are added to
the questions they apply to (``dashboards.filters``); the viewer's site scope still holds, so a
filter can only narrow what the viewer sees.
"""

from __future__ import annotations

import datetime as dt
import hmac
import json
from typing import Annotated, Any, Final

from fastapi import APIRouter, Body, Depends, Request, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.orm import Session

from maintainpro.analytics.dashboards.filters import (
    check_member_filters,
    filter_members,
    with_member_filters,
)
from maintainpro.analytics.dashboards.records import Dashboard, SavedQuestion
from maintainpro.analytics.dashboards.rules import (
    DashboardError,
    DashboardIn,
    Filters,
    QuestionIn,
    check_date_range,
    check_query,
    may_view,
    parse_model,
    with_date_range,
)
from maintainpro.analytics.dashboards.store import (
    dashboard_for,
    delete_dashboard,
    delete_question,
    question_for,
    question_ids,
    save_dashboard,
    save_question,
    visible_dashboards,
    visible_questions,
)
from maintainpro.analytics.dashboards.tables import XLSX_MIME, csv_bytes, xlsx_bytes
from maintainpro.analytics.dashboards.transfer import export_dashboard, import_dashboard
from maintainpro.analytics.semantic.answering import access_of
from maintainpro.analytics.semantic.meta import meta
from maintainpro.analytics.semantic.routes import answer_for, semantic_model
from maintainpro.api.deps import SessionDep, SettingsDep, get_current_user
from maintainpro.api.problems import Problem
from maintainpro.config import Settings
from maintainpro.core.audit import Actor, set_actor
from maintainpro.core.users import Role, User

router = APIRouter(tags=["analytics"])
SAFE_METHODS: Final = frozenset({"GET", "HEAD", "OPTIONS"})
MAX_IMPORT_BYTES: Final = 1_048_576
_bearer = HTTPBearer(auto_error=False, description="A personal API token (mpt_...)")


def caller(
    request: Request,
    db: SessionDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> User:
    """The user of a bearer token, else of the page session (with a CSRF header for writes)."""
    if credentials is not None or "session" not in request.scope:
        return get_current_user(db, credentials)
    uid = request.session.get("uid")
    user = db.get(User, uid) if isinstance(uid, int) else None
    if user is None or not user.active:
        return get_current_user(db, None)  # the usual 401
    if user.role is Role.SUPPLIER:
        raise Problem(403, "supplier accounts use the supplier portal, not the API")
    if request.method not in SAFE_METHODS:
        expected = request.session.get("csrf")
        sent = request.headers.get("x-csrf-token", "")
        if not isinstance(expected, str) or not hmac.compare_digest(expected, sent):
            raise Problem(403, "the page's CSRF token is missing or stale; reload the page")
    set_actor(db, Actor(user_id=user.id, name=user.username))
    return user


Caller = Annotated[User, Depends(caller)]


def _today() -> dt.date:
    return dt.datetime.now(dt.UTC).date()


def _fail(exc: DashboardError) -> Problem:
    titles = {404: "Not Found", 403: "Forbidden", 409: "Conflict"}
    return Problem(exc.status, str(exc), title=titles.get(exc.status, "Invalid input"))


def _question(question: SavedQuestion, user: User) -> dict[str, Any]:
    return {
        "id": question.id,
        "name": question.name,
        "description": question.description,
        "query": question.query,
        "chart": question.chart,
        "owner_id": question.owner_id,
        "shared_roles": question.shared_roles,
        "mine": question.owner_id == user.id,
        "updated_at": question.updated_at.isoformat() if question.updated_at else None,
    }


def _dashboard(dashboard: Dashboard, user: User) -> dict[str, Any]:
    return {
        "id": dashboard.id,
        "name": dashboard.name,
        "description": dashboard.description,
        "layout": dashboard.layout,
        "filters": dashboard.filters,
        "refresh_s": dashboard.refresh_s,
        "owner_id": dashboard.owner_id,
        "shared_roles": dashboard.shared_roles,
        "mine": dashboard.owner_id == user.id,
    }


def run_query(
    request: Request, settings: Settings, user: User, query: dict[str, Any]
) -> dict[str, Any]:
    """Answer a query as this user (site scope, permissions, audit) through the semantic layer."""
    return answer_for(request, settings, user, query)


def _date_override(body: Any) -> tuple[bool, str | list[str] | None]:
    """Whether the body sends a ``dateRange``, and it (a phrase, two dates or null)."""
    if body is None:
        return False, None
    if not isinstance(body, dict) or set(body) - {"dateRange"}:
        raise Problem(422, 'the body is {"dateRange": ...} or empty', title="Invalid input")
    if "dateRange" not in body:
        return False, None
    value = body["dateRange"]
    if value is None or isinstance(value, str):
        return True, value
    if isinstance(value, list) and len(value) == 2 and all(isinstance(v, str) for v in value):
        return True, [str(v) for v in value]
    raise Problem(422, "dateRange is a phrase, two dates or null", title="Invalid input")


# ------------------------------------------------------------------------------ questions


@router.get("/questions/meta")
def questions_meta(request: Request, user: Caller) -> dict[str, Any]:
    """What the query builder offers this user: the cubes, measures and dimensions it may read."""
    return meta(semantic_model(request), access_of(user))


@router.get("/questions")
def list_questions(db: SessionDep, user: Caller) -> list[dict[str, Any]]:
    """The questions the caller owns or that are shared with its role."""
    return [_question(q, user) for q in visible_questions(db, user)]


@router.post("/questions", status_code=201)
def create_question(
    request: Request, db: SessionDep, user: Caller, body: Annotated[Any, Body()]
) -> dict[str, Any]:
    """Save a question; its query is checked against the semantic model for the caller."""
    try:
        data = parse_model(QuestionIn, body, "question")
        question = save_question(db, semantic_model(request), user, data, _today())
    except DashboardError as exc:
        raise _fail(exc) from None
    db.commit()
    return _question(question, user)


@router.post("/questions/preview")
def preview_question(
    request: Request, settings: SettingsDep, user: Caller, body: Annotated[Any, Body()]
) -> dict[str, Any]:
    """Run a query that is not saved yet (the builder's Run button)."""
    query = body.get("query") if isinstance(body, dict) and set(body) == {"query"} else body
    if not isinstance(query, dict):
        raise Problem(422, 'the body is {"query": {...}}', title="Invalid input")
    try:
        check_query(semantic_model(request), query, user, _today())
    except DashboardError as exc:
        raise _fail(exc) from None
    return run_query(request, settings, user, query)


@router.get("/questions/{question_id}")
def get_question(question_id: int, db: SessionDep, user: Caller) -> dict[str, Any]:
    """One question."""
    try:
        return _question(question_for(db, user, question_id), user)
    except DashboardError as exc:
        raise _fail(exc) from None


@router.put("/questions/{question_id}")
def update_question(
    question_id: int,
    request: Request,
    db: SessionDep,
    user: Caller,
    body: Annotated[Any, Body()],
) -> dict[str, Any]:
    """Replace a question the caller owns."""
    try:
        question = question_for(db, user, question_id, change=True)
        data = parse_model(QuestionIn, body, "question")
        save_question(db, semantic_model(request), user, data, _today(), question)
    except DashboardError as exc:
        raise _fail(exc) from None
    db.commit()
    return _question(question, user)


@router.delete("/questions/{question_id}", status_code=204)
def remove_question(question_id: int, db: SessionDep, user: Caller) -> Response:
    """Delete a question the caller owns and no dashboard shows."""
    try:
        delete_question(db, user, question_id)
    except DashboardError as exc:
        raise _fail(exc) from None
    db.commit()
    return Response(status_code=204)


def _run_saved(
    request: Request,
    settings: Settings,
    db: Session,
    user: User,
    question_id: int,
    date_range: str | list[str] | None,
) -> tuple[SavedQuestion, dict[str, Any]]:
    try:
        question = question_for(db, user, question_id)
        check_date_range(date_range, _today())
    except DashboardError as exc:
        raise _fail(exc) from None
    return question, run_query(request, settings, user, with_date_range(question.query, date_range))


@router.post("/questions/{question_id}/run")
def run_question(
    question_id: int,
    request: Request,
    settings: SettingsDep,
    db: SessionDep,
    user: Caller,
    body: Annotated[Any, Body()] = None,
) -> dict[str, Any]:
    """Answer a saved question for the caller (its sites only), optionally for another range."""
    _, override = _date_override(body)
    question, answer = _run_saved(request, settings, db, user, question_id, override)
    return {"question": _question(question, user), "answer": answer}


@router.get("/questions/{question_id}/export.csv")
def export_question_csv(
    question_id: int, request: Request, settings: SettingsDep, db: SessionDep, user: Caller
) -> Response:
    """The caller's answer to a question as CSV."""
    _, answer = _run_saved(request, settings, db, user, question_id, None)
    return Response(
        csv_bytes(answer),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="question-{question_id}.csv"'},
    )


@router.get("/questions/{question_id}/export.xlsx")
def export_question_xlsx(
    question_id: int, request: Request, settings: SettingsDep, db: SessionDep, user: Caller
) -> Response:
    """The caller's answer to a question as an Excel workbook."""
    question, answer = _run_saved(request, settings, db, user, question_id, None)
    return Response(
        xlsx_bytes(answer, question.name),
        media_type=XLSX_MIME,
        headers={"Content-Disposition": f'attachment; filename="question-{question_id}.xlsx"'},
    )


# ----------------------------------------------------------------------------- dashboards


@router.get("/dashboards")
def list_dashboards(db: SessionDep, user: Caller) -> list[dict[str, Any]]:
    """The dashboards the caller owns or that are shared with its role."""
    return [_dashboard(d, user) for d in visible_dashboards(db, user)]


@router.post("/dashboards", status_code=201)
def create_dashboard(
    request: Request, db: SessionDep, user: Caller, body: Annotated[Any, Body()]
) -> dict[str, Any]:
    """Save a dashboard; every question on it must be one the caller may open."""
    try:
        data = parse_model(DashboardIn, body, "dashboard")
        dashboard = save_dashboard(db, user, data, _today(), model=semantic_model(request))
    except DashboardError as exc:
        raise _fail(exc) from None
    db.commit()
    return _dashboard(dashboard, user)


def _import_size(request: Request) -> None:
    length = request.headers.get("content-length", "")
    if length.isdigit() and int(length) > MAX_IMPORT_BYTES:
        raise Problem(413, f"an import may be at most {MAX_IMPORT_BYTES} bytes")


@router.post("/dashboards/import", status_code=201, dependencies=[Depends(_import_size)])
def import_dashboard_route(
    request: Request, db: SessionDep, user: Caller, body: Annotated[Any, Body()]
) -> dict[str, Any]:
    """Create a dashboard and its questions from an export; which id each ref became."""
    try:
        dashboard, created = import_dashboard(db, semantic_model(request), user, body, _today())
    except DashboardError as exc:
        db.rollback()
        raise _fail(exc) from None
    db.commit()
    return {"dashboard": _dashboard(dashboard, user), "questions": created}


@router.get("/dashboards/{dashboard_id}")
def get_dashboard(
    dashboard_id: int, request: Request, db: SessionDep, user: Caller
) -> dict[str, Any]:
    """One dashboard, with the questions on it that the caller may open and the members it may
    be filtered on (``filter_members``)."""
    try:
        dashboard = dashboard_for(db, user, dashboard_id)
    except DashboardError as exc:
        raise _fail(exc) from None
    questions = {}
    for question_id in question_ids(dashboard.layout):
        question = db.get(SavedQuestion, question_id)
        if question is not None and may_view(question.owner_id, question.shared_roles, user):
            questions[str(question_id)] = _question(question, user)
    members = filter_members(semantic_model(request), access_of(user))
    return {**_dashboard(dashboard, user), "questions": questions, "filter_members": members}


@router.put("/dashboards/{dashboard_id}")
def update_dashboard(
    dashboard_id: int,
    request: Request,
    db: SessionDep,
    user: Caller,
    body: Annotated[Any, Body()],
) -> dict[str, Any]:
    """Replace a dashboard the caller owns (the layout, say, after moving a widget)."""
    try:
        dashboard = dashboard_for(db, user, dashboard_id, change=True)
        data = parse_model(DashboardIn, body, "dashboard")
        save_dashboard(db, user, data, _today(), dashboard, model=semantic_model(request))
    except DashboardError as exc:
        raise _fail(exc) from None
    db.commit()
    return _dashboard(dashboard, user)


@router.delete("/dashboards/{dashboard_id}", status_code=204)
def remove_dashboard(dashboard_id: int, db: SessionDep, user: Caller) -> Response:
    """Delete a dashboard the caller owns."""
    try:
        delete_dashboard(db, user, dashboard_id)
    except DashboardError as exc:
        raise _fail(exc) from None
    db.commit()
    return Response(status_code=204)


@router.get("/dashboards/{dashboard_id}/export")
def export_dashboard_route(dashboard_id: int, db: SessionDep, user: Caller) -> Response:
    """The dashboard and its questions as one JSON document, to import elsewhere."""
    try:
        document = export_dashboard(db, dashboard_for(db, user, dashboard_id))
    except DashboardError as exc:
        raise _fail(exc) from None
    return Response(
        json.dumps(document, indent=2),
        media_type="application/json",
        headers={"Content-Disposition": f'attachment; filename="dashboard-{dashboard_id}.json"'},
    )


@router.post("/dashboards/{dashboard_id}/refresh")
def refresh_dashboard(
    dashboard_id: int,
    request: Request,
    settings: SettingsDep,
    db: SessionDep,
    user: Caller,
    body: Annotated[Any, Body()] = None,
) -> dict[str, Any]:
    """Every question of the dashboard answered for the caller, with the dashboard's filters.

    A body ``{"dateRange": ...}`` replaces the dashboard's range for this refresh (null: each
    question's own range), ``{"members": [...]}`` its member filters ([]: none). Each widget
    lists the member filters that do not apply to its question (``notApplicable``). A question
    the caller may not open, or that fails, gives that widget an error, not the page.
    """
    try:
        dashboard = dashboard_for(db, user, dashboard_id)
    except DashboardError as exc:
        raise _fail(exc) from None
    model = semantic_model(request)
    today = _today()
    try:
        # No key: the dashboard's own; {"dateRange": null}: each question's own range.
        sent = parse_model(Filters, {} if body is None else body, "refresh body")
        saved = Filters.model_validate(dashboard.filters or {})
        date_range = sent.date_range if "date_range" in sent.model_fields_set else saved.date_range
        check_date_range(date_range, today)
        if "members" in sent.model_fields_set:
            # The viewer's own filters are checked as the viewer; the saved ones were checked
            # for the owner, and a cube this viewer may not read fails in the widget instead.
            check_member_filters(model, sent.members, access_of(user), today)
            members = sent.members
        else:
            members = saved.members
    except DashboardError as exc:
        raise _fail(exc) from None
    except ValueError:  # saved filters the current model no longer reads
        raise Problem(409, "the dashboard's saved filters do not read; save them again") from None
    widgets: dict[str, Any] = {}
    for question_id in dict.fromkeys(question_ids(dashboard.layout)):
        question = db.get(SavedQuestion, question_id)
        if question is None or not may_view(question.owner_id, question.shared_roles, user):
            widgets[str(question_id)] = {"error": "this question is not shared with you"}
            continue
        query, skipped = with_member_filters(
            model, with_date_range(question.query, date_range), members, today
        )
        try:
            answer = run_query(request, settings, user, query)
        except Problem as problem:
            widgets[str(question_id)] = {"error": problem.detail, "notApplicable": skipped}
            continue
        widgets[str(question_id)] = {
            "question": _question(question, user),
            "answer": answer,
            "notApplicable": skipped,
        }
    return {
        "dateRange": date_range,
        "members": [m.model_dump() for m in members],
        "widgets": widgets,
    }
