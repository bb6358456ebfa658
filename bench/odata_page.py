"""Benchmark: one OData page of 10,000 rows from a warehouse of 1 million sensor hours.

Run from the repository root::

    .venv/bin/python bench/odata_page.py              # 1,000 sensors x 1,000 hours, N = 15
    .venv/bin/python bench/odata_page.py --hours 100  # a quick run (100,000 rows)

The warehouse is written straight into a DuckDB file with the warehouse schema (hour by hour, as
the incremental ETL appends), on two sites. An analyst's API token is made in a fresh SQLite
database, and the whole app (create_app) is called through httpx's ASGI transport with HTTP
Basic, as a BI tool would. Timed, each as the median of N runs after one warm-up:

- first page: ``GET /odata/fact_sensor_hour`` (10,000 rows, key order);
- page 50: the 49th next link (keyset position deep in the table);
- sorted: ``$orderby=value_avg desc``, first page;
- filtered: ``$filter=value_avg gt 50 and out_of_range eq false&$count=true``, first page;
- one site: the same first page for an analyst bound to one site (row-level security);
- serialisation alone: ``read_page`` on an open connection (query and JSON writing, no HTTP).

The goal is < 300 ms for a 10,000-row page.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import platform
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import httpx

from maintainpro.analytics import schema
from maintainpro.analytics.odata.feed import read_page
from maintainpro.analytics.odata.model import entity_sets
from maintainpro.analytics.odata.paging import CursorStore
from maintainpro.analytics.odata.query import ResponseFormat, parse_options
from maintainpro.analytics.warehouse import connect
from maintainpro.app import create_app
from maintainpro.config import Settings
from maintainpro.core.assets import Site
from maintainpro.core.db import build_engine, build_session_factory
from maintainpro.core.users import Role, User, hash_password, issue_token
from maintainpro.migrate import upgrade

PAGE = 10_000
SECRET = "bench-secret-" + "x" * 40


def build_warehouse(path: Path, sensors: int, hours: int) -> int:
    """fact_sensor_hour with sensors x hours rows on two sites; returns the row count."""
    connection = connect(path)
    for table in schema.TABLES.values():
        connection.execute(table.ddl())
    connection.execute(
        f"""
        INSERT INTO fact_sensor_hour
        SELECT s AS sensor_key, s // 4 AS asset_key, 1 + s % 2 AS site_key,
               TIMESTAMP '2025-01-01' + INTERVAL (h) HOUR AS hour_start,
               CAST(strftime(TIMESTAMP '2025-01-01' + INTERVAL (h) HOUR, '%Y%m%d') AS INTEGER),
               (h % 24) * 60, 60,
               50 + 30 * sin(h / 24.0 + s), 20 + (s % 7), 80 + (s % 11), 50 + (h % 13),
               'degC', (h + s) % 97 = 0
        FROM range({hours}) hh(h), range({sensors}) ss(s)
        ORDER BY h, s
        """  # noqa: S608 - numbers from the command line
    )
    found = connection.execute("SELECT count(*) FROM fact_sensor_hour").fetchone()
    connection.close()
    return int(found[0]) if found else 0


def make_tokens(database_url: str) -> dict[str, str]:
    """An analyst of no site and one of site 1, each with a token."""
    upgrade(database_url)
    engine = build_engine(database_url)
    factory = build_session_factory(engine)
    tokens: dict[str, str] = {}
    with factory() as session, session.begin():
        site = Site(code="S1", name="Bench plant")
        session.add(site)
        session.flush()
        for name, site_id in (("all", None), ("site", site.id)):
            user = User(
                username=f"bench-{name}",
                role=Role.ANALYST,
                password_hash=hash_password("bench password"),
                site_id=site_id,
            )
            session.add(user)
            session.flush()
            tokens[name] = issue_token(session, user, "bench")[1]
    engine.dispose()
    return tokens


def basic(token: str) -> dict[str, str]:
    """HTTP Basic with the token as password."""
    return {"Authorization": "Basic " + base64.b64encode(f"bi:{token}".encode()).decode()}


async def timed(runs: int, call: Callable[[], Awaitable[Any]]) -> tuple[list[float], Any]:
    """Milliseconds of each run after one warm-up, and the last result."""
    result = await call()
    times: list[float] = []
    for _ in range(runs):
        started = time.perf_counter()
        result = await call()
        times.append((time.perf_counter() - started) * 1000.0)
    return times, result


def summary(times: list[float]) -> dict[str, float]:
    """Median, best and 90th percentile."""
    ordered = sorted(times)
    return {
        "median_ms": round(statistics.median(ordered), 1),
        "min_ms": round(ordered[0], 1),
        "p90_ms": round(ordered[int(0.9 * (len(ordered) - 1))], 1),
    }


async def run(args: argparse.Namespace, folder: Path) -> dict[str, Any]:
    """Build, serve and time; returns the results."""
    warehouse = folder / "warehouse.duckdb"
    started = time.perf_counter()
    rows = build_warehouse(warehouse, args.sensors, args.hours)
    build_s = time.perf_counter() - started
    database_url = f"sqlite:///{folder / 'maintainpro.db'}"
    tokens = make_tokens(database_url)
    settings = Settings(
        database_url=database_url,
        secret_key=SECRET,
        run_background_jobs=False,
        warehouse_path=warehouse,
    )
    app = create_app(settings)
    results: dict[str, Any] = {"fact_rows": rows, "build_s": round(build_s, 1)}
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:

        async def fetch(url: str, token: str = tokens["all"]) -> httpx.Response:
            # Timed up to the last byte received; the client's JSON parsing is not the server's.
            response = await client.get(url, headers=basic(token))
            response.raise_for_status()
            return response

        def page(response: httpx.Response) -> dict[str, Any]:
            body: dict[str, Any] = response.json()
            assert len(body["value"]) == PAGE, len(body["value"])
            return body

        async def get(url: str, token: str = tokens["all"]) -> dict[str, Any]:
            return page(await fetch(url, token))

        base = "/odata/fact_sensor_hour"
        times, response = await timed(args.runs, lambda: fetch(base))
        first = page(response)
        results["first page"] = summary(times)
        deep = max(2, min(50, rows // PAGE - 1))
        link: str = first["@odata.nextLink"]
        for _ in range(deep - 2):
            link = (await get(link))["@odata.nextLink"]
        times, response = await timed(args.runs, lambda: fetch(link))
        page(response)
        results[f"page {deep}"] = summary(times)
        times, response = await timed(args.runs, lambda: fetch(f"{base}?$orderby=value_avg desc"))
        page(response)
        results["sorted"] = summary(times)
        query = f"{base}?$filter=value_avg gt 50 and out_of_range eq false&$count=true"
        times, response = await timed(args.runs, lambda: fetch(query))
        results["filtered + count"] = summary(times)
        results["filtered_count"] = page(response)["@odata.count"]
        times, response = await timed(args.runs, lambda: fetch(base, tokens["site"]))
        assert {r["site_key"] for r in page(response)["value"]} == {1}
        results["one site"] = summary(times)
        results["page_bytes"] = len(json.dumps(first))
        results["deep_page"] = deep

    connection = connect(warehouse, read_only=True)
    entity_set = entity_sets()["fact_sensor_hour"]
    cursors = CursorStore()

    async def serialise(pairs: list[tuple[str, str]]) -> Any:
        return read_page(
            connection,
            entity_set,
            parse_options(pairs),
            None,
            page_size=PAGE,
            response=ResponseFormat(),
            service_root="http://bench/odata/",
            user_id=1,
            cursors=cursors,
        )

    times, _ = await timed(args.runs, lambda: serialise([]))
    results["read_page alone, first page"] = summary(times)
    position = parse_qsl(urlsplit(link).query)
    times, _ = await timed(args.runs, lambda: serialise(position))
    results[f"read_page alone, page {deep}"] = summary(times)
    connection.close()
    app.state.odata_warehouse.close()
    return results


def main() -> None:
    """Parse arguments, run, print a Markdown table and the JSON."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--sensors", type=int, default=1_000)
    parser.add_argument("--hours", type=int, default=1_000)
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        results = asyncio.run(run(args, Path(folder)))
    load = os.getloadavg()
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, "
        f"load average {load[0]:.1f} {load[1]:.1f} {load[2]:.1f}"
    )
    print(f"fact rows: {results['fact_rows']:,}, page: {PAGE:,} rows, N = {args.runs}")
    print("| request | median ms | min ms | p90 ms |")
    print("|---|---|---|---|")
    for name, value in results.items():
        if isinstance(value, dict):
            print(f"| {name} | {value['median_ms']} | {value['min_ms']} | {value['p90_ms']} |")
    print(json.dumps(results))


if __name__ == "__main__":
    main()
