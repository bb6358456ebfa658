"""Alert pages: the filterable alert list with bulk actions, an alert's detail with its notes,
and a sensor's threshold settings with a preview of when the edited rule would have fired."""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass, field
from typing import Annotated, Any, Final

from fastapi import APIRouter, Form, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy import select
from sqlalchemy.orm import Session

from maintainpro.api.deps import SessionDep
from maintainpro.core.assets import Asset
from maintainpro.core.db import utcnow
from maintainpro.core.maintenance import NotFound
from maintainpro.core.users import Permission, User
from maintainpro.core.work_orders import WorkOrder
from maintainpro.iot.alert_lifecycle import AlertAction, IllegalAlertMove, act_on_alerts
from maintainpro.iot.alerts import (
    ALERT_TRANSITIONS,
    OPEN_ALERT_STATUSES,
    Alert,
    AlertRule,
    AlertStatus,
)
from maintainpro.iot.devices import Device, Sensor
from maintainpro.iot.rule_specs import RuleSpecError, ThresholdSpec, parse_condition
from maintainpro.iot.rules import (
    Clear,
    Escalate,
    Raise,
    Rule,
    Sample,
    Transition,
    evaluate,
    initial_state,
)
from maintainpro.iot.timeseries import QUALITY_NAMES, query_readings
from maintainpro.web.charts import Chart, Series, Threshold
from maintainpro.web.pages import render
from maintainpro.web.session_auth import CsrfChecked, PageUser, page_permission

router = APIRouter(include_in_schema=False)
CanRead = page_permission(Permission.DEVICES_READ)
CanAct = page_permission(Permission.WORK_ORDERS_WRITE)
SEVERITIES: Final = ("warning", "major", "critical")
PERIODS: Final[dict[str, dt.timedelta | None]] = {
    "24h": dt.timedelta(hours=24),
    "7d": dt.timedelta(days=7),
    "30d": dt.timedelta(days=30),
    "all": None,
}
STATUS_CHOICES: Final = ("open", *(s.value for s in AlertStatus), "any")
LIST_LIMIT: Final = 500
MAX_BULK: Final = 500
PREVIEW_WINDOW: Final = dt.timedelta(days=7)
# A week of 1-minute averages is 10,080 points: more raw readings than this and the preview
# evaluates the 1-minute rollups instead, which keeps it well under a second.
PREVIEW_POINTS: Final = 12_000
CHART_POINTS: Final = 1_500
LEVEL_COLOURS: Final = {"warning": "#b45309", "major": "#c2410c", "critical": "#b91c1c"}


def _flash(request: Request, message: str, kind: str = "ok") -> None:
    request.session["flash"] = {"message": message[:500], "kind": kind}


def _take_flash(request: Request) -> dict[str, str] | None:
    flash = request.session.pop("flash", None)
    return flash if isinstance(flash, dict) else None


def _safe_back(target: str) -> str:
    # Only the alert pages themselves: anything else could turn the form into an open redirect.
    if target.startswith("/alerts") and "//" not in target and "\\" not in target:
        return target
    return "/alerts"


@router.get("/alerts", dependencies=[CanRead])
def alerts_page(
    request: Request,
    db: SessionDep,
    user: PageUser,
    status: str = "open",
    severity: str = "",
    asset: str = "",
    period: str = "7d",
) -> HTMLResponse:
    """Alerts filtered by status, severity, asset and time range, with bulk actions."""
    status = status if status in STATUS_CHOICES else "open"
    severity = severity if severity in SEVERITIES else ""
    period = period if period in PERIODS else "7d"
    asset_id = int(asset) if asset.isdigit() else None
    stmt = select(Alert).order_by(Alert.raised_at.desc(), Alert.id.desc())
    if status == "open":
        stmt = stmt.where(Alert.status.in_(OPEN_ALERT_STATUSES))
    elif status != "any":
        stmt = stmt.where(Alert.status == AlertStatus(status))
    if severity:
        stmt = stmt.where(Alert.severity == severity)
    if asset_id is not None:
        stmt = stmt.where(Alert.asset_id == asset_id)
    window = PERIODS[period]
    if window is not None:
        stmt = stmt.where(Alert.raised_at >= utcnow() - window)
    alerts = db.scalars(stmt.limit(LIST_LIMIT + 1)).all()
    assets = {a.id: a for a in db.scalars(select(Asset).order_by(Asset.tag))}
    sensors = _sensor_labels(db, {a.sensor_id for a in alerts if a.sensor_id is not None})
    return render(
        request,
        "alerts.html",
        user,
        alerts=alerts[:LIST_LIMIT],
        truncated=len(alerts) > LIST_LIMIT,
        assets=assets,
        sensors=sensors,
        filters={"status": status, "severity": severity, "asset": asset_id, "period": period},
        statuses=STATUS_CHOICES,
        severities=SEVERITIES,
        periods=list(PERIODS),
        actions=[a.value for a in AlertAction],
        can_act=Permission.WORK_ORDERS_WRITE in user.permissions,
        flash=_take_flash(request),
        back=str(request.url.path) + (f"?{request.url.query}" if request.url.query else ""),
    )


def _sensor_labels(db: Session, ids: set[int]) -> dict[int, str]:
    if not ids:
        return {}
    rows = db.execute(
        select(Sensor.id, Device.key, Sensor.key)
        .join(Device, Sensor.device_id == Device.id)
        .where(Sensor.id.in_(ids))
    ).all()
    return {pk: f"{device}/{sensor}" for pk, device, sensor in rows}


@router.post("/alerts/actions", dependencies=[CsrfChecked, CanAct])
def alert_actions(
    request: Request,
    db: SessionDep,
    user: PageUser,
    action: Annotated[AlertAction, Form()],
    ids: Annotated[list[int], Form(max_length=MAX_BULK)] = [],  # noqa: B006 - FastAPI default
    note: Annotated[str, Form(max_length=20_000)] = "",
    back: Annotated[str, Form(max_length=2000)] = "/alerts",
) -> Response:
    """Acknowledge, clear, close or annotate the chosen alerts, all or nothing."""
    target = _safe_back(back)
    if not ids:
        _flash(request, "Choose at least one alert.", "error")
        return RedirectResponse(target, status_code=303)
    try:
        done = act_on_alerts(
            db,
            ids,
            action,
            user_id=user.id,
            note=note.strip(),
            public_url=request.app.state.settings.public_url,
        )
    except (NotFound, IllegalAlertMove, ValueError) as exc:
        db.rollback()
        _flash(request, f"Nothing was changed: {exc}.", "error")
        return RedirectResponse(target, status_code=303)
    db.commit()
    verb = {"acknowledge": "Acknowledged", "clear": "Cleared", "close": "Closed"}.get(
        action.value, "Added a note to"
    )
    _flash(request, f"{verb} {len(done)} alert{'s' if len(done) != 1 else ''}.")
    return RedirectResponse(target, status_code=303)


@router.get("/alerts/{alert_id}", dependencies=[CanRead])
def alert_page(request: Request, db: SessionDep, user: PageUser, alert_id: int) -> HTMLResponse:
    """One alert: what raised it, its history of notes and its work order."""
    alert = db.get(Alert, alert_id)
    if alert is None:
        raise HTTPException(404, f"alert {alert_id} does not exist")
    authors = {u.id: u for u in db.scalars(select(User))}
    moves = ALERT_TRANSITIONS[alert.status]
    actions = [
        action
        for action, status in (
            ("acknowledge", AlertStatus.ACKNOWLEDGED),
            ("clear", AlertStatus.CLEARED),
            ("close", AlertStatus.CLOSED),
        )
        if status in moves
    ]
    return render(
        request,
        "alert.html",
        user,
        alert=alert,
        asset=db.get(Asset, alert.asset_id) if alert.asset_id is not None else None,
        sensor_label=_sensor_labels(db, {alert.sensor_id}).get(alert.sensor_id or 0)
        if alert.sensor_id is not None
        else None,
        rule=db.get(AlertRule, alert.rule_id) if alert.rule_id is not None else None,
        order=db.get(WorkOrder, alert.work_order_id) if alert.work_order_id else None,
        authors=authors,
        actions=actions,
        can_act=Permission.WORK_ORDERS_WRITE in user.permissions,
        can_edit_rules=Permission.DEVICES_WRITE in user.permissions,
        flash=_take_flash(request),
    )


# --------------------------------------------------------------------------- thresholds


@dataclass
class ThresholdForm:
    """The threshold fields as typed, so a refused form comes back unchanged."""

    direction: str = "above"
    warning: str = ""
    major: str = ""
    critical: str = ""
    clear_at: str = ""
    duration_s: str = "0"

    @classmethod
    def from_condition(cls, condition: dict[str, Any]) -> ThresholdForm:
        """The form prefilled from a stored threshold condition."""
        levels = {lv["severity"]: lv["threshold"] for lv in condition.get("levels", [])}
        clear_at = condition.get("clear_at")
        return cls(
            direction=str(condition.get("direction", "above")),
            warning=_num(levels.get("warning")),
            major=_num(levels.get("major")),
            critical=_num(levels.get("critical")),
            clear_at=_num(clear_at),
            duration_s=_num(condition.get("duration_s", 0)) or "0",
        )

    def spec(self, base: dict[str, Any]) -> ThresholdSpec:
        """Validate the fields into a threshold spec; options the form lacks come from base."""
        problems: list[str] = []
        levels = []
        for severity in SEVERITIES:
            raw = getattr(self, severity).strip()
            if raw:
                value = _float(raw)
                if value is None:
                    problems.append(f"{severity}: enter a number")
                else:
                    levels.append({"severity": severity, "threshold": value})
        if not levels and not problems:
            problems.append("enter at least one level")
        clear_at = _float(self.clear_at) if self.clear_at.strip() else None
        if self.clear_at.strip() and clear_at is None:
            problems.append("clear level: enter a number")
        duration = _float(self.duration_s or "0")
        if duration is None:
            problems.append("duration: enter a number of seconds")
        if problems:
            raise RuleSpecError("; ".join(problems))
        condition = {
            "kind": "threshold",
            "direction": self.direction if self.direction in ("above", "below") else "above",
            "levels": levels,
            "clear_at": clear_at,
            "duration_s": duration,
            "repeat_count": base.get("repeat_count", 1),
            "clear_duration_s": base.get("clear_duration_s", 0.0),
        }
        spec = parse_condition(condition)
        if not isinstance(spec, ThresholdSpec):  # pragma: no cover - kind fixed above
            raise RuleSpecError("not a threshold rule")
        return spec


def _num(value: object) -> str:
    return "" if value is None else f"{float(str(value)):g}"


def _float(raw: str) -> float | None:
    try:
        value = float(raw.strip().replace(",", "."))
    except ValueError:
        return None
    return value if math.isfinite(value) else None


@dataclass
class PreviewEvent:
    """One transition the edited rule would have made."""

    at: dt.datetime
    what: str
    severity: str
    value: float | None
    reason: str


@dataclass
class Preview:
    """The edited rule replayed over the sensor's stored readings."""

    start: dt.datetime
    end: dt.datetime
    basis: str
    samples: int
    events: list[PreviewEvent] = field(default_factory=list)
    figure: dict[str, Any] | None = None

    @property
    def raised(self) -> int:
        """How many alerts the rule would have raised."""
        return sum(1 for e in self.events if e.what == "raised")


def _event(t: Transition) -> PreviewEvent:
    if isinstance(t, Raise):
        return PreviewEvent(t.at, "raised", t.severity.label, t.value, t.reason)
    if isinstance(t, Escalate):
        return PreviewEvent(t.at, "escalated", t.to_severity.label, t.value, t.reason)
    if isinstance(t, Clear):
        return PreviewEvent(t.at, "cleared", t.severity.label, t.value, t.reason)
    raise TypeError(t)  # pragma: no cover - the union is exhaustive


def preview_rule(
    db: Session, sensor: Sensor, label: str, spec: ThresholdSpec, request: Request
) -> Preview:
    """Replay the rule over the last week: raw readings when few, else 1-minute averages."""
    end = utcnow()
    start = end - PREVIEW_WINDOW
    cold_dir = request.app.state.settings.cold_dir
    connection = db.connection()
    series = query_readings(
        connection, sensor.id, start, end, max_points=PREVIEW_POINTS, cold_dir=cold_dir
    )
    if series.resolution == "raw":
        samples = [
            Sample(p.ts, p.value, QUALITY_NAMES.get(p.quality, "bad")) for p in series.points
        ]
        basis = "raw readings"
    else:
        # A bucket is stamped at its end: its average is only known once the minute is over.
        width = series.bucket or dt.timedelta(minutes=1)
        samples = [Sample(b.start + width, b.avg) for b in series.buckets]
        basis = f"{_duration_label(width)} averages"
    duration, repeat, clear_duration = spec.timing()
    rule = Rule("preview", label, spec.to_condition(), duration, repeat, clear_duration)
    state = initial_state(rule)
    events: list[PreviewEvent] = []
    for sample in samples:
        result = evaluate(rule, state, sample)
        if result.ignored:
            continue
        state = result.state
        events.extend(_event(t) for t in result.transitions)
    preview = Preview(start, end, basis, len(samples), events)
    preview.figure = _preview_figure(connection, sensor, spec, preview, cold_dir)
    return preview


def _duration_label(width: dt.timedelta) -> str:
    seconds = int(width.total_seconds())
    if seconds % 3600 == 0:
        return f"{seconds // 3600}-hour"
    if seconds % 60 == 0:
        return f"{seconds // 60}-minute"
    return f"{seconds}-second"


def _preview_figure(
    connection: Any, sensor: Sensor, spec: ThresholdSpec, preview: Preview, cold_dir: Any
) -> dict[str, Any] | None:
    shown = query_readings(
        connection,
        sensor.id,
        preview.start,
        preview.end,
        max_points=CHART_POINTS,
        cold_dir=cold_dir,
    )
    if shown.resolution == "raw":
        times, values = [p.ts for p in shown.points], [p.value for p in shown.points]
    else:
        times, values = [b.start for b in shown.buckets], [b.avg for b in shown.buckets]
    if not times:
        return None
    unit = sensor.unit or ""
    lines = [
        Threshold(f"{lv.severity} {lv.threshold:g}", lv.threshold, LEVEL_COLOURS[lv.severity])
        for lv in spec.levels
    ]
    if spec.clear_at is not None:
        lines.append(Threshold(f"clear {spec.clear_at:g}", spec.clear_at, "#15803d"))
    series = [Series(sensor.name or sensor.key, times, values, unit)]
    for what in ("raised", "escalated", "cleared"):
        hits = [e for e in preview.events if e.what == what and e.value is not None]
        if hits:
            series.append(Series(what, [e.at for e in hits], [e.value or 0.0 for e in hits], unit))
    figure = Chart(
        title=f"{sensor.name or sensor.key}, last 7 days", series=series, thresholds=lines
    ).figure()
    figure["layout"]["yaxis"]["title"]["text"] = unit
    # Transitions are points in time, not a line between them.
    for trace in figure["data"][1:]:
        trace["mode"] = "markers"
        trace["marker"] = {"size": 10, "symbol": "diamond"}
    return figure


def _sensor_and_label(db: Session, sensor_id: int) -> tuple[Sensor, Device, str]:
    sensor = db.get(Sensor, sensor_id)
    if sensor is None:
        raise HTTPException(404, f"sensor {sensor_id} does not exist")
    device = sensor.device
    return sensor, device, f"{device.key}/{sensor.key}"


def _own_rule(db: Session, sensor: Sensor) -> AlertRule | None:
    for rule in db.scalars(
        select(AlertRule).where(AlertRule.sensor_id == sensor.id).order_by(AlertRule.id)
    ):
        if rule.condition.get("kind", "threshold") == "threshold":
            return rule
    return None


def _templates_for(db: Session, sensor: Sensor, device: Device) -> list[AlertRule]:
    asset_class = (
        db.scalar(select(Asset.asset_class).where(Asset.id == device.asset_id))
        if device.asset_id is not None
        else None
    )
    found = []
    for rule in db.scalars(
        select(AlertRule).where(AlertRule.sensor_id.is_(None), AlertRule.enabled.is_(True))
    ):
        if rule.condition.get("kind", "threshold") != "threshold":
            continue
        if rule.sensor_type is None and rule.asset_class is None:
            continue
        if rule.sensor_type not in (None, sensor.type):
            continue
        if rule.asset_class not in (None, asset_class):
            continue
        found.append(rule)
    return found


def _threshold_page(
    request: Request,
    db: Session,
    user: User,
    sensor_id: int,
    form: ThresholdForm | None = None,
    preview: Preview | None = None,
    errors: list[str] | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    sensor, device, label = _sensor_and_label(db, sensor_id)
    rule = _own_rule(db, sensor)
    templates = _templates_for(db, sensor, device)
    if form is None:
        source = rule or (templates[0] if templates else None)
        form = ThresholdForm.from_condition(source.condition) if source else ThresholdForm()
    return render(
        request,
        "sensor_thresholds.html",
        user,
        status_code=status_code,
        sensor=sensor,
        device=device,
        label=label,
        rule=rule,
        templates=templates,
        form=form,
        preview=preview,
        errors=errors or [],
        severities=SEVERITIES,
        can_save=Permission.DEVICES_WRITE in user.permissions,
        flash=_take_flash(request),
    )


@router.get("/sensors/{sensor_id}/thresholds", dependencies=[CanRead])
def thresholds_page(
    request: Request, db: SessionDep, user: PageUser, sensor_id: int
) -> HTMLResponse:
    """The sensor's threshold rule as a form (prefilled from a template when it has none)."""
    return _threshold_page(request, db, user, sensor_id)


@router.post("/sensors/{sensor_id}/thresholds", dependencies=[CsrfChecked, CanRead])
def thresholds_submit(
    request: Request,
    db: SessionDep,
    user: PageUser,
    sensor_id: int,
    intent: Annotated[str, Form(max_length=16)] = "preview",
    direction: Annotated[str, Form(max_length=8)] = "above",
    warning: Annotated[str, Form(max_length=40)] = "",
    major: Annotated[str, Form(max_length=40)] = "",
    critical: Annotated[str, Form(max_length=40)] = "",
    clear_at: Annotated[str, Form(max_length=40)] = "",
    duration_s: Annotated[str, Form(max_length=40)] = "0",
) -> Response:
    """Preview the edited rule over the last week, or save it (which needs devices:write)."""
    form = ThresholdForm(direction, warning, major, critical, clear_at, duration_s)
    sensor, _, label = _sensor_and_label(db, sensor_id)
    rule = _own_rule(db, sensor)
    try:
        spec = form.spec(rule.condition if rule is not None else {})
    except RuleSpecError as exc:
        message = str(exc).removeprefix("invalid alert condition: ")
        return _threshold_page(
            request, db, user, sensor_id, form, errors=[message], status_code=422
        )
    if intent != "save":
        preview = preview_rule(db, sensor, label, spec, request)
        return _threshold_page(request, db, user, sensor_id, form, preview=preview)
    if Permission.DEVICES_WRITE not in user.permissions:
        raise HTTPException(403, f"your role ({user.role.value}) cannot change alert rules")
    condition = spec.model_dump(mode="json")
    if rule is None:
        rule = AlertRule(name=f"Thresholds of {label}"[:200], sensor_id=sensor.id, condition={})
        db.add(rule)
    rule.condition = condition
    db.commit()
    engine = getattr(request.app.state, "alert_engine", None)
    if engine is not None:
        # The engine would notice within its refresh interval; saving should act at once.
        engine.invalidate()
    _flash(request, "Saved. New readings are evaluated against these thresholds.")
    return RedirectResponse(f"/sensors/{sensor.id}/thresholds", status_code=303)
