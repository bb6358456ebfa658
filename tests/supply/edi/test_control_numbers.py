"""Persistent control numbers: per partner and level, across sessions, under concurrency."""

from __future__ import annotations

import threading
import time

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.orm import Session, sessionmaker

from maintainpro.supply.edi.control_numbers import (
    MAX_CONTROL_NUMBER,
    PartnerControlNumbers,
    next_control_number,
)
from maintainpro.supply.edi.envelope import EnvelopeLevel
from maintainpro.supply.edi.partners import EdiControlNumber
from supply.edi.edi_world import edi_supplier, trading_partner
from supply.procurement_world import World

INTERCHANGE = EnvelopeLevel.INTERCHANGE
WAIT = 30.0


@pytest.fixture
def partners(world: World) -> tuple[int, int]:
    """Two committed trading partners."""
    first = trading_partner(world.db, edi_supplier(world, "ACME"))
    second = trading_partner(world.db, edi_supplier(world, "BOLT"), sender=("ZZ", "BOLT"))
    world.db.commit()
    return first.id, second.id


def test_numbers_count_per_partner_and_level(db: Session, partners: tuple[int, int]) -> None:
    acme, bolt = partners
    taken = [
        next_control_number(db, acme, INTERCHANGE),
        next_control_number(db, acme, INTERCHANGE),
        next_control_number(db, acme, EnvelopeLevel.GROUP),
        next_control_number(db, bolt, INTERCHANGE),
        next_control_number(db, acme, INTERCHANGE),
    ]
    assert taken == [1, 2, 1, 1, 3]


def test_numbers_survive_a_restart(
    session_factory: sessionmaker[Session], partners: tuple[int, int]
) -> None:
    acme, _ = partners
    with session_factory() as session, session.begin():
        assert next_control_number(session, acme, INTERCHANGE) == 1
    # A new session (as after a restart) continues where the stored number stands.
    with session_factory() as session, session.begin():
        assert next_control_number(session, acme, INTERCHANGE) == 2
    with session_factory() as session:
        assert session.get(EdiControlNumber, (acme, "interchange")).last_value == 2  # type: ignore[union-attr]


def test_a_rolled_back_number_is_taken_again(
    session_factory: sessionmaker[Session], partners: tuple[int, int]
) -> None:
    acme, _ = partners
    with session_factory() as session, session.begin():
        next_control_number(session, acme, INTERCHANGE)
    with session_factory() as session:
        assert next_control_number(session, acme, INTERCHANGE) == 2
        session.rollback()  # nothing went out under 2
    with session_factory() as session, session.begin():
        assert next_control_number(session, acme, INTERCHANGE) == 2


def test_the_number_wraps_after_the_x12_maximum(db: Session, partners: tuple[int, int]) -> None:
    acme, _ = partners
    db.add(EdiControlNumber(partner_id=acme, level="group", last_value=MAX_CONTROL_NUMBER - 1))
    db.flush()
    numbers = [next_control_number(db, acme, EnvelopeLevel.GROUP) for _ in range(2)]
    assert numbers == [MAX_CONTROL_NUMBER, 1]


def test_the_envelope_builder_protocol(db: Session, partners: tuple[int, int]) -> None:
    acme, _ = partners
    numbers = PartnerControlNumbers(db, acme)
    assert [numbers(INTERCHANGE), numbers(EnvelopeLevel.TRANSACTION_SET), numbers(INTERCHANGE)] == [
        1,
        1,
        2,
    ]
    assert numbers.taken[-1] == (INTERCHANGE, 2)


def _take_many(
    factory: sessionmaker[Session], partner_id: int, count: int, start: threading.Barrier
) -> list[int]:
    taken: list[int] = []
    start.wait(timeout=WAIT)
    for _ in range(count):
        with factory() as session, session.begin():
            taken.append(next_control_number(session, partner_id, INTERCHANGE))
    return taken


def test_two_concurrent_writers_never_share_a_number(
    session_factory: sessionmaker[Session], partners: tuple[int, int]
) -> None:
    acme, _ = partners
    start = threading.Barrier(2)
    results: list[list[int]] = [[], []]
    errors: list[BaseException] = []

    def run(slot: int) -> None:
        try:
            results[slot] = _take_many(session_factory, acme, 40, start)
        except BaseException as exc:  # noqa: BLE001 - reported to the test thread below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(slot,)) for slot in (0, 1)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(WAIT)
    assert errors == []
    # Both started from nothing: the first row is created once, then incremented 79 times.
    assert sorted(results[0] + results[1]) == list(range(1, 81))


def _wait_until_blocked(engine: Engine, application: str) -> None:
    """Poll PostgreSQL until the named session waits for a lock (the event we await)."""
    deadline = time.monotonic() + WAIT
    query = text(
        "SELECT count(*) FROM pg_stat_activity "
        "WHERE application_name = :name AND wait_event_type = 'Lock'"
    )
    with engine.connect() as watcher:
        while time.monotonic() < deadline:
            if watcher.execute(query, {"name": application}).scalar_one():
                return
            watcher.rollback()
            time.sleep(0.01)
    raise AssertionError(f"{application} never waited for the lock")


@pytest.mark.parametrize("existing", [True, False], ids=["row-exists", "first-number"])
def test_a_second_transaction_waits_for_the_first_on_postgresql(
    engine: Engine,
    session_factory: sessionmaker[Session],
    partners: tuple[int, int],
    existing: bool,
) -> None:
    if engine.dialect.name != "postgresql":
        pytest.skip("row locks between transactions are a PostgreSQL matter (SQLite: one writer)")
    acme, _ = partners
    if existing:
        with session_factory() as session, session.begin():
            next_control_number(session, acme, INTERCHANGE)
    first = session_factory()
    mine = next_control_number(first, acme, INTERCHANGE)  # holds the row (or insert) lock
    theirs: list[int] = []

    def second() -> None:
        with session_factory() as session, session.begin():
            session.execute(text("SET application_name = 'edi-second-writer'"))
            theirs.append(next_control_number(session, acme, INTERCHANGE))

    thread = threading.Thread(target=second)
    thread.start()
    try:
        _wait_until_blocked(engine, "edi-second-writer")
        assert theirs == []  # still waiting for the first transaction
        first.commit()
    finally:
        first.close()
        thread.join(WAIT)
    assert theirs == [mine + 1]
