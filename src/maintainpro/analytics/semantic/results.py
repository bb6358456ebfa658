"""The answer in Cube's shape (pure): data rows keyed by member, the annotation, the query.

Values: integers and floats as JSON numbers (a non-finite float as null), decimals (money) as
strings so no digit is lost, times as ``2026-01-01T00:00:00.000`` (UTC, like the warehouse),
dates as ``2026-01-01``. A bucketed time dimension appears under ``Cube.time.granularity`` and,
as Cube does, under ``Cube.time`` too.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from collections.abc import Sequence
from decimal import Decimal
from typing import Any, Final

from maintainpro.analytics.semantic.model import Cube, Dimension, Measure
from maintainpro.analytics.semantic.plan import DimensionMember, MeasureMember, Plan
from maintainpro.analytics.semantic.query import Query

INTERVALS: Final = {
    "hour": "1 hour",
    "day": "1 day",
    "week": "1 week",
    "month": "1 month",
    "quarter": "3 months",
    "year": "1 year",
}


def json_value(value: Any) -> Any:
    """A database value as JSON."""
    if isinstance(value, bool) or value is None or isinstance(value, int | str):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, dt.datetime):
        return f"{value:%Y-%m-%dT%H:%M:%S}.{value.microsecond // 1000:03d}"
    if isinstance(value, dt.date):
        return value.isoformat()
    return str(value)


def data(plan: Plan, rows: Sequence[Sequence[Any]]) -> list[dict[str, Any]]:
    """Rows as objects keyed by member name."""
    columns = plan.columns
    out = []
    for row in rows:
        item: dict[str, Any] = {}
        for column, value in zip(columns, row, strict=True):
            shown = json_value(value)
            for key in column.keys:
                item[key] = shown
        out.append(item)
    return out


def humanise(name: str) -> str:
    """``createdAt`` -> ``Created at``: the title Cube derives from a name."""
    words = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", " ", name).replace("_", " ").split()
    return " ".join(words).capitalize() if words else name


def member_title(member: Measure | Dimension) -> str:
    """A member's own title."""
    return member.title or humanise(member.name)


def cube_title(cube: Cube) -> str:
    """A cube's title."""
    return cube.title or humanise(cube.name)


def _measure(member: MeasureMember) -> dict[str, Any]:
    short = member_title(member.measure)
    entry: dict[str, Any] = {
        "title": f"{cube_title(member.owner)} {short}",
        "shortTitle": short,
        "type": "number",
        "drillMembers": [],
        "drillMembersGrouped": {"measures": [], "dimensions": []},
    }
    if member.measure.format:
        entry["format"] = member.measure.format
    return entry


def _dimension(member: DimensionMember) -> dict[str, Any]:
    short = member_title(member.dimension)
    return {
        "title": f"{cube_title(member.owner)} {short}",
        "shortTitle": short,
        "type": member.dimension.type.value,
    }


def annotation(plan: Plan) -> dict[str, Any]:
    """Titles and types of every member in the answer."""
    times: dict[str, Any] = {}
    for time in plan.bucketed:
        assert time.granularity is not None
        entry = _dimension(time.member)
        times[time.member.name] = entry
        times[time.key] = {
            **entry,
            "granularity": {
                "name": time.granularity.value,
                "title": time.granularity.value.capitalize(),
                "interval": INTERVALS[time.granularity.value],
            },
        }
    return {
        "measures": {m.name: _measure(m) for m in plan.measures},
        "dimensions": {d.name: _dimension(d) for d in plan.dimensions},
        "segments": {},
        "timeDimensions": times,
    }


def normalised(query: Query, plan: Plan) -> dict[str, Any]:
    """The query as answered: members, filters as sent, the effective order, limit, offset."""
    columns = plan.columns
    body: dict[str, Any] = {
        "measures": [m.name for m in plan.measures],
        "dimensions": [d.name for d in plan.dimensions],
        "timeDimensions": [
            t.model_dump(by_alias=True, exclude_none=True) for t in query.time_dimensions
        ],
        "filters": [f.model_dump(by_alias=True, exclude_none=True) for f in query.filters],
        "order": [[columns[i].keys[0], "desc" if d else "asc"] for i, d in plan.order],
        "limit": plan.limit,
        "offset": plan.offset,
        "timezone": "UTC",
    }
    if plan.total:
        body["total"] = True
    return body
