"""The shared read-only warehouse connection: concurrent requests, and releasing the file."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import duckdb

from maintainpro.analytics.odata.reader import SharedReader
from maintainpro.analytics.warehouse import DuckDbWarehouse, connect


def test_overlapping_requests_share_one_connection_and_the_file_is_released(
    tmp_path: Path,
) -> None:
    path = tmp_path / "warehouse.duckdb"
    with DuckDbWarehouse(path) as target:
        target.ensure_schema()
    opened: list[duckdb.DuckDBPyConnection] = []

    def open_connection() -> duckdb.DuckDBPyConnection:
        connection = connect(path, read_only=True)
        opened.append(connection)
        return connection

    reader = SharedReader(open_connection, idle_close_s=0.05)
    inside = threading.Barrier(4, timeout=10)
    errors: list[BaseException] = []

    def request() -> None:
        try:
            with reader.cursor() as cursor:
                inside.wait()  # all four hold a cursor at once
                assert cursor.execute("SELECT count(*) FROM dim_site").fetchone() == (0,)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=request) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert not errors
    assert len(opened) == 1
    deadline = time.monotonic() + 5
    while reader.is_open and time.monotonic() < deadline:
        time.sleep(0.01)
    assert not reader.is_open
    # Released: a build can write the file again.
    with DuckDbWarehouse(path) as target:
        target.ensure_schema()
    with reader.cursor() as cursor:
        assert cursor.execute("SELECT count(*) FROM dim_date").fetchone() == (0,)
    assert len(opened) == 2
    reader.close()
