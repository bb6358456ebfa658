"""Building and refreshing pre-aggregations in the warehouse, partition by partition.

A refresh compares, per partition (a month, say), the fingerprint of the rows the
pre-aggregation reads (their count and the sum of their hashes) with the one stored at the last
refresh, and recomputes only the partitions that differ, appeared or vanished: DELETE of those
partitions, then INSERT of the same ``GROUP BY ... ROLLUP/CUBE/GROUPING SETS`` restricted to them.
A new or changed definition rebuilds the table whole. Each pre-aggregation is refreshed in one
transaction (a reader sees the old table or the new one, never half of it) between an
OpenLineage START and a COMPLETE or FAIL event; a failure is recorded and the next one runs.

Bookkeeping lives beside the tables: ``cube_preagg_state`` (definition, when refreshed, the ETL
run it reflects), ``cube_preagg_partitions`` (fingerprints) and ``cube_preagg_sets`` (rows per
grouping set, so a query reads the smallest set that covers it).
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

import duckdb
from openlineage.client.event_v2 import RunState

from maintainpro.analytics.lineage import Lineage
from maintainpro.analytics.semantic.compile import StoredState
from maintainpro.analytics.semantic.model import SemanticModel
from maintainpro.analytics.semantic.preaggs import GID, PARTITION, Layout, layouts
from maintainpro.analytics.semantic.refresh_lineage import refresh_event
from maintainpro.analytics.semantic.sql import quote
from maintainpro.analytics.warehouse import new_run_id

log = logging.getLogger(__name__)

STATE: Final = "cube_preagg_state"
PARTITIONS: Final = "cube_preagg_partitions"
SETS: Final = "cube_preagg_sets"
DDL: Final = (
    f"""CREATE TABLE IF NOT EXISTS {STATE} (
  table_name VARCHAR PRIMARY KEY, pre_aggregation VARCHAR, definition_hash VARCHAR,
  refreshed_at TIMESTAMP, etl_marker TIMESTAMP, row_count BIGINT, run_id VARCHAR)""",
    f"""CREATE TABLE IF NOT EXISTS {PARTITIONS} (
  table_name VARCHAR, partition_start DATE, row_count BIGINT, fingerprint HUGEINT,
  refreshed_at TIMESTAMP)""",
    f"""CREATE TABLE IF NOT EXISTS {SETS} (
  table_name VARCHAR, gid INTEGER, row_count BIGINT)""",
)

Clock = Callable[[], dt.datetime]
Fingerprints = dict[dt.date, tuple[int, int]]


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


@dataclass
class RefreshResult:
    """What one refresh of one pre-aggregation did."""

    name: str
    table: str
    run_id: str
    started_at: dt.datetime
    mode: str = "incremental"  # full | incremental | unchanged
    partitions: int = 0
    refreshed: list[dt.date] = field(default_factory=list)
    rows: int = 0
    status: str = "running"  # completed | failed
    error: str | None = None
    duration_s: float = 0.0


def ensure_tables(connection: duckdb.DuckDBPyConnection) -> None:
    """Create the bookkeeping tables if missing."""
    for statement in DDL:
        connection.execute(statement)


def _exists(connection: duckdb.DuckDBPyConnection, table: str) -> bool:
    row = connection.execute(
        "SELECT count(*) FROM duckdb_tables() WHERE table_name = ? AND schema_name = 'main'",
        [table],
    ).fetchall()
    return bool(row[0][0])


def etl_marker(connection: duckdb.DuckDBPyConnection) -> dt.datetime | None:
    """When the last ETL job completed (naive UTC); None without any."""
    try:
        row = connection.execute(
            "SELECT max(finished_at) FROM etl_runs WHERE status = 'completed'"
        ).fetchall()
    except duckdb.CatalogException:
        return None  # a warehouse no ETL has written (tests, benchmarks)
    marker: dt.datetime | None = row[0][0]
    return marker


def read_states(connection: duckdb.DuckDBPyConnection) -> dict[str, StoredState]:
    """Every built pre-aggregation by table (empty before the first refresh).

    One query, no catalogue lookups first: it runs before every answer.
    """
    try:
        rows = connection.execute(
            f"SELECT s.table_name, s.definition_hash, s.refreshed_at, s.etl_marker, g.gid,"  # noqa: S608 - constants
            f" g.row_count FROM {STATE} s LEFT JOIN {SETS} g USING (table_name)"
        ).fetchall()
    except duckdb.CatalogException:
        return {}
    sets: dict[str, dict[int, int]] = {}
    heads: dict[str, tuple[str, dt.datetime, dt.datetime | None]] = {}
    for table, digest, refreshed, marker, gid, count in rows:
        heads[table] = (digest, refreshed, marker)
        if gid is not None:
            sets.setdefault(table, {})[gid] = count
    return {
        table: StoredState(table, digest, refreshed, marker, sets.get(table, {}))
        for table, (digest, refreshed, marker) in heads.items()
    }


def _fingerprints(connection: duckdb.DuckDBPyConnection, layout: Layout) -> Fingerprints:
    rows = connection.execute(layout.fingerprint_sql()).fetchall()
    return {p: (int(n), int(h)) for p, n, h in rows}


def _stored_fingerprints(connection: duckdb.DuckDBPyConnection, table: str) -> Fingerprints:
    rows = connection.execute(
        f"SELECT partition_start, row_count, fingerprint FROM {PARTITIONS} WHERE table_name = ?",  # noqa: S608 - constant
        [table],
    ).fetchall()
    return {p: (int(n), int(h)) for p, n, h in rows}


def _save_fingerprints(
    connection: duckdb.DuckDBPyConnection,
    table: str,
    fresh: Fingerprints,
    partitions: Sequence[dt.date],
    at: dt.datetime,
) -> None:
    connection.execute(
        f"DELETE FROM {PARTITIONS} WHERE table_name = ? "  # noqa: S608 - constant
        "AND partition_start IN (SELECT unnest(CAST(? AS DATE[])))",
        [table, list(partitions)],
    )
    rows = [(table, p, *fresh[p], at) for p in partitions if p in fresh]
    if rows:
        connection.executemany(f"INSERT INTO {PARTITIONS} VALUES (?, ?, ?, ?, ?)", rows)  # noqa: S608 - constant


def _count_sets(connection: duckdb.DuckDBPyConnection, layout: Layout) -> int:
    table = quote(layout.table)
    connection.execute(f"DELETE FROM {SETS} WHERE table_name = ?", [layout.table])  # noqa: S608 - constant
    connection.execute(
        f"INSERT INTO {SETS} SELECT ?, {GID}, count(*) FROM {table} GROUP BY {GID}",  # noqa: S608 - model names
        [layout.table],
    )
    row = connection.execute(f"SELECT count(*) FROM {table}").fetchall()  # noqa: S608 - model name
    return int(row[0][0])


def _rebuild(connection: duckdb.DuckDBPyConnection, layout: Layout, result: RefreshResult) -> None:
    table = quote(layout.table)
    fresh = _fingerprints(connection, layout)
    connection.execute(f"DROP TABLE IF EXISTS {table}")
    connection.execute(f"CREATE TABLE {table} AS {layout.select_sql()}")
    connection.execute(f"DELETE FROM {PARTITIONS} WHERE table_name = ?", [layout.table])  # noqa: S608 - constant
    _save_fingerprints(connection, layout.table, fresh, sorted(fresh), _naive(result.started_at))
    result.mode = "full"
    result.partitions = len(fresh)
    result.refreshed = sorted(fresh)


def _update(connection: duckdb.DuckDBPyConnection, layout: Layout, result: RefreshResult) -> None:
    fresh = _fingerprints(connection, layout)
    stored = _stored_fingerprints(connection, layout.table)
    changed = sorted(p for p in fresh.keys() | stored.keys() if fresh.get(p) != stored.get(p))
    result.partitions = len(fresh)
    result.refreshed = changed
    if not changed:
        result.mode = "unchanged"
        return
    table = quote(layout.table)
    connection.execute(
        f"DELETE FROM {table} WHERE {PARTITION} IN (SELECT unnest(CAST(? AS DATE[])))",  # noqa: S608 - model name
        [changed],
    )
    connection.execute(f"INSERT INTO {table} {layout.select_sql(partitions=True)}", [changed])
    _save_fingerprints(connection, layout.table, fresh, changed, _naive(result.started_at))


def _naive(moment: dt.datetime) -> dt.datetime:
    return moment.astimezone(dt.UTC).replace(tzinfo=None)


def refresh_one(
    connection: duckdb.DuckDBPyConnection,
    layout: Layout,
    lineage: Lineage,
    *,
    full: bool = False,
    clock: Clock = _now,
) -> RefreshResult:
    """Refresh one pre-aggregation in its own transaction; never raises for its failure."""
    result = RefreshResult(layout.name, layout.table, new_run_id(), clock())
    marker = etl_marker(connection)
    lineage.emit(refresh_event(lineage, RunState.START, layout, result, connection))
    began = time.perf_counter()
    try:
        connection.execute("BEGIN TRANSACTION")
        try:
            state = read_states(connection).get(layout.table)
            current = state is not None and state.definition_hash == layout.definition_hash
            if full or not current or not _exists(connection, layout.table):
                _rebuild(connection, layout, result)
            else:
                _update(connection, layout, result)
            result.rows = _count_sets(connection, layout)
            connection.execute(f"DELETE FROM {STATE} WHERE table_name = ?", [layout.table])  # noqa: S608 - constant
            connection.execute(
                f"INSERT INTO {STATE} VALUES (?, ?, ?, ?, ?, ?, ?)",  # noqa: S608 - constant
                [
                    layout.table,
                    layout.name,
                    layout.definition_hash,
                    _naive(result.started_at),
                    marker,
                    result.rows,
                    result.run_id,
                ],
            )
        except BaseException:
            connection.execute("ROLLBACK")
            raise
        connection.execute("COMMIT")
    except Exception as exc:  # noqa: BLE001 - a failed refresh is recorded and reported
        result.status = "failed"
        result.error = f"{type(exc).__name__}: {exc}"[:2000]
        result.duration_s = time.perf_counter() - began
        log.warning(
            "pre-aggregation refresh failed", extra={"table": layout.table, "error": result.error}
        )
        lineage.emit(refresh_event(lineage, RunState.FAIL, layout, result, connection, error=exc))
        return result
    result.status = "completed"
    result.duration_s = time.perf_counter() - began
    lineage.emit(refresh_event(lineage, RunState.COMPLETE, layout, result, connection))
    return result


def _drop_orphans(connection: duckdb.DuckDBPyConnection, keep: set[str]) -> None:
    # Tables of pre-aggregations no longer in the model would only mislead readers.
    for (table,) in connection.execute(f"SELECT table_name FROM {STATE}").fetchall():  # noqa: S608 - constant
        if table in keep:
            continue
        connection.execute("BEGIN TRANSACTION")
        connection.execute(f"DROP TABLE IF EXISTS {quote(table)}")
        for bookkeeping in (STATE, PARTITIONS, SETS):
            connection.execute(f"DELETE FROM {bookkeeping} WHERE table_name = ?", [table])  # noqa: S608 - constant
        connection.execute("COMMIT")


def refresh(
    connection: duckdb.DuckDBPyConnection,
    model: SemanticModel,
    lineage: Lineage,
    *,
    full: bool = False,
    only: Sequence[str] = (),
    clock: Clock = _now,
    progress: Callable[[RefreshResult], Any] | None = None,
) -> list[RefreshResult]:
    """Refresh the model's pre-aggregations (``only``: these ``Cube.name``s or cube names).

    ``connection`` is a writable warehouse connection (``DuckDbWarehouse.connection``).
    """
    ensure_tables(connection)
    chosen = layouts(model)
    if only:
        chosen = tuple(x for x in chosen if x.name in only or x.cube.name in only)
    else:
        _drop_orphans(connection, {x.table for x in chosen})
    results = []
    for layout in chosen:
        result = refresh_one(connection, layout, lineage, full=full, clock=clock)
        results.append(result)
        if progress is not None:
            progress(result)
    return results
