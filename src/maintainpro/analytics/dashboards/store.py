"""Saved questions and dashboards read and written for one user, with the sharing rules.

Anything a user may not open is answered as missing (404), so ids reveal nothing; opening it but
not owning it forbids changes (403). Every write is checked in full before anything is added.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.orm import Session

from maintainpro.analytics.dashboards.filters import check_member_filters
from maintainpro.analytics.dashboards.records import Dashboard, SavedQuestion
from maintainpro.analytics.dashboards.rules import (
    DashboardError,
    DashboardIn,
    QuestionIn,
    QuestionItem,
    SensorItem,
    check_date_range,
    check_grid,
    check_query,
    may_change,
    may_view,
)
from maintainpro.analytics.semantic.answering import access_of
from maintainpro.analytics.semantic.model import SemanticModel, default_model
from maintainpro.core.users import User
from maintainpro.iot.devices import Sensor


def visible_questions(db: Session, user: User) -> list[SavedQuestion]:
    """The questions the user may open, by name."""
    rows = db.scalars(select(SavedQuestion).order_by(SavedQuestion.name, SavedQuestion.id))
    return [q for q in rows if may_view(q.owner_id, q.shared_roles, user)]


def visible_dashboards(db: Session, user: User) -> list[Dashboard]:
    """The dashboards the user may open, by name."""
    rows = db.scalars(select(Dashboard).order_by(Dashboard.name, Dashboard.id))
    return [d for d in rows if may_view(d.owner_id, d.shared_roles, user)]


def question_for(
    db: Session, user: User, question_id: int, *, change: bool = False
) -> SavedQuestion:
    """A question the user may open (and, with ``change``, change)."""
    question = db.get(SavedQuestion, question_id)
    if question is None or not may_view(question.owner_id, question.shared_roles, user):
        raise DashboardError("no such question", 404)
    if change and not may_change(question.owner_id, user):
        raise DashboardError("only the owner of a question may change it", 403)
    return question


def dashboard_for(db: Session, user: User, dashboard_id: int, *, change: bool = False) -> Dashboard:
    """A dashboard the user may open (and, with ``change``, change)."""
    dashboard = db.get(Dashboard, dashboard_id)
    if dashboard is None or not may_view(dashboard.owner_id, dashboard.shared_roles, user):
        raise DashboardError("no such dashboard", 404)
    if change and not may_change(dashboard.owner_id, user):
        raise DashboardError("only the owner of a dashboard may change it", 403)
    return dashboard


def save_question(
    db: Session,
    model: SemanticModel,
    user: User,
    data: QuestionIn,
    today: dt.date,
    question: SavedQuestion | None = None,
) -> SavedQuestion:
    """Create a question (or replace one the user owns) after checking its query."""
    check_query(model, data.query, user, today)
    if question is None:
        question = SavedQuestion(owner_id=user.id)
        db.add(question)
    question.name = data.name
    question.description = data.description
    question.query = data.query
    question.chart = data.chart
    question.shared_roles = sorted(set(data.shared_roles))
    db.flush()
    return question


def delete_question(db: Session, user: User, question_id: int) -> None:
    """Delete a question the user owns that no dashboard shows."""
    question = question_for(db, user, question_id, change=True)
    users = [d for d in db.scalars(select(Dashboard)) if question.id in question_ids(d.layout)]
    if users:
        raise DashboardError(f"the question is on {len(users)} dashboard(s); remove it first", 409)
    db.delete(question)
    db.flush()


def question_ids(layout: Sequence[dict[str, object]]) -> list[int]:
    """The ids of the questions a stored layout shows."""
    return [int(str(i["question_id"])) for i in layout if i.get("kind") == "question"]


def check_dashboard(
    db: Session,
    user: User,
    data: DashboardIn,
    today: dt.date,
    model: SemanticModel | None = None,
) -> None:
    """The grid fits, the filters read (against ``model``, else the shipped one), every question
    and sensor named exists for the user."""
    check_grid(data.layout)
    check_date_range(data.filters.date_range, today)
    semantic = model if model is not None else default_model()
    check_member_filters(semantic, data.filters.members, access_of(user), today)
    for index, item in enumerate(data.layout):
        if isinstance(item, QuestionItem):
            question = db.get(SavedQuestion, item.question_id)
            if question is None or not may_view(question.owner_id, question.shared_roles, user):
                raise DashboardError(
                    f"layout[{index}] names a question that does not exist or is not shared"
                    " with you"
                )
        elif isinstance(item, SensorItem):
            found = set(db.scalars(select(Sensor.id).where(Sensor.id.in_(item.sensor_ids))))
            if found != set(item.sensor_ids):
                raise DashboardError(f"layout[{index}] names a sensor that does not exist")


def save_dashboard(
    db: Session,
    user: User,
    data: DashboardIn,
    today: dt.date,
    dashboard: Dashboard | None = None,
    model: SemanticModel | None = None,
) -> Dashboard:
    """Create a dashboard (or replace one the user owns) after checking it (its member filters
    against ``model``, else the shipped model)."""
    check_dashboard(db, user, data, today, model)
    if dashboard is None:
        dashboard = Dashboard(owner_id=user.id)
        db.add(dashboard)
    dashboard.name = data.name
    dashboard.description = data.description
    dashboard.layout = [item.model_dump() for item in data.layout]
    dashboard.filters = data.filters.stored()
    dashboard.refresh_s = data.refresh_s
    dashboard.shared_roles = sorted(set(data.shared_roles))
    db.flush()
    return dashboard


def delete_dashboard(db: Session, user: User, dashboard_id: int) -> None:
    """Delete a dashboard the user owns (its questions stay)."""
    db.delete(dashboard_for(db, user, dashboard_id, change=True))
    db.flush()
