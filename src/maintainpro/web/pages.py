"""Page routes of the web shell: sign-in, overview, assets, work orders and area pages."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, FastAPI, Form, HTTPException, Request
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from markupsafe import Markup
from pydantic import TypeAdapter, ValidationError
from sqlalchemy import func, select
from starlette.exceptions import HTTPException as StarletteHTTPException

from maintainpro.analytics.ml.registry import models_dir
from maintainpro.analytics.ml.training import RUL_REASON, load_rul_run, missing_reason
from maintainpro.api.deps import SessionDep
from maintainpro.api.fields import FreeText, Name, contains_pattern
from maintainpro.api.problems import problem_response
from maintainpro.core.assets import Asset, AssetStatus, Location, Site
from maintainpro.core.db import utcnow
from maintainpro.core.inventory import Part, Reservation, ReservationStatus
from maintainpro.core.maintenance import PartNeed, open_work_order, transition_work_order
from maintainpro.core.schedules import MaintenanceSchedule, Meter, MeterReading
from maintainpro.core.users import Permission, User, authenticate_password
from maintainpro.core.work_orders import (
    OPEN_STATUSES,
    TRANSITIONS,
    IllegalTransition,
    Priority,
    WorkOrder,
    WorkOrderNote,
    WorkOrderStatus,
    WorkOrderType,
)
from maintainpro.iot.devices import Device
from maintainpro.iot.trends import asset_sensors
from maintainpro.web.charts import Chart, Series
from maintainpro.web.iot_views import (
    asset_health,
    assets_by_location,
    dead_letter_count,
    device_counts,
    live_sensors,
    open_alerts,
    stored_rate,
)
from maintainpro.web.session_auth import (
    CsrfChecked,
    LoginRequired,
    PageUser,
    csrf_token,
    page_permission,
    sign_in,
    sign_out,
)

HERE = Path(__file__).parent
templates = Jinja2Templates(directory=HERE / "templates")
router = APIRouter(include_in_schema=False)
NAV = (
    ("/plant", "Plant & IoT"),
    ("/analytics", "Analytics"),
    ("/supply", "Supply chain"),
    ("/assets", "Assets"),
    ("/work-orders", "Work orders"),
)
REPORTS_NAV = (("/reports", "Reports"),)  # only for roles that may read reports
CanReadAssets = page_permission(Permission.ASSETS_READ)
CanReadWork = page_permission(Permission.WORK_ORDERS_READ)
CanWriteWork = page_permission(Permission.WORK_ORDERS_WRITE)
# Form fields follow the same rules as the API's bodies.
_NAME: TypeAdapter[str] = TypeAdapter(Name)
_FREE_TEXT: TypeAdapter[str] = TypeAdapter(FreeText)


def _json_script(value: Any) -> Markup:
    # Safe inside <script type="application/json">: no "</script>" can close the tag early.
    text = json.dumps(value).replace("<", "\\u003c").replace(">", "\\u003e")
    return Markup(text)  # noqa: S704 - escaped above for this context


templates.env.filters["json_script"] = _json_script


def render(
    request: Request, name: str, user: User | None, status_code: int = 200, **context: Any
) -> HTMLResponse:
    """Render a page with the shell's navigation, the user and a CSRF token."""
    return templates.TemplateResponse(
        request,
        name,
        {
            "user": user,
            "nav": NAV + REPORTS_NAV
            if user is not None and Permission.REPORTS_READ in user.permissions
            else NAV,
            "csrf": csrf_token(request),
            "path": request.url.path,
            **context,
        },
        status_code=status_code,
    )


def plotly_js_path() -> Path:
    """plotly.min.js as shipped inside the installed plotly package (no CDN)."""
    import plotly

    return Path(plotly.__file__).parent / "package_data" / "plotly.min.js"


@router.get("/static/vendor/plotly.min.js")
def plotly_js() -> FileResponse:
    """Serve plotly.js from the installed package, cached for a day."""
    return FileResponse(
        plotly_js_path(),
        media_type="text/javascript",
        headers={"Cache-Control": "public, max-age=86400"},
    )


@router.get("/login")
def login_form(request: Request, next: str = "/") -> HTMLResponse:
    """The sign-in form."""
    return render(request, "login.html", None, next=_safe_next(next), error=None)


def _safe_next(target: str) -> str:
    # Only same-site paths: an open redirect would let a link send users to a phishing page.
    if not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target


@router.post("/login", dependencies=[CsrfChecked])
def login(
    request: Request,
    db: SessionDep,
    username: Annotated[str, Form(max_length=64)],
    password: Annotated[str, Form(max_length=1024)],
    next: Annotated[str, Form(max_length=2000)] = "/",
) -> Response:
    """Check the password and start a session."""
    user = authenticate_password(db, username.strip(), password)
    if user is None:
        return render(
            request,
            "login.html",
            None,
            status_code=401,
            next=_safe_next(next),
            error="Wrong username or password.",
        )
    db.commit()
    sign_in(request, user)
    return RedirectResponse(_safe_next(next), status_code=303)


@router.post("/logout", dependencies=[CsrfChecked])
def logout(request: Request) -> RedirectResponse:
    """End the session."""
    sign_out(request)
    return RedirectResponse("/login", status_code=303)


@router.get("/", dependencies=[CanReadAssets, CanReadWork])
def home(request: Request, db: SessionDep, user: PageUser) -> HTMLResponse:
    """Overview: asset states, open work by priority, preventive work due."""
    by_status = dict(db.execute(select(Asset.status, func.count()).group_by(Asset.status)).all())
    open_by_priority = dict(
        db.execute(
            select(WorkOrder.priority, func.count())
            .where(WorkOrder.status.in_(OPEN_STATUSES))
            .group_by(WorkOrder.priority)
        ).all()
    )
    now = utcnow()
    due_soon = db.scalars(
        select(MaintenanceSchedule)
        .where(
            MaintenanceSchedule.active.is_(True),
            MaintenanceSchedule.next_due_at <= now + dt.timedelta(days=14),
        )
        .order_by(MaintenanceSchedule.next_due_at)
        .limit(10)
    ).all()
    recent = db.scalars(select(WorkOrder).order_by(WorkOrder.id.desc()).limit(8)).all()
    return render(
        request,
        "home.html",
        user,
        by_status=by_status,
        statuses=list(AssetStatus),
        open_by_priority=open_by_priority,
        priorities=list(Priority),
        due_soon=due_soon,
        recent=recent,
        now=now,
    )


@router.get("/assets", dependencies=[CanReadAssets])
def assets_page(
    request: Request,
    db: SessionDep,
    user: PageUser,
    status: AssetStatus | None = None,
    location_id: int | None = None,
) -> HTMLResponse:
    """Assets grouped by line, with search and a status filter."""
    stmt = select(Asset).order_by(Asset.location_id, Asset.tag)
    if status is not None:
        stmt = stmt.where(Asset.status == status)
    if location_id is not None:
        stmt = stmt.where(Asset.location_id == location_id)
    q = (request.query_params.get("q") or "")[:100]
    if q:
        pattern = contains_pattern(q)
        stmt = stmt.where(Asset.tag.ilike(pattern) | Asset.name.ilike(pattern))
    assets = db.scalars(stmt).all()
    locations = {loc.id: loc for loc in db.scalars(select(Location)).all()}
    open_counts = dict(
        db.execute(
            select(WorkOrder.asset_id, func.count())
            .where(WorkOrder.status.in_(OPEN_STATUSES))
            .group_by(WorkOrder.asset_id)
        ).all()
    )
    return render(
        request,
        "assets.html",
        user,
        assets=assets,
        locations=locations,
        open_counts=open_counts,
        statuses=list(AssetStatus),
        q=q,
        status=status,
        location_id=location_id,
    )


@router.get("/assets/{asset_id}", dependencies=[CanReadAssets])
def asset_page(request: Request, db: SessionDep, user: PageUser, asset_id: int) -> HTMLResponse:
    """One asset: details, hierarchy, meters, schedules, remaining useful life, work orders."""
    asset = db.get(Asset, asset_id)
    if asset is None:
        raise HTTPException(404, f"asset {asset_id} does not exist")
    children = db.scalars(select(Asset).where(Asset.parent_id == asset.id)).all()
    meters = db.scalars(select(Meter).where(Meter.asset_id == asset.id)).all()
    charts = []
    for meter in meters:
        readings = db.scalars(
            select(MeterReading)
            .where(MeterReading.meter_id == meter.id)
            .order_by(MeterReading.read_at.desc())
            .limit(200)
        ).all()[::-1]
        if readings:
            chart = Chart(
                title=f"{meter.name} ({meter.unit})",
                series=[
                    Series(
                        meter.name,
                        [r.read_at for r in readings],
                        [r.value for r in readings],
                        meter.unit,
                    )
                ],
                y_title=meter.unit,
            )
            charts.append({"id": f"meter-{meter.id}", "figure": chart.figure()})
    schedules = db.scalars(
        select(MaintenanceSchedule).where(MaintenanceSchedule.asset_id == asset.id)
    ).all()
    orders = db.scalars(
        select(WorkOrder).where(WorkOrder.asset_id == asset.id).order_by(WorkOrder.id.desc())
    ).all()
    cold_dir = request.app.state.settings.cold_dir
    sensors = asset_sensors(db, asset.id, cold_dir)
    live = live_sensors(db, [v.sensor for v in sensors], asset.asset_class, utcnow(), cold_dir)
    # Remaining useful life from the hourly ML job, and the PMs it pulled forward (their reason
    # carries the RUL phrase; trend-driven pull-forwards do not).
    rul_run = load_rul_run(models_dir(request.app.state.settings))
    rul = None if rul_run is None else rul_run.estimate_of(asset.id)
    rul_pulled = [s for s in schedules if s.proposal_reason and RUL_REASON in s.proposal_reason]
    return render(
        request,
        "asset.html",
        user,
        asset=asset,
        children=children,
        meters=meters,
        charts=charts,
        schedules=schedules,
        orders=orders,
        sensors=sensors,
        alerts=open_alerts(db, asset.id),
        live={"asset_id": asset.id, "sensors": live},
        rul=rul,
        rul_run=rul_run,
        rul_missing=None if rul is not None else missing_reason(rul_run, asset.id),
        rul_pulled=rul_pulled,
    )


@router.get("/work-orders", dependencies=[CanReadWork])
def work_orders_page(
    request: Request,
    db: SessionDep,
    user: PageUser,
    status: WorkOrderStatus | None = None,
    show: str = "open",
) -> HTMLResponse:
    """Work orders, open ones by default."""
    stmt = select(WorkOrder).order_by(WorkOrder.id.desc()).limit(500)
    if status is not None:
        stmt = stmt.where(WorkOrder.status == status)
    elif show == "open":
        stmt = stmt.where(WorkOrder.status.in_(OPEN_STATUSES))
    orders = db.scalars(stmt).all()
    assets = {a.id: a for a in db.scalars(select(Asset)).all()}
    return render(
        request,
        "work_orders.html",
        user,
        orders=orders,
        assets=assets,
        statuses=list(WorkOrderStatus),
        status=status,
        show=show,
    )


@router.get("/work-orders/new", dependencies=[CanWriteWork])
def new_work_order_form(
    request: Request, db: SessionDep, user: PageUser, asset_id: int | None = None
) -> HTMLResponse:
    """The form to open a work order."""
    return _work_order_form(request, db, user, {"asset_id": asset_id}, errors=[])


def _work_order_form(
    request: Request,
    db: SessionDep,
    user: User,
    values: dict[str, Any],
    errors: list[str],
    status_code: int = 200,
) -> HTMLResponse:
    return render(
        request,
        "work_order_new.html",
        user,
        status_code=status_code,
        assets=db.scalars(select(Asset).order_by(Asset.tag)).all(),
        parts=db.scalars(select(Part).order_by(Part.number)).all(),
        types=list(WorkOrderType),
        priorities=list(Priority),
        values=values,
        errors=errors,
    )


@router.post("/work-orders", dependencies=[CsrfChecked, CanWriteWork])
def create_work_order(
    request: Request,
    db: SessionDep,
    user: PageUser,
    asset_id: Annotated[int, Form()],
    title: Annotated[str, Form(max_length=200)],
    type: Annotated[WorkOrderType, Form()],
    priority: Annotated[Priority, Form()],
    description: Annotated[str, Form(max_length=20_000)] = "",
    part_id: Annotated[str, Form()] = "",
    part_quantity: Annotated[str, Form(max_length=20)] = "",
) -> Response:
    """Open a work order from the form."""
    values = {
        "asset_id": asset_id,
        "title": title,
        "type": type,
        "priority": priority,
        "description": description,
        "part_id": part_id,
        "part_quantity": part_quantity,
    }
    errors = []
    try:
        title = _NAME.validate_python(title)
    except ValidationError:
        errors.append("Give the work order a title, without markup or control characters.")
    try:
        description = _FREE_TEXT.validate_python(description)
    except ValidationError:
        errors.append("Remove control characters from the description.")
    if db.get(Asset, asset_id) is None:
        errors.append("Choose an asset.")
    needs = []
    if part_id:
        try:
            quantity = Decimal(part_quantity or "1")
            if not quantity.is_finite() or quantity <= 0:
                raise InvalidOperation
            if db.get(Part, int(part_id)) is None:
                raise ValueError
            needs.append(PartNeed(part_id=int(part_id), quantity=quantity))
        except (InvalidOperation, ValueError):
            errors.append("Choose a known part and a positive quantity.")
    if errors:
        return _work_order_form(request, db, user, values, errors, status_code=422)
    order, _ = open_work_order(
        db,
        asset_id=asset_id,
        title=title.strip(),
        type=type,
        priority=priority,
        description=description,
        parts=needs,
        created_by_id=user.id,
    )
    db.commit()
    return RedirectResponse(f"/work-orders/{order.id}", status_code=303)


@router.get("/work-orders/{work_order_id}", dependencies=[CanReadWork])
def work_order_page(
    request: Request, db: SessionDep, user: PageUser, work_order_id: int, error: str = ""
) -> HTMLResponse:
    """One work order with its history of notes and the moves it can make."""
    order = db.get(WorkOrder, work_order_id)
    if order is None:
        raise HTTPException(404, f"work order {work_order_id} does not exist")
    reservations = db.scalars(
        select(Reservation).where(Reservation.work_order_id == order.id)
    ).all()
    parts = {p.id: p for p in db.scalars(select(Part)).all()}
    users = {u.id: u for u in db.scalars(select(User)).all()}
    return render(
        request,
        "work_order.html",
        user,
        order=order,
        moves=sorted(TRANSITIONS[order.status], key=lambda s: list(WorkOrderStatus).index(s)),
        reservations=reservations,
        parts=parts,
        users=users,
        technicians=[u for u in users.values() if u.active],
        can_write=Permission.WORK_ORDERS_WRITE in user.permissions,
        error=error[:300],
        ReservationStatus=ReservationStatus,
    )


@router.post("/work-orders/{work_order_id}/transition", dependencies=[CsrfChecked, CanWriteWork])
def move_work_order(
    request: Request,
    db: SessionDep,
    user: PageUser,
    work_order_id: int,
    status: Annotated[WorkOrderStatus, Form()],
    reason: Annotated[str, Form(max_length=2000)] = "",
    assignee_id: Annotated[str, Form()] = "",
) -> Response:
    """Move a work order from its page."""
    order = db.get(WorkOrder, work_order_id)
    if order is None:
        raise HTTPException(404, f"work order {work_order_id} does not exist")
    assignee = int(assignee_id) if assignee_id.isdigit() else None
    if assignee is not None and db.get(User, assignee) is None:
        assignee = None
    try:
        transition_work_order(db, order, status, reason=reason or None, assignee_id=assignee)
    except IllegalTransition as exc:
        db.rollback()
        page = work_order_page(request, db, user, work_order_id, error=str(exc))
        page.status_code = 409
        return page
    db.commit()
    return RedirectResponse(f"/work-orders/{order.id}", status_code=303)


@router.post("/work-orders/{work_order_id}/notes", dependencies=[CsrfChecked, CanWriteWork])
def add_note(
    db: SessionDep,
    user: PageUser,
    work_order_id: int,
    body: Annotated[str, Form(min_length=1, max_length=20_000)],
    hours: Annotated[str, Form(max_length=10)] = "",
) -> Response:
    """Add a labour note from the work order's page."""
    order = db.get(WorkOrder, work_order_id)
    if order is None:
        raise HTTPException(404, f"work order {work_order_id} does not exist")
    spent: Decimal | None = None
    try:
        spent = Decimal(hours) if hours.strip() else None
    except InvalidOperation:
        spent = None
    if spent is not None and (not spent.is_finite() or spent < 0 or spent > 1000):
        spent = None
    db.add(WorkOrderNote(work_order_id=order.id, author_id=user.id, body=body, hours=spent))
    db.commit()
    return RedirectResponse(f"/work-orders/{order.id}#notes", status_code=303)


@router.get("/plant", dependencies=[CanReadAssets])
def plant_page(request: Request, db: SessionDep, user: PageUser) -> HTMLResponse:
    """Plant & IoT: lines with their assets' health, device connectivity, ingest rate."""
    sites = db.scalars(select(Site).order_by(Site.code)).all()
    locations = db.scalars(select(Location).order_by(Location.code)).all()
    now = utcnow()
    feed = getattr(request.app.state, "live_feed", None)
    # The pipeline's own count when ingest runs in this process; else the readings table.
    rate = feed.rate_per_s() if feed is not None else stored_rate(db, now)
    return render(
        request,
        "plant.html",
        user,
        sites=sites,
        locations=locations,
        by_location=assets_by_location(db),
        health=asset_health(db),
        device_counts=device_counts(db.scalars(select(Device)).all(), now),
        ingest_rate=rate,
        dead_letters=dead_letter_count(db),
    )


def install_web(app: FastAPI) -> None:
    """Mount the pages, static files and the HTML error pages on the app."""
    from maintainpro.web import (  # they import render from here
        alert_pages,
        analytics_builder,
        analytics_pages,
        device_pages,
        report_pages,
        supply_pages,
        trend_pages,
    )

    app.include_router(router)
    app.include_router(device_pages.router)
    app.include_router(alert_pages.router)
    app.include_router(trend_pages.router)
    app.include_router(supply_pages.router)
    app.include_router(analytics_pages.router)
    app.include_router(analytics_builder.router)
    app.include_router(report_pages.router)
    from maintainpro.web.portal import install_portal  # the supplier portal under /portal

    install_portal(app)
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")

    @app.exception_handler(LoginRequired)
    async def _login(request: Request, exc: LoginRequired) -> RedirectResponse:
        return RedirectResponse(f"/login?next={exc.next_path}", status_code=303)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> Response:
        wants_html = "text/html" in request.headers.get("accept", "")
        if request.url.path.startswith("/api/") or not wants_html:
            headers = dict(exc.headers) if exc.headers else None
            return problem_response(request, exc.status_code, str(exc.detail), headers=headers)
        return render(
            request,
            "error.html",
            None,
            status_code=exc.status_code,
            status=exc.status_code,
            detail=str(exc.detail),
        )
