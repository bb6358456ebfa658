"""Helpers for cube tests: the synthetic plant they share, asking queries, hand-written SQL."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb

from maintainpro.analytics.lineage import Lineage
from maintainpro.analytics.semantic.load import Answer, answer
from maintainpro.analytics.semantic.model import SemanticModel, default_model
from maintainpro.analytics.semantic.plan import Access
from maintainpro.analytics.semantic.results import json_value
from maintainpro.analytics.semantic.synthetic import SyntheticPlant

# Five months across a new year (so year > quarter > month > day has more than one of each),
# small enough to build in a second or two.
PLANT = SyntheticPlant(
    start=dt.date(2025, 11, 1),
    days=150,
    work_orders_per_day=12,
    alerts_per_day=6,
    compliance_per_day=4,
    po_lines_per_day=4,
    spend_per_day=4,
    sensor_hours=True,
)
TODAY = dt.date(2026, 4, 1)
SITE_A = 1  # site_key of S1 in the synthetic plant
SITE_B = 2


@dataclass(frozen=True)
class Built:
    """The ETL-built warehouse with its cubes refreshed, and the operational ids behind it."""

    path: Path
    ids: dict[str, int]


def quiet_lineage(warehouse: Path) -> Lineage:
    """Lineage that builds events but sends none."""
    return Lineage(
        None, namespace="test", source=("sqlite:///x", "main."), warehouse_path=warehouse
    )


def ask(
    connection: duckdb.DuckDBPyConnection,
    query: dict[str, Any],
    *,
    access: Access | None = None,
    base: bool = False,
    model: SemanticModel | None = None,
) -> Answer:
    """Answer a query on the synthetic day (TODAY)."""
    return answer(
        connection,
        model or default_model(),
        query,
        access or Access.unrestricted(),
        today=TODAY,
        use_pre_aggregations=not base,
    )


def rows_of(result: Answer, keys: Sequence[str]) -> list[tuple[Any, ...]]:
    """The answer's rows as tuples of the given keys, in the answer's order."""
    return [tuple(row[k] for k in keys) for row in result.body["data"]]


def hand(
    connection: duckdb.DuckDBPyConnection, sql: str, params: Sequence[Any] = ()
) -> list[tuple[Any, ...]]:
    """A hand-written query's rows, values shaped as the API shapes them."""
    return [tuple(json_value(v) for v in row) for row in connection.execute(sql, params).fetchall()]


def source_of(result: Answer) -> str:
    """pre_aggregation or base."""
    return str(result.body["answeredFrom"]["source"])
