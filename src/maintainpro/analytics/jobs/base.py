"""What every ETL job shares: the window it loads, its result, and access to source tables."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Protocol

from sqlalchemy import ColumnElement, Connection, Select, Table, func, or_, select

from maintainpro.analytics.schema import WarehouseTable
from maintainpro.analytics.transforms import RateLookup
from maintainpro.analytics.warehouse import WarehouseTarget
from maintainpro.schema import metadata
from maintainpro.supply.fx import (
    FxConverter,
    FxError,
    Publication,
    RateTable,
)


@dataclass(frozen=True)
class Window:
    """What a run loads: source changes since ``since`` (None: everything) up to ``until``."""

    since: dt.datetime | None
    until: dt.datetime
    base_currency: str

    @property
    def full(self) -> bool:
        """A full load: the job's tables are rebuilt from all source rows."""
        return self.since is None


@dataclass
class JobResult:
    """Counts of one run and the watermark to store if it commits (None: the window's end)."""

    rows_in: int = 0
    rows_out: int = 0
    rows_rejected: int = 0
    watermark: dt.datetime | None = None


class Job(Protocol):
    """An ETL job: reads the operational database, writes its warehouse tables."""

    @property
    def name(self) -> str:
        """Unique name: the watermark key and the OpenLineage job name."""

    @property
    def description(self) -> str:
        """One line for people (CLI, lineage job documentation)."""

    @property
    def outputs(self) -> tuple[WarehouseTable, ...]:
        """The warehouse tables the job writes."""

    @property
    def overlap(self) -> dt.timedelta:
        """How far before the watermark the next window starts (late commits, open buckets)."""

    def run(self, source: Connection, target: WarehouseTarget, window: Window) -> JobResult:
        """Load the window inside the caller's warehouse transaction."""


def source(name: str) -> Table:
    """An operational table by name, from the application's metadata."""
    return metadata().tables[name]


def changed_since(table: Table, since: dt.datetime, *columns: str) -> ColumnElement[bool]:
    """Rows whose change-time columns (default ``updated_at``) are at or after ``since``."""
    names = columns or ("updated_at",)
    return or_(*(table.c[n] >= since for n in names))


def ids_changed(
    table: Table, since: dt.datetime | None, *columns: str, id_column: str = "id"
) -> Select[Any]:
    """SELECT of the ids changed since ``since`` (every id when None)."""
    stmt = select(table.c[id_column])
    if since is not None:
        stmt = stmt.where(changed_since(table, since, *columns))
    return stmt


def latest_change(connection: Connection, tables: Sequence[str]) -> dt.datetime | None:
    """The newest updated_at (or created_at) over the given tables."""
    newest: dt.datetime | None = None
    for name in tables:
        table = source(name)
        column = table.c.get("updated_at")
        if column is None:
            column = table.c["created_at"]
        value = connection.execute(select(func.max(column))).scalar()
        if isinstance(value, str):  # SQLite's max() bypasses the column type
            value = dt.datetime.fromisoformat(value)
        if value is not None:
            if value.tzinfo is None:
                value = value.replace(tzinfo=dt.UTC)
            newest = value if newest is None or value > newest else newest
    return newest


def count_rows(connection: Connection, name: str) -> int:
    """Rows in an operational table."""
    return int(connection.execute(select(func.count()).select_from(source(name))).scalar() or 0)


def rate_lookup(connection: Connection, base_currency: str) -> RateLookupFactory:
    """Rates to base currency from the stored (EUR-based) exchange rates, per day."""
    rates = source("exchange_rates")
    by_day: dict[dt.date, dict[str, Decimal]] = defaultdict(dict)
    sources: dict[dt.date, str] = {}
    rows = connection.execute(
        select(rates.c.day, rates.c.currency, rates.c.per_eur, rates.c.source).order_by(
            rates.c.day, rates.c.id
        )
    )
    for day, currency, per_eur, origin in rows:
        day_value = dt.date.fromisoformat(day) if isinstance(day, str) else day
        by_day[day_value][currency] = Decimal(per_eur)
        sources.setdefault(day_value, origin)
    table = (
        RateTable(tuple(Publication(d, r, sources[d]) for d, r in sorted(by_day.items())))
        if by_day
        else RateTable((Publication(dt.date(1999, 1, 4), {}, "none"),))
    )
    return RateLookupFactory(FxConverter(table, ()), base_currency)


@dataclass(frozen=True)
class RateLookupFactory:
    """Makes the per-day RateLookup the transforms take."""

    converter: FxConverter
    base_currency: str

    def on(self, day: dt.date) -> RateLookup:
        """Rates applicable on ``day``; a missing or too-old rate is None."""

        def lookup(currency: str) -> Any:
            try:
                return self.converter.rate(currency, self.base_currency, day)
            except FxError:
                return None

        return lookup


def chunks(values: Sequence[Any], size: int = 500) -> list[Sequence[Any]]:
    """Consecutive slices of at most ``size`` values (bound-parameter limits)."""
    return [values[i : i + size] for i in range(0, len(values), size)]
