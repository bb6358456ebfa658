"""Answering a query on an open warehouse connection: compile, run, shape the response.

The response is Cube's ``/load`` answer (``query``, ``data``, ``annotation``,
``lastRefreshTime``, ``usedPreAggregations``) with ``answeredFrom`` saying which source answered:
a pre-aggregation (which one, which grouping set) or the base facts (and why no pre-aggregation
could).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import duckdb

from maintainpro.analytics.semantic.compile import Compiled, StoredState, compile_query
from maintainpro.analytics.semantic.materialise import etl_marker, read_states
from maintainpro.analytics.semantic.model import SemanticModel
from maintainpro.analytics.semantic.plan import Access
from maintainpro.analytics.semantic.preaggs import layouts
from maintainpro.analytics.semantic.query import QueryError
from maintainpro.analytics.semantic.results import annotation, data, json_value, normalised


@dataclass(frozen=True)
class Answer:
    """The response body, and what it cost: rows returned, the base cube, the source."""

    body: dict[str, Any]
    rows: int
    cube: str
    source: str


def prepare(
    connection: duckdb.DuckDBPyConnection,
    model: SemanticModel,
    raw: Any,
    access: Access,
    *,
    today: dt.date,
    use_pre_aggregations: bool = True,
    states: Mapping[str, StoredState] | None = None,
) -> Compiled:
    """The compiled query, with the pre-aggregations the warehouse holds now."""
    if states is None:
        states = read_states(connection) if use_pre_aggregations else {}
    return compile_query(
        model,
        raw,
        access,
        today=today,
        layouts=layouts(model),
        states=states,
        etl_marker=etl_marker(connection),
        use_pre_aggregations=use_pre_aggregations,
    )


def run(connection: duckdb.DuckDBPyConnection, compiled: Compiled) -> list[tuple[Any, ...]]:
    """Execute the statement; a value DuckDB cannot compare is the query's fault (400)."""
    statement = compiled.statement
    try:
        return connection.execute(statement.sql, statement.params).fetchall()
    except (duckdb.ConversionException, duckdb.OutOfRangeException) as exc:
        raise QueryError("a filter value is out of range for its member") from exc


def answer(
    connection: duckdb.DuckDBPyConnection,
    model: SemanticModel,
    raw: Any,
    access: Access,
    *,
    today: dt.date,
    use_pre_aggregations: bool = True,
) -> Answer:
    """Answer a query for this caller."""
    states = read_states(connection) if use_pre_aggregations else {}
    compiled = prepare(
        connection,
        model,
        raw,
        access,
        today=today,
        use_pre_aggregations=use_pre_aggregations,
        states=states,
    )
    rows = run(connection, compiled)
    plan, choice = compiled.plan, compiled.choice
    body: dict[str, Any] = {
        "query": normalised(compiled.query, plan),
        "data": data(plan, rows),
        "annotation": annotation(plan),
        "lastRefreshTime": None,
        "usedPreAggregations": {},
        "dbType": "duckdb",
        "external": False,
        "slowQuery": False,
    }
    if choice.layout is not None:
        state = states.get(choice.layout.table)
        refreshed = json_value(state.refreshed_at) if state else None
        body["lastRefreshTime"] = refreshed
        body["usedPreAggregations"] = {
            choice.layout.table: {
                "targetTableName": choice.layout.table,
                "lastUpdatedAt": refreshed,
            }
        }
        body["answeredFrom"] = {
            "source": "pre_aggregation",
            "preAggregation": choice.layout.name,
            "table": choice.layout.table,
            "groupingSet": list(choice.grouping_set),
            "groupingId": choice.gid,
        }
        source = "pre_aggregation"
    else:
        body["answeredFrom"] = {"source": "base", "reason": choice.reason}
        source = "base"
    if plan.total:
        statement = compiled.statement
        counted = connection.execute(statement.count_sql, statement.count_params).fetchall()
        body["total"] = int(counted[0][0])
    return Answer(body, len(rows), plan.base.name, source)
