"""claim_writer: a read-then-write transaction that other writers cannot overtake."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, event, text
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker

from maintainpro.core.db import build_engine, build_session_factory, claim_writer


@pytest.fixture
def counter_db(tmp_path: Path) -> Iterator[sessionmaker[Session]]:
    """A file-backed SQLite database, set up as the hub's, holding one counter at 0."""
    engine = build_engine(f"sqlite:///{tmp_path / 'counter.db'}")
    with engine.begin() as connection:
        connection.execute(text("CREATE TABLE counter (id INTEGER PRIMARY KEY, value INTEGER)"))
        connection.execute(text("INSERT INTO counter VALUES (1, 0)"))
    yield build_session_factory(engine)
    engine.dispose()


def _value(factory: sessionmaker[Session]) -> int:
    with factory() as session:
        return int(session.execute(text("SELECT value FROM counter WHERE id = 1")).scalar_one())


def _increment_together(
    factory: sessionmaker[Session],
    *,
    before_read: Callable[[Session], Any],
    claim_after_barrier: bool,
) -> list[str]:
    """Two threads each read the counter and write it back plus one, in one transaction."""
    barrier = threading.Barrier(2)
    outcomes: list[str] = []
    lock = threading.Lock()

    def increment() -> None:
        outcome = "ok"
        try:
            with factory() as session, session.begin():
                if claim_after_barrier:
                    # Both start together, so the second claim has to wait for the first writer.
                    barrier.wait(timeout=30)
                before_read(session)
                value = session.execute(text("SELECT value FROM counter WHERE id = 1")).scalar_one()
                if not claim_after_barrier:
                    barrier.wait(timeout=30)  # both have read before either writes
                session.execute(
                    text("UPDATE counter SET value = :value WHERE id = 1"), {"value": value + 1}
                )
        except OperationalError as exc:
            outcome = f"error: {exc.orig}"
        with lock:
            outcomes.append(outcome)

    threads = [threading.Thread(target=increment) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not any(thread.is_alive() for thread in threads)
    return outcomes


def test_claimed_read_then_write_transactions_both_succeed_in_turn(
    counter_db: sessionmaker[Session],
) -> None:
    outcomes = _increment_together(counter_db, before_read=claim_writer, claim_after_barrier=True)
    assert outcomes == ["ok", "ok"]
    assert _value(counter_db) == 2  # the second read what the first committed


def test_without_the_claim_a_deferred_reader_cannot_become_the_writer(
    counter_db: sessionmaker[Session],
) -> None:
    # A transaction begun as a reader (plain BEGIN, as a SAVEPOINT also begins one) is refused
    # the upgrade at once: the busy timeout does not apply to it.
    outcomes = _increment_together(
        counter_db,
        before_read=lambda session: session.connection().exec_driver_sql("BEGIN"),
        claim_after_barrier=False,
    )
    assert sorted(outcomes) == ["error: database is locked", "ok"]
    assert _value(counter_db) == 1


def test_without_the_claim_pysqlite_reads_outside_the_transaction_and_loses_an_update(
    counter_db: sessionmaker[Session],
) -> None:
    # pysqlite begins only before the first write, so both writes succeed from a stale read.
    outcomes = _increment_together(
        counter_db, before_read=lambda session: None, claim_after_barrier=False
    )
    assert outcomes == ["ok", "ok"]
    assert _value(counter_db) == 1


def _statements(engine: Engine) -> tuple[list[str], Callable[[], None]]:
    seen: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        seen.append(statement)

    event.listen(engine, "before_cursor_execute", record)
    return seen, lambda: event.remove(engine, "before_cursor_execute", record)


def test_claim_begins_immediate_only_when_no_transaction_is_open(
    counter_db: sessionmaker[Session],
) -> None:
    engine = counter_db.kw["bind"]
    seen, stop = _statements(engine)
    try:
        with counter_db() as session, session.begin():
            claim_writer(session)
            session.execute(text("UPDATE counter SET value = 5 WHERE id = 1"))
            claim_writer(session)  # already the writer: nothing more to do
        assert seen.count("BEGIN IMMEDIATE") == 1
        with counter_db() as session, session.begin():
            session.execute(text("UPDATE counter SET value = 6 WHERE id = 1"))
            claim_writer(session)  # pysqlite began before the write: already the writer
        assert seen.count("BEGIN IMMEDIATE") == 1
    finally:
        stop()
    assert _value(counter_db) == 6


def test_a_claimed_transaction_rolls_back_whole(counter_db: sessionmaker[Session]) -> None:
    with counter_db() as session:
        claim_writer(session)
        session.execute(text("UPDATE counter SET value = 9 WHERE id = 1"))
        session.rollback()
    assert _value(counter_db) == 0


def test_reads_without_a_claim_stay_outside_a_transaction(
    counter_db: sessionmaker[Session],
) -> None:
    # The rest of the hub keeps pysqlite's behaviour: a read-only request holds no lock.
    with counter_db() as session:
        session.execute(text("SELECT value FROM counter")).all()
        driver = session.connection().connection.driver_connection
        assert driver is not None
        assert not driver.in_transaction


def test_claim_issues_nothing_on_postgresql(postgres_url: str) -> None:
    engine = build_engine(postgres_url)
    seen, stop = _statements(engine)
    try:
        with build_session_factory(engine)() as session, session.begin():
            claim_writer(session)
            assert session.execute(text("SELECT 1")).scalar() == 1
    finally:
        stop()
        engine.dispose()
    assert seen == ["SELECT 1"]  # row locks, where a change needs them, do the serialising
