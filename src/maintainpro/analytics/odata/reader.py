"""One read-only warehouse connection per app, shared by concurrent requests through cursors.

DuckDB keeps one database instance per file and process: a second ``connect`` while another
connection of the process is open reuses that instance, whose configuration the first one locked,
so per-request connections fail as soon as two requests overlap. Requests therefore take a cursor
of one shared connection, opened on demand and closed once no request has used it for a moment,
so that a warehouse build in another process can take the file between refreshes.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Final

import duckdb

IDLE_CLOSE_S: Final = 2.0


class SharedReader:
    """A read-only connection opened on first use and closed after ``idle_close_s`` unused."""

    def __init__(
        self,
        open_connection: Callable[[], duckdb.DuckDBPyConnection],
        idle_close_s: float = IDLE_CLOSE_S,
    ) -> None:
        """A reader that opens connections with ``open_connection``."""
        self._open = open_connection
        self.idle_close_s = idle_close_s
        self._lock = threading.Lock()
        self._connection: duckdb.DuckDBPyConnection | None = None
        self._users = 0
        self._uses = 0

    @property
    def is_open(self) -> bool:
        """Whether the file is held open right now."""
        with self._lock:
            return self._connection is not None

    @contextmanager
    def cursor(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """A cursor of the shared connection for one request (errors of opening propagate)."""
        with self._lock:
            if self._connection is None:
                self._connection = self._open()
            self._users += 1
            self._uses += 1
            cursor = self._connection.cursor()
        try:
            yield cursor
        finally:
            cursor.close()
            with self._lock:
                self._users -= 1
                idle = self._users == 0
                uses = self._uses
            if idle:
                timer = threading.Timer(self.idle_close_s, self._close_if_unused, args=(uses,))
                timer.daemon = True
                timer.start()

    def _close_if_unused(self, uses: int) -> None:
        with self._lock:
            if self._users == 0 and self._uses == uses and self._connection is not None:
                self._connection.close()
                self._connection = None

    def close(self) -> None:
        """Close the connection now (cursors in use fail)."""
        with self._lock:
            if self._connection is not None:
                self._connection.close()
                self._connection = None
