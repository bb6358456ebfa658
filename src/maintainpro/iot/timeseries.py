"""Time-series storage of sensor readings: one row per (sensor, millisecond), stored once."""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

from sqlalchemy import BigInteger, Column, Connection, Float, Integer, SmallInteger, Table
from sqlalchemy.dialects.postgresql import Insert as PgInsert
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import Insert as SqliteInsert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from maintainpro.core.db import Base

QUALITY_CODES = {"good": 0, "uncertain": 1, "bad": 2}
QUALITY_NAMES = {code: name for name, code in QUALITY_CODES.items()}

# Clustered by (sensor, time): on SQLite a WITHOUT ROWID table is the B-tree of its primary key,
# so a sensor's history is contiguous on disk and a duplicate is refused by the key itself.
readings_table = Table(
    "sensor_readings",
    Base.metadata,
    Column("sensor_id", Integer, primary_key=True, autoincrement=False),
    Column("ts", BigInteger, primary_key=True, autoincrement=False),
    Column("value", Float, nullable=False),
    Column("quality", SmallInteger, nullable=False, default=0),
    sqlite_with_rowid=False,
)


ReturningInsert = SqliteInsert | PgInsert


class ReadingRow(NamedTuple):
    """A reading as stored: sensor primary key, epoch milliseconds (UTC), value, quality code."""

    sensor_id: int
    ts: int
    value: float
    quality: int


def write_readings(connection: Connection, rows: Sequence[ReadingRow]) -> int:
    """Insert a batch in the caller's transaction; duplicates are skipped. Returns rows added."""
    if not rows:
        return 0
    dialect = connection.dialect.name
    values = [row._asdict() for row in rows]
    stmt: ReturningInsert
    if dialect == "sqlite":
        stmt = sqlite_insert(readings_table).on_conflict_do_nothing()
    elif dialect == "postgresql":
        stmt = pg_insert(readings_table).on_conflict_do_nothing()
    else:
        raise RuntimeError(f"unsupported database {dialect}")
    # RETURNING yields only the rows actually inserted, which rowcount does not report reliably
    # for batched inserts on either backend.
    result = connection.execute(stmt.returning(readings_table.c.sensor_id), values)
    return len(result.all())
