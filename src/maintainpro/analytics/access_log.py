"""The BI access audit log: one ``bi_access_log`` row for every read through a BI channel.

A request never waits for its audit row: ``AccessLogWriter.submit`` puts the event on an
in-memory queue and one background thread writes whatever has queued, in one transaction per
batch. The queue is drained when the app shuts down (``close``), so a clean shutdown loses
nothing; a crash loses at most the events still queued (written within milliseconds under normal
load), and each of those is also in the ``bi feed access`` log line written when it was recorded.
A failed write is logged and never reaches the request.

The per-connection figures of the BI connections page (``connection_stats``, in
``analytics.access_connections``) and the audit API (``access_log_page``) are read from the
table, so they survive restarts; rows older than ``bi_access_retention_days`` are removed by
``purge_access_log``.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, Literal

from sqlalchemy import (
    JSON,
    BigInteger,
    Connection,
    Engine,
    Float,
    ForeignKey,
    Index,
    Integer,
    Select,
    String,
    Text,
    delete,
    insert,
    select,
)
from sqlalchemy.exc import (
    IntegrityError,
    InterfaceError,
    OperationalError,
    ProgrammingError,
    SQLAlchemyError,
)
from sqlalchemy.orm import Mapped, Session, mapped_column, sessionmaker

from maintainpro.core.db import Base, UTCDateTime, transaction

log = logging.getLogger(__name__)

# Option values are kept for the audit trail, but a hostile client must not fill the log.
MAX_LOGGED_VALUE: Final = 500
MAX_ERROR_TEXT: Final = 300
MAX_OPTION_NAME: Final = 100
MAX_OPTIONS: Final = 50
# Events waiting for the writer; beyond this (the database is down or far too slow) new events
# are dropped from the table, logged, and still present in their log line.
MAX_QUEUED: Final = 50_000
BATCH: Final = 500
# An idle writer thread ends; the next event starts a new one.
IDLE_S: Final = 30.0
FLUSH_TIMEOUT_S: Final = 10.0
PURGE_CHUNK: Final = 5_000
MAX_BIGINT: Final = 2**63 - 1

Outcome = Literal["ok", "error"]
# Failures of the database itself (down, unreachable, table missing), not of one row: retrying
# row by row would only repeat them.
_DATABASE_DOWN: Final = (OperationalError, InterfaceError, ProgrammingError)


@dataclass(frozen=True)
class AccessEvent:
    """One read through a BI channel: who, what, how it was asked, what it gave."""

    channel: str
    dataset: str
    user_id: int | None
    username: str | None
    credential_id: int | None
    credential_name: str | None
    options: Mapping[str, str]
    rows: int
    duration_ms: float
    status: int
    error: str | None = None
    at: dt.datetime = field(default_factory=lambda: dt.datetime.now(dt.UTC))

    @property
    def outcome(self) -> Outcome:
        """Whether the request was served ("ok") or refused ("error")."""
        return "ok" if self.status < 400 else "error"


class BiAccessRecord(Base):
    """One read through a BI channel (OData, file export, cube query, event stream)."""

    __tablename__ = "bi_access_log"
    # The access log is itself an audit record: the change audit would only duplicate it.
    __audit__ = False
    __table_args__ = (
        Index("ix_bi_access_log_at", "at"),
        # Leads with the connection; the other columns cover what the connections view sums,
        # so that GROUP BY reads the index alone (300,000 rows on a loaded VM: SQLite 3.4 s ->
        # 0.9 s, PostgreSQL 390 -> 190 ms).
        Index(
            "ix_bi_access_log_connection",
            "channel",
            "user_id",
            "credential_id",
            "at",
            "status",
            "rows",
            "id",
        ),
    )

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer(), "sqlite"), primary_key=True
    )
    at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    channel: Mapped[str] = mapped_column(String(32))
    dataset: Mapped[str] = mapped_column(String(128))
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    # Kept as it was at the time: the user may be renamed or deleted later.
    username: Mapped[str | None] = mapped_column(String(64))
    credential_id: Mapped[int | None] = mapped_column(Integer)
    credential_name: Mapped[str | None] = mapped_column(String(100))
    options: Mapped[dict[str, str]] = mapped_column(JSON)
    rows: Mapped[int] = mapped_column(BigInteger)
    duration_ms: Mapped[float] = mapped_column(Float)
    status: Mapped[int] = mapped_column(Integer)
    outcome: Mapped[str] = mapped_column(String(8))
    error: Mapped[str | None] = mapped_column(Text)


# --------------------------------------------------------------------------- what is stored


def clipped(text: str, limit: int) -> str:
    """The text, cut to ``limit`` characters with an ellipsis when it was longer."""
    return text if len(text) <= limit else text[:limit] + "…"


def storable(text: str) -> str:
    """Text every backend stores: NUL (refused by PostgreSQL) and lone surrogates replaced."""
    return text.encode("utf-8", "replace").decode("utf-8").replace("\x00", "\ufffd")


def clipped_options(options: Mapping[str, str]) -> dict[str, str]:
    """The request options as audited: at most ``MAX_OPTIONS``, names and values clipped."""
    kept = list(options.items())[:MAX_OPTIONS]
    return {
        clipped(str(name), MAX_OPTION_NAME): clipped(str(value), MAX_LOGGED_VALUE)
        for name, value in kept
    }


def _column_text(value: str | None, limit: int) -> str | None:
    # Column-sized (PostgreSQL refuses a longer VARCHAR), and storable.
    return None if value is None else storable(value)[:limit]


def audit_row(event: AccessEvent) -> dict[str, Any]:
    """The ``bi_access_log`` row of an event."""
    # A naive time is taken as UTC rather than lose the row (the column refuses naive times).
    at = event.at if event.at.tzinfo is not None else event.at.replace(tzinfo=dt.UTC)
    return {
        "at": at,
        "channel": _column_text(event.channel, 32),
        "dataset": _column_text(event.dataset, 128),
        "user_id": event.user_id,
        "username": _column_text(event.username, 64),
        "credential_id": event.credential_id,
        "credential_name": _column_text(event.credential_name, 100),
        "options": {storable(k): storable(v) for k, v in clipped_options(event.options).items()},
        "rows": min(max(0, int(event.rows)), MAX_BIGINT),
        "duration_ms": round(float(event.duration_ms), 1),
        "status": int(event.status),
        "outcome": event.outcome,
        "error": None if event.error is None else storable(clipped(event.error, MAX_ERROR_TEXT)),
    }


# --------------------------------------------------------------------------- writing


def write_rows(factory: sessionmaker[Session], rows: Sequence[dict[str, Any]]) -> int:
    """Insert audit rows in one transaction; returns the rows written.

    When a row is refused (its user was deleted in the meantime, a value the database will not
    take) the rows are written one by one: a row without its user is kept with the username
    only, a row still refused is logged and dropped. Any other failure (the database is down)
    is logged and the batch dropped: its events remain in their log lines.
    """
    try:
        with transaction(factory) as session:
            session.execute(insert(BiAccessRecord), list(rows))
        return len(rows)
    except _DATABASE_DOWN:
        log.exception("bi access audit rows not written", extra={"rows": len(rows)})
        return 0
    except SQLAlchemyError:
        pass  # a row was refused: find it below
    written = 0
    for row in rows:
        attempts = [row] if row["user_id"] is None else [row, {**row, "user_id": None}]
        for attempt in attempts:
            try:
                with transaction(factory) as session:
                    session.execute(insert(BiAccessRecord), [attempt])
            except IntegrityError:
                if attempt is attempts[-1]:
                    log.exception("bi access audit row not written", extra={"rows": 1})
                continue
            except SQLAlchemyError:
                log.exception("bi access audit row not written", extra={"rows": 1})
                break
            written += 1
            break
    return written


class AccessLogWriter:
    """Writes access events to ``bi_access_log`` from a background thread, in batches."""

    def __init__(self, factory: sessionmaker[Session]) -> None:
        """A writer on a session factory; its thread starts with the first event."""
        self._factory = factory
        self._queue: deque[AccessEvent] = deque()
        self._cond = threading.Condition()
        self._thread: threading.Thread | None = None
        self._closing = False
        self._submitted = 0
        self._handled = 0
        self.written = 0
        self.dropped = 0

    def submit(self, event: AccessEvent) -> None:
        """Queue an event for writing; returns at once (the request never waits for the row)."""
        with self._cond:
            if len(self._queue) >= MAX_QUEUED:
                self.dropped += 1
                if self.dropped == 1 or self.dropped % 1000 == 0:
                    log.error(
                        "bi access audit queue full: events dropped from the table",
                        extra={"dropped": self.dropped},
                    )
                return
            self._queue.append(event)
            self._submitted += 1
            if self._thread is None:
                self._closing = False
                self._thread = threading.Thread(target=self._run, name="bi-access-log", daemon=True)
                self._thread.start()
            self._cond.notify_all()

    def flush(self, timeout: float = FLUSH_TIMEOUT_S) -> bool:
        """Wait until every event submitted so far is written (or given up); False on timeout."""
        deadline = time.monotonic() + timeout
        with self._cond:
            target = self._submitted
            while self._handled < target:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(left)
            return True

    def close(self, timeout: float = FLUSH_TIMEOUT_S) -> bool:
        """Write what is queued and stop the thread (a later event starts it again)."""
        flushed = self.flush(timeout)
        with self._cond:
            self._closing = True
            thread = self._thread
            self._cond.notify_all()
        if thread is not None:
            thread.join(timeout)
        if not flushed:
            log.error(
                "bi access audit not fully written at shutdown",
                extra={"queued": len(self._queue)},
            )
        return flushed

    def _next_batch(self) -> list[AccessEvent] | None:
        with self._cond:
            while not self._queue:
                if self._closing or (not self._cond.wait(IDLE_S) and not self._queue):
                    self._thread = None
                    return None
            return [self._queue.popleft() for _ in range(min(BATCH, len(self._queue)))]

    def _run(self) -> None:
        while (batch := self._next_batch()) is not None:
            try:
                written = write_rows(self._factory, [audit_row(e) for e in batch])
            except Exception:  # the writer must outlive any bad batch
                log.exception("bi access audit rows not written", extra={"rows": len(batch)})
                written = 0
            with self._cond:
                self.written += written
                self._handled += len(batch)
                self._cond.notify_all()


# --------------------------------------------------------------------------- reading


@dataclass(frozen=True)
class AccessLogFilter:
    """Which audit rows to list; every field left None matches everything."""

    channel: str | None = None
    username: str | None = None
    user_id: int | None = None
    dataset: str | None = None
    since: dt.datetime | None = None
    until: dt.datetime | None = None
    outcome: Outcome | None = None


def _filtered(where: AccessLogFilter) -> Select[BiAccessRecord]:
    stmt = select(BiAccessRecord)
    conditions = [
        (where.channel, BiAccessRecord.channel),
        (where.username, BiAccessRecord.username),
        (where.user_id, BiAccessRecord.user_id),
        (where.dataset, BiAccessRecord.dataset),
        (where.outcome, BiAccessRecord.outcome),
    ]
    for value, column in conditions:
        if value is not None:
            stmt = stmt.where(column == value)
    if where.since is not None:
        stmt = stmt.where(BiAccessRecord.at >= where.since)
    if where.until is not None:
        stmt = stmt.where(BiAccessRecord.at < where.until)
    return stmt


def access_log_page(
    session: Session, where: AccessLogFilter, *, before_id: int | None, limit: int
) -> tuple[list[BiAccessRecord], int | None]:
    """A page of audit rows, newest first, and the cursor of the next page (None at the end).

    Keyset paging on the id: a page starts below the last id of the previous one, so rows
    written meanwhile neither shift nor repeat what a client pages through.
    """
    stmt = _filtered(where)
    if before_id is not None:
        stmt = stmt.where(BiAccessRecord.id < before_id)
    rows = list(session.scalars(stmt.order_by(BiAccessRecord.id.desc()).limit(limit + 1)))
    more = len(rows) > limit
    rows = rows[:limit]
    return rows, (rows[-1].id if more and rows else None)


def iter_access_log(
    factory: sessionmaker[Session], where: AccessLogFilter, *, chunk: int = 1000
) -> Iterator[BiAccessRecord]:
    """Every matching audit row, newest first, read in keyset chunks (for downloads)."""
    before: int | None = None
    while True:
        with factory() as session:
            rows, before = access_log_page(session, where, before_id=before, limit=chunk)
        yield from rows
        if before is None:
            return


# --------------------------------------------------------------------------- retention

# Called with the engine of the database after a purge deleted rows. What keeps figures of the
# table (the connections cache of ``access_connections``) registers here when it is imported:
# this module never imports its readers, so there is no import cycle, and a process that never
# imported a reader has nothing to clear.
PURGE_LISTENERS: Final[list[Callable[[Engine], None]]] = []


def purge_access_log(factory: sessionmaker[Session], retention_days: int, now: dt.datetime) -> int:
    """Delete audit rows older than the retention (0 keeps every row); returns the rows deleted.

    Deleted in chunks so that a large backlog never holds a long write lock.
    """
    if retention_days <= 0:
        return 0
    cutoff = now - dt.timedelta(days=retention_days)
    deleted = 0
    while True:
        with transaction(factory) as session:
            ids = (
                select(BiAccessRecord.id)
                .where(BiAccessRecord.at < cutoff)
                .limit(PURGE_CHUNK)
                .scalar_subquery()
            )
            result = session.connection().execute(
                delete(BiAccessRecord).where(BiAccessRecord.id.in_(ids))
            )
            count = int(result.rowcount)
        deleted += count
        if count < PURGE_CHUNK:
            break
    if deleted:
        bind = factory.kw.get("bind")
        if isinstance(bind, Engine | Connection):
            engine = bind.engine if isinstance(bind, Connection) else bind
            for listener in PURGE_LISTENERS:
                listener(engine)
        log.info(
            "bi access audit purged",
            extra={"rows": deleted, "before": cutoff.isoformat(), "days": retention_days},
        )
    return deleted
