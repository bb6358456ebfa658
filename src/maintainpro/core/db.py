"""SQLAlchemy engine, sessions and the declarative base shared by every area."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import DateTime, Engine, MetaData, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker
from sqlalchemy.types import TypeDecorator

# Constraint names are fixed so that Alembic migrations are the same on SQLite and PostgreSQL.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UTCDateTime(TypeDecorator[dt.datetime]):
    """A timezone-aware UTC datetime on every backend (SQLite stores no offset)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: Any) -> dt.datetime | None:
        """Refuse naive datetimes: a naive value is a bug at the caller."""
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(dt.UTC)

    def process_result_value(self, value: dt.datetime | None, dialect: Any) -> dt.datetime | None:
        """Attach UTC to what SQLite returns without an offset."""
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=dt.UTC)
        return value.astimezone(dt.UTC)


class Base(DeclarativeBase):
    """Declarative base for every table of the hub."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)


def utcnow() -> dt.datetime:
    """The current time as an aware UTC datetime."""
    return dt.datetime.now(dt.UTC)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # WAL lets readers (pages, API) run while the writer (ingest) commits; foreign keys are
    # off by default in SQLite and we rely on them.
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.close()


def build_engine(database_url: str, *, echo: bool = False) -> Engine:
    """Create the engine for a database URL, preparing SQLite files and pragmas."""
    url = make_url(database_url)
    if url.get_backend_name() == "sqlite":
        if url.database and url.database != ":memory:":
            Path(url.database).expanduser().parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, echo=echo, connect_args={"check_same_thread": False})
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    return create_engine(url, echo=echo, pool_pre_ping=True)


def build_session_factory(engine: Engine) -> sessionmaker[Session]:
    """A session factory whose objects stay readable after commit."""
    return sessionmaker(engine, expire_on_commit=False)


def claim_writer(session: Session) -> None:
    """Make the session's transaction the database's writer now, before it reads what it changes.

    On SQLite the transaction is started with ``BEGIN IMMEDIATE``: it waits (``busy_timeout``)
    until no other connection writes, and everything it reads afterwards stays true until it
    commits. On PostgreSQL it does nothing; there row locks (``with_for_update``) serialise.
    """
    connection = session.connection()
    if connection.dialect.name != "sqlite":
        return
    driver = connection.connection.driver_connection
    # pysqlite's legacy transaction control (which this engine keeps) runs reads outside any
    # transaction and issues a deferred BEGIN just before the first INSERT/UPDATE/DELETE. A
    # transaction it began therefore wrote first and already holds the write lock; one not yet
    # begun is begun here, IMMEDIATE, before the caller's reads. An opt-in per transaction rather
    # than the engine-wide BEGIN recipe: that would put every read-only request in a deferred
    # transaction whose first write fails at once with "database is locked" (SQLite does not
    # wait to upgrade a reader in WAL mode, to avoid deadlock), or, IMMEDIATE, queue every read
    # behind the one writer.
    if driver is not None and not driver.in_transaction:
        connection.exec_driver_sql("BEGIN IMMEDIATE")


def hold_exclusive(session: Session, name: str) -> None:
    """Let one transaction at a time, across every process, pass this point for ``name``.

    PostgreSQL: a transaction-scoped advisory lock keyed by the name (released at commit or
    rollback); SQLite: the transaction becomes the one writer (``claim_writer``). For jobs that
    read, decide and write in one transaction and must not run twice at once (two hub processes
    running the same schedule).
    """
    connection = session.connection()
    if connection.dialect.name == "postgresql":
        connection.execute(text("SELECT pg_advisory_xact_lock(hashtext(:name))"), {"name": name})
    else:
        claim_writer(session)


@contextmanager
def transaction(factory: sessionmaker[Session]) -> Iterator[Session]:
    """A session that commits on success and rolls back on any error."""
    with factory() as session, session.begin():
        yield session
