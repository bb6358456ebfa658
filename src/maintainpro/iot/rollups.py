"""Per-minute and per-hour rollups of sensor readings, merged in as each batch is stored."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Final

from sqlalchemy import (
    BigInteger,
    Column,
    Connection,
    Float,
    Integer,
    Table,
    bindparam,
    case,
    update,
)
from sqlalchemy.dialects.postgresql import Insert as PgInsert
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import Insert as SqliteInsert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from maintainpro.core.db import Base

MINUTE_MS: Final = 60_000
HOUR_MS: Final = 3_600_000

# (sensor_id, ts, value) of a reading that was actually inserted.
InsertedReading = tuple[int, int, float]
# [count, sum, min, max, last_ts, last_value] of one bucket; a list because it is updated in place.
_Partial = list[float]


def _rollup_table(name: str) -> Table:
    # WITHOUT ROWID for the same reason as the raw table: one B-tree ordered by (sensor, bucket).
    return Table(
        name,
        Base.metadata,
        Column("sensor_id", Integer, primary_key=True, autoincrement=False),
        Column("bucket", BigInteger, primary_key=True, autoincrement=False),
        Column("reading_count", Integer, nullable=False),
        Column("value_sum", Float, nullable=False),
        Column("value_min", Float, nullable=False),
        Column("value_max", Float, nullable=False),
        Column("last_ts", BigInteger, nullable=False),
        Column("last_value", Float, nullable=False),
        sqlite_with_rowid=False,
    )


minute_rollups = _rollup_table("sensor_rollups_1m")
hour_rollups = _rollup_table("sensor_rollups_1h")

# Resolution name -> (bucket width in ms, table), finest first.
ROLLUPS: Final[dict[str, tuple[int, Table]]] = {
    "1m": (MINUTE_MS, minute_rollups),
    "1h": (HOUR_MS, hour_rollups),
}


def bucket_partials(
    readings: Iterable[InsertedReading], width_ms: int
) -> dict[tuple[int, int], _Partial]:
    """Summarise readings per (sensor, bucket start): count, sum, min, max, last ts and value."""
    partials: dict[tuple[int, int], _Partial] = {}
    for row in readings:
        sensor_id, ts, value = row[0], row[1], row[2]
        key = (sensor_id, ts - ts % width_ms)
        partial = partials.get(key)
        if partial is None:
            partials[key] = [1, value, value, value, ts, value]
            continue
        partial[0] += 1
        partial[1] += value
        if value < partial[2]:
            partial[2] = value
        if value > partial[3]:
            partial[3] = value
        if ts > partial[4]:
            partial[4] = ts
            partial[5] = value
    return partials


def merge_rollups(connection: Connection, inserted: Sequence[InsertedReading]) -> None:
    """Merge newly inserted readings into every rollup table, in the caller's transaction.

    Only readings that were actually inserted may be passed: a duplicate counted here would
    inflate count and sum for good.
    """
    if not inserted:
        return
    for width_ms, table in ROLLUPS.values():
        partials = bucket_partials(inserted, width_ms)
        _upsert(connection, table, partials)


def _upsert(
    connection: Connection, table: Table, partials: dict[tuple[int, int], _Partial]
) -> None:
    dialect = connection.dialect.name
    stmt: SqliteInsert | PgInsert
    if dialect == "sqlite":
        stmt = sqlite_insert(table)
    elif dialect == "postgresql":
        stmt = pg_insert(table)
    else:
        raise RuntimeError(f"unsupported database {dialect}")
    new = stmt.excluded
    c = table.c
    # SET expressions see the row as it was before the update on both backends, so the
    # comparisons below are against the stored bucket. CASE rather than least()/min() because
    # SQLite and PostgreSQL spell the two-argument minimum differently.
    newer = new.last_ts > c.last_ts
    stmt = stmt.on_conflict_do_update(
        index_elements=[c.sensor_id, c.bucket],
        set_={
            "reading_count": c.reading_count + new.reading_count,
            "value_sum": c.value_sum + new.value_sum,
            "value_min": case((new.value_min < c.value_min, new.value_min), else_=c.value_min),
            "value_max": case((new.value_max > c.value_max, new.value_max), else_=c.value_max),
            "last_ts": case((newer, new.last_ts), else_=c.last_ts),
            "last_value": case((newer, new.last_value), else_=c.last_value),
        },
    )
    connection.execute(
        stmt,
        [
            {
                "sensor_id": sensor_id,
                "bucket": bucket,
                "reading_count": int(p[0]),
                "value_sum": p[1],
                "value_min": p[2],
                "value_max": p[3],
                "last_ts": int(p[4]),
                "last_value": p[5],
            }
            for (sensor_id, bucket), p in sorted(partials.items())
        ],
    )


def subtract_duplicates(connection: Connection, duplicates: Sequence[InsertedReading]) -> None:
    """Take readings that were counted twice out of count and sum of their buckets.

    Used by compaction: a reading redelivered after its original had moved to the cold tier
    was inserted (and counted) again. Min, max and last value cannot be un-merged, but a
    redelivery carries the same value, so they are already right.
    """
    if not duplicates:
        return
    for width_ms, table in ROLLUPS.values():
        partials = bucket_partials(duplicates, width_ms)
        connection.execute(
            update(table)
            .where(table.c.sensor_id == bindparam("b_sensor_id"))
            .where(table.c.bucket == bindparam("b_bucket"))
            .values(
                reading_count=table.c.reading_count - bindparam("b_count"),
                value_sum=table.c.value_sum - bindparam("b_sum"),
            ),
            [
                {"b_sensor_id": sid, "b_bucket": bucket, "b_count": int(p[0]), "b_sum": p[1]}
                for (sid, bucket), p in sorted(partials.items())
            ],
        )
