"""Alert rules (per sensor or template) and alerts: list, inspect, acknowledge, clear, close."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response, status
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, StringConstraints
from sqlalchemy import select

from maintainpro.api.crud import get_or_404, require_exists
from maintainpro.api.deps import SessionDep, SettingsDep, require
from maintainpro.api.fields import FreeText, Name
from maintainpro.api.pagination import Page, WindowDep, list_page
from maintainpro.api.problems import Problem
from maintainpro.core.inventory import Part
from maintainpro.core.users import Permission, User
from maintainpro.iot.alert_lifecycle import AlertAction, IllegalAlertMove, act_on_alerts
from maintainpro.iot.alerts import Alert, AlertKind, AlertRule, AlertStatus
from maintainpro.iot.devices import Sensor
from maintainpro.iot.rule_specs import PartNeedSpec, RuleSpecError, SeverityName, parse_condition

router = APIRouter(tags=["alerts"])
Reader = Depends(require(Permission.DEVICES_READ))
RuleWriter = Depends(require(Permission.DEVICES_WRITE))
Actor = Annotated[User, Depends(require(Permission.WORK_ORDERS_WRITE))]
Selector = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=32)]
AssetClass = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64)]
Cooldown = Annotated[int, Field(ge=0, le=90 * 24 * 3600)]
MAX_BULK = 500


class AlertRuleIn(BaseModel):
    """A new alert rule: on one sensor, or a template by sensor type and/or asset class."""

    model_config = ConfigDict(extra="forbid")
    name: Name
    enabled: bool = True
    sensor_id: int | None = None
    sensor_type: Selector | None = None
    asset_class: AssetClass | None = None
    condition: dict[str, Any]
    opens_work_order: bool = False
    work_order_parts: list[PartNeedSpec] = Field(default_factory=list, max_length=50)
    cooldown_s: Cooldown = 3600


class AlertRulePatch(BaseModel):
    """Changes to an alert rule; the result is validated as a whole."""

    model_config = ConfigDict(extra="forbid")
    name: Name | None = None
    enabled: bool | None = None
    sensor_id: int | None = None
    sensor_type: Selector | None = None
    asset_class: AssetClass | None = None
    condition: dict[str, Any] | None = None
    opens_work_order: bool | None = None
    work_order_parts: list[PartNeedSpec] | None = Field(default=None, max_length=50)
    cooldown_s: Cooldown | None = None


class AlertRuleOut(BaseModel):
    """An alert rule as stored."""

    model_config = ConfigDict(from_attributes=True)
    id: int
    name: str
    enabled: bool
    sensor_id: int | None
    sensor_type: str | None
    asset_class: str | None
    condition: dict[str, Any]
    opens_work_order: bool
    work_order_parts: list[dict[str, Any]]
    cooldown_s: int
    created_at: dt.datetime
    updated_at: dt.datetime


class AlertOut(BaseModel):
    """An alert."""

    model_config = ConfigDict(from_attributes=True)
    id: int
    rule_id: int | None
    sensor_id: int | None
    device_id: int | None
    asset_id: int | None
    kind: AlertKind
    severity: str
    status: AlertStatus
    title: str
    reason: str
    value: float | None
    reading_at: dt.datetime | None
    raised_at: dt.datetime
    escalated_at: dt.datetime | None
    escalations: int
    acknowledged_at: dt.datetime | None
    acknowledged_by_id: int | None
    cleared_at: dt.datetime | None
    closed_at: dt.datetime | None
    closed_by_id: int | None
    work_order_id: int | None


class AlertNoteOut(BaseModel):
    """Who did what to an alert, and when."""

    model_config = ConfigDict(from_attributes=True)
    id: int
    author_id: int | None
    action: str
    body: str
    created_at: dt.datetime


class AlertDetail(AlertOut):
    """An alert with its history."""

    notes: list[AlertNoteOut]


class BulkIn(BaseModel):
    """Alerts to act on, and why."""

    model_config = ConfigDict(extra="forbid")
    ids: list[Annotated[int, Field(ge=1)]] = Field(min_length=1, max_length=MAX_BULK)
    note: FreeText = ""


def _rules_changed(request: Request) -> None:
    engine = getattr(request.app.state, "alert_engine", None)
    if engine is not None:
        engine.invalidate()


def _checked(db: SessionDep, values: dict[str, Any]) -> dict[str, Any]:
    """Validate a rule as a whole and return the values to store."""
    try:
        spec = parse_condition(values["condition"])
    except RuleSpecError as exc:
        raise Problem(422, str(exc), title="Invalid alert rule") from exc
    is_template = values.get("sensor_type") is not None or values.get("asset_class") is not None
    if (values.get("sensor_id") is None) == (not is_template):
        raise Problem(
            422,
            "a rule needs either sensor_id or a template selector (sensor_type and/or "
            "asset_class), not both",
            title="Invalid alert rule",
        )
    require_exists(db, Sensor, values.get("sensor_id"), "sensor")
    parts = values.get("work_order_parts") or []
    for need in parts:
        require_exists(db, Part, need["part_id"], "part")
    if parts and not values.get("opens_work_order"):
        raise Problem(
            422, "work_order_parts apply only when opens_work_order is set", title="Invalid rule"
        )
    return {**values, "condition": spec.model_dump(mode="json"), "work_order_parts": parts}


def _parts_json(parts: list[PartNeedSpec]) -> list[dict[str, Any]]:
    # Quantities stay strings in JSON so no decimal place is lost on the way.
    return [{"part_id": p.part_id, "quantity": f"{p.quantity.normalize():f}"} for p in parts]


@router.get("/alert-rules", dependencies=[Reader])
def list_alert_rules(
    db: SessionDep,
    page: WindowDep,
    sensor_id: int | None = None,
    template: Annotated[bool | None, Query(description="only templates / only per-sensor")] = None,
    enabled: bool | None = None,
) -> Page[AlertRuleOut]:
    """List alert rules."""
    stmt = select(AlertRule).order_by(AlertRule.id)
    if sensor_id is not None:
        stmt = stmt.where(AlertRule.sensor_id == sensor_id)
    if template is not None:
        column = AlertRule.sensor_id
        stmt = stmt.where(column.is_(None) if template else column.is_not(None))
    if enabled is not None:
        stmt = stmt.where(AlertRule.enabled.is_(enabled))
    return list_page(db, stmt, page, AlertRuleOut)


@router.post("/alert-rules", status_code=status.HTTP_201_CREATED, dependencies=[RuleWriter])
def create_alert_rule(request: Request, db: SessionDep, body: AlertRuleIn) -> AlertRuleOut:
    """Create a rule; the condition is validated and stored normalised."""
    values = body.model_dump()
    values["work_order_parts"] = _parts_json(body.work_order_parts)
    rule = AlertRule(**_checked(db, values))
    db.add(rule)
    db.commit()
    _rules_changed(request)
    return AlertRuleOut.model_validate(rule)


@router.get("/alert-rules/{rule_id}", dependencies=[Reader])
def get_alert_rule(db: SessionDep, rule_id: int) -> AlertRuleOut:
    """One alert rule."""
    return AlertRuleOut.model_validate(get_or_404(db, AlertRule, rule_id))


@router.patch("/alert-rules/{rule_id}", dependencies=[RuleWriter])
def update_alert_rule(
    request: Request, db: SessionDep, rule_id: int, body: AlertRulePatch
) -> AlertRuleOut:
    """Change a rule; the changed rule is validated as a whole."""
    rule = get_or_404(db, AlertRule, rule_id)
    changes = body.model_dump(exclude_unset=True)
    for key in ("name", "enabled", "condition", "opens_work_order", "cooldown_s"):
        if key in changes and changes[key] is None:
            raise Problem(422, f"{key} cannot be null", title="Invalid request")
    if body.work_order_parts is not None:
        changes["work_order_parts"] = _parts_json(body.work_order_parts)
    elif "work_order_parts" in changes:
        changes["work_order_parts"] = []
    current = {
        key: getattr(rule, key)
        for key in (
            "name",
            "enabled",
            "sensor_id",
            "sensor_type",
            "asset_class",
            "condition",
            "opens_work_order",
            "work_order_parts",
            "cooldown_s",
        )
    }
    for key, value in _checked(db, {**current, **changes}).items():
        setattr(rule, key, value)
    db.commit()
    _rules_changed(request)
    return AlertRuleOut.model_validate(rule)


@router.delete(
    "/alert-rules/{rule_id}", status_code=status.HTTP_204_NO_CONTENT, dependencies=[RuleWriter]
)
def delete_alert_rule(request: Request, db: SessionDep, rule_id: int) -> Response:
    """Delete a rule and its state; its alerts stay, without the rule."""
    db.delete(get_or_404(db, AlertRule, rule_id))
    db.commit()
    _rules_changed(request)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/alerts", dependencies=[Reader])
def list_alerts(
    db: SessionDep,
    page: WindowDep,
    status_: Annotated[list[AlertStatus] | None, Query(alias="status")] = None,
    severity: Annotated[list[SeverityName] | None, Query()] = None,
    asset_id: int | None = None,
    sensor_id: int | None = None,
    rule_id: int | None = None,
    since: Annotated[AwareDatetime | None, Query(description="raised at or after")] = None,
) -> Page[AlertOut]:
    """List alerts, newest first."""
    stmt = select(Alert).order_by(Alert.raised_at.desc(), Alert.id.desc())
    if status_:
        stmt = stmt.where(Alert.status.in_(status_))
    if severity:
        stmt = stmt.where(Alert.severity.in_(severity))
    if asset_id is not None:
        stmt = stmt.where(Alert.asset_id == asset_id)
    if sensor_id is not None:
        stmt = stmt.where(Alert.sensor_id == sensor_id)
    if rule_id is not None:
        stmt = stmt.where(Alert.rule_id == rule_id)
    if since is not None:
        stmt = stmt.where(Alert.raised_at >= since)
    return list_page(db, stmt, page, AlertOut)


@router.get("/alerts/{alert_id}", dependencies=[Reader])
def get_alert(db: SessionDep, alert_id: int) -> AlertDetail:
    """One alert with its notes."""
    return AlertDetail.model_validate(get_or_404(db, Alert, alert_id))


def _bulk(
    db: SessionDep, settings: SettingsDep, user: User, body: BulkIn, action: AlertAction
) -> list[AlertOut]:
    try:
        alerts = act_on_alerts(
            db,
            body.ids,
            action,
            user_id=user.id,
            note=body.note,
            public_url=settings.public_url,
        )
    except IllegalAlertMove as exc:
        raise Problem(409, str(exc), title="Illegal status change", refused=exc.refused) from exc
    except ValueError as exc:
        raise Problem(422, str(exc), title="Invalid request") from exc
    db.commit()
    return [AlertOut.model_validate(a) for a in alerts]


@router.post("/alerts/acknowledge")
def acknowledge_alerts(
    db: SessionDep, settings: SettingsDep, user: Actor, body: BulkIn
) -> list[AlertOut]:
    """Acknowledge active alerts (all or none)."""
    return _bulk(db, settings, user, body, AlertAction.ACKNOWLEDGE)


@router.post("/alerts/clear")
def clear_alerts(
    db: SessionDep, settings: SettingsDep, user: Actor, body: BulkIn
) -> list[AlertOut]:
    """Clear active or acknowledged alerts by hand (all or none)."""
    return _bulk(db, settings, user, body, AlertAction.CLEAR)


@router.post("/alerts/close")
def close_alerts(
    db: SessionDep, settings: SettingsDep, user: Actor, body: BulkIn
) -> list[AlertOut]:
    """Close cleared alerts (all or none)."""
    return _bulk(db, settings, user, body, AlertAction.CLOSE)


@router.post("/alerts/notes")
def note_alerts(db: SessionDep, settings: SettingsDep, user: Actor, body: BulkIn) -> list[AlertOut]:
    """Add the same note to several alerts."""
    return _bulk(db, settings, user, body, AlertAction.NOTE)
