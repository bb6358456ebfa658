"""Extraction: SQLAlchemy results (SQLite or PostgreSQL) into Arrow tables, in batches."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterator, Sequence
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import pyarrow as pa
from sqlalchemy import Connection, Executable

DEFAULT_BATCH = 100_000


def _decimal_column(values: Sequence[Any], arrow_type: pa.Decimal128Type) -> list[Any]:
    # Arrow refuses a Decimal with more digits than the column's scale; SQLite hands back
    # whatever was stored, so each value is rounded to the warehouse's scale explicitly.
    quantum = Decimal(1).scaleb(-arrow_type.scale)
    return [
        None if v is None else Decimal(v).quantize(quantum, rounding=ROUND_HALF_UP) for v in values
    ]


def _date_column(values: Sequence[Any]) -> list[Any]:
    # SQLite without a declared type may return dates as ISO text.
    return [dt.date.fromisoformat(v) if isinstance(v, str) else v for v in values]


def to_arrow(rows: Sequence[Sequence[Any]], schema: pa.Schema) -> pa.Table:
    """Rows (tuples in schema order) as an Arrow table of that schema."""
    if not rows:
        return schema.empty_table()
    columns = list(zip(*rows, strict=True))
    arrays = []
    for values, field in zip(columns, schema, strict=True):
        data: Sequence[Any] = values
        if pa.types.is_decimal(field.type):
            data = _decimal_column(values, field.type)
        elif pa.types.is_date(field.type):
            data = _date_column(values)
        arrays.append(pa.array(data, type=field.type))
    return pa.Table.from_arrays(arrays, schema=schema)


def stream(
    connection: Connection, statement: Executable, schema: pa.Schema, batch: int = DEFAULT_BATCH
) -> Iterator[pa.Table]:
    """The statement's rows as Arrow tables of at most ``batch`` rows (server-side cursor)."""
    result = connection.execution_options(yield_per=batch).execute(statement)
    for part in result.partitions():
        yield to_arrow(part, schema)


def stream_driver(
    connection: Connection,
    sql: str,
    params: Sequence[Any],
    schema: pa.Schema,
    batch: int = DEFAULT_BATCH,
) -> Iterator[pa.Table]:
    """A large scan through the driver's own cursor (plain tuples, no Row objects), in batches.

    ``sql`` marks parameters with ``{p}``; numbers and text only, in schema order. On
    PostgreSQL a named (server-side) cursor streams the rows instead of loading them all.
    The cursor belongs to the SQLAlchemy connection's transaction, so it sees the same snapshot.
    """
    dbapi = connection.connection.dbapi_connection
    if dbapi is None:
        raise RuntimeError("the connection is closed")
    if connection.dialect.name == "postgresql":
        cursor = dbapi.cursor(name=f"extract_{uuid.uuid4().hex[:12]}")
        text = sql.replace("{p}", "%s")
    else:
        cursor = dbapi.cursor()
        text = sql.replace("{p}", "?")
    try:
        cursor.execute(text, tuple(params))
        while True:
            rows = cursor.fetchmany(batch)
            if not rows:
                break
            # Tuples straight into a struct array: the fastest way from driver rows to columns.
            struct = pa.array(rows, type=pa.struct(list(schema)))
            yield pa.Table.from_struct_array(struct)
    finally:
        cursor.close()


def fetch(
    connection: Connection, statement: Executable, schema: pa.Schema, batch: int = DEFAULT_BATCH
) -> pa.Table:
    """All of the statement's rows as one Arrow table."""
    parts = list(stream(connection, statement, schema, batch))
    if not parts:
        return schema.empty_table()
    return pa.concat_tables(parts)
