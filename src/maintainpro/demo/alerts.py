"""Alert rules of the demo plant: vibration severity on every vibration sensor (opening a
condition-based work order with bearings reserved) and an offline alert for silent transmitters."""

from __future__ import annotations

from typing import Any, Final

from sqlalchemy import select
from sqlalchemy.orm import Session

from maintainpro.core.inventory import Part
from maintainpro.iot.alerts import AlertRule
from maintainpro.iot.rule_specs import parse_condition

VIBRATION_RULE: Final = "Vibration severity (ISO 10816-3, group 2 machines)"
STALE_RULE: Final = "Vibration transmitter silent"
# ISO 10816-3 zone boundaries for medium machines on rigid foundations, in mm/s RMS: above 4.5
# the machine should not run long-term (warning), above 7.1 damage is likely (major), and 11
# is taken here as the stop-now limit (critical). 4.0 clears, so readings near 4.5 do not flap.
VIBRATION_CONDITION: Final[dict[str, Any]] = {
    "kind": "threshold",
    "direction": "above",
    "levels": [
        {"severity": "warning", "threshold": 4.5},
        {"severity": "major", "threshold": 7.1},
        {"severity": "critical", "threshold": 11.0},
    ],
    "clear_at": 4.0,
    "duration_s": 20,
}
STALE_CONDITION: Final[dict[str, Any]] = {"kind": "stale", "after_s": 60, "severity": "major"}


def _rule(session: Session, name: str) -> AlertRule:
    rule = session.scalars(select(AlertRule).where(AlertRule.name == name)).one_or_none()
    if rule is None:
        rule = AlertRule(name=name, condition={})
        session.add(rule)
    return rule


def seed_demo_alert_rules(session: Session) -> list[AlertRule]:
    """Create or refresh the demo's alert rules (matched by name; safe on every start)."""
    # Validated like rules entered through the API, so the demo never carries a broken rule.
    parse_condition(VIBRATION_CONDITION)
    parse_condition(STALE_CONDITION)
    bearing = session.scalars(select(Part).where(Part.number == "BRG-6205")).one_or_none()
    vibration = _rule(session, VIBRATION_RULE)
    vibration.sensor_type = "vibration"
    vibration.condition = dict(VIBRATION_CONDITION)
    vibration.opens_work_order = True
    vibration.work_order_parts = (
        [{"part_id": bearing.id, "quantity": "2"}] if bearing is not None else []
    )
    vibration.cooldown_s = 3600
    silent = _rule(session, STALE_RULE)
    silent.sensor_type = "vibration"
    silent.condition = dict(STALE_CONDITION)
    silent.opens_work_order = False
    session.flush()
    return [vibration, silent]
