"""What a report holds, whatever produced it: a title, a period, summary figures, typed tables and
chart specifications; and the protocol every report source follows.

Renderers read only these types, so a saved question, a dashboard and a built-in maintenance
report come out of the CSV, XLSX and PDF writers the same way.
"""

from __future__ import annotations

import datetime as dt
import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Protocol, TypeAlias

from sqlalchemy.orm import Session

from maintainpro.config import Settings
from maintainpro.core.users import Permission, User

Cell: TypeAlias = str | int | float | Decimal | dt.date | dt.datetime | None
SiteScope: TypeAlias = frozenset[int] | None
"""The sites whose rows a recipient may see; None for every site (the analytics rule)."""


class ColumnKind(enum.StrEnum):
    """How a column's values are typed in XLSX and formatted in PDF and e-mail."""

    TEXT = "text"
    INTEGER = "integer"
    DECIMAL = "decimal"
    PERCENT = "percent"
    DATE = "date"
    DATETIME = "datetime"


@dataclass(frozen=True)
class Column:
    """One column: its key, its heading, how it is typed, and decimals shown."""

    key: str
    title: str
    kind: ColumnKind = ColumnKind.TEXT
    places: int = 2


@dataclass(frozen=True)
class Table:
    """Rows under typed columns."""

    name: str
    title: str
    columns: tuple[Column, ...]
    rows: tuple[tuple[Cell, ...], ...]

    def __post_init__(self) -> None:
        """Refuse rows that do not fit the columns."""
        width = len(self.columns)
        if any(len(row) != width for row in self.rows):
            raise ValueError(f"table {self.name}: every row needs {width} cells")

    def column(self, key: str) -> int:
        """The index of a column by key."""
        for index, column in enumerate(self.columns):
            if column.key == key:
                return index
        raise KeyError(key)


class ChartKind(enum.StrEnum):
    """The charts the PDF draws."""

    BAR = "bar"
    STACKED_BAR = "stacked_bar"
    HORIZONTAL_BAR = "horizontal_bar"
    LINE = "line"


@dataclass(frozen=True)
class ChartSpec:
    """A chart of one table: categories from one column, one series per value column."""

    title: str
    kind: ChartKind
    table: str
    category: str
    series: tuple[str, ...]
    value_label: str = ""


@dataclass(frozen=True)
class Figure:
    """A headline number of the inline summary, e.g. "PM compliance: 87.5 %"."""

    label: str
    value: Cell
    kind: ColumnKind = ColumnKind.INTEGER
    places: int = 1
    unit: str = ""


@dataclass(frozen=True)
class ReportData:
    """Everything a report shows, for one recipient's scope."""

    title: str
    period_start: dt.datetime
    period_end: dt.datetime
    timezone: str
    generated_at: dt.datetime
    summary: tuple[Figure, ...] = ()
    tables: tuple[Table, ...] = ()
    charts: tuple[ChartSpec, ...] = ()
    notes: tuple[str, ...] = ()
    sites: tuple[str, ...] = ()

    @property
    def is_empty(self) -> bool:
        """Whether no table holds a row (what skip-when-empty looks at)."""
        return all(not table.rows for table in self.tables)

    def table(self, name: str) -> Table:
        """A table by name."""
        for table in self.tables:
            if table.name == name:
                return table
        raise KeyError(name)


@dataclass(frozen=True)
class RunParams:
    """What a source is asked for: the period (aware UTC), the zone dates are shown in, as of."""

    period_start: dt.datetime
    period_end: dt.datetime
    timezone: str
    as_of: dt.datetime
    title: str
    options: Mapping[str, Any] = field(default_factory=dict)
    base_currency: str = "USD"
    # For sources that read the warehouse (saved questions): where it is, and what the report's
    # owner may read there (None: no limit, for tests and the CLI).
    settings: Settings | None = None
    permissions: frozenset[Permission] | None = None
    # Whose dashboards and questions a dashboard report may open (None: nobody's).
    owner: User | None = None


class SourceError(ValueError):
    """A source was given options it cannot use; the message is safe to show."""


class ReportSource(Protocol):
    """Produces a report's data for a period and a site scope."""

    @property
    def name(self) -> str:
        """The name definitions use (e.g. pm_compliance)."""
        ...

    @property
    def title(self) -> str:
        """The default report title."""
        ...

    def check(self, options: Mapping[str, Any]) -> dict[str, Any]:
        """The options, validated and with defaults filled in; SourceError otherwise."""
        ...

    def run(self, session: Session, params: RunParams, site_scope: SiteScope) -> ReportData:
        """The report's data for the period, holding only the rows the scope may see."""
        ...


def scoped(
    rows: Sequence[tuple[int | None, tuple[Cell, ...]]], site_scope: SiteScope
) -> tuple[tuple[Cell, ...], ...]:
    """Rows tagged with their site id, kept when the scope may see that site."""
    if site_scope is None:
        return tuple(row for _, row in rows)
    return tuple(row for site, row in rows if site is not None and site in site_scope)
