"""The dataset lineage graph and the pipeline chart in a real browser."""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from playwright.sync_api import Page, expect
from sqlalchemy import Engine

from maintainpro.analytics.lineage import Lineage
from maintainpro.analytics.runs import BuildOptions, build
from maintainpro.analytics.warehouse import DuckDbWarehouse
from maintainpro.config import Settings

if TYPE_CHECKING:
    from browser_support import LiveApp

pytest_plugins = ["browser_support"]
pytestmark = pytest.mark.integration


@pytest.fixture
def settings(settings: Settings, tmp_path: Path) -> Settings:
    """The live app's warehouse in this test's folder, built by the test, not the app's job."""
    return settings.model_copy(
        update={"warehouse_path": tmp_path / "warehouse.duckdb", "warehouse_refresh_interval_s": 0}
    )


def test_the_lineage_graph_renders_and_leads_to_the_next_dataset(
    page: Page, live_app: LiveApp, engine: Engine, settings: Settings
) -> None:
    path = settings.warehouse_path
    assert path is not None
    quiet = Lineage(None, namespace="t", source=("sqlite:///x", "main."), warehouse_path=path)
    with DuckDbWarehouse(path) as target:
        build(engine, target, quiet, BuildOptions(base_currency="USD", full=True))

    live_app.sign_in(page, "/analytics/datasets/fact_work_order")
    expect(page.get_by_role("heading", level=1)).to_have_text("fact_work_order")
    graph = page.locator("svg#lineage-graph")
    expect(graph).to_be_visible()
    source = graph.locator('g[data-node="source:work_orders"]')
    expect(source).to_be_visible()
    expect(source.locator("text")).to_have_text("work_orders")
    expect(graph.locator('g[data-node="job:fact_work_order"] text')).to_have_text(
        "warehouse.fact_work_order"
    )
    # The graph is laid out left to right: source, job, the dataset, what reads it.
    box = {
        node: graph.locator(f'g[data-node="{node}"] rect').bounding_box()
        for node in (
            "source:work_orders",
            "job:fact_work_order",
            "dataset:fact_work_order",
            "dataset:rollup_work_order_asset_month",
        )
    }
    xs = [b["x"] for b in box.values() if b is not None]
    assert len(xs) == 4
    assert xs == sorted(xs)
    assert len(set(xs)) == 4
    expect(graph.locator("path.edge")).not_to_have_count(0)

    graph.locator('g[data-node="dataset:rollup_work_order_asset_month"] a').click()
    expect(page).to_have_url(re.compile(r"/analytics/datasets/rollup_work_order_asset_month$"))
    expect(page.get_by_role("heading", level=1)).to_have_text("rollup_work_order_asset_month")
    expect(
        page.locator('svg#lineage-graph g.focus[data-node="dataset:rollup_work_order_asset_month"]')
    ).to_be_visible()

    page.goto("/analytics/integration")
    chart = page.locator("#etl-durations")
    # plotly.js replaces the empty area with its SVG once it has drawn the figure.
    expect(chart.locator("svg.main-svg").first).to_be_visible()
