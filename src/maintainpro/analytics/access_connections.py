"""The BI connections view: per-connection figures of ``bi_access_log``, cached incrementally.

``connection_stats`` is incremental: a ``ConnectionsCache`` per database (by default one per
engine) keeps each connection's sums up to a high-water id and reads only newer rows. A purge
through ``purge_access_log`` clears it; a delete it did not see (another process's purge, an
emptied table) is noticed by the oldest id or time moving up, the newest id moving down, or the
first or high-water row reading differently (on PostgreSQL including its inserting
transaction). Not noticed: on SQLite, a table emptied and refilled with rows equal to the
counted first and high-water rows in every column, at the same ids.
"""

from __future__ import annotations

import datetime as dt
import threading
import time
import weakref
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from sqlalchemy import (
    BigInteger,
    ColumnElement,
    Connection,
    Engine,
    Select,
    Text,
    case,
    cast,
    func,
    literal_column,
    select,
)
from sqlalchemy.orm import Session

from maintainpro.analytics.access_log import PURGE_LISTENERS, BiAccessRecord


@dataclass(frozen=True)
class ConnectionStats:
    """What one connection (a user through one API token, on one channel) has done so far."""

    channel: str
    user_id: int
    username: str
    credential_id: int | None
    credential_name: str | None
    first_access: dt.datetime
    last_access: dt.datetime
    requests: int
    rows_served: int
    errors: int
    last_dataset: str
    last_status: int
    last_error: str | None
    last_error_at: dt.datetime | None


ConnectionKey = tuple[str, int, int | None]
# PostgreSQL hands out ids when a row is inserted, not when it commits: a slow writer can make
# id 100 visible after id 101. Rows are taken into the cache only once every transaction that was
# running when they were counted has finished, and at least this long after (covering the
# instant between an INSERT drawing its id and taking its transaction id).
SETTLE_S: Final = 1.0
# Up to this many ids, new rows are read one by one rather than grouped in the database.
SMALL_RANGE: Final = 20_000


@dataclass(frozen=True)
class ConnectionTally:
    """The summable figures of one connection over a range of rows."""

    requests: int
    rows_served: int
    errors: int
    first_access: dt.datetime
    last_access: dt.datetime
    last_id: int
    last_error_id: int | None


def merged_tally(a: ConnectionTally, b: ConnectionTally) -> ConnectionTally:
    """The figures of two disjoint row ranges of one connection taken together."""
    error_ids = [i for i in (a.last_error_id, b.last_error_id) if i is not None]
    return ConnectionTally(
        requests=a.requests + b.requests,
        rows_served=a.rows_served + b.rows_served,
        errors=a.errors + b.errors,
        first_access=min(a.first_access, b.first_access),
        last_access=max(a.last_access, b.last_access),
        last_id=max(a.last_id, b.last_id),
        last_error_id=max(error_ids) if error_ids else None,
    )


def merged_tallies(
    a: Mapping[ConnectionKey, ConnectionTally], b: Mapping[ConnectionKey, ConnectionTally]
) -> dict[ConnectionKey, ConnectionTally]:
    """Two per-connection tallies of disjoint row ranges taken together."""
    out = dict(a)
    for key, tally in b.items():
        out[key] = merged_tally(out[key], tally) if key in out else tally
    return out


def _grouped(channel: str | None = None) -> Select[Any]:
    t = BiAccessRecord.__table__
    failed = t.c.status >= 400
    grouped = (
        select(
            t.c.channel,
            t.c.user_id,
            t.c.credential_id,
            func.min(t.c.at).label("first_access"),
            func.max(t.c.at).label("last_access"),
            func.count().label("requests"),
            func.coalesce(func.sum(t.c.rows), 0).label("rows_served"),
            func.coalesce(func.sum(case((failed, 1), else_=0)), 0).label("errors"),
            func.max(t.c.id).label("last_id"),
            func.max(case((failed, t.c.id))).label("last_error_id"),
        )
        .where(t.c.user_id.is_not(None))
        .group_by(t.c.channel, t.c.user_id, t.c.credential_id)
    )
    if channel is not None:
        grouped = grouped.where(t.c.channel == channel)
    return grouped


def row_tallies(
    records: Iterable[tuple[str, int, int | None, dt.datetime, int, int, int]],
) -> dict[ConnectionKey, ConnectionTally]:
    """Per-connection figures of (channel, user, token, at, rows, status, id) records."""
    # Plain lists while summing: a new frozen tally per row would cost more than the query.
    sums: dict[ConnectionKey, list[Any]] = {}
    for channel, user_id, credential_id, at, served, status, row_id in records:
        failed = status >= 400
        key = (channel, user_id, credential_id)
        acc = sums.get(key)
        if acc is None:
            sums[key] = [1, served, int(failed), at, at, row_id, row_id if failed else None]
            continue
        acc[0] += 1
        acc[1] += served
        acc[3] = min(acc[3], at)
        acc[4] = max(acc[4], at)
        acc[5] = max(acc[5], row_id)
        if failed:
            acc[2] += 1
            acc[6] = row_id if acc[6] is None else max(acc[6], row_id)
    return {key: ConnectionTally(*acc) for key, acc in sums.items()}


def connection_tallies(
    session: Session, after_id: int, up_to_id: int
) -> dict[ConnectionKey, ConnectionTally]:
    """Per-connection figures of the rows with ``after_id < id <= up_to_id``."""
    t = BiAccessRecord.__table__
    in_range: ColumnElement[bool] = (t.c.id > after_id) & (t.c.id <= up_to_id)
    if after_id <= 0:
        # From the start: "+ 0" keeps the bound from steering the planner off the covering
        # connection index onto a walk of the whole table (3x slower on SQLite).
        in_range = (t.c.id + 0) <= up_to_id
    elif up_to_id - after_id <= SMALL_RANGE:
        # Read by primary key and summed here: a GROUP BY would have the planner walk the whole
        # connection index (its order suits the grouping) instead of the few new rows.
        stmt = select(
            t.c.channel, t.c.user_id, t.c.credential_id, t.c.at, t.c.rows, t.c.status, t.c.id
        ).where(in_range, t.c.user_id.is_not(None))
        return row_tallies(session.execute(stmt))
    return {
        (r.channel, r.user_id, r.credential_id): ConnectionTally(
            requests=int(r.requests),
            rows_served=int(r.rows_served),
            errors=int(r.errors),
            first_access=r.first_access,
            last_access=r.last_access,
            last_id=int(r.last_id),
            last_error_id=None if r.last_error_id is None else int(r.last_error_id),
        )
        for r in session.execute(_grouped().where(in_range))
    }


def connection_stats_uncached(
    session: Session, channel: str | None = None
) -> list[ConnectionStats]:
    """The connections view from one GROUP BY over the whole table (the cache's reference)."""
    t = BiAccessRecord.__table__
    g = _grouped(channel).subquery("g")
    last = t.alias("last_row")
    err = t.alias("error_row")
    stmt = (
        select(
            g,
            last.c.username,
            last.c.credential_name,
            last.c.dataset,
            last.c.status,
            err.c.error,
            err.c.at.label("last_error_at"),
        )
        .join(last, last.c.id == g.c.last_id)
        .outerjoin(err, err.c.id == g.c.last_error_id)
        .order_by(g.c.last_access.desc(), g.c.last_id.desc())
    )
    return [
        ConnectionStats(
            channel=r.channel,
            user_id=r.user_id,
            username=r.username or "",
            credential_id=r.credential_id,
            credential_name=r.credential_name,
            first_access=r.first_access,
            last_access=r.last_access,
            requests=int(r.requests),
            rows_served=int(r.rows_served),
            errors=int(r.errors),
            last_dataset=r.dataset,
            last_status=r.status,
            last_error=r.error,
            last_error_at=r.last_error_at,
        )
        for r in session.execute(stmt)
    ]


@dataclass(frozen=True)
class _Landmarks:
    """What the table looks like now, read in one statement (one snapshot on PostgreSQL)."""

    min_id: int | None
    max_id: int | None
    min_at: dt.datetime | None
    # PostgreSQL: the oldest transaction still running and the first not yet started.
    xmin: int | None
    xmax: int | None


def _landmarks(session: Session) -> _Landmarks:
    t = BiAccessRecord.__table__
    # One min() or max() per subquery: SQLite answers each from an index end, not a scan.
    columns: list[Any] = [
        select(func.min(t.c.id)).scalar_subquery(),
        select(func.max(t.c.id)).scalar_subquery(),
        select(func.min(t.c.at)).scalar_subquery(),
    ]
    postgres = session.get_bind().dialect.name == "postgresql"
    if postgres:
        snapshot = func.pg_current_snapshot()
        columns += [
            cast(cast(func.pg_snapshot_xmin(snapshot), Text), BigInteger),
            cast(cast(func.pg_snapshot_xmax(snapshot), Text), BigInteger),
        ]
    row = session.execute(select(*columns)).one()
    min_at = row[2]
    if isinstance(min_at, str):  # SQLite gives a scalar subquery's text back untyped
        min_at = dt.datetime.fromisoformat(min_at)
    if min_at is not None and min_at.tzinfo is None:
        min_at = min_at.replace(tzinfo=dt.UTC)
    return _Landmarks(
        min_id=row[0],
        max_id=row[1],
        min_at=min_at,
        xmin=int(row[3]) if postgres else None,
        xmax=int(row[4]) if postgres else None,
    )


# The columns that must still read the same for a cached row to be the row that was counted.
_FINGERPRINT: Final = (
    "id",
    "at",
    "channel",
    "user_id",
    "credential_id",
    "rows",
    "status",
    "dataset",
    "username",
    "credential_name",
    "duration_ms",
    "error",
)


def _fingerprints(session: Session, ids: Sequence[int]) -> dict[int, tuple[Any, ...]]:
    t = BiAccessRecord.__table__
    columns: list[Any] = [t.c[name] for name in _FINGERPRINT]
    if session.get_bind().dialect.name == "postgresql":
        # The inserting transaction: a table emptied and refilled with equal rows differs here.
        columns.append(literal_column("bi_access_log.xmin::text"))
    stmt = select(*columns).where(t.c.id.in_(sorted(set(ids))))
    return {int(r[0]): tuple(r) for r in session.execute(stmt)}


@dataclass(frozen=True)
class _Settled:
    """Figures of every row up to ``high_water``, and what proves they still hold."""

    tallies: dict[ConnectionKey, ConnectionTally]
    high_water: int
    min_id: int
    min_at: dt.datetime
    fingerprints: dict[int, tuple[Any, ...]]
    generation: int


@dataclass(frozen=True)
class _Detail:
    """What the view shows of one row (a connection's last row or last refusal)."""

    username: str | None
    credential_name: str | None
    dataset: str
    status: int
    error: str | None
    at: dt.datetime


@dataclass(frozen=True)
class _Pending:
    """A high-water candidate on PostgreSQL: settled once the writers of its time are done."""

    max_id: int
    xmax: int
    seen_at: float
    generation: int


class ConnectionsCache:
    """The connections view of one database, kept up to date incrementally.

    Rows up to a high-water id are summed once per connection; a call sums only the rows
    written since and merges them (milliseconds however long the log). Rows are append-only
    but for the retention purge: a purge (``invalidate``, or seen in the table: the oldest time
    or id moved up, the newest id moved down, a counted row changed) starts again from scratch.
    Safe to share between threads.
    """

    def __init__(
        self, settle_s: float = SETTLE_S, clock: Callable[[], float] = time.monotonic
    ) -> None:
        """An empty cache; ``settle_s`` and ``clock`` only matter on PostgreSQL (see SETTLE_S)."""
        self._lock = threading.Lock()
        self._settle_s = settle_s
        self._clock = clock
        self._generation = 0
        self._settled: _Settled | None = None
        self._pending: _Pending | None = None
        self._details: dict[int, _Detail] = {}

    @property
    def cached_through(self) -> int:
        """The id up to which rows are summed in the cache (0: none yet)."""
        settled = self._settled
        return settled.high_water if settled is not None else 0

    def invalidate(self) -> None:
        """Forget every figure (rows were deleted); the next call sums the table again."""
        with self._lock:
            self._generation += 1
            self._settled = None
            self._pending = None
            self._details = {}

    def stats(self, session: Session, channel: str | None = None) -> list[ConnectionStats]:
        """The connections view, equal to ``connection_stats_uncached``."""
        with self._lock:
            view = self._view(session)
            if view is None:
                # A detail row vanished between two statements: a purge ran meanwhile.
                self._settled = None
                self._pending = None
                self._details = {}
                return connection_stats_uncached(session, channel)
        return [s for s in view if channel is None or s.channel == channel]

    def _still_valid(self, session: Session, marks: _Landmarks) -> _Settled | None:
        settled = self._settled
        if settled is None or settled.generation != self._generation or marks.max_id is None:
            return None
        assert marks.min_id is not None
        assert marks.min_at is not None
        # Inserts only raise the newest id and lower the oldest time: anything else is a delete.
        if (
            marks.max_id < settled.high_water
            or marks.min_id != settled.min_id
            or marks.min_at > settled.min_at
            or _fingerprints(session, list(settled.fingerprints)) != settled.fingerprints
        ):
            return None
        return settled

    def _settle_to(self, session: Session, marks: _Landmarks, high_water: int) -> int:
        """The id up to which every row is committed and may be cached."""
        if marks.max_id is None:
            return high_water
        dialect = session.get_bind().dialect.name
        if dialect == "sqlite":
            # One writer at a time: ids become visible in order.
            return marks.max_id
        if dialect != "postgresql" or marks.xmin is None or marks.xmax is None:
            return high_water  # unknown visibility rules: never cache
        pending = self._pending
        target = high_water
        if (
            pending is not None
            and marks.xmin >= pending.xmax
            and self._clock() - pending.seen_at >= self._settle_s
        ):
            target = max(high_water, pending.max_id)
            pending = None
        if pending is None and marks.max_id > target:
            self._pending = _Pending(marks.max_id, marks.xmax, self._clock(), self._generation)
        elif pending is None:
            self._pending = None
        return target

    def _view(self, session: Session) -> list[ConnectionStats] | None:
        marks = _landmarks(session)
        settled = self._still_valid(session, marks)
        pending = self._pending
        if settled is None and self._settled is not None:
            pending = None  # rows were deleted: the ids of the candidate may mean other rows now
        if pending is not None and (
            pending.generation != self._generation
            or marks.max_id is None
            or marks.max_id < pending.max_id
        ):
            pending = None
        self._pending = pending
        if settled is None:
            self._details = {}
            settled = _Settled(
                {}, 0, marks.min_id or 0, marks.min_at or _EPOCH, {}, self._generation
            )
        target = self._settle_to(session, marks, settled.high_water)
        if target > settled.high_water:
            fresh = connection_tallies(session, settled.high_water, target)
            assert marks.min_id is not None
            assert marks.min_at is not None
            prints = _fingerprints(session, [marks.min_id, target])
            settled = _Settled(
                merged_tallies(settled.tallies, fresh),
                target,
                marks.min_id,
                marks.min_at,
                prints,
                self._generation,
            )
        elif marks.min_at is not None and marks.min_at < settled.min_at:
            settled = _Settled(
                settled.tallies,
                settled.high_water,
                settled.min_id,
                marks.min_at,
                settled.fingerprints,
                settled.generation,
            )
        self._settled = settled if settled.high_water > 0 else None
        tail = (
            connection_tallies(session, settled.high_water, marks.max_id)
            if marks.max_id is not None and marks.max_id > settled.high_water
            else {}
        )
        tallies = merged_tallies(settled.tallies, tail)
        return self._with_details(session, tallies, settled.high_water)

    def _with_details(
        self,
        session: Session,
        tallies: Mapping[ConnectionKey, ConnectionTally],
        high_water: int,
    ) -> list[ConnectionStats] | None:
        """The view rows; None when a row they name is gone (deleted since it was counted)."""
        wanted = {t.last_id for t in tallies.values()}
        wanted |= {t.last_error_id for t in tallies.values() if t.last_error_id is not None}
        # Rows never change: the cached rows' details are kept while the cache holds.
        fetched = _details(session, sorted(i for i in wanted if i not in self._details))
        known = {i: d for i, d in self._details.items() if i in wanted}
        self._details = known | {i: d for i, d in fetched.items() if i <= high_water}
        details = known | fetched
        if any(i not in details for i in wanted):
            return None
        return _shown(tallies, details)


_EPOCH: Final = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


def _details(session: Session, ids: Sequence[int]) -> dict[int, _Detail]:
    """The shown columns of the last and last error rows, by id."""
    t = BiAccessRecord.__table__
    found: dict[int, _Detail] = {}
    for start in range(0, len(ids), 500):  # a bounded IN list per statement
        stmt = select(
            t.c.id, t.c.username, t.c.credential_name, t.c.dataset, t.c.status, t.c.error, t.c.at
        ).where(t.c.id.in_(ids[start : start + 500]))
        found.update({int(r.id): _Detail(*r[1:]) for r in session.execute(stmt)})
    return found


def _shown(
    tallies: Mapping[ConnectionKey, ConnectionTally], details: Mapping[int, _Detail]
) -> list[ConnectionStats]:
    """The view rows of the tallies, in the order of the uncached query."""
    view = []
    for (channel, user_id, credential_id), tally in tallies.items():
        last = details[tally.last_id]
        error = None if tally.last_error_id is None else details[tally.last_error_id]
        view.append(
            ConnectionStats(
                channel=channel,
                user_id=user_id,
                username=last.username or "",
                credential_id=credential_id,
                credential_name=last.credential_name,
                first_access=tally.first_access,
                last_access=tally.last_access,
                requests=tally.requests,
                rows_served=tally.rows_served,
                errors=tally.errors,
                last_dataset=last.dataset,
                last_status=last.status,
                last_error=None if error is None else error.error,
                last_error_at=None if error is None else error.at,
            )
        )
    # The uncached query's order: most recent access first, the newer last row on a tie.
    view.sort(
        key=lambda s: (s.last_access, tallies[(s.channel, s.user_id, s.credential_id)].last_id),
        reverse=True,
    )
    return view


_CACHES: Final[weakref.WeakKeyDictionary[Engine, ConnectionsCache]] = weakref.WeakKeyDictionary()
_CACHES_LOCK: Final = threading.Lock()


def connections_cache(engine: Engine) -> ConnectionsCache:
    """The connections cache of an engine's database, made on first use."""
    with _CACHES_LOCK:
        cache = _CACHES.get(engine)
        if cache is None:
            cache = _CACHES[engine] = ConnectionsCache()
        return cache


def _engine_of(bind: Engine | Connection) -> Engine:
    return bind.engine if isinstance(bind, Connection) else bind


def connection_stats(
    session: Session, channel: str | None = None, *, cache: ConnectionsCache | None = None
) -> list[ConnectionStats]:
    """Every connection of a known user (optionally on one channel), most recent first.

    A connection is a user through one credential on one channel; refusals before a user was
    known stay in the log but belong to no connection. Served from ``cache``, by default the
    cache of the session's engine.
    """
    if cache is None:
        bind = session.get_bind()
        assert isinstance(bind, Engine | Connection)
        cache = connections_cache(_engine_of(bind))
    return cache.stats(session, channel)


def _forget(engine: Engine) -> None:
    """Clear an engine's cache after ``purge_access_log`` deleted rows."""
    connections_cache(engine).invalidate()


# access_log cannot import this module (it is imported from here), so its purge reaches the
# cache through this hook, registered once when the view is first imported.
PURGE_LISTENERS.append(_forget)


@dataclass(frozen=True)
class AnonymousRefusals:
    """Requests refused before a user was known (bad, expired or missing token) since a time."""

    since: dt.datetime
    count: int
    last_at: dt.datetime | None
    last_channel: str | None
    last_error: str | None


def anonymous_refusals(session: Session, since: dt.datetime) -> AnonymousRefusals:
    """How many requests no user can be named for were refused since ``since``, and the last.

    They belong to no connection, so the connections view would not show someone trying tokens;
    the time index keeps this to the window's rows.
    """
    t = BiAccessRecord.__table__
    window = (t.c.at >= since) & t.c.user_id.is_(None) & (t.c.status >= 400)
    count, last_id = session.execute(select(func.count(), func.max(t.c.id)).where(window)).one()
    last = (
        session.execute(select(t.c.at, t.c.channel, t.c.error).where(t.c.id == last_id)).first()
        if last_id is not None
        else None
    )
    return AnonymousRefusals(
        since=since,
        count=int(count),
        last_at=last.at if last is not None else None,
        last_channel=last.channel if last is not None else None,
        last_error=last.error if last is not None else None,
    )
