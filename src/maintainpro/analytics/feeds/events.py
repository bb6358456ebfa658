"""The normalised feed event {id, type, site_id, ts, data} and how readings and outbox events
become one (pure: no I/O; the site is looked up later by ``sites``)."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final, Literal

from maintainpro.core.delivery import ALERT_TOPICS
from maintainpro.iot.timeseries import QUALITY_NAMES, ReadingRow, from_ms

EventType = Literal["reading", "alert", "work_order"]
EVENT_TYPES: Final[tuple[EventType, ...]] = ("reading", "alert", "work_order")
WORK_ORDER_TOPICS: Final = ("work_order.opened", "work_order.status_changed")
FEED_TOPICS: Final = (*ALERT_TOPICS, *WORK_ORDER_TOPICS)
# The alert payload's fields a feed passes on (alert_lifecycle.alert_payload); nothing else.
ALERT_FIELDS: Final = (
    "alert_id",
    "rule_id",
    "sensor_id",
    "asset_id",
    "severity",
    "title",
    "reason",
    "value",
    "reading_at",
    "url",
)
Lookup = tuple[Literal["sensor", "asset", "work_order"], int]


@dataclass(frozen=True, slots=True)
class FeedEvent:
    """One event as every channel sends it; ``body`` is its JSON, serialised once for all."""

    id: int
    type: EventType
    site_id: int | None
    ts: dt.datetime
    data: Mapping[str, Any]
    body: str

    def as_dict(self) -> dict[str, Any]:
        """The event as a JSON-ready dict (the shape of ``body``)."""
        return {
            "id": self.id,
            "type": self.type,
            "site_id": self.site_id,
            "ts": self.ts.isoformat(),
            "data": dict(self.data),
        }


def make_event(
    event_id: int,
    event_type: EventType,
    site_id: int | None,
    ts: dt.datetime,
    data: Mapping[str, Any],
) -> FeedEvent:
    """A feed event with its JSON body."""
    shape = {"id": event_id, "type": event_type, "site_id": site_id, "ts": ts.isoformat()}
    body = json.dumps({**shape, "data": dict(data)}, separators=(",", ":"), default=str)
    return FeedEvent(event_id, event_type, site_id, ts, dict(data), body)


@dataclass(frozen=True, slots=True)
class Unplaced:
    """An event before its site is known: ``lookup`` names what decides the site."""

    type: EventType
    ts: dt.datetime
    data: Mapping[str, Any]
    site_id: int | None = None
    lookup: Lookup | None = None


def reading_event(row: ReadingRow) -> Unplaced:
    """A stored reading; its site follows from sensor -> device -> asset -> site."""
    data = {
        "sensor_id": row.sensor_id,
        "value": row.value,
        "quality": QUALITY_NAMES.get(row.quality, "bad"),
    }
    return Unplaced("reading", from_ms(row.ts), data, lookup=("sensor", row.sensor_id))


def _int(value: Any) -> int | None:
    # bool is an int to Python, never an id.
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def outbox_event(topic: str, payload: Mapping[str, Any], now: dt.datetime) -> Unplaced | None:
    """An alert or work-order outbox event as a feed event; None for other topics.

    ``ts`` is when the feed received it: outbox handlers are not told when it was written.
    """
    kind, _, action = topic.partition(".")
    if topic in ALERT_TOPICS:
        data: dict[str, Any] = {"event": action}
        data.update((name, payload.get(name)) for name in ALERT_FIELDS)
        site_id = _int(payload.get("site_id"))
        asset_id = _int(payload.get("asset_id"))
        lookup: Lookup | None = None
        if site_id is None and asset_id is not None:
            lookup = ("asset", asset_id)
        return Unplaced("alert", now, data, site_id=site_id, lookup=lookup)
    if topic in WORK_ORDER_TOPICS and kind == "work_order":
        order_id = _int(payload.get("work_order_id"))
        data = {
            "event": action,
            "work_order_id": order_id,
            "asset_id": _int(payload.get("asset_id")),
        }
        if action == "opened":
            data["origin"] = payload.get("origin")
        else:
            data["from"] = payload.get("from")
            data["to"] = payload.get("to")
        # The order's asset decides the site, even when the payload names the asset too.
        placed_by: Lookup | None = ("work_order", order_id) if order_id is not None else None
        return Unplaced("work_order", now, data, lookup=placed_by)
    return None
