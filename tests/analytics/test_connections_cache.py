"""The incremental connections view: after any mix of inserts, purges, emptied tables and reads,
the cached view equals the full GROUP BY (SQLite and PostgreSQL); a warm read sums only new rows;
PostgreSQL rows committed out of id order are never skipped; concurrent readers agree."""

from __future__ import annotations

import datetime as dt
import random
import threading
import time
from typing import Any

import pytest
from sqlalchemy import Engine, delete, func, insert, select, text
from sqlalchemy.orm import Session, sessionmaker

from maintainpro.analytics import access_connections
from maintainpro.analytics.access_connections import (
    ConnectionsCache,
    ConnectionStats,
    connection_stats,
    connection_stats_uncached,
    connections_cache,
)
from maintainpro.analytics.access_log import (
    AccessEvent,
    BiAccessRecord,
    audit_row,
    purge_access_log,
    write_rows,
)
from maintainpro.core.users import Role

T0 = dt.datetime(2026, 3, 1, 12, 0, tzinfo=dt.UTC)
CHANNELS = ("odata", "export", "cube", "stream")


class FakeClock:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        """Starts at zero."""
        self.now = 0.0

    def __call__(self) -> float:
        """The current reading."""
        return self.now


def random_row(rng: random.Random, user_ids: list[int], at: dt.datetime) -> dict[str, Any]:
    """An audit row of a random connection (sometimes of no known user), ok or refused."""
    status = rng.choice((200, 200, 200, 204, 400, 403, 500))
    user_id = rng.choice([*user_ids, None])
    return audit_row(
        AccessEvent(
            channel=rng.choice(CHANNELS),
            dataset=rng.choice(("fact_alert", "dim_asset", "fact_work_order")),
            user_id=user_id,
            username=None if user_id is None else f"user{user_id}-{rng.randrange(3)}",
            credential_id=rng.choice((None, 1, 2)),
            credential_name=rng.choice((None, "power bi", "tableau")),
            options={},
            rows=rng.randrange(0, 5000),
            duration_ms=1.0,
            status=status,
            error=f"refused {rng.randrange(100)}" if status >= 400 else None,
            at=at,
        )
    )


def views(
    factory: sessionmaker[Session], cache: ConnectionsCache, channel: str | None
) -> tuple[list[ConnectionStats], list[ConnectionStats]]:
    """The cached and the uncached view, each read in its own session."""
    with factory() as session:
        cached = cache.stats(session, channel)
    with factory() as session:
        full = connection_stats_uncached(session, channel)
    return cached, full


@pytest.fixture
def user_ids(make_user: Any) -> list[int]:
    """Three users the audit rows can belong to."""
    return [make_user(Role.ANALYST)[0].id for _ in range(3)]


@pytest.mark.parametrize(("seed", "grouped_in_database"), [(1, False), (2, False), (3, True)])
def test_the_cached_view_equals_the_full_group_by_through_inserts_purges_and_resets(
    session_factory: sessionmaker[Session],
    user_ids: list[int],
    seed: int,
    grouped_in_database: bool,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    if grouped_in_database:  # new rows grouped by the database, not summed one by one
        monkeypatch.setattr(access_connections, "SMALL_RANGE", 0)
    rng = random.Random(seed)
    clock = FakeClock()
    cache = ConnectionsCache(settle_s=0.5, clock=clock)
    at = T0
    checked = 0
    for _ in range(150):
        step = rng.random()
        if step < 0.4:
            rows = []
            for _ in range(rng.randrange(1, 40)):
                # Mostly forward in time, now and then an event that waited in a queue.
                at += dt.timedelta(minutes=rng.randrange(-30, 120))
                rows.append(random_row(rng, user_ids, at))
            assert write_rows(session_factory, rows) == len(rows)
        elif step < 0.55:
            # Keep about the newest three days: the oldest rows go, as the daily job deletes them.
            purge_access_log(session_factory, 3, at)
        elif step < 0.58:
            # Emptied behind the cache's back (not through the purge): must be seen all the same.
            with session_factory.begin() as session:
                session.execute(delete(BiAccessRecord))
        else:
            clock.now += rng.choice((0.0, 0.2, 1.0))
            cached, full = views(session_factory, cache, rng.choice((None, *CHANNELS)))
            assert cached == full
            checked += bool(full)
    write_rows(session_factory, [random_row(rng, user_ids, at) for _ in range(20)])
    clock.now += 1.0
    for _ in range(2):
        cached, full = views(session_factory, cache, None)
        assert cached == full
    # The generator compared real views, not mostly empty ones.
    assert checked >= 5
    assert full


def test_a_warm_read_sums_only_the_rows_written_since(
    session_factory: sessionmaker[Session],
    user_ids: list[int],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    rng = random.Random(7)
    clock = FakeClock()
    cache = ConnectionsCache(settle_s=0.0, clock=clock)
    write_rows(session_factory, [random_row(rng, user_ids, T0) for _ in range(300)])
    with session_factory() as session:
        counted = session.scalar(select(func.max(BiAccessRecord.id)))
    assert counted is not None
    # PostgreSQL caches rows once every transaction running when it first saw them has ended;
    # other tests' transactions on the same server can take a moment, so read until it has.
    deadline = time.monotonic() + 30
    views(session_factory, cache, None)
    while cache.cached_through < counted:
        assert time.monotonic() < deadline, "the cache never took in the first rows"
        time.sleep(0.05)
        views(session_factory, cache, None)
    summed: list[tuple[int, int | None]] = []
    tallies = access_connections.connection_tallies

    def spy(session: Session, after_id: int, up_to_id: int | None = None) -> Any:
        summed.append((after_id, up_to_id))
        return tallies(session, after_id, up_to_id)

    monkeypatch.setattr(access_connections, "connection_tallies", spy)
    later = T0 + dt.timedelta(hours=1)
    write_rows(session_factory, [random_row(rng, user_ids, later) for _ in range(5)])
    cached, full = views(session_factory, cache, None)
    assert cached == full
    with session_factory() as session:
        newest = session.scalar(select(BiAccessRecord.id).order_by(BiAccessRecord.id.desc()))
    assert newest is not None
    # Every range read starts after the 300 rows counted before.
    assert summed
    assert all(after >= newest - 5 for after, _ in summed)


def test_a_purge_drops_what_it_deleted_from_the_view(
    session_factory: sessionmaker[Session], user_ids: list[int]
) -> None:
    rng = random.Random(1)
    later = T0 + dt.timedelta(days=30)
    # The first user's oldest rows go, its newest stays: only its figures can tell.
    old = [random_row(rng, user_ids[:1], T0) for _ in range(4)]
    new = [random_row(rng, user_ids[:1], later), random_row(rng, user_ids[1:2], later)]
    # No refusals: a vanished last error row would send the view to the full GROUP BY anyway.
    same = {"credential_id": 1, "channel": "odata", "status": 200, "outcome": "ok", "error": None}
    old = [{**row, **same} for row in old]
    new = [{**row, **same} for row in new]
    write_rows(session_factory, old + new)
    with session_factory() as session:
        before = {s.user_id: s.requests for s in connection_stats(session)}
    assert before == {user_ids[0]: 5, user_ids[1]: 1}
    assert purge_access_log(session_factory, 10, later + dt.timedelta(days=1)) == 4
    with session_factory() as session:
        after = connection_stats(session)
        assert after == connection_stats_uncached(session)
    assert {s.user_id: s.requests for s in after} == {user_ids[0]: 1, user_ids[1]: 1}


def test_a_delete_behind_the_cache_s_back_is_seen(
    session_factory: sessionmaker[Session], user_ids: list[int]
) -> None:
    rng = random.Random(3)
    cache = ConnectionsCache(settle_s=0.0)
    same = {
        "user_id": user_ids[0],
        "channel": "odata",
        "credential_id": 1,
        "status": 200,
        "outcome": "ok",
        "error": None,
    }
    rows = [{**random_row(rng, user_ids, T0), **same} for _ in range(6)]
    write_rows(session_factory, rows)
    for _ in range(2):
        views(session_factory, cache, None)
    # Another process's purge: the oldest rows (lowest ids, oldest times) vanish, newest stays.
    with session_factory.begin() as session:
        first = session.scalar(select(BiAccessRecord.id).order_by(BiAccessRecord.id))
        assert first is not None
        session.execute(delete(BiAccessRecord).where(BiAccessRecord.id < first + 3))
    cached, full = views(session_factory, cache, None)
    assert cached == full
    assert sum(s.requests for s in cached) == 3


def test_each_database_has_its_own_cache(
    session_factory: sessionmaker[Session], engine: Engine, tmp_path: Any
) -> None:
    from maintainpro.core.db import build_engine

    other = build_engine(f"sqlite:///{tmp_path / 'other.db'}")
    try:
        assert connections_cache(engine) is connections_cache(engine)
        assert connections_cache(engine) is not connections_cache(other)
    finally:
        other.dispose()


def test_rows_committed_out_of_id_order_are_not_skipped(
    session_factory: sessionmaker[Session], engine: Engine, user_ids: list[int]
) -> None:
    if engine.dialect.name != "postgresql":
        pytest.skip("SQLite writers take turns: ids become visible in order")
    rng = random.Random(5)
    clock = FakeClock()
    cache = ConnectionsCache(settle_s=0.0, clock=clock)
    write_rows(session_factory, [random_row(rng, user_ids, T0) for _ in range(20)])
    slow = engine.connect()
    try:
        slow_tx = slow.begin()
        # The slow writer draws its id first and commits last.
        late = {**random_row(rng, user_ids, T0), "user_id": user_ids[0]}
        slow.execute(insert(BiAccessRecord), [late])
        write_rows(session_factory, [random_row(rng, user_ids, T0) for _ in range(3)])
        for _ in range(3):
            clock.now += 5.0
            cached, full = views(session_factory, cache, None)
            assert cached == full
        slow_tx.commit()
    finally:
        slow.close()
    clock.now += 5.0
    for _ in range(3):
        cached, full = views(session_factory, cache, None)
        assert cached == full
        clock.now += 5.0


def test_readers_on_several_threads_share_one_cache(
    session_factory: sessionmaker[Session], user_ids: list[int]
) -> None:
    rng = random.Random(11)
    cache = ConnectionsCache(settle_s=0.0)
    write_rows(session_factory, [random_row(rng, user_ids, T0) for _ in range(200)])
    failures: list[Exception] = []
    done = threading.Event()

    def read() -> None:
        try:
            while not done.is_set():
                with session_factory() as session:
                    cache.stats(session)
        except Exception as exc:  # noqa: BLE001 - reported to the test below
            failures.append(exc)

    readers = [threading.Thread(target=read) for _ in range(3)]
    for reader in readers:
        reader.start()
    try:
        for batch in range(10):
            at = T0 + dt.timedelta(minutes=batch)
            write_rows(session_factory, [random_row(rng, user_ids, at) for _ in range(20)])
    finally:
        done.set()
        for reader in readers:
            reader.join(10)
    assert not failures
    cached, full = views(session_factory, cache, None)
    assert cached == full


def test_a_table_emptied_and_refilled_with_equal_end_rows_is_seen_on_postgresql(
    session_factory: sessionmaker[Session], engine: Engine, user_ids: list[int]
) -> None:
    if engine.dialect.name != "postgresql":
        pytest.skip("SQLite keeps no inserting transaction per row (limit in the module doc)")
    same = {"user_id": user_ids[0], "channel": "odata", "credential_id": 1, "error": None}
    ok = {**random_row(random.Random(1), user_ids, T0), **same, "status": 200, "outcome": "ok"}
    refused = {**ok, "status": 500, "outcome": "error"}
    clock = FakeClock()
    cache = ConnectionsCache(settle_s=0.0, clock=clock)
    write_rows(session_factory, [ok, ok, ok])
    for _ in range(3):
        clock.now += 1.0
        views(session_factory, cache, None)
    with session_factory.begin() as session:
        session.execute(delete(BiAccessRecord))
        session.execute(
            text("SELECT setval(pg_get_serial_sequence('bi_access_log', 'id'), 1, false)")
        )
    # Same first and last rows at the same ids; only the middle one differs.
    write_rows(session_factory, [ok, refused, ok])
    clock.now += 1.0
    cached, full = views(session_factory, cache, None)
    assert cached == full
    assert [s.errors for s in cached] == [1]
