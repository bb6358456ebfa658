"""Benchmark: refreshing a custom dashboard of six saved questions on the synthetic plant.

Run from the repository root::

    .venv/bin/python bench/dashboard_refresh.py              # 3 years, 100 work orders a day
    .venv/bin/python bench/dashboard_refresh.py --days 365   # a quick run

The synthetic plant of the cube benchmark (``analytics.semantic.synthetic``: 2 sites, 30 assets)
is written into a fresh warehouse and its pre-aggregations built; the app then runs in-process
(TestClient) on a fresh SQLite database. Six questions (line, bar, stacked, heatmap, pivot and a
table, some answered from pre-aggregations, one from the facts) go on one dashboard, and
``POST /api/v1/dashboards/{id}/refresh`` (what the dashboard page calls on every refresh) is
timed ``--repeat`` times, as an administrator and as a site-bound manager. The issue asks for
< 2 s, the product spec for < 10 s.
"""

from __future__ import annotations

import argparse
import datetime as dt
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import Engine
from storage import database, print_header

from maintainpro.analytics.lineage import Lineage
from maintainpro.analytics.semantic.materialise import refresh
from maintainpro.analytics.semantic.model import default_model
from maintainpro.analytics.semantic.synthetic import SyntheticPlant, populate
from maintainpro.analytics.warehouse import DuckDbWarehouse
from maintainpro.app import create_app
from maintainpro.config import Settings
from maintainpro.core.assets import Site
from maintainpro.core.db import build_session_factory
from maintainpro.core.users import Role, User, hash_password, issue_token

TIME = "WorkOrders.createdAt"
QUESTIONS: list[tuple[str, str, dict[str, Any]]] = [
    (
        "Work orders per month",
        "line",
        {
            "measures": ["WorkOrders.count"],
            "timeDimensions": [{"dimension": TIME, "granularity": "month"}],
        },
    ),
    (
        "Work orders by site",
        "bar",
        {"measures": ["WorkOrders.count"], "dimensions": ["Assets.site"]},
    ),
    (
        "Type per month",
        "stacked",
        {
            "measures": ["WorkOrders.count"],
            "dimensions": ["WorkOrders.type"],
            "timeDimensions": [{"dimension": TIME, "granularity": "month"}],
        },
    ),
    (
        "Downtime by line and type",
        "heatmap",
        {
            "measures": ["WorkOrders.downtimeHours"],
            "dimensions": ["Assets.line", "WorkOrders.type"],
        },
    ),
    (
        "Parts cost by site and type",
        "pivot",
        {"measures": ["WorkOrders.partsCost"], "dimensions": ["Assets.site", "WorkOrders.type"]},
    ),
    (
        "Assets affected per quarter",
        "table",
        {
            "measures": ["WorkOrders.assetsAffected"],
            "timeDimensions": [{"dimension": TIME, "granularity": "quarter"}],
        },
    ),
]


def build_warehouse(path: Path, days: int) -> float:
    """The synthetic plant with its pre-aggregations; seconds taken."""
    began = time.perf_counter()
    plant = SyntheticPlant(start=dt.date.today() - dt.timedelta(days=days), days=days)
    with DuckDbWarehouse(path) as target:
        target.ensure_schema()
        populate(target.connection, plant)
        lineage = Lineage(
            None, namespace="bench", source=("sqlite:///x", "main."), warehouse_path=path
        )
        results = refresh(target.connection, default_model(), lineage)
    assert all(r.status == "completed" for r in results), results
    return time.perf_counter() - began


def user_token(engine: Engine, role: Role, site_id: int | None) -> str:
    """A user of the role (tied to a site or not) and an API token of theirs."""
    factory = build_session_factory(engine)
    with factory() as session, session.begin():
        if site_id is not None and session.get(Site, site_id) is None:
            for i in range(1, site_id + 1):
                if session.get(Site, i) is None:
                    session.add(Site(id=i, code=f"S{i}", name=f"Site {i}"))
        user = User(
            username=f"{role.value}-{site_id}",
            role=role,
            password_hash=hash_password("x" * 12),
            site_id=site_id,
        )
        session.add(user)
        session.flush()
        _, plain = issue_token(session, user, "bench")
    return plain


def timed(
    client: TestClient, url: str, token: str, repeat: int, body: dict[str, Any] | None
) -> list[float]:
    """Milliseconds of each refresh (after one warm-up); ``body`` as the page sends it."""
    headers = {"Authorization": f"Bearer {token}"}
    client.post(url, headers=headers, json=body).raise_for_status()
    out = []
    for _ in range(repeat):
        began = time.perf_counter()
        response = client.post(url, headers=headers, json=body)
        out.append((time.perf_counter() - began) * 1000)
        response.raise_for_status()
        assert all("answer" in w for w in response.json()["widgets"].values()), response.text
    return out


def main() -> None:
    """Build, save the dashboard, time its refresh."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=1096)
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--workdir", type=Path, default=None)
    args = parser.parse_args()
    print_header("dashboard refresh: six saved questions")
    with (
        tempfile.TemporaryDirectory(dir=args.workdir) as workdir,
        database("sqlite", Path(workdir)) as engine,
    ):
        warehouse = Path(workdir) / "warehouse.duckdb"
        seconds = build_warehouse(warehouse, args.days)
        print(
            f"warehouse: {args.days} days of synthetic facts,"
            f" pre-aggregations built in {seconds:.0f} s"
        )
        settings = Settings(
            database_url=str(engine.url),
            secret_key="bench-" + "k" * 40,
            cookie_secure=False,
            run_background_jobs=False,
            cold_dir=Path(workdir) / "cold",
            warehouse_path=warehouse,
        )
        admin = user_token(engine, Role.ADMIN, None)
        manager = user_token(engine, Role.MAINTENANCE_MANAGER, 1)
        with TestClient(create_app(settings)) as client:
            headers = {"Authorization": f"Bearer {admin}"}
            layout = []
            for index, (name, chart, query) in enumerate(QUESTIONS):
                body = {
                    "name": name,
                    "chart": chart,
                    "query": query,
                    "shared_roles": ["maintenance_manager"],
                }
                saved = client.post("/api/v1/questions", json=body, headers=headers)
                saved.raise_for_status()
                x, y = (index % 2) * 6, (index // 2) * 4
                layout.append(
                    {"kind": "question", "question_id": saved.json()["id"], "x": x, "y": y}
                )
            board = client.post(
                "/api/v1/dashboards",
                json={"name": "Bench", "layout": layout, "shared_roles": ["maintenance_manager"]},
                headers=headers,
            )
            board.raise_for_status()
            url = f"/api/v1/dashboards/{board.json()['id']}/refresh"
            # A viewer's dashboard-wide filter on one site, applied to every question it reaches.
            one_site: dict[str, Any] = {
                "members": [{"member": "Sites.code", "operator": "equals", "values": ["S1"]}]
            }
            for label, token, refresh_body in (
                ("administrator (all sites)", admin, None),
                ("site-bound manager", manager, None),
                ("administrator, site filter", admin, one_site),
            ):
                runs = sorted(timed(client, url, token, args.repeat, refresh_body))
                p95 = runs[max(0, round(0.95 * len(runs)) - 1)]
                print(
                    f"{label:28} refresh of {len(QUESTIONS)} questions: median "
                    f"{statistics.median(runs):.0f} ms, p95 {p95:.0f} ms, max {runs[-1]:.0f} ms"
                )


if __name__ == "__main__":
    main()
