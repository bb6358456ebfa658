"""Benchmark: the BI connections view over a 300,000-row ``bi_access_log``.

Run from the repository root::

    .venv/bin/python bench/access_log.py                      # a fresh SQLite file
    .venv/bin/python bench/access_log.py --database-url postgresql+psycopg://.../empty_db

The database gets the ``sites``, ``users`` and ``bi_access_log`` tables (with their indexes),
40 users and ``--rows`` audit rows over 480 connections (4 channels x 40 users x 3 tokens, 5 %
refused). Timed, each read in its own session as the app's ledger does, median of ``--runs``:

- full GROUP BY: ``connection_stats_uncached`` (the view before the cache);
- cold: the first read of a new ``ConnectionsCache`` (sums the whole table);
- warm: a read with no new rows since the last one;
- warm after +1,000 rows: the first read after 1,000 new rows were written (the previous
  read ``SETTLE_S`` earlier, as page loads seconds apart).

On PostgreSQL rows are taken into the cache one read later and at least ``SETTLE_S`` after they
were first seen (commits can arrive out of id order), so the bench waits that long before the
warm reads; the +1,000-row read sums those rows as the tail.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import random
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, insert, select, text
from sqlalchemy.orm import Session, sessionmaker

from maintainpro.analytics.access_connections import (
    SETTLE_S,
    ConnectionsCache,
    connection_stats_uncached,
)
from maintainpro.analytics.access_log import BiAccessRecord
from maintainpro.core.db import build_engine, build_session_factory
from maintainpro.core.users import Role, User
from maintainpro.schema import metadata

CHANNELS = ("odata", "export", "cube", "stream")
USERS = 40
TOKENS = 3
T0 = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
CHUNK = 10_000


def load_average() -> str:
    """The 1, 5 and 15 minute load averages."""
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def audit_rows(
    rng: random.Random, user_ids: list[int], first: int, count: int
) -> list[dict[str, Any]]:
    """``count`` audit rows, the ``first``-th onwards, one minute apart."""
    rows = []
    for n in range(first, first + count):
        user_id = rng.choice(user_ids)
        credential = rng.randrange(TOKENS)
        status = 500 if rng.random() < 0.05 else 200
        rows.append(
            {
                "at": T0 + dt.timedelta(seconds=n * 6),
                "channel": rng.choice(CHANNELS),
                "dataset": "fact_work_order",
                "user_id": user_id,
                "username": f"user{user_id}",
                "credential_id": credential,
                "credential_name": f"token {credential}",
                "options": {"$top": "1000"},
                "rows": rng.randrange(1, 10_000),
                "duration_ms": 12.5,
                "status": status,
                "outcome": "ok" if status < 400 else "error",
                "error": "query failed" if status >= 400 else None,
            }
        )
    return rows


def fill(factory: sessionmaker[Session], rng: random.Random, rows: int) -> list[int]:
    """Create the users and write ``rows`` audit rows; returns the user ids."""
    with factory.begin() as session:
        # "-" matches no password: the bench users never sign in.
        users = [
            User(username=f"bench{n}", role=Role.ANALYST, password_hash="-")  # noqa: S106
            for n in range(USERS)
        ]
        session.add_all(users)
        session.flush()
        user_ids = [u.id for u in users]
    for first in range(0, rows, CHUNK):
        with factory.begin() as session:
            session.execute(
                insert(BiAccessRecord), audit_rows(rng, user_ids, first, min(CHUNK, rows - first))
            )
    return user_ids


def timed_ms(action: Callable[[], object]) -> float:
    """Milliseconds one call takes."""
    start = time.perf_counter()
    action()
    return (time.perf_counter() - start) * 1000


def read(factory: sessionmaker[Session], cache: ConnectionsCache) -> int:
    """One read of the view, in its own session."""
    with factory() as session:
        return len(cache.stats(session))


def run(engine: Engine, rows: int, runs: int) -> dict[str, Any]:
    """Fill the database and time the four reads."""
    factory = build_session_factory(engine)
    meta = metadata()
    tables = [meta.tables[name] for name in ("sites", "users", "bi_access_log")]
    meta.drop_all(engine, tables=tables)
    meta.create_all(engine, tables=tables)
    rng = random.Random(42)
    start = time.perf_counter()
    user_ids = fill(factory, rng, rows)
    if engine.dialect.name == "postgresql":
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            connection.execute(text("VACUUM ANALYZE bi_access_log"))
    else:
        with engine.begin() as connection:
            connection.execute(text("ANALYZE"))
    report: dict[str, Any] = {"fill (s)": f"{time.perf_counter() - start:.1f}"}

    def full() -> None:
        with factory() as session:
            report["connections"] = len(connection_stats_uncached(session))

    full()  # warm the page cache once, as for the others
    report["full GROUP BY"] = statistics.median(timed_ms(full) for _ in range(runs))
    report["cold"] = statistics.median(
        timed_ms(lambda: read(factory, ConnectionsCache())) for _ in range(runs)
    )
    cache = ConnectionsCache()
    read(factory, cache)
    time.sleep(SETTLE_S * 1.1)
    report["settling read"] = timed_ms(lambda: read(factory, cache))
    report["warm"] = statistics.median(timed_ms(lambda: read(factory, cache)) for _ in range(runs))
    added = []
    written = rows
    for _ in range(runs):
        # Page loads seconds apart: the previous batch is settled (PostgreSQL) by this read.
        time.sleep(SETTLE_S * 1.1)
        with factory.begin() as session:
            session.execute(insert(BiAccessRecord), audit_rows(rng, user_ids, written, 1000))
        written += 1000
        added.append(timed_ms(lambda: read(factory, cache)))
    report["warm after +1,000 rows"] = statistics.median(added)
    with factory() as session:
        assert cache.stats(session) == connection_stats_uncached(session)
        report["rows at the end"] = session.scalar(
            select(BiAccessRecord.id).order_by(BiAccessRecord.id.desc())
        )
    return report


def main() -> None:
    """Parse the arguments, run, print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--database-url", help="an empty database (default: a temporary SQLite file)"
    )
    parser.add_argument("--rows", type=int, default=300_000)
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        url = args.database_url or f"sqlite:///{os.path.join(tmp, 'bench.db')}"
        engine = build_engine(url)
        try:
            print(
                f"python {platform.python_version()}, {engine.dialect.name}, nproc {os.cpu_count()}"
            )
            print(f"load average before: {load_average()}")
            report = run(engine, args.rows, args.runs)
            print(f"load average after:  {load_average()}")
        finally:
            engine.dispose()
    for name, value in report.items():
        print(f"{name:>24}: {value:.1f} ms" if isinstance(value, float) else f"{name:>24}: {value}")


if __name__ == "__main__":
    main()
