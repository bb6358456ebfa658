"""Downsampling speed: 30 days of 1 Hz readings of one sensor (~2.6 M) to <= 2,000 points.

Loads the readings through ``write_readings`` (rollups included), then times
``query_readings(..., max_points=2000)`` over the whole range (median of several runs), plus a
few shorter ranges for context. Not a test: run it by hand, e.g.

    .venv/bin/python bench/query.py --backend sqlite
    .venv/bin/python bench/query.py --backend postgresql --quick
"""

from __future__ import annotations

import argparse
import datetime as dt
import statistics
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from storage import START, database, load, print_header, signal

from maintainpro.iot.timeseries import ReadingRow, query_readings, to_ms

SENSOR = 1
GOAL_MS = 100.0


def readings(days: int) -> Iterator[list[ReadingRow]]:
    """One sensor at 1 Hz, in batches of 5000."""
    start_ms = to_ms(START)
    batch: list[ReadingRow] = []
    for second, value in enumerate(signal(SENSOR, days * 86_400)):
        batch.append(ReadingRow(SENSOR, start_ms + second * 1000, value, 0))
        if len(batch) == 5000:
            yield batch
            batch = []
    if batch:
        yield batch


def main() -> None:
    """Run the query benchmark."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--runs", type=int, default=9)
    parser.add_argument("--max-points", type=int, default=2000)
    parser.add_argument("--quick", action="store_true", help="3 days instead of 30")
    parser.add_argument("--workdir", type=Path, default=None)
    args = parser.parse_args()
    if args.quick:
        args.days = 3
    print_header("query: downsampling one sensor's history")
    print(f"backend: {args.backend}; {args.days} days at 1 Hz = {args.days * 86_400:,} readings")
    with (
        tempfile.TemporaryDirectory(dir=args.workdir) as workdir,
        database(args.backend, Path(workdir)) as engine,
    ):
        written, seconds = load(engine, readings(args.days))
        print(f"loaded: {written:,} readings in {seconds:.1f} s")
        if engine.dialect.name == "postgresql":
            with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
                connection.exec_driver_sql("VACUUM ANALYZE")
        end = START + dt.timedelta(days=args.days)
        ranges = [
            (f"{args.days} days", START, end),
            ("1 day", end - dt.timedelta(days=1), end),
            ("1 hour", end - dt.timedelta(hours=1), end),
            ("20 minutes", end - dt.timedelta(minutes=20), end),
        ]
        for label, start, stop in ranges:
            timings = []
            with engine.connect() as connection:
                for _ in range(args.runs):
                    started = time.perf_counter()
                    series = query_readings(connection, SENSOR, start, stop, args.max_points)
                    timings.append((time.perf_counter() - started) * 1000)
            width = series.bucket.total_seconds() if series.bucket else 0
            median = statistics.median(timings)
            verdict = ""
            if label == ranges[0][0]:
                verdict = f" (goal < {GOAL_MS:.0f} ms: {'met' if median < GOAL_MS else 'MISSED'})"
            print(
                f"{label}: {len(series)} points, resolution {series.resolution}"
                f"{f', bucket {width:g} s' if width else ''}; median {median:.1f} ms, "
                f"min {min(timings):.1f}, max {max(timings):.1f} over {args.runs} runs{verdict}"
            )


if __name__ == "__main__":
    main()
