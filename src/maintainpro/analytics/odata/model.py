"""The entity sets: warehouse tables and rollups, their EDM types, permissions and site rules.

An entity set reads either a warehouse table or a rollup (a view defined in ``rollups``, inlined
as a subquery so the feed needs nothing created in the read-only warehouse). Which permission opens
a set: the asset, IoT and maintenance sets need ``assets:read``; the procurement sets need
``supply:read``; shared reference dimensions (calendar, time of day, currencies, parts) open
with either.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Final, Literal

import pyarrow as pa

from maintainpro.analytics import schema
from maintainpro.analytics.access import SiteRule, rule_for
from maintainpro.analytics.odata import rollups
from maintainpro.analytics.schema import Column, WarehouseTable
from maintainpro.core.users import Permission

# The kinds of value a column (and a $filter expression) can have.
Kind = Literal["int", "decimal", "double", "string", "bool", "date", "datetime"]
NUMERIC: Final[frozenset[str]] = frozenset({"int", "decimal", "double"})

NAMESPACE: Final = "MaintAInPro.Warehouse"
CONTAINER: Final = "Warehouse"


@dataclass(frozen=True)
class Property:
    """One column as the feed publishes it."""

    name: str
    type: pa.DataType
    description: str
    key: bool

    @property
    def kind(self) -> Kind:
        """The value kind used to type-check $filter."""
        return kind_of(self.type)

    @property
    def edm_type(self) -> str:
        """The EDM primitive type name."""
        return edm_type(self.type)


def kind_of(arrow_type: pa.DataType) -> Kind:
    """The value kind of a warehouse column type."""
    if pa.types.is_integer(arrow_type):
        return "int"
    if pa.types.is_decimal(arrow_type):
        return "decimal"
    if pa.types.is_floating(arrow_type):
        return "double"
    if pa.types.is_string(arrow_type):
        return "string"
    if pa.types.is_boolean(arrow_type):
        return "bool"
    if pa.types.is_date(arrow_type):
        return "date"
    if pa.types.is_timestamp(arrow_type):
        return "datetime"
    raise TypeError(f"no OData type for {arrow_type}")


def edm_type(arrow_type: pa.DataType) -> str:
    """The EDM type of a warehouse column type (flat types only)."""
    if pa.types.is_int64(arrow_type):
        return "Edm.Int64"
    if pa.types.is_integer(arrow_type):
        return "Edm.Int32"
    return {
        "decimal": "Edm.Decimal",
        "double": "Edm.Double",
        "string": "Edm.String",
        "bool": "Edm.Boolean",
        "date": "Edm.Date",
        "datetime": "Edm.DateTimeOffset",
    }[kind_of(arrow_type)]


@dataclass(frozen=True)
class EntitySet:
    """A published table: where its rows come from, who may read it, which site owns a row."""

    name: str
    description: str
    properties: tuple[Property, ...]
    source: str  # a warehouse table name, or a parenthesised subquery for a rollup
    permissions: frozenset[Permission]
    site_rule: SiteRule

    @property
    def key(self) -> tuple[str, ...]:
        """The key property names, in key order."""
        return tuple(p.name for p in self.properties if p.key)

    def prop(self, name: str) -> Property | None:
        """The property of that name, if the set has one."""
        return self._by_name.get(name)

    @cached_property
    def _by_name(self) -> dict[str, Property]:
        return {p.name: p for p in self.properties}


def _properties(columns: tuple[Column, ...], key: tuple[str, ...]) -> tuple[Property, ...]:
    by_name = {c.name: c for c in columns}
    # Key properties first, in key order, as the CSDL lists them.
    ordered = [by_name[k] for k in key] + [c for c in columns if c.name not in key]
    return tuple(Property(c.name, c.type, c.description, c.name in key) for c in ordered)


def from_table(table: WarehouseTable, permissions: frozenset[Permission]) -> EntitySet:
    """A warehouse table published as it is."""
    return EntitySet(
        name=table.name,
        description=table.description,
        properties=_properties(table.columns, table.key),
        source=table.name,
        permissions=permissions,
        site_rule=rule_for(table),
    )


def from_rollup(rollup: rollups.Rollup, permissions: frozenset[Permission]) -> EntitySet:
    """A rollup published as its own entity set."""
    table = rollup.table
    return EntitySet(
        name=table.name,
        description=table.description,
        properties=_properties(table.columns, table.key),
        source=f"({rollup.select()})",
        permissions=permissions,
        site_rule=rule_for(table),
    )


ASSETS: Final = frozenset({Permission.ASSETS_READ})
SUPPLY: Final = frozenset({Permission.SUPPLY_READ})
EITHER: Final = frozenset({Permission.ASSETS_READ, Permission.SUPPLY_READ})

_TABLE_PERMISSIONS: Final[dict[str, frozenset[Permission]]] = {
    schema.DIM_DATE.name: EITHER,
    schema.DIM_TIME_OF_DAY.name: EITHER,
    schema.DIM_SITE.name: EITHER,
    schema.DIM_ASSET.name: ASSETS,
    schema.DIM_SENSOR.name: ASSETS,
    schema.DIM_PART.name: EITHER,
    schema.DIM_SUPPLIER.name: SUPPLY,
    schema.DIM_CURRENCY.name: EITHER,
    schema.DIM_USER.name: ASSETS,
    schema.FACT_SENSOR_HOUR.name: ASSETS,
    schema.FACT_ALERT.name: ASSETS,
    schema.FACT_WORK_ORDER.name: ASSETS,
    schema.FACT_WORK_ORDER_STATUS.name: ASSETS,
    schema.FACT_SCHEDULE_COMPLIANCE.name: ASSETS,
    schema.FACT_PO_LINE.name: SUPPLY,
    schema.FACT_RECEIPT.name: SUPPLY,
    schema.FACT_INVOICE.name: SUPPLY,
    schema.FACT_SPEND.name: SUPPLY,
    schema.FACT_PREDICTION.name: ASSETS,
}
_ROLLUP_PERMISSIONS: Final[dict[str, frozenset[Permission]]] = {
    rollups.SENSOR_DAY.table.name: ASSETS,
    rollups.SENSOR_MONTH.table.name: ASSETS,
    rollups.WORK_ORDER_ASSET_MONTH.table.name: ASSETS,
    rollups.SPEND_SUPPLIER_MONTH.table.name: SUPPLY,
}


def entity_sets() -> dict[str, EntitySet]:
    """Every published entity set by name: dimensions, facts, then rollups."""
    # Only tables with a decided permission are published: a new warehouse table stays out of
    # the feed until someone decides who may read it.
    published = [
        from_table(table, _TABLE_PERMISSIONS[table.name])
        for table in (*schema.DIMENSIONS, *schema.FACTS)
        if table.name in _TABLE_PERMISSIONS
    ]
    published += [
        from_rollup(rollup, _ROLLUP_PERMISSIONS[rollup.table.name]) for rollup in rollups.ROLLUPS
    ]
    return {s.name: s for s in published}
