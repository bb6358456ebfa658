"""The PostgreSQL warehouse target: the same star schema, loaded by the same jobs, in one schema.

``PostgresWarehouse`` implements ``WarehouseTarget`` for BI tools that prefer a native
PostgreSQL connector. Tables are created from the Arrow schemas in ``schema.TABLES`` (so a new
table comes along by itself), with an index on each natural key; rows arrive through COPY,
encoded column by column from Arrow (``pg_copy``: binary, or CSV for tables with DECIMAL
columns; no row-by-row work in Python); key deletes go through a temporary table and
``DELETE ... USING``. Watermarks and run records live in the same schema,
so this store is incremental and idempotent independently of the DuckDB file.
"""

from __future__ import annotations

import datetime as dt
import re
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any, Final

import psycopg
import pyarrow as pa
from psycopg import sql
from psycopg.copy import QueuedLibpqWriter
from sqlalchemy.engine import make_url

from maintainpro.analytics import kpis_pg, pg_copy, schema
from maintainpro.analytics.schema import WarehouseTable
from maintainpro.analytics.warehouse import (
    RUN_COLUMNS,
    RunRecord,
    WarehouseError,
    aware_utc,
    naive_utc,
)

DEFAULT_SCHEMA: Final = "warehouse"
# The same rule as the warehouse_schema setting, checked again here because the class can be
# built without Settings (benchmarks, tests). pg_* and information_schema are PostgreSQL's own;
# public is refused so the warehouse never mixes with the tables of the database it lands in.
SCHEMA_NAME: Final = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
RESERVED_SCHEMAS: Final = frozenset({"information_schema", "public"})
_COPY: Final = "COPY {} ({}) FROM STDIN WITH "
_RUN_COLUMNS: Final = (
    "run_id, job, mode, window_start, window_end, started_at, finished_at, duration_s, "
    "rows_in, rows_out, rows_rejected, status, error"
)


def pg_type(arrow_type: pa.DataType) -> str:
    """The PostgreSQL type of an Arrow type used in the warehouse schema."""
    if pa.types.is_decimal(arrow_type):
        return f"numeric({arrow_type.precision},{arrow_type.scale})"
    if pa.types.is_timestamp(arrow_type):
        # Naive UTC, as in DuckDB: the jobs hand over UTC wall times without a zone.
        return "timestamp"
    simple = {
        pa.int8(): "smallint",  # PostgreSQL has no one-byte integer
        pa.int16(): "smallint",
        pa.int32(): "integer",
        pa.int64(): "bigint",
        pa.float64(): "double precision",
        pa.string(): "text",
        pa.bool_(): "boolean",
        pa.date32(): "date",
    }
    try:
        return simple[arrow_type]
    except KeyError:
        raise TypeError(f"no PostgreSQL warehouse type for {arrow_type}") from None


def checked_schema(name: str) -> str:
    """The schema name if it is a plain lower-case identifier PostgreSQL lets us create."""
    if not SCHEMA_NAME.fullmatch(name) or name.startswith("pg_") or name in RESERVED_SCHEMAS:
        raise WarehouseError(
            f"warehouse schema {name!r} refused: use lower-case letters, digits and _, "
            "not starting with pg_, and not public or information_schema"
        )
    return name


def conninfo(url: str) -> str:
    """A libpq connection string from a SQLAlchemy-style or libpq URL."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "postgresql":
        raise WarehouseError("warehouse_postgres_url must be a postgresql:// URL")
    return parsed.set(drivername="postgresql").render_as_string(hide_password=False)


def lineage_dataset(url: str, schema_name: str) -> tuple[str, str]:
    """(namespace, name prefix) of the warehouse tables in OpenLineage's PostgreSQL naming."""
    parsed = make_url(url)
    host = parsed.host or "localhost"
    return f"postgres://{host}:{parsed.port or 5432}", f"{parsed.database}.{schema_name}."


def where_is(url: str, schema_name: str) -> str:
    """Where the store is, for people: host, port, database and schema, no credentials."""
    namespace, prefix = lineage_dataset(url, schema_name)
    return f"{namespace}/{prefix.rstrip('.')}"


def table_indexes(table: WarehouseTable) -> dict[str, tuple[str, ...]]:
    """Index name -> columns: the natural key, and the key's timestamp on its own.

    Plain indexes, not unique ones: DuckDB does not enforce the keys either, and a constraint
    only here would let the two stores disagree on what loads. A timestamp inside a composite
    key (``fact_sensor_hour.hour_start``) is what ``delete_since`` deletes from on every
    incremental run; without its own index that is a scan of the whole table.
    """
    indexes = {f"{table.name}_key": table.key}
    if len(table.key) > 1:
        types = dict(zip(table.column_names, table.arrow_schema.types, strict=True))
        for column in table.key:
            if pa.types.is_timestamp(types[column]):
                indexes[f"{table.name}_{column}"] = (column,)
    return indexes


def index_ddl(table: WarehouseTable, schema_name: str) -> list[sql.Composed]:
    """CREATE INDEX IF NOT EXISTS for each of ``table_indexes``."""
    return [
        sql.SQL("CREATE INDEX IF NOT EXISTS {} ON {} ({})").format(
            sql.Identifier(name),
            sql.Identifier(schema_name, table.name),
            sql.SQL(", ").join(sql.Identifier(c) for c in columns),
        )
        for name, columns in table_indexes(table).items()
    ]


def table_ddl(table: WarehouseTable, schema_name: str) -> list[sql.Composed]:
    """CREATE TABLE and its indexes, all IF NOT EXISTS."""
    columns = sql.SQL(", ").join(
        sql.SQL("{} {}").format(sql.Identifier(c.name), sql.SQL(pg_type(c.type)))
        for c in table.columns
    )
    create = sql.SQL("CREATE TABLE IF NOT EXISTS {} ({})").format(
        sql.Identifier(schema_name, table.name), columns
    )
    return [create, *index_ddl(table, schema_name)]


class PostgresWarehouse:
    """The PostgreSQL implementation of ``WarehouseTarget``, in one schema of one database."""

    def __init__(
        self, url: str, schema_name: str = DEFAULT_SCHEMA, *, connect_timeout: int | None = None
    ) -> None:
        """Connect (autocommit outside ``transaction()``), times in UTC, the schema on the path.

        ``connect_timeout`` (seconds) bounds the wait for a server that does not answer; None
        keeps the URL's own (libpq waits without limit when it has none).
        """
        self.schema = checked_schema(schema_name)
        self.url = url
        timeout: dict[str, Any] = (
            {} if connect_timeout is None else {"connect_timeout": connect_timeout}
        )
        try:
            self.connection = psycopg.connect(
                conninfo(url), autocommit=True, application_name="maintainpro-warehouse", **timeout
            )
        except psycopg.Error as exc:
            raise WarehouseError(
                f"the PostgreSQL warehouse at {where_is(url, schema_name)} cannot be reached: {exc}"
            ) from exc
        self.connection.execute("SET TIME ZONE 'UTC'")
        # Views and functions name their tables unqualified; they resolve in this schema.
        self.connection.execute(
            sql.SQL("SET search_path TO {}, pg_catalog").format(sql.Identifier(self.schema))
        )
        self._in_transaction = False
        # Fact tables emptied in the current transaction, whose indexes are rebuilt at commit.
        self._rebuild: dict[str, WarehouseTable] = {}

    def close(self) -> None:
        """Close the connection."""
        self.connection.close()

    def __enter__(self) -> PostgresWarehouse:
        """Use as a context manager that closes the connection."""
        return self

    def __exit__(self, *exc: object) -> None:
        """Close the connection."""
        self.close()

    def claim(self) -> None:
        """Make this connection the store's only loader until it closes, or WarehouseError.

        DuckDB lets one process write its file; here two loads at once (the CLI and the hub's
        schedule) could both delete and re-insert the same keys, so a session advisory lock
        per schema keeps them apart.
        """
        row = self.connection.execute(
            "SELECT pg_try_advisory_lock(hashtext(%s))", [f"maintainpro.warehouse.{self.schema}"]
        ).fetchone()
        if not (row and row[0]):
            raise WarehouseError(
                f"another load of {where_is(self.url, self.schema)} is running; try again later"
            )

    def _name(self, table: WarehouseTable) -> sql.Identifier:
        return sql.Identifier(self.schema, table.name)

    def ensure_schema(self) -> None:
        """Create the schema and missing tables, and (re)create the KPI views and functions."""
        with self.connection.transaction():
            self.connection.execute(
                sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(self.schema))
            )
            for table in schema.TABLES.values():
                for statement in table_ddl(table, self.schema):
                    self.connection.execute(statement)
            try:
                # A savepoint: if replacing fails, the tables above still commit.
                with self.connection.transaction():
                    self._create_kpis(replace=True)
            except psycopg.errors.DatabaseError:
                # A view's columns changed since it was made: drop and create, in the same
                # transaction, so a reader sees the old views or the new ones.
                for drop in kpis_pg.DROP:
                    self.connection.execute(sql.SQL(drop))
                self._create_kpis(replace=False)

    def _create_kpis(self, *, replace: bool) -> None:
        verb = "CREATE OR REPLACE VIEW" if replace else "CREATE VIEW"
        for name, body in kpis_pg.VIEWS.items():
            self.connection.execute(
                sql.SQL(verb + " {} AS " + body).format(sql.Identifier(self.schema, name))
            )
        for statement in kpis_pg.FUNCTIONS:
            self.connection.execute(sql.SQL(statement))

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """Everything inside commits together or not at all."""
        self._in_transaction = True
        try:
            with self.connection.transaction():
                yield
                for table in self._rebuild.values():
                    for statement in index_ddl(table, self.schema):
                        self.connection.execute(statement)
                    self.connection.execute(sql.SQL("ANALYZE {}").format(self._name(table)))
        finally:
            self._in_transaction = False
            self._rebuild.clear()

    def _copy(self, target: sql.Composable, columns: Sequence[str], rows: pa.Table) -> None:
        fmt = pg_copy.copy_format(rows.schema)
        statement = sql.SQL(_COPY + pg_copy.copy_options(fmt)).format(
            target, sql.SQL(", ").join(sql.Identifier(c) for c in columns)
        )
        # The queued writer sends to the server from a worker thread, so encoding the next
        # chunk overlaps the server ingesting the last one.
        with (
            self.connection.cursor() as cursor,
            cursor.copy(statement, writer=QueuedLibpqWriter(cursor)) as copy,
        ):
            for chunk in pg_copy.chunks(rows, fmt):
                copy.write(chunk)

    def insert(self, table: WarehouseTable, rows: pa.Table) -> int:
        """Append rows (cast to the table's schema) through COPY; returns how many."""
        if rows.num_rows == 0:
            return 0
        shaped = rows.select(table.column_names).cast(table.arrow_schema)
        # One COPY statement: atomic on its own, and part of the job's transaction when in one.
        self._copy(self._name(table), table.column_names, shaped)
        return int(shaped.num_rows)

    def delete_keys(
        self, table: WarehouseTable, keys: pa.Table, on: Sequence[str] | None = None
    ) -> None:
        """Delete the rows whose natural key (or the ``on`` columns) appears in ``keys``."""
        if keys.num_rows == 0:
            return
        columns = list(on or table.key)
        key_schema = pa.schema([table.arrow_schema.field(k) for k in columns])
        temp = sql.Identifier(f"keys_{uuid.uuid4().hex[:12]}")
        names = sql.SQL(", ").join(sql.Identifier(k) for k in columns)
        match = sql.SQL(" AND ").join(
            sql.SQL("t.{0} = k.{0}").format(sql.Identifier(k)) for k in columns
        )
        with self.connection.transaction():
            # Same column types as the table (WITH NO DATA), so the join uses its index.
            self.connection.execute(
                sql.SQL("CREATE TEMP TABLE {} AS SELECT {} FROM {} WITH NO DATA").format(
                    temp, names, self._name(table)
                )
            )
            try:
                self._copy(temp, columns, keys.select(columns).cast(key_schema))
                self.connection.execute(sql.SQL("ANALYZE {}").format(temp))
                self.connection.execute(
                    sql.SQL("DELETE FROM {} t USING (SELECT DISTINCT * FROM {}) k WHERE {}").format(
                        self._name(table), temp, match
                    )
                )
            finally:
                self.connection.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(temp))

    def _column(self, table: WarehouseTable, column: str) -> sql.Identifier:
        if column not in table.column_names:
            raise WarehouseError(f"{table.name} has no column {column}")
        return sql.Identifier(column)

    def delete_since(self, table: WarehouseTable, column: str, since: dt.datetime) -> None:
        """Delete the rows whose ``column`` is at or after ``since`` (aware UTC)."""
        self.connection.execute(
            sql.SQL("DELETE FROM {} WHERE {} >= %s").format(
                self._name(table), self._column(table, column)
            ),
            [naive_utc(since)],
        )

    def delete_all(self, table: WarehouseTable) -> None:
        """Empty a table; a fact table reloaded in a transaction gets its indexes rebuilt."""
        name = self._name(table)
        if not (self._in_transaction and table.kind == "fact"):
            # DELETE: readers keep reading their snapshot while a dimension is reloaded.
            self.connection.execute(sql.SQL("DELETE FROM {}").format(name))
            return
        # A fact reload (a full build) can be millions of rows: TRUNCATE leaves no dead rows,
        # and one build per index at commit is far cheaper than updating them row by row.
        # Readers wait for the commit, as DuckDB's readers wait for its writer.
        self.connection.execute(sql.SQL("TRUNCATE {}").format(name))
        for index in table_indexes(table):
            self.connection.execute(
                sql.SQL("DROP INDEX IF EXISTS {}").format(sql.Identifier(self.schema, index))
            )
        self._rebuild[table.name] = table

    def max_value(self, table: WarehouseTable, column: str) -> Any:
        """The largest value of a column, None when the table is empty."""
        row = self.connection.execute(
            sql.SQL("SELECT max({}) FROM {}").format(self._column(table, column), self._name(table))
        ).fetchone()
        return row[0] if row else None

    def count(self, table: WarehouseTable) -> int:
        """Rows in a table."""
        row = self.connection.execute(
            sql.SQL("SELECT count(*) FROM {}").format(self._name(table))
        ).fetchone()
        return int(row[0]) if row else 0

    def get_watermark(self, job: str) -> dt.datetime | None:
        """The job's watermark (aware UTC), or None before its first successful run."""
        row = self.connection.execute(
            sql.SQL("SELECT value FROM {} WHERE job = %s").format(
                self._name(schema.ETL_WATERMARKS)
            ),
            [job],
        ).fetchone()
        return aware_utc(row[0]) if row else None

    def set_watermark(self, job: str, value: dt.datetime, run_id: str) -> None:
        """Store the job's watermark (inside the job's transaction)."""
        name = self._name(schema.ETL_WATERMARKS)
        self.connection.execute(sql.SQL("DELETE FROM {} WHERE job = %s").format(name), [job])
        self.connection.execute(
            sql.SQL(
                "INSERT INTO {} (job, value, run_id, updated_at) VALUES (%s, %s, %s, %s)"
            ).format(name),
            [job, naive_utc(value), run_id, naive_utc(dt.datetime.now(dt.UTC))],
        )

    def save_run(self, record: RunRecord) -> None:
        """Insert or update a run record; committed on its own."""
        if self._in_transaction:
            raise WarehouseError("run records are saved outside the job's transaction")
        values = record.row()
        name = self._name(schema.ETL_RUNS)
        with self.connection.transaction():
            self.connection.execute(
                sql.SQL("DELETE FROM {} WHERE run_id = %s").format(name), [record.run_id]
            )
            self.connection.execute(
                sql.SQL("INSERT INTO {} ({}) VALUES ({})").format(
                    name,
                    sql.SQL(_RUN_COLUMNS),
                    sql.SQL(", ").join(sql.Placeholder() * len(values)),
                ),
                values,
            )

    def recent_runs(self, limit: int = 20, job: str | None = None) -> list[RunRecord]:
        """The latest run records, newest first."""
        where = sql.SQL("WHERE job = %s") if job else sql.SQL("")
        params: list[Any] = [job] if job else []
        rows = self.connection.execute(
            sql.SQL(
                f"SELECT {RUN_COLUMNS} FROM {{}} {{}} ORDER BY started_at DESC, job LIMIT %s"  # noqa: S608 - fixed column list
            ).format(self._name(schema.ETL_RUNS), where),
            [*params, limit],
        ).fetchall()
        return [RunRecord.from_row(r) for r in rows]
