"""How report values read as text (pure): numbers, local dates and times, the period, file names.

Times are stored in UTC and shown in the report's zone, so a Berlin site manager's report says
06:00 where the database says 05:00.
"""

from __future__ import annotations

import datetime as dt
import re
import unicodedata
from dataclasses import dataclass
from decimal import Decimal
from typing import Final
from zoneinfo import ZoneInfo

from maintainpro.analytics.reports.data import Cell, ColumnKind, Figure, ReportData

NOTHING: Final = "-"
_SLUG_DROP: Final = re.compile(r"[^a-z0-9]+")
MAX_SLUG: Final = 60


@dataclass(frozen=True)
class RenderedFile:
    """One produced file: its name, media type and bytes."""

    filename: str
    mime: str
    content: bytes


def local_naive(value: dt.datetime, zone: ZoneInfo) -> dt.datetime:
    """An aware datetime as naive local wall-clock time (what spreadsheets hold)."""
    return value.astimezone(zone).replace(tzinfo=None)


def number_text(value: int | float | Decimal, places: int) -> str:
    """A number with thousands separators and a fixed number of decimals."""
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    return f"{Decimal(str(value)):,.{places}f}"


def cell_text(value: Cell, kind: ColumnKind, places: int, zone: ZoneInfo) -> str:
    """A value as a person reads it; "-" for nothing."""
    if value is None:
        return NOTHING
    if isinstance(value, dt.datetime):
        return f"{local_naive(value, zone):%Y-%m-%d %H:%M}"
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int | float | Decimal):
        text = number_text(value, 0 if kind is ColumnKind.INTEGER else places)
        return f"{text} %" if kind is ColumnKind.PERCENT else text
    return str(value)


def figure_text(figure: Figure, zone: ZoneInfo) -> str:
    """A summary figure's value with its unit."""
    text = cell_text(figure.value, figure.kind, figure.places, zone)
    if figure.unit and figure.value is not None:
        return f"{text} {figure.unit}"
    return text


def period_text(data: ReportData) -> str:
    """The period in local dates; a period ending at midnight ends on the day before."""
    zone = ZoneInfo(data.timezone)
    start = data.period_start.astimezone(zone)
    end = data.period_end.astimezone(zone)
    if start.time() == dt.time() and end.time() == dt.time():
        last = end.date() - dt.timedelta(days=1)
        if last <= start.date():
            return f"{start:%Y-%m-%d} ({data.timezone})"
        return f"{start:%Y-%m-%d} to {last:%Y-%m-%d} ({data.timezone})"
    return f"{start:%Y-%m-%d %H:%M} to {end:%Y-%m-%d %H:%M} ({data.timezone})"


def slug(text: str) -> str:
    """A file-name-safe form of a name: lower-case ASCII letters, digits and hyphens."""
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    cleaned = _SLUG_DROP.sub("-", ascii_text.lower()).strip("-")
    return cleaned[:MAX_SLUG].rstrip("-") or "report"


def base_name(data: ReportData, name: str, site_label: str | None) -> str:
    """``pm-compliance_2026-03-01`` (plus ``_site-a`` for a site recipient's copy)."""
    day = data.generated_at.astimezone(ZoneInfo(data.timezone)).date()
    parts = [slug(name), day.isoformat()]
    if site_label:
        parts.append(slug(site_label))
    return "_".join(parts)
