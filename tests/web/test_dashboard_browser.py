"""Self-service analytics in a real browser: build a question on the semantic model (filter rows,
a time range), run it, draw it as every chart type, save it, put it on a dashboard and see the
dashboard draw it; a question not shared with a role stays out of sight of that role; a
dashboard-wide site filter narrows a tile (and says where it does not apply); widgets move with
the buttons and by dragging (the head moves, the corner handle resizes, a drop on another widget
is refused), and only the owner gets the handles."""

from __future__ import annotations

import csv
import io
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from playwright.sync_api import Page, Request, expect

from analytics.semantic.cube_world import PLANT, quiet_lineage
from conftest import PASSWORD
from maintainpro.analytics.dashboards.records import Dashboard, SavedQuestion
from maintainpro.analytics.semantic.materialise import refresh
from maintainpro.analytics.semantic.model import default_model
from maintainpro.analytics.semantic.synthetic import populate
from maintainpro.analytics.warehouse import DuckDbWarehouse, connect
from maintainpro.config import Settings
from maintainpro.core.users import Role, User, hash_password

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


MONTHS = ("2025-11-01", "2026-01-31")
QUERY = {"measures": ["WorkOrders.count"], "dimensions": ["WorkOrders.type"]}


@pytest.fixture
def urgent_by_month_and_type(settings: Settings) -> dict[tuple[str, str], int]:
    """Urgent work orders per month and type in the three months, straight from the facts.

    Asked for before the live app starts: DuckDB refuses a second connection of another
    configuration to a file the app's process holds open.
    """
    assert settings.warehouse_path is not None
    connection = connect(settings.warehouse_path, read_only=True)
    try:
        rows = connection.execute(
            "SELECT strftime(date_trunc('month', created_at), '%Y-%m-%d'), type, count(*)"
            " FROM fact_work_order WHERE priority = 'urgent'"
            " AND created_at >= DATE '2025-11-01' AND created_at < DATE '2026-02-01'"
            " GROUP BY 1, 2"
        ).fetchall()
    finally:
        connection.close()
    return {(str(month), str(kind)): int(count) for month, kind, count in rows}


def _sign_in_as(page: Page, username: str, next_path: str) -> None:
    page.goto(f"/login?next={next_path}")
    page.fill("#username", username)
    page.fill("#password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"**{next_path}")


def _user(live_app: LiveApp, username: str, role: Role) -> int:
    with live_app.factory() as session, session.begin():
        user = User(username=username, role=role, password_hash=hash_password(PASSWORD))
        session.add(user)
        session.flush()
        return user.id


def test_filter_rows_a_time_range_and_every_chart_type_then_a_dashboard(
    urgent_by_month_and_type: dict[tuple[str, str], int], page: Page, live_app: LiveApp
) -> None:
    expected = urgent_by_month_and_type
    assert len(expected) == 12  # 3 months x 4 types
    with live_app.factory() as session, session.begin():
        owner = session.query(User).filter_by(username="ada").one()
        board = Dashboard(name="Plant board", owner_id=owner.id, layout=[], filters={})
        session.add(board)
        session.flush()
        board_id = board.id

    live_app.sign_in(page, "/analytics/questions/new")
    expect(page.locator("#cube option[value=WorkOrders]")).to_have_count(1)
    page.select_option("#cube", "WorkOrders")
    page.select_option("#measures", "WorkOrders.count")
    page.select_option("#dimensions", "WorkOrders.type")
    page.select_option("#time-dimension", "WorkOrders.createdAt")
    page.select_option("#granularity", "month")

    # Client-side checks first: an absolute range needs both dates; a filter row needs a value.
    page.select_option("#date-preset", "between")
    page.fill("#date-from", MONTHS[0])
    page.get_by_role("button", name="Add filter").click()
    page.get_by_label("Filter 1 member").select_option("WorkOrders.priority")
    page.get_by_role("button", name="Run").click()
    errors = page.locator("#builder-errors")
    expect(errors).to_contain_text("Give both dates of the range")
    expect(errors).to_contain_text("Filter 1: enter at least one value.")
    expect(page.locator(".filter-row[data-row='1'][data-invalid]")).to_have_count(1)

    page.fill("#date-to", MONTHS[1])
    page.get_by_label("Filter 1 values").fill("urgent")
    # A second row that would leave nothing (no type is called so), then removed again.
    page.get_by_role("button", name="Add filter").click()
    page.get_by_label("Filter 2 member").select_option("WorkOrders.type")
    page.get_by_label("Filter 2 operator").select_option("equals")
    page.get_by_label("Filter 2 values").fill("no such type")
    expect(page.locator(".filter-row")).to_have_count(2)
    page.get_by_role("button", name="Remove filter 2").click()
    expect(page.locator(".filter-row")).to_have_count(1)

    page.select_option("#chart-type", "line")
    page.get_by_role("button", name="Run").click()
    expect(page.locator("#builder-status")).to_contain_text("12 row(s) in", timeout=20_000)
    expect(errors).to_be_hidden()
    rows = page.locator("#result-table tbody tr")
    expect(rows).to_have_count(12)
    shown = {}
    for text in rows.all_inner_texts():
        month, kind, count = text.split("\t")
        shown[(month[:10], kind)] = int(count)
    assert shown == expected

    chart = page.locator("#result-chart")
    kinds = sorted({kind for _, kind in expected})
    # Line: one trace per type, across the three months.
    expect(chart.locator(".scatterlayer .trace")).to_have_count(len(kinds))
    expect(chart.locator(".legendtext", has_text="corrective")).to_have_count(1)
    # Bar and stacked: one bar trace per type, grouped or stacked.
    for kind, mode in (("bar", "group"), ("stacked", "stack")):
        page.select_option("#chart-type", kind)
        expect(chart).to_have_attribute("data-chart", kind)
        expect(chart.locator(".barlayer .trace")).to_have_count(len(kinds))
        expect(chart.locator(".barlayer .point")).to_have_count(12)
        assert chart.evaluate("node => node.layout.barmode") == mode
    # Heatmap: one image of months by types.
    page.select_option("#chart-type", "heatmap")
    expect(chart.locator("g.hm image")).to_have_count(1)
    assert chart.evaluate("node => node.data[0].z.length") == 3
    assert chart.evaluate("node => node.data[0].x") == kinds
    # Pivot: months down, types across, the counts in the cells.
    page.select_option("#chart-type", "pivot")
    expect(chart.locator("svg.main-svg")).to_have_count(0)
    pivot = chart.locator("table.pivot")
    expect(pivot.locator("thead th")).to_have_count(1 + len(kinds))
    expect(pivot.locator("tbody tr")).to_have_count(3)
    corrective = kinds.index("corrective") + 2  # the row header, then the types
    first = pivot.locator(f"tbody tr:first-child td:nth-child({corrective})")
    expect(first).to_have_text(str(expected[("2025-11-01", "corrective")]))
    # Table: no chart, the rows below.
    page.select_option("#chart-type", "table")
    expect(chart).to_be_hidden()
    expect(rows).to_have_count(12)

    page.select_option("#chart-type", "stacked")
    page.fill("#question-name", "Urgent work by month")
    page.select_option("#save-dashboard", str(board_id))
    page.get_by_role("button", name="Save question").click()
    expect(page.locator("#save-status")).to_contain_text("Added to Plant board.")
    expect(page.locator("#export-csv")).to_have_attribute("href", re.compile(r"export\.csv$"))
    href = page.locator("#export-csv").get_attribute("href")
    assert href is not None
    download = page.request.get(href)
    table = list(csv.reader(io.StringIO(download.body().decode("utf-8-sig"))))
    assert {(month[:10], kind): int(count) for month, kind, count in table[1:]} == expected
    with live_app.factory() as session:
        (question,) = session.query(SavedQuestion).all()
        assert question.chart == "stacked"
        assert question.query["filters"] == [
            {"member": "WorkOrders.priority", "operator": "equals", "values": ["urgent"]}
        ]
        assert question.query["timeDimensions"] == [
            {"dimension": "WorkOrders.createdAt", "granularity": "month", "dateRange": list(MONTHS)}
        ]

    page.get_by_role("link", name="Plant board").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Plant board")
    widget = page.locator(f".widget:has([data-question='{question.id}'])")
    expect(widget.get_by_role("heading", level=2)).to_have_text("Urgent work by month")
    plot = widget.locator(".widget-body")
    expect(plot.locator(".barlayer .point")).to_have_count(12, timeout=20_000)
    # A dashboard-wide range narrows every question: one month left.
    page.select_option("#filter-preset", "between")
    page.fill("#filter-from", "2025-12-01")
    page.fill("#filter-to", "2025-12-31")
    page.get_by_role("button", name="Apply").click()
    expect(plot.locator(".barlayer .point")).to_have_count(len(kinds))
    page.get_by_role("button", name="Save as the dashboard's filters").click()
    expect(page.locator("#dashboard-status")).to_have_text("Saved the dashboard's filters.")
    with live_app.factory() as session:
        saved = session.get(Dashboard, board_id)
        assert saved is not None
        assert saved.filters == {"dateRange": ["2025-12-01", "2025-12-31"]}
        assert [i["question_id"] for i in saved.layout] == [question.id]


def test_a_question_is_seen_by_the_roles_it_is_shared_with_only(
    page: Page, live_app: LiveApp
) -> None:
    analyst = _user(live_app, "ana", Role.ANALYST)
    _user(live_app, "tess", Role.TECHNICIAN)
    _user(live_app, "max", Role.MAINTENANCE_MANAGER)
    with live_app.factory() as session, session.begin():
        session.add_all(
            [
                SavedQuestion(
                    name="For technicians",
                    query=QUERY,
                    owner_id=analyst,
                    chart="bar",
                    shared_roles=["technician"],
                ),
                SavedQuestion(
                    name="Analyst only", query=QUERY, owner_id=analyst, chart="bar", shared_roles=[]
                ),
            ]
        )

    _sign_in_as(page, "tess", "/analytics/questions")
    names = page.locator("table.orders tbody td:first-child")
    expect(names).to_have_text(["For technicians"])
    page.get_by_role("link", name="For technicians").click()
    # The model, the question and its answer load one after the other: slow on a busy machine.
    expect(page.locator("#builder-status")).to_contain_text("row(s) in", timeout=20_000)
    expect(page.locator("#result-chart .barlayer .trace")).to_have_count(1)
    page.context.clear_cookies()

    _sign_in_as(page, "max", "/analytics/questions")
    expect(page.get_by_text("No saved questions yet.")).to_be_visible()
    expect(page.get_by_text("Analyst only")).to_have_count(0)
    expect(page.get_by_text("For technicians")).to_have_count(0)


def test_a_dashboard_is_composed_exported_and_imported(
    page: Page, live_app: LiveApp, tmp_path: Path
) -> None:
    with live_app.factory() as session, session.begin():
        question = SavedQuestion(
            name="Work by type", query=QUERY, owner_id=live_app.ids["user"], chart="bar"
        )
        board = Dashboard(name="Composed", owner_id=live_app.ids["user"], layout=[], filters={})
        session.add_all([question, board])
        session.flush()
        question_id, board_id = question.id, board.id

    live_app.sign_in(page, f"/analytics/dashboards/{board_id}")
    expect(page.get_by_text("This dashboard is empty")).to_be_visible()
    page.select_option("#question-pick", str(question_id))
    page.get_by_role("button", name="Add question").click()
    widget = page.locator(f".widget:has([data-question='{question_id}'])")
    # the four work order types
    expect(widget.locator(".barlayer .point")).to_have_count(4, timeout=20_000)
    page.select_option("#sensor-pick", str(live_app.ids["sensor"]))
    page.fill("#sensors-title", "Pump")
    page.get_by_role("button", name="Add live widget").click()
    sensors = page.locator(".widget:has([data-sensors])")
    expect(sensors.get_by_role("heading", level=2)).to_have_text("Pump")
    expect(sensors.locator(".live-values li")).to_have_text([re.compile("vibration")])
    with live_app.factory() as session:
        saved = session.get(Dashboard, board_id)
        assert saved is not None
        # The live widget took the free half of the first row, next to the question.
        assert [(i["kind"], i["x"], i["y"], i["w"], i["h"]) for i in saved.layout] == [
            ("question", 0, 0, 6, 4),
            ("sensors", 6, 0, 6, 4),
        ]

    with page.expect_download() as download_info:
        page.get_by_role("link", name="Export JSON").click()
    exported = tmp_path / "dashboard.json"
    download_info.value.save_as(exported)
    document = json.loads(exported.read_text())
    assert [i["kind"] for i in document["dashboard"]["layout"]] == ["question", "sensors"]

    page.get_by_role("button", name="Remove Pump").click()
    expect(page.locator(".widget")).to_have_count(1)
    with live_app.factory() as session:
        saved = session.get(Dashboard, board_id)
        assert saved is not None
        assert [i["kind"] for i in saved.layout] == ["question"]

    page.goto("/analytics/dashboards")
    not_json = tmp_path / "notes.json"
    not_json.write_text("these are not the dashboards you are looking for")
    page.set_input_files("#import-file", not_json)
    page.get_by_role("button", name="Import").click()
    expect(page.locator("#dashboards-status")).to_have_text(
        "Not imported: the file is not JSON (export a dashboard with Export JSON)"
    )
    page.set_input_files("#import-file", exported)
    page.get_by_role("button", name="Import").click()
    expect(page).not_to_have_url(re.compile(rf"/analytics/dashboards/({board_id})?$"))
    expect(page.get_by_role("heading", level=1)).to_have_text("Composed")
    expect(page.locator(".widget .barlayer .point")).to_have_count(4, timeout=20_000)
    expect(page.locator(".widget:has([data-sensors]) h2")).to_have_text("Pump")
    with live_app.factory() as session:
        assert session.query(Dashboard).count() == 2
        assert session.query(SavedQuestion).count() == 2


BY_SITE = {
    "measures": ["WorkOrders.count"],
    "dimensions": ["Assets.site"],
    "order": {"Assets.site": "asc"},
}


def test_a_site_filter_narrows_a_tile_and_the_owner_moves_widgets(
    page: Page, live_app: LiveApp
) -> None:
    owner = live_app.ids["user"]
    with live_app.factory() as session, session.begin():
        by_site = SavedQuestion(name="Work by site", query=BY_SITE, owner_id=owner, chart="table")
        spend = SavedQuestion(
            name="Spend", query={"measures": ["Spend.amount"]}, owner_id=owner, chart="table"
        )
        session.add_all([by_site, spend])
        session.flush()
        layout = [
            {"kind": "question", "question_id": by_site.id, "x": 0, "y": 0, "w": 6, "h": 4},
            {"kind": "question", "question_id": spend.id, "x": 6, "y": 0, "w": 6, "h": 4},
        ]
        board = Dashboard(name="Sites", owner_id=owner, layout=layout, filters={})
        session.add(board)
        session.flush()
        board_id, by_site_id, spend_id = board.id, by_site.id, spend.id

    live_app.sign_in(page, f"/analytics/dashboards/{board_id}")
    tile = page.locator(f".widget:has([data-question='{by_site_id}'])")
    other = page.locator(f".widget:has([data-question='{spend_id}'])")
    sites = tile.locator("tbody tr td:first-child")
    expect(sites).to_have_text(["S1", "S2"], timeout=20_000)
    expect(other.locator(".filter-note")).to_be_hidden()

    # A filter for this view only: one site's row left, and the spend tile says it is unfiltered.
    page.get_by_role("button", name="Add filter").click()
    page.get_by_label("Dashboard filter 1 member").select_option("Sites.code")
    page.get_by_role("button", name="Apply").click()
    expect(page.locator("#dashboard-status")).to_have_text(
        "Not refreshed: Filter 1: enter at least one value."
    )
    page.get_by_label("Dashboard filter 1 values").fill("S2")
    page.get_by_role("button", name="Apply").click()
    expect(sites).to_have_text(["S2"])
    expect(other.locator(".filter-note")).to_have_text("Filter not applicable: Sites: Site.")
    with live_app.factory() as session:
        unsaved = session.get(Dashboard, board_id)
        assert unsaved is not None
        assert unsaved.filters == {}
    page.get_by_role("button", name="Save as the dashboard's filters").click()
    expect(page.locator("#dashboard-status")).to_have_text("Saved the dashboard's filters.")
    with live_app.factory() as session:
        saved = session.get(Dashboard, board_id)
        assert saved is not None
        assert saved.filters == {
            "members": [{"member": "Sites.code", "operator": "equals", "values": ["S2"]}]
        }

    # Moving: down is free; left runs into the other tile and is refused; narrower is fine.
    page.get_by_role("button", name="Move Work by site down").click()
    expect(page.locator("#dashboard-status")).to_have_text("Moved \u201cWork by site\u201d.")
    page.get_by_role("button", name="Move Spend left").click()
    expect(page.locator("#dashboard-status")).to_have_text(
        "Not changed: another widget is in the way."
    )
    page.get_by_role("button", name="Make Spend narrower").click()
    expect(page.locator("#dashboard-status")).to_have_text("Resized \u201cSpend\u201d.")
    page.get_by_role("button", name="Move Spend right").click()
    expect(page.locator("#dashboard-status")).to_have_text("Moved \u201cSpend\u201d.")
    expect(other).to_have_css("grid-column-start", "8")
    with live_app.factory() as session:
        moved = session.get(Dashboard, board_id)
        assert moved is not None
        assert [(i["x"], i["y"], i["w"], i["h"]) for i in moved.layout] == [
            (0, 1, 6, 4),
            (7, 0, 5, 4),
        ]
        assert moved.filters == saved.filters

    # Opened afresh, the saved filter is in the bar and on the tile.
    page.reload()
    expect(page.get_by_label("Dashboard filter 1 values")).to_have_value("S2")
    expect(sites).to_have_text(["S2"], timeout=20_000)


@dataclass(frozen=True)
class Board:
    """A dashboard of two table questions: "Work by type" at (0, 0) 4x3, "Spend" at (6, 2) 4x3."""

    id: int
    work_id: int
    spend_id: int


# Tall enough for the grid's first ten rows: the mouse only reaches what is in the viewport.
TALL = {"width": 1280, "height": 1400}


def _board(live_app: LiveApp, shared_roles: list[str]) -> Board:
    owner = live_app.ids["user"]
    with live_app.factory() as session, session.begin():
        work = SavedQuestion(
            name="Work by type",
            query=QUERY,
            owner_id=owner,
            chart="table",
            shared_roles=shared_roles,
        )
        spend = SavedQuestion(
            name="Spend",
            query={"measures": ["Spend.amount"]},
            owner_id=owner,
            chart="table",
            shared_roles=shared_roles,
        )
        session.add_all([work, spend])
        session.flush()
        layout = [
            {"kind": "question", "question_id": work.id, "x": 0, "y": 0, "w": 4, "h": 3},
            {"kind": "question", "question_id": spend.id, "x": 6, "y": 2, "w": 4, "h": 3},
        ]
        board = Dashboard(
            name="Drag", owner_id=owner, layout=layout, filters={}, shared_roles=shared_roles
        )
        session.add(board)
        session.flush()
        return Board(board.id, work.id, spend.id)


def _places(page: Page, board_id: int) -> list[tuple[int, int, int, int]]:
    """The saved layout as the API gives it: (x, y, w, h) per item."""
    response = page.request.get(f"/api/v1/dashboards/{board_id}")
    assert response.ok, response.text()
    return [(i["x"], i["y"], i["w"], i["h"]) for i in response.json()["layout"]]


def _pitch(page: Page, board: Board) -> tuple[float, float]:
    """One column and one row step in pixels, measured from where the Spend widget is drawn."""
    grid = page.locator("#dashboard-grid").bounding_box()
    spend = page.locator(f".widget:has([data-question='{board.spend_id}'])").bounding_box()
    assert grid is not None
    assert spend is not None
    return (spend["x"] - grid["x"]) / 6, (spend["y"] - grid["y"]) / 2


def _centre(page: Page, selector: str) -> tuple[float, float]:
    page.locator(selector).scroll_into_view_if_needed()
    box = page.locator(selector).bounding_box()
    assert box is not None
    return box["x"] + box["width"] / 2, box["y"] + box["height"] / 2


def _press_and_move(page: Page, start: tuple[float, float], by: tuple[float, float]) -> None:
    """Press the mouse at start and move it by (dx, dy) pixels in small steps, still pressed."""
    page.mouse.move(*start)
    page.mouse.down()
    page.mouse.move(start[0] + by[0], start[1] + by[1], steps=12)


def _puts(page: Page) -> list[str]:
    """The URLs of the PUT requests the page sends from now on."""
    sent: list[str] = []

    def record(request: Request) -> None:
        if request.method == "PUT":
            sent.append(request.url)

    page.on("request", record)
    return sent


def test_the_owner_drags_a_widget_to_move_it_and_its_corner_to_resize_it(
    page: Page, live_app: LiveApp
) -> None:
    board = _board(live_app, [])
    page.set_viewport_size(TALL)
    live_app.sign_in(page, f"/analytics/dashboards/{board.id}")
    expect(page.locator("#dashboard-status")).to_contain_text(
        "Refreshed 2 question(s)", timeout=20_000
    )
    work = page.locator(f".widget:has([data-question='{board.work_id}'])")
    expect(page.locator(".widget-resize")).to_have_count(2)
    column, row = _pitch(page, board)
    puts = _puts(page)

    # Moved one column right and five rows down: the preview shows the snapped place meanwhile.
    head = f".widget:has([data-question='{board.work_id}']) .widget-head h2"
    _press_and_move(page, _centre(page, head), (column * 1.2, row * 4.8))
    preview = page.locator(".drop-preview")
    expect(preview).to_be_visible()
    expect(preview).not_to_have_class(re.compile("refused"))
    expect(preview).to_have_css("grid-column-start", "2")
    expect(preview).to_have_css("grid-row-start", "6")
    expect(work).to_have_class(re.compile("dragging"))
    assert puts == []  # nothing is saved while the pointer moves
    page.mouse.up()
    expect(page.locator("#dashboard-status")).to_have_text("Moved \u201cWork by type\u201d.")
    expect(preview).to_have_count(0)
    expect(work).to_have_css("grid-column-start", "2")
    expect(work).to_have_css("grid-row-start", "6")
    assert len(puts) == 1
    assert _places(page, board.id) == [(1, 5, 4, 3), (6, 2, 4, 3)]

    # Its corner handle dragged two columns right and one row down: 6 wide, 4 tall.
    corner = f".widget:has([data-question='{board.work_id}']) .widget-resize"
    _press_and_move(page, _centre(page, corner), (column * 2.2, row * 0.9))
    expect(preview).to_have_css("grid-column-end", "span 6")
    expect(preview).to_have_css("grid-row-end", "span 4")
    page.mouse.up()
    expect(page.locator("#dashboard-status")).to_have_text("Resized \u201cWork by type\u201d.")
    assert len(puts) == 2
    assert _places(page, board.id) == [(1, 5, 6, 4), (6, 2, 4, 3)]

    # A press on the head without a move is a click: nothing is saved.
    page.mouse.move(*_centre(page, head))
    page.mouse.down()
    page.mouse.up()
    page.get_by_role("button", name="Refresh").click()
    expect(page.locator("#dashboard-status")).to_contain_text("Refreshed 2 question(s)")
    assert len(puts) == 2

    # Opened afresh, the widget is where it was dropped, at the size it was given.
    page.reload()
    expect(work.locator("tbody tr").first).to_be_visible(timeout=20_000)
    expect(work).to_have_css("grid-column-start", "2")
    expect(work).to_have_css("grid-column-end", "span 6")
    expect(work).to_have_css("grid-row-start", "6")
    expect(work).to_have_css("grid-row-end", "span 4")
    with live_app.factory() as session:
        saved = session.get(Dashboard, board.id)
        assert saved is not None
        assert [(i["x"], i["y"], i["w"], i["h"]) for i in saved.layout] == [
            (1, 5, 6, 4),
            (6, 2, 4, 3),
        ]


def test_a_drop_onto_another_widget_is_refused_and_nothing_moves(
    page: Page, live_app: LiveApp
) -> None:
    board = _board(live_app, [])
    page.set_viewport_size(TALL)
    live_app.sign_in(page, f"/analytics/dashboards/{board.id}")
    status = page.locator("#dashboard-status")
    expect(status).to_contain_text("Refreshed 2 question(s)", timeout=20_000)
    spend = page.locator(f".widget:has([data-question='{board.spend_id}'])")
    before = spend.bounding_box()
    column, row = _pitch(page, board)
    puts = _puts(page)

    # Spend dragged onto Work by type: the preview is marked and says why while it is there.
    head = f".widget:has([data-question='{board.spend_id}']) .widget-head h2"
    _press_and_move(page, _centre(page, head), (-column * 5, -row * 2))
    preview = page.locator(".drop-preview")
    expect(preview).to_have_class(re.compile("refused"))
    expect(preview).to_have_text("Not here: another widget is in the way.")
    expect(preview).to_have_css("grid-column-start", "2")
    expect(preview).to_have_css("grid-row-start", "1")
    page.mouse.up()
    expect(status).to_have_text("Not moved: another widget is in the way.")
    expect(preview).to_have_count(0)
    # Back where it was.
    expect(spend).to_have_css("transform", "none")
    expect(spend).to_have_css("grid-column-start", "7")
    expect(spend).to_have_css("grid-row-start", "3")
    assert spend.bounding_box() == before

    # Work by type's corner dragged four columns right would cover Spend's first row.
    corner = f".widget:has([data-question='{board.work_id}']) .widget-resize"
    _press_and_move(page, _centre(page, corner), (column * 4, 0))
    expect(preview).to_have_class(re.compile("refused"))
    page.mouse.up()
    expect(status).to_have_text("Not resized: another widget is in the way.")

    # Esc gives up a drag to a free place: nothing is saved.
    _press_and_move(page, _centre(page, head), (0, row * 4))
    expect(preview).not_to_have_class(re.compile("refused"))
    page.keyboard.press("Escape")
    expect(status).to_have_text("Move cancelled.")
    expect(preview).to_have_count(0)
    page.mouse.up()

    assert puts == []
    assert _places(page, board.id) == [(0, 0, 4, 3), (6, 2, 4, 3)]


def test_a_viewer_gets_no_handles_and_cannot_drag(page: Page, live_app: LiveApp) -> None:
    board = _board(live_app, ["technician"])
    _user(live_app, "tess", Role.TECHNICIAN)
    _sign_in_as(page, "tess", f"/analytics/dashboards/{board.id}")
    expect(page.locator("#dashboard-status")).to_contain_text(
        "Refreshed 2 question(s)", timeout=20_000
    )
    work = page.locator(f".widget:has([data-question='{board.work_id}'])")
    expect(work.locator("tbody tr").first).to_be_visible()
    expect(page.locator(".widget")).to_have_count(2)
    expect(page.locator(".widget-resize")).to_have_count(0)
    expect(page.locator(".widget-editable")).to_have_count(0)
    expect(page.locator("#dashboard-drag-hint")).to_have_count(0)
    expect(page.get_by_role("button", name="Move Work by type down")).to_have_count(0)
    puts = _puts(page)

    _press_and_move(
        page,
        _centre(page, f".widget:has([data-question='{board.work_id}']) .widget-head h2"),
        (0, 300),
    )
    expect(page.locator(".drop-preview")).to_have_count(0)
    page.mouse.up()
    expect(work).to_have_css("grid-row-start", "1")
    assert puts == []
    assert _places(page, board.id) == [(0, 0, 4, 3), (6, 2, 4, 3)]
