"""What can be exported, and reading it as Arrow batches under a caller's row filter.

The datasets are the OData feed's entity sets (``analytics.odata.model``): the same names, the
same permissions and the same site rules on every channel, rollups included. Every file format
reads through ``read_batches``: the columns in the warehouse's order, rows in key order (so two
exports of the same data are the same file), cast to the described Arrow types, restricted by
the row filter (``analytics.access.scope_predicate``) and optionally to the days from ``since``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

import duckdb
import pyarrow as pa

from maintainpro.analytics import schema
from maintainpro.analytics.access import SiteRule, can_read, scope_predicate
from maintainpro.analytics.odata import rollups
from maintainpro.analytics.odata.model import EntitySet, entity_sets
from maintainpro.analytics.schema import WarehouseTable
from maintainpro.core.users import Permission

BATCH_ROWS: Final = 65_536
DAY_COLUMN: Final = "dt"

# The UTC day each row belongs to, for lake partitions and `since` windows. Dimensions have none
# (they are exported whole); monthly rollups belong to the first day of their month.
_DAY_SQL: Final[dict[str, str]] = {
    "fact_sensor_hour": "CAST(t.hour_start AS DATE)",
    "fact_alert": "CAST(t.raised_at AS DATE)",
    "fact_work_order": "CAST(t.created_at AS DATE)",
    "fact_work_order_status": "CAST(t.entered_at AS DATE)",
    "fact_schedule_compliance": "CAST(t.due_at AS DATE)",
    "fact_po_line": "CAST(t.ordered_at AS DATE)",
    "fact_receipt": "CAST(t.received_at AS DATE)",
    "fact_invoice": "t.invoice_date",
    "fact_spend": "make_date(t.date_key // 10000, t.date_key // 100 % 100, t.date_key % 100)",
    "rollup_sensor_day": "t.day",
    "rollup_sensor_month": "t.month_start",
    "rollup_work_order_asset_month": "t.month_start",
    "rollup_spend_supplier_month": "t.month_start",
}


class UnknownDataset(LookupError):
    """No exportable dataset has that name."""


@dataclass(frozen=True)
class Dataset:
    """An exportable entity set: its columns, where its rows come from, who may read them."""

    table: WarehouseTable
    source: str  # a warehouse table name, or a parenthesised query (a rollup)
    permissions: frozenset[Permission]
    site_rule: SiteRule
    day_sql: str | None = None

    @property
    def name(self) -> str:
        """The dataset's name: the entity set's."""
        return self.table.name

    @property
    def partitioned(self) -> bool:
        """Whether rows belong to days, so the lake partitions them by day."""
        return self.day_sql is not None

    def arrow_schema(self, *, with_day: bool = False) -> pa.Schema:
        """The Arrow schema of exported rows, with the day column when asked (dated sets only)."""
        base = self.table.arrow_schema
        if with_day and self.day_sql is not None:
            return base.append(pa.field(DAY_COLUMN, pa.date32()))
        return base

    def permitted(self, granted: frozenset[Permission]) -> bool:
        """Whether a role with these permissions may read the dataset (any one of its own)."""
        return bool(self.permissions & granted)

    def visible_to(self, scope: frozenset[int] | None) -> bool:
        """Whether a user with this site scope may read any of its rows."""
        return can_read(self.site_rule, scope)

    def row_filter(self, scope: frozenset[int] | None) -> RowFilter:
        """The row-level-security filter for a site scope (None: every site)."""
        sql, params = scope_predicate(self.site_rule, scope, alias="t")
        return RowFilter(sql, tuple(params))


def _tables() -> dict[str, WarehouseTable]:
    tables = {t.name: t for t in (*schema.DIMENSIONS, *schema.FACTS)}
    tables.update({r.table.name: r.table for r in rollups.ROLLUPS})
    return tables


def _dataset(entity_set: EntitySet, table: WarehouseTable) -> Dataset:
    return Dataset(
        table=table,
        source=entity_set.source,
        permissions=entity_set.permissions,
        site_rule=entity_set.site_rule,
        day_sql=_DAY_SQL.get(table.name),
    )


def datasets() -> dict[str, Dataset]:
    """Every exportable dataset by name, in the feed's order."""
    tables = _tables()
    return {
        name: _dataset(entity_set, tables[name])
        for name, entity_set in entity_sets().items()
        if name in tables
    }


def get_dataset(name: str) -> Dataset:
    """The dataset of that name; ``UnknownDataset`` (which does not repeat the name) if none."""
    found = datasets().get(name)
    if found is None:
        raise UnknownDataset("no exportable dataset has that name")
    return found


@dataclass(frozen=True)
class RowFilter:
    """An SQL condition on the dataset's rows (aliased ``t``) with its parameters."""

    sql: str = "TRUE"
    params: Sequence[Any] = field(default_factory=tuple)


ALL_ROWS: Final = RowFilter()


def select_sql(
    dataset: Dataset, row_filter: RowFilter, *, since: dt.date | None, with_day: bool
) -> tuple[str, list[Any]]:
    """The SELECT reading a dataset: columns in order, filtered, in key order."""
    table = dataset.table
    columns = [f't."{name}"' for name in table.column_names]
    if with_day and dataset.day_sql is not None:
        columns.append(f"{dataset.day_sql} AS {DAY_COLUMN}")
    where = [f"({row_filter.sql})"]
    params = list(row_filter.params)
    if since is not None:
        if dataset.day_sql is None:
            raise ValueError(f"{dataset.name} has no days: it is exported whole")
        where.append(f"{dataset.day_sql} >= ?")
        params.append(since)
    order = ", ".join(f't."{k}"' for k in table.key)
    sql = (
        f"SELECT {', '.join(columns)} FROM {dataset.source} AS t "  # noqa: S608 - schema names
        f"WHERE {' AND '.join(where)} ORDER BY {order}"
    )
    return sql, params


def read_batches(
    connection: duckdb.DuckDBPyConnection,
    dataset: Dataset,
    row_filter: RowFilter = ALL_ROWS,
    *,
    since: dt.date | None = None,
    with_day: bool = False,
) -> pa.RecordBatchReader:
    """A dataset's rows as Arrow batches in the dataset's schema (the connection stays open)."""
    sql, params = select_sql(dataset, row_filter, since=since, with_day=with_day)
    target = dataset.arrow_schema(with_day=with_day)
    # A relation streams its result; a DB-API cursor would copy it first.
    source: pa.RecordBatchReader = connection.sql(sql, params=params).to_arrow_reader(BATCH_ROWS)

    def cast() -> Iterator[pa.RecordBatch]:
        for batch in source:
            yield pa.RecordBatch.from_arrays(
                [batch.column(i).cast(f.type) for i, f in enumerate(target)], schema=target
            )

    return pa.RecordBatchReader.from_batches(target, cast())
