"""Opening the warehouse while this process already holds it another way."""

from __future__ import annotations

import threading
from pathlib import Path

import duckdb
import pytest

from maintainpro.analytics.warehouse import DuckDbWarehouse, WarehouseError, connect


def test_a_reader_during_a_write_in_the_same_process_gets_a_warehouse_error(
    tmp_path: Path,
) -> None:
    path = tmp_path / "warehouse.duckdb"
    with DuckDbWarehouse(path) as writer:
        writer.ensure_schema()
        # DuckDB refuses a read-only connection to a file this process has open for writing;
        # callers (ML sources, feeds) handle WarehouseError ("in use"), not DuckDB's own error.
        with pytest.raises(WarehouseError, match="in use"):
            connect(path, read_only=True)
    reader = connect(path, read_only=True)
    try:
        assert reader.execute("SELECT count(*) FROM etl_runs").fetchone() == (0,)
    finally:
        reader.close()


def _open_at_once(path: Path, count: int) -> tuple[list[duckdb.DuckDBPyConnection], list[str]]:
    start = threading.Barrier(count)
    connections: list[duckdb.DuckDBPyConnection] = []
    errors: list[str] = []

    def open_one() -> None:
        start.wait()
        try:
            connections.append(connect(path))
        except Exception as exc:  # noqa: BLE001 - collected for the assertion
            errors.append(f"{type(exc).__name__}: {exc}")

    threads = [threading.Thread(target=open_one) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return connections, errors


def test_threads_opening_the_file_at_once_all_get_a_utc_locked_connection(tmp_path: Path) -> None:
    # The first connection of a process configures the shared instance; without one lock
    # around check-and-set, a second thread saw it unlocked and its SET failed (seen in CI).
    path = tmp_path / "warehouse.duckdb"
    for _ in range(5):
        connections, errors = _open_at_once(path, 8)
        assert errors == []
        for connection in connections:
            assert connection.execute("SELECT current_setting('TimeZone')").fetchone() == ("UTC",)
            locked = connection.execute("SELECT current_setting('lock_configuration')").fetchone()
            assert locked == (True,)
            connection.close()
