"""Self-service analytics in a real browser: build a question on the semantic model, run it,
save it, put it on a new dashboard and see the dashboard draw it."""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from playwright.sync_api import Page, expect

from analytics.semantic.cube_world import PLANT, quiet_lineage
from maintainpro.analytics.dashboards.records import Dashboard, SavedQuestion
from maintainpro.analytics.semantic.materialise import refresh
from maintainpro.analytics.semantic.model import default_model
from maintainpro.analytics.semantic.synthetic import populate
from maintainpro.analytics.warehouse import DuckDbWarehouse
from maintainpro.config import Settings

if TYPE_CHECKING:
    from browser_support import LiveApp

pytest_plugins = ["browser_support"]
pytestmark = pytest.mark.integration


@pytest.fixture
def settings(settings: Settings, tmp_path: Path) -> Settings:
    """The test settings with a synthetic plant's warehouse, its cubes refreshed."""
    path = tmp_path / "warehouse.duckdb"
    with DuckDbWarehouse(path) as target:
        target.ensure_schema()
        populate(target.connection, PLANT)
        results = refresh(target.connection, default_model(), quiet_lineage(path))
    assert [r.error for r in results if r.status != "completed"] == []
    # The live app runs background jobs: its warehouse refresh would replace the synthetic plant
    # with the (nearly empty) operational data while the test queries it.
    return settings.model_copy(update={"warehouse_path": path, "warehouse_refresh_interval_s": 0})


def test_a_question_is_built_saved_and_drawn_on_a_new_dashboard(
    page: Page, live_app: LiveApp
) -> None:
    live_app.sign_in(page, "/analytics/questions/new")
    expect(page.get_by_role("heading", level=1)).to_have_text("Question builder")
    expect(page.locator("#cube option[value=WorkOrders]")).to_have_count(1)
    page.select_option("#cube", "WorkOrders")
    page.select_option("#measures", "WorkOrders.count")
    page.select_option("#dimensions", "WorkOrders.type")
    page.select_option("#chart-type", "bar")
    page.get_by_role("button", name="Run").click()
    expect(page.locator("#builder-status")).to_contain_text("row(s) in")
    table = page.locator("#result-table table")
    expect(table.locator("th", has_text="Type")).to_have_count(1)
    rows = table.locator("tbody tr")
    expect(rows.first).to_be_visible()
    types = {row.split("\t")[0] for row in rows.all_inner_texts()}
    assert "corrective" in types
    chart = page.locator("#result-chart")
    expect(chart.locator("svg.main-svg").first).to_be_visible()
    expect(chart.locator(".xtick", has_text="corrective")).to_have_count(1)

    page.fill("#question-name", "Work orders by type")
    page.get_by_label("technician").check()
    page.get_by_role("button", name="Save question").click()
    expect(page.locator("#save-status")).to_have_text(
        "Saved question \u201cWork orders by type\u201d."
    )
    with live_app.factory() as session:
        (question,) = session.query(SavedQuestion).all()
        assert question.query["measures"] == ["WorkOrders.count"]
        assert question.query["dimensions"] == ["WorkOrders.type"]
        assert question.shared_roles == ["technician"]

    page.goto("/analytics/dashboards")
    page.fill("#dashboard-name", "Maintenance overview")
    page.get_by_role("button", name="Create dashboard").click()
    expect(page).to_have_url(re.compile(r"/analytics/dashboards/\d+$"))
    expect(page.get_by_role("heading", level=1)).to_have_text("Maintenance overview")
    page.select_option("#question-pick", str(question.id))
    page.get_by_role("button", name="Add question").click()
    widget = page.locator(f".widget:has([data-question='{question.id}'])")
    expect(widget.get_by_role("heading", level=2)).to_have_text("Work orders by type")
    expect(widget.locator("svg.main-svg").first).to_be_visible()
    expect(page.locator("#dashboard-status")).to_contain_text("Refreshed 1 question(s)")

    # Opened afresh, the saved dashboard draws the question again.
    page.reload()
    expect(widget.locator(".xtick", has_text="corrective")).to_have_count(1)
    with live_app.factory() as session:
        (board,) = session.query(Dashboard).all()
        assert [i["question_id"] for i in board.layout] == [question.id]
        assert board.refresh_s == 60
