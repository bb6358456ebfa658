"""Self-service analytics pages: the query builder, saved questions and custom dashboards.

The pages are shells: their scripts (``analytics_builder.js``, ``analytics_dashboard.js``) read
and write through ``/api/v1/questions`` and ``/api/v1/dashboards`` with the session cookie and
the page's CSRF token, so the browser and API clients share one set of rules.
"""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import HTMLResponse
from sqlalchemy import select

from maintainpro.analytics.dashboards.rules import (
    CHART_TYPES,
    DATE_PRESETS,
    SHAREABLE_ROLES,
    DashboardError,
    may_change,
)
from maintainpro.analytics.dashboards.store import (
    dashboard_for,
    visible_dashboards,
    visible_questions,
)
from maintainpro.api.deps import SessionDep
from maintainpro.core.assets import Asset
from maintainpro.iot.devices import Device, Sensor
from maintainpro.web.pages import render
from maintainpro.web.session_auth import PageUser

router = APIRouter(include_in_schema=False)


@router.get("/analytics/questions")
def questions_page(request: Request, db: SessionDep, user: PageUser) -> HTMLResponse:
    """The saved questions the user may open."""
    return render(request, "analytics_questions.html", user, questions=visible_questions(db, user))


@router.get("/analytics/questions/new")
def builder_page(
    request: Request, db: SessionDep, user: PageUser, question: int | None = None
) -> HTMLResponse:
    """The query builder (``?question=ID`` opens a saved question in it)."""
    return render(
        request,
        "analytics_builder.html",
        user,
        question_id=question,
        charts=CHART_TYPES,
        roles=SHAREABLE_ROLES,
        date_presets=DATE_PRESETS,
        # A saved question can be put straight onto a dashboard the user may change.
        dashboards=[d for d in visible_dashboards(db, user) if may_change(d.owner_id, user)],
    )


@router.get("/analytics/dashboards")
def dashboards_page(request: Request, db: SessionDep, user: PageUser) -> HTMLResponse:
    """The dashboards the user may open; a new one, or one imported from JSON."""
    return render(
        request,
        "analytics_dashboards.html",
        user,
        dashboards=visible_dashboards(db, user),
        roles=SHAREABLE_ROLES,
    )


@router.get("/analytics/dashboards/{dashboard_id}")
def dashboard_page(
    request: Request, dashboard_id: int, db: SessionDep, user: PageUser
) -> HTMLResponse:
    """One dashboard: its grid of questions and live sensor widgets."""
    try:
        dashboard = dashboard_for(db, user, dashboard_id)
    except DashboardError as exc:
        raise HTTPException(exc.status, str(exc)) from None
    sensors = db.execute(
        select(Sensor.id, Sensor.key, Sensor.unit, Device.name, Asset.tag)
        .join(Device, Device.id == Sensor.device_id)
        .outerjoin(Asset, Asset.id == Device.asset_id)
        .order_by(Asset.tag, Device.name, Sensor.key)
    ).all()
    return render(
        request,
        "analytics_dashboard.html",
        user,
        dashboard=dashboard,
        questions=visible_questions(db, user),
        roles=SHAREABLE_ROLES,
        date_presets=DATE_PRESETS,
        sensors=[
            {
                "id": s.id,
                "label": f"{s.tag or s.name} · {s.key}",
                "unit": s.unit or "",
            }
            for s in sensors
        ],
        can_change=may_change(dashboard.owner_id, user),
    )
