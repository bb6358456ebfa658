"""What people do to alerts (acknowledge, clear, close, annotate) and the alert event payload."""

from __future__ import annotations

import datetime as dt
import enum
from collections.abc import Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from maintainpro.core.assets import Asset
from maintainpro.core.db import utcnow
from maintainpro.core.events import emit
from maintainpro.core.maintenance import NotFound
from maintainpro.iot.alerts import ALERT_TRANSITIONS, Alert, AlertNote, AlertStatus


class AlertAction(enum.StrEnum):
    """A bulk action on alerts."""

    ACKNOWLEDGE = "acknowledge"
    CLEAR = "clear"
    CLOSE = "close"
    NOTE = "note"


TARGETS: dict[AlertAction, AlertStatus] = {
    AlertAction.ACKNOWLEDGE: AlertStatus.ACKNOWLEDGED,
    AlertAction.CLEAR: AlertStatus.CLEARED,
    AlertAction.CLOSE: AlertStatus.CLOSED,
}
# The action names kept in AlertNote.action, the same words the engine writes.
NOTE_ACTIONS: dict[AlertAction, str] = {
    AlertAction.ACKNOWLEDGE: "acknowledged",
    AlertAction.CLEAR: "cleared",
    AlertAction.CLOSE: "closed",
    AlertAction.NOTE: "note",
}


class IllegalAlertMove(ValueError):
    """One or more alerts cannot make the requested move."""

    def __init__(self, message: str, refused: list[dict[str, Any]]) -> None:
        super().__init__(message)
        self.refused = refused


def alert_payload(session: Session, alert: Alert, public_url: str) -> dict[str, Any]:
    """The payload of alert.raised / alert.escalated / alert.cleared events."""
    asset = session.get(Asset, alert.asset_id) if alert.asset_id is not None else None
    return {
        "alert_id": alert.id,
        "rule_id": alert.rule_id,
        "sensor_id": alert.sensor_id,
        "asset_id": alert.asset_id,
        "site_id": asset.site_id if asset is not None else None,
        "severity": alert.severity,
        "title": alert.title,
        "reason": alert.reason,
        "value": alert.value,
        "reading_at": alert.reading_at.isoformat() if alert.reading_at is not None else None,
        "url": f"{public_url.rstrip('/')}/alerts/{alert.id}",
    }


def act_on_alerts(
    session: Session,
    ids: Sequence[int],
    action: AlertAction,
    *,
    user_id: int | None,
    note: str = "",
    public_url: str,
    now: dt.datetime | None = None,
) -> list[Alert]:
    """Apply one action to every alert, all or nothing; records who did it, when and why.

    Raises NotFound for unknown ids and IllegalAlertMove when any alert may not make the move,
    before anything changes.
    """
    when = now or utcnow()
    wanted = sorted(set(ids))
    alerts = list(session.scalars(select(Alert).where(Alert.id.in_(wanted)).order_by(Alert.id)))
    missing = sorted(set(wanted) - {a.id for a in alerts})
    if missing:
        raise NotFound(f"alerts {', '.join(map(str, missing))} do not exist")
    if action is AlertAction.NOTE and not note.strip():
        raise ValueError("a note needs text")
    target = TARGETS.get(action)
    if target is not None:
        refused = [
            {"id": a.id, "status": a.status.value}
            for a in alerts
            if target not in ALERT_TRANSITIONS[a.status]
        ]
        if refused:
            listed = ", ".join(f"{r['id']} ({r['status']})" for r in refused)
            raise IllegalAlertMove(f"cannot {action.value} alerts {listed}", refused)
    for alert in alerts:
        if target is AlertStatus.ACKNOWLEDGED:
            alert.acknowledged_at = when
            alert.acknowledged_by_id = user_id
        elif target is AlertStatus.CLEARED:
            alert.cleared_at = when
        elif target is AlertStatus.CLOSED:
            alert.closed_at = when
            alert.closed_by_id = user_id
        if target is not None:
            alert.status = target
        alert.notes.append(
            AlertNote(author_id=user_id, action=NOTE_ACTIONS[action], body=note, created_at=when)
        )
    session.flush()
    if target is AlertStatus.CLEARED:
        # Subscribers hear of a manual clear just as of one the condition caused.
        for alert in alerts:
            payload = alert_payload(session, alert, public_url)
            payload["reason"] = f"cleared by hand: {note}".strip().removesuffix(":")
            emit(session, "alert.cleared", payload)
    return alerts
