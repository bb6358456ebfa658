"""The warehouse store: opening DuckDB safely, and the load target the ETL jobs write through.

ETL jobs talk to a ``WarehouseTarget``; ``DuckDbWarehouse`` here is the primary store, and
``warehouse_pg.PostgresWarehouse`` the optional PostgreSQL copy (the same methods, with COPY),
loaded by the same jobs when ``warehouse_postgres_url`` is set. Data comes in
as Arrow tables registered on the connection, never through a DuckDB extension: the connection
is opened with extension auto-install and auto-load off, external file access off, and its
configuration locked, so no query can download or load one.
"""

from __future__ import annotations

import datetime as dt
import threading
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, Protocol

import duckdb
import pyarrow as pa
from sqlalchemy.engine import make_url

from maintainpro.analytics import schema
from maintainpro.analytics.schema import WarehouseTable
from maintainpro.config import Settings

_CONFIGURING: Final = threading.Lock()
DEFAULT_FILE_NAME: Final = "warehouse.duckdb"
# No extension may be fetched or loaded at run time (the machines have no internet, and a
# download would run code nobody reviewed); Arrow tables are registered explicitly instead.
SAFE_CONFIG: Final[dict[str, Any]] = {
    "autoinstall_known_extensions": False,
    "autoload_known_extensions": False,
    "allow_community_extensions": False,
}


# The columns of etl_runs a RunRecord is read from, in RunRecord.from_row's order.
RUN_COLUMNS: Final = (
    "run_id, job, mode, window_start, window_end, started_at, finished_at, rows_in, rows_out, "
    "rows_rejected, status, error"
)


class WarehouseError(RuntimeError):
    """The warehouse cannot be opened or written as asked."""


def first_row(result: duckdb.DuckDBPyConnection) -> tuple[Any, ...] | None:
    """The first row of a result, read to the end.

    DuckDB refuses register() while a result is only partly fetched (fetchone leaves it open), so
    every result is drained.
    """
    rows = result.fetchall()
    return rows[0] if rows else None


def warehouse_file(settings: Settings) -> Path:
    """Where the warehouse lives: the setting, else beside the SQLite database, else data/."""
    if settings.warehouse_path is not None:
        return settings.warehouse_path
    url = make_url(settings.database_url)
    if url.get_backend_name() == "sqlite" and url.database and url.database != ":memory:":
        return Path(url.database).expanduser().parent / DEFAULT_FILE_NAME
    return Path("data") / DEFAULT_FILE_NAME


def connect(
    path: Path, *, read_only: bool = False, external_access: bool = False
) -> duckdb.DuckDBPyConnection:
    """A DuckDB connection with extensions locked out and times in UTC.

    ``external_access`` lets a caller (an exporter writing Parquet with COPY) read and write
    files; extensions stay off either way.
    """
    if read_only and not path.exists():
        raise WarehouseError(f"no warehouse at {path}: run `maintainpro warehouse build` first")
    if not read_only:
        path.parent.mkdir(parents=True, exist_ok=True)
    config = dict(SAFE_CONFIG)
    config["enable_external_access"] = external_access
    # Connections to one file in one process share a database instance, configuration lock
    # included: the first connection sets the time zone for all of them (GLOBAL, because a plain
    # SET is per connection) and locks it; later ones find it set and locked. Two threads
    # opening the file at once would both see it unlocked and the second SET would fail, hence
    # the process-wide lock around the whole check-and-set.
    with _CONFIGURING:
        try:
            connection = duckdb.connect(str(path), read_only=read_only, config=config)
        except (duckdb.IOException, duckdb.ConnectionException) as exc:
            # One process may write a DuckDB file at a time; a reader waits for the writer to go.
            # Inside one process, DuckDB refuses a second connection to a file with another
            # configuration (a read-only reader while a refresh writes): the same "in use" answer.
            raise WarehouseError(f"the warehouse at {path} is in use: {exc}") from exc
        locked = first_row(connection.execute("SELECT current_setting('lock_configuration')"))
        if not (locked and locked[0]):
            connection.execute("SET GLOBAL TimeZone = 'UTC'")
            connection.execute("SET lock_configuration = true")
    return connection


def open_read_only(settings: Settings) -> duckdb.DuckDBPyConnection:
    """The warehouse for readers (feeds, exports, cubes): read-only, extensions locked out."""
    return connect(warehouse_file(settings), read_only=True)


@dataclass
class RunRecord:
    """One run of one ETL job, as kept in ``etl_runs``."""

    run_id: str
    job: str
    mode: str
    window_start: dt.datetime | None
    window_end: dt.datetime
    started_at: dt.datetime
    finished_at: dt.datetime | None = None
    rows_in: int = 0
    rows_out: int = 0
    rows_rejected: int = 0
    status: str = "running"
    error: str | None = None

    @property
    def duration_s(self) -> float | None:
        """Seconds from start to finish, once finished."""
        if self.finished_at is None:
            return None
        return (self.finished_at - self.started_at).total_seconds()

    @classmethod
    def from_row(cls, r: Sequence[Any]) -> RunRecord:
        """A record from an ``etl_runs`` row read as ``RUN_COLUMNS`` (times naive UTC)."""
        return cls(
            run_id=r[0],
            job=r[1],
            mode=r[2],
            window_start=aware_utc(r[3]),
            window_end=aware_utc(r[4]) or dt.datetime.min.replace(tzinfo=dt.UTC),
            started_at=aware_utc(r[5]) or dt.datetime.min.replace(tzinfo=dt.UTC),
            finished_at=aware_utc(r[6]),
            rows_in=r[7],
            rows_out=r[8],
            rows_rejected=r[9],
            status=r[10],
            error=r[11],
        )

    def row(self) -> list[Any]:
        """The record as an ``etl_runs`` row, in column order (times as naive UTC)."""
        return [
            self.run_id,
            self.job,
            self.mode,
            naive_utc(self.window_start),
            naive_utc(self.window_end),
            naive_utc(self.started_at),
            naive_utc(self.finished_at),
            self.duration_s,
            self.rows_in,
            self.rows_out,
            self.rows_rejected,
            self.status,
            self.error,
        ]


def new_run_id() -> str:
    """A run id (UUID), shared by the run record and its lineage events."""
    return str(uuid.uuid4())


def naive_utc(moment: dt.datetime | None) -> dt.datetime | None:
    """An aware datetime as the naive UTC value the warehouse stores."""
    if moment is None:
        return None
    if moment.tzinfo is None:
        raise ValueError("naive datetime: warehouse times are given as aware UTC")
    return moment.astimezone(dt.UTC).replace(tzinfo=None)


def aware_utc(moment: dt.datetime | None) -> dt.datetime | None:
    """A naive UTC value read from the warehouse as an aware datetime."""
    return None if moment is None else moment.replace(tzinfo=dt.UTC)


class WarehouseTarget(Protocol):
    """What an ETL job needs from the store it loads into."""

    def ensure_schema(self) -> None:
        """Create missing tables and (re)create the KPI views."""

    def transaction(self) -> Any:
        """A context manager: everything inside commits together or not at all."""

    def insert(self, table: WarehouseTable, rows: pa.Table) -> int:
        """Append rows (cast to the table's schema); returns how many."""

    def delete_keys(
        self, table: WarehouseTable, keys: pa.Table, on: Sequence[str] | None = None
    ) -> None:
        """Delete the rows whose natural key (or the ``on`` columns) appears in ``keys``."""

    def max_value(self, table: WarehouseTable, column: str) -> Any:
        """The largest value of a column, None when the table is empty."""

    def delete_since(self, table: WarehouseTable, column: str, since: dt.datetime) -> None:
        """Delete the rows whose ``column`` is at or after ``since`` (aware UTC)."""

    def delete_all(self, table: WarehouseTable) -> None:
        """Empty a table."""

    def count(self, table: WarehouseTable) -> int:
        """Rows in a table."""

    def get_watermark(self, job: str) -> dt.datetime | None:
        """The job's watermark (aware UTC), or None before its first successful run."""

    def set_watermark(self, job: str, value: dt.datetime, run_id: str) -> None:
        """Store the job's watermark (inside the job's transaction)."""

    def save_run(self, record: RunRecord) -> None:
        """Insert or update a run record; committed on its own."""

    def recent_runs(self, limit: int = 20, job: str | None = None) -> list[RunRecord]:
        """The latest run records, newest first."""


class DuckDbWarehouse:
    """The DuckDB implementation of ``WarehouseTarget``."""

    def __init__(self, path: Path) -> None:
        """Open (creating if need be) the warehouse file for writing."""
        self.path = path
        self.connection = connect(path)
        self._in_transaction = False

    def close(self) -> None:
        """Release the file (DuckDB allows one writing process at a time)."""
        self.connection.close()

    def __enter__(self) -> DuckDbWarehouse:
        """Use as a context manager that closes the file."""
        return self

    def __exit__(self, *exc: object) -> None:
        """Close the file."""
        self.close()

    def ensure_schema(self) -> None:
        """Create missing tables and (re)create the KPI views."""
        # Imported here: kpis builds on the schema and this module, not the other way round.
        from maintainpro.analytics.kpis import MACROS, VIEWS

        for table in schema.TABLES.values():
            self.connection.execute(table.ddl())
        for macro in MACROS:
            self.connection.execute(macro)
        for name, sql in VIEWS.items():
            self.connection.execute(f"CREATE OR REPLACE VIEW {name} AS {sql}")

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """Everything inside commits together or not at all."""
        self.connection.execute("BEGIN TRANSACTION")
        self._in_transaction = True
        try:
            yield
        except BaseException:
            self.connection.execute("ROLLBACK")
            raise
        else:
            self.connection.execute("COMMIT")
        finally:
            self._in_transaction = False

    def _registered(self, rows: pa.Table) -> str:
        name = f"incoming_{uuid.uuid4().hex[:12]}"
        self.connection.register(name, rows)
        return name

    def insert(self, table: WarehouseTable, rows: pa.Table) -> int:
        """Append rows (cast to the table's schema); returns how many."""
        if rows.num_rows == 0:
            return 0
        shaped = rows.select(table.column_names).cast(table.arrow_schema)
        name = self._registered(shaped)
        try:
            columns = ", ".join(table.column_names)
            self.connection.execute(
                f"INSERT INTO {table.name} ({columns}) SELECT {columns} FROM {name}"  # noqa: S608 - names from the schema
            )
        finally:
            self.connection.unregister(name)
        return int(shaped.num_rows)

    def delete_keys(
        self, table: WarehouseTable, keys: pa.Table, on: Sequence[str] | None = None
    ) -> None:
        """Delete the rows whose natural key (or the ``on`` columns) appears in ``keys``."""
        if keys.num_rows == 0:
            return
        columns = list(on or table.key)
        key_schema = pa.schema([table.arrow_schema.field(k) for k in columns])
        name = self._registered(keys.select(columns).cast(key_schema))
        try:
            match = " AND ".join(f"t.{k} = k.{k}" for k in columns)
            self.connection.execute(
                f"DELETE FROM {table.name} t USING (SELECT DISTINCT * FROM {name}) k WHERE {match}"  # noqa: S608 - names from the schema
            )
        finally:
            self.connection.unregister(name)

    def delete_since(self, table: WarehouseTable, column: str, since: dt.datetime) -> None:
        """Delete the rows whose ``column`` is at or after ``since`` (aware UTC)."""
        if column not in table.column_names:
            raise WarehouseError(f"{table.name} has no column {column}")
        self.connection.execute(
            f"DELETE FROM {table.name} WHERE {column} >= ?",  # noqa: S608 - checked name
            [naive_utc(since)],
        )

    def delete_all(self, table: WarehouseTable) -> None:
        """Empty a table."""
        self.connection.execute(f"DELETE FROM {table.name}")  # noqa: S608 - schema name

    def max_value(self, table: WarehouseTable, column: str) -> Any:
        """The largest value of a column, None when the table is empty."""
        if column not in table.column_names:
            raise WarehouseError(f"{table.name} has no column {column}")
        row = first_row(self.connection.execute(f"SELECT max({column}) FROM {table.name}"))  # noqa: S608 - checked name
        return row[0] if row else None

    def count(self, table: WarehouseTable) -> int:
        """Rows in a table."""
        row = first_row(self.connection.execute(f"SELECT count(*) FROM {table.name}"))  # noqa: S608 - schema name
        return int(row[0]) if row else 0

    def get_watermark(self, job: str) -> dt.datetime | None:
        """The job's watermark (aware UTC), or None before its first successful run."""
        row = first_row(
            self.connection.execute("SELECT value FROM etl_watermarks WHERE job = ?", [job])
        )
        return aware_utc(row[0]) if row else None

    def set_watermark(self, job: str, value: dt.datetime, run_id: str) -> None:
        """Store the job's watermark (inside the job's transaction)."""
        self.connection.execute("DELETE FROM etl_watermarks WHERE job = ?", [job])
        self.connection.execute(
            "INSERT INTO etl_watermarks VALUES (?, ?, ?, ?)",
            [job, naive_utc(value), run_id, naive_utc(dt.datetime.now(dt.UTC))],
        )

    def save_run(self, record: RunRecord) -> None:
        """Insert or update a run record; committed on its own."""
        if self._in_transaction:
            raise WarehouseError("run records are saved outside the job's transaction")
        values = record.row()
        self.connection.execute("BEGIN TRANSACTION")
        self.connection.execute("DELETE FROM etl_runs WHERE run_id = ?", [record.run_id])
        self.connection.execute(
            f"INSERT INTO etl_runs VALUES ({', '.join('?' * len(values))})",  # noqa: S608 - placeholders
            values,
        )
        self.connection.execute("COMMIT")

    def recent_runs(self, limit: int = 20, job: str | None = None) -> list[RunRecord]:
        """The latest run records, newest first."""
        return read_runs(self.connection, limit=limit, job=job)


def read_runs(
    connection: duckdb.DuckDBPyConnection, *, limit: int = 20, job: str | None = None
) -> list[RunRecord]:
    """Run records from any warehouse connection (read-only ones too), newest first."""
    where = "WHERE job = ?" if job else ""
    params: list[Any] = [job] if job else []
    rows = connection.execute(
        f"SELECT {RUN_COLUMNS} FROM etl_runs {where} ORDER BY started_at DESC, job LIMIT ?",  # noqa: S608 - fixed text
        [*params, limit],
    ).fetchall()
    return [RunRecord.from_row(r) for r in rows]
