"""A dashboard as a JSON document and back: its questions travel with it, by reference.

Export writes ``{"format": "maintainpro.dashboard", "version": 1, "dashboard": {...},
"questions": [{"ref": "q1", ...}]}`` where each question item of the layout names a ``ref``.
Import checks the whole document first (shape, refs, every query and member filter against the
importer's view of the model, every sensor id) and then creates new questions and a new
dashboard owned by the importer; the answer says which new id each ref became. Nothing is
matched by name or remapped silently: an unknown ref, an unused question, a missing sensor or a
filter on a member that is not shared is a 422 and nothing is saved.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Final, Literal

from pydantic import Field, StringConstraints
from sqlalchemy.orm import Session

from maintainpro.analytics.dashboards.filters import check_member_filters
from maintainpro.analytics.dashboards.records import Dashboard, SavedQuestion
from maintainpro.analytics.dashboards.rules import (
    MAX_ITEMS,
    SHAREABLE_ROLES,
    ChartType,
    DashboardError,
    DashboardIn,
    Description,
    Filters,
    GridCell,
    QuestionIn,
    QuestionItem,
    RefreshSeconds,
    RoleName,
    SensorItem,
    StrictModel,
    check_date_range,
    check_query,
    parse_model,
)
from maintainpro.analytics.dashboards.store import save_dashboard
from maintainpro.analytics.semantic.answering import access_of
from maintainpro.analytics.semantic.model import SemanticModel
from maintainpro.api.fields import Name
from maintainpro.core.users import User

FORMAT: Final = "maintainpro.dashboard"
VERSION: Final = 1
Ref = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_-]{1,40}$")]


class ExportedQuestion(StrictModel):
    """A question inside an export."""

    ref: Ref
    name: Name
    description: Description = ""
    query: dict[str, Any]
    chart: ChartType = "table"
    shared_roles: Annotated[list[RoleName], Field(max_length=len(SHAREABLE_ROLES))] = []


class RefItem(GridCell):
    """A question on the grid, named by its ref in the document."""

    kind: Literal["question"]
    question: Ref


ExportedItem = Annotated[RefItem | SensorItem, Field(discriminator="kind")]


class ExportedDashboard(StrictModel):
    """The dashboard inside an export."""

    name: Name
    description: Description = ""
    layout: Annotated[list[ExportedItem], Field(max_length=MAX_ITEMS)] = []
    filters: Filters = Filters()
    refresh_s: RefreshSeconds = 0
    shared_roles: Annotated[list[RoleName], Field(max_length=len(SHAREABLE_ROLES))] = []


class Document(StrictModel):
    """A whole export."""

    format: Literal["maintainpro.dashboard"]
    version: Literal[1]
    dashboard: ExportedDashboard
    questions: Annotated[list[ExportedQuestion], Field(max_length=MAX_ITEMS)] = []


def export_dashboard(db: Session, dashboard: Dashboard) -> dict[str, Any]:
    """The dashboard and the questions it shows as one JSON document."""
    refs: dict[int, str] = {}
    questions: list[dict[str, Any]] = []
    layout: list[dict[str, Any]] = []
    for item in dashboard.layout:
        entry = {k: v for k, v in item.items() if k != "question_id"}
        if item.get("kind") == "question":
            question_id = int(item["question_id"])
            if question_id not in refs:
                question = db.get(SavedQuestion, question_id)
                if question is None:
                    raise DashboardError("the dashboard shows a question that was deleted", 409)
                refs[question_id] = f"q{len(refs) + 1}"
                questions.append(
                    {
                        "ref": refs[question_id],
                        "name": question.name,
                        "description": question.description,
                        "query": question.query,
                        "chart": question.chart,
                        "shared_roles": question.shared_roles,
                    }
                )
            entry["question"] = refs[question_id]
        layout.append(entry)
    return {
        "format": FORMAT,
        "version": VERSION,
        "dashboard": {
            "name": dashboard.name,
            "description": dashboard.description,
            "layout": layout,
            "filters": dashboard.filters,
            "refresh_s": dashboard.refresh_s,
            "shared_roles": dashboard.shared_roles,
        },
        "questions": questions,
    }


def import_dashboard(
    db: Session, model: SemanticModel, user: User, raw: Any, today: dt.date
) -> tuple[Dashboard, dict[str, int]]:
    """A new dashboard and new questions from an export; which id each ref became."""
    if isinstance(raw, dict) and raw.get("format") != FORMAT:
        raise DashboardError(f"this is not a dashboard export (format must be {FORMAT})")
    document = parse_model(Document, raw, "dashboard export")
    by_ref: dict[str, ExportedQuestion] = {}
    for index, question in enumerate(document.questions):
        if question.ref in by_ref:
            raise DashboardError(f"questions[{index}] repeats a ref")
        by_ref[question.ref] = question
        check_query(model, question.query, user, today)
    check_date_range(document.dashboard.filters.date_range, today)
    check_member_filters(model, document.dashboard.filters.members, access_of(user), today)
    used = {i.question for i in document.dashboard.layout if isinstance(i, RefItem)}
    for index, item in enumerate(document.dashboard.layout):
        if isinstance(item, RefItem) and item.question not in by_ref:
            raise DashboardError(f"layout[{index}] names a question the export does not hold")
    for index, question in enumerate(document.questions):
        if question.ref not in used:
            raise DashboardError(f"questions[{index}] is on no item of the layout")
    # Every check that needs no new row is done; the layout is checked again with real ids.
    created: dict[str, int] = {}
    for question in document.questions:
        data = QuestionIn.model_validate(question.model_dump(exclude={"ref"}))
        row = SavedQuestion(
            owner_id=user.id,
            name=data.name,
            description=data.description,
            query=data.query,
            chart=data.chart,
            shared_roles=sorted(set(data.shared_roles)),
        )
        db.add(row)
        db.flush()
        created[question.ref] = row.id
    layout: list[QuestionItem | SensorItem] = []
    for item in document.dashboard.layout:
        if isinstance(item, RefItem):
            cell = item.model_dump(exclude={"question", "kind"})
            layout.append(QuestionItem(kind="question", question_id=created[item.question], **cell))
        else:
            layout.append(item)
    exported = document.dashboard
    board = DashboardIn(
        name=exported.name,
        description=exported.description,
        layout=layout,
        filters=exported.filters,
        refresh_s=exported.refresh_s,
        shared_roles=exported.shared_roles,
    )
    return save_dashboard(db, user, board, today, model=model), created
