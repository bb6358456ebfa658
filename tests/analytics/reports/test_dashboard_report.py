"""A dashboard as a report: each question tile a section under the dashboard's filters and the
recipient's sites, live sensor tiles as the latest values, the files and the e-mail."""

from __future__ import annotations

import csv
import datetime as dt
import io
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from analytics.reports.conftest import Clock
from analytics.reports.mail import attachments, html_of, messages_to, sheet_rows, text_of
from analytics.reports.report_world import (
    BERLIN,
    FEB_END,
    FEB_START,
    RUN_AT,
    World,
    email_recipient,
)
from analytics.reports.report_world import definition as make_definition
from maintainpro.analytics.dashboards.records import Dashboard, SavedQuestion
from maintainpro.analytics.dashboards.rules import with_date_range
from maintainpro.analytics.reports.data import ChartKind, ReportData, RunParams, SourceError
from maintainpro.analytics.reports.records import ReportRun, RunStatus
from maintainpro.analytics.reports.runner import ReportJobs
from maintainpro.analytics.reports.saved_query import with_period
from maintainpro.analytics.reports.sources import checked_params, source_for
from maintainpro.analytics.semantic.load import answer
from maintainpro.analytics.semantic.model import default_model
from maintainpro.analytics.semantic.plan import Access
from maintainpro.analytics.warehouse import DuckDbWarehouse
from maintainpro.config import Settings
from maintainpro.core.users import ROLE_PERMISSIONS, Role, User
from maintainpro.iot.devices import Device, Protocol, Sensor
from maintainpro.iot.timeseries import ReadingRow, to_ms, write_readings
from peers import Inbox
from support import bearer

BY_SITE: dict[str, Any] = {
    "measures": ["WorkOrders.count"],
    "dimensions": ["Assets.site"],
    "timeDimensions": [{"dimension": "WorkOrders.createdAt"}],
    "order": {"Assets.site": "asc"},
}
SPEND: dict[str, Any] = {"measures": ["Spend.lines"]}
FEBRUARY = ["2026-02-01", "2026-02-28"]
JAN_START = dt.datetime(2025, 12, 31, 23, 0, tzinfo=dt.UTC)  # 1 January 00:00 Berlin
SITE_A_KEY = 1  # S1 in the synthetic plant; the world's first site has the same id
HOSTILE = '<img src=x onerror="alert(1)">'
MakeUser = Any


def semantic(settings: Settings, query: dict[str, Any], scope: frozenset[int] | None) -> list[Any]:
    """The semantic layer's own rows for a query, asked directly."""
    with DuckDbWarehouse(settings.warehouse_path) as target:  # type: ignore[arg-type]
        result = answer(
            target.connection,
            default_model(),
            query,
            Access(ROLE_PERMISSIONS[Role.ANALYST], scope),
            today=RUN_AT.date(),
        )
    return [(r["Assets.site"], r["WorkOrders.count"]) for r in result.body["data"]]


def question(db: Session, name: str, query: dict[str, Any], chart: str, owner: int) -> int:
    """A saved question (committed); its id."""
    row = SavedQuestion(name=name, query=query, chart=chart, owner_id=owner, shared_roles=[])
    db.add(row)
    db.commit()
    return row.id


def dashboard(db: Session, owner: int, layout: list[dict[str, Any]], date_range: Any = None) -> int:
    """A dashboard (committed); its id."""
    filters = {"dateRange": date_range} if date_range is not None else {}
    row = Dashboard(name="Plant", layout=layout, filters=filters, owner_id=owner, shared_roles=[])
    db.add(row)
    db.commit()
    return row.id


def tile(question_id: int, x: int, y: int) -> dict[str, Any]:
    """A question tile of the grid."""
    return {"kind": "question", "question_id": question_id, "x": x, "y": y, "w": 6, "h": 4}


def run_for(
    db: Session,
    settings: Settings,
    owner_id: int,
    options: dict[str, Any],
    scope: frozenset[int] | None,
    start: dt.datetime = FEB_START,
) -> ReportData:
    """The dashboard source run as the owner for a period ending with February."""
    owner = db.get(User, owner_id)
    assert owner is not None
    params = RunParams(
        start,
        FEB_END,
        BERLIN,
        RUN_AT,
        "Plant dashboard",
        source_for("dashboard").check(options),
        settings=settings,
        permissions=owner.permissions,
        owner=owner,
    )
    return source_for("dashboard").run(db, params, scope)


@pytest.fixture
def plant_dashboard(db: Session, world: World) -> dict[str, int]:
    """Head office's dashboard: work orders by site (bar), spend lines (table) and an admin's
    question head office may not open; filtered to February."""
    owner = world.head_office
    by_site = question(db, "Work orders by site", BY_SITE, "bar", owner)
    spend = question(db, "Spend lines", SPEND, "table", owner)
    private = question(db, "Admin only", BY_SITE, "bar", world.admin)
    # Stored out of order: the report reads the grid top to bottom, left to right.
    layout = [tile(spend, 0, 4), tile(private, 6, 0), tile(by_site, 0, 0)]
    board = dashboard(db, owner, layout, FEBRUARY)
    return {"dashboard": board, "by_site": by_site, "spend": spend, "private": private}


def test_each_question_tile_is_a_section_under_the_dashboard_filter(
    db: Session, world: World, warehouse_settings: Settings, plant_dashboard: dict[str, int]
) -> None:
    options = {"dashboard_id": plant_dashboard["dashboard"]}
    # The report's period is January, but the dashboard's own filter (February) applies.
    data = run_for(db, warehouse_settings, world.head_office, options, None, start=JAN_START)
    assert [t.name for t in data.tables] == ["01-work-orders-by-site", "03-spend-lines"]
    assert [t.title for t in data.tables] == ["Work orders by site", "Spend lines"]
    february = semantic(warehouse_settings, with_date_range(BY_SITE, FEBRUARY), None)
    assert [tuple(r) for r in data.tables[0].rows] == february
    assert len(february) > 1
    # A bar tile gets a chart of its own table; a table tile none.
    assert [(c.table, c.kind) for c in data.charts] == [("01-work-orders-by-site", ChartKind.BAR)]
    assert any("Tile 2" in n and "not shared" in n for n in data.notes)
    assert any("dashboard's filter" in n for n in data.notes)
    total = next(f for f in data.summary if f.label == "Work orders by site: Work orders (total)")
    assert total.value == sum(count for _, count in february)
    # With use_period the report's period wins over the dashboard's filter.
    options["use_period"] = True
    january = run_for(db, warehouse_settings, world.head_office, options, None, start=JAN_START)
    expected = semantic(warehouse_settings, with_period(BY_SITE, JAN_START, FEB_END), None)
    assert [tuple(r) for r in january.tables[0].rows] == expected
    assert expected != february


def test_a_site_recipient_sees_its_site_in_every_section(
    db: Session, world: World, warehouse_settings: Settings, plant_dashboard: dict[str, int]
) -> None:
    assert world.site_a == SITE_A_KEY
    scope = frozenset({world.site_a})
    options = {"dashboard_id": plant_dashboard["dashboard"]}
    data = run_for(db, warehouse_settings, world.head_office, options, scope)
    by_site, spend = data.tables
    expected = semantic(warehouse_settings, with_date_range(BY_SITE, FEBRUARY), scope)
    assert [tuple(r) for r in by_site.rows] == expected
    assert [r[0] for r in by_site.rows] == ["S1"]
    # Spend belongs to no site: a site recipient gets no rows and a note saying why.
    assert spend.rows == ()
    assert any(n.startswith("Spend lines:") and "no single site" in n for n in data.notes)


def test_the_dashboards_member_filters_narrow_the_sections_they_apply_to(
    db: Session, world: World, warehouse_settings: Settings, plant_dashboard: dict[str, int]
) -> None:
    board = db.get(Dashboard, plant_dashboard["dashboard"])
    assert board is not None
    board.filters = {
        "dateRange": FEBRUARY,
        "members": [{"member": "Sites.code", "operator": "equals", "values": ["S1"]}],
    }
    db.commit()
    options = {"dashboard_id": plant_dashboard["dashboard"]}
    data = run_for(db, warehouse_settings, world.head_office, options, None)
    by_site, _spend = data.tables
    everything = semantic(warehouse_settings, with_date_range(BY_SITE, FEBRUARY), None)
    # As on the page: the site filter narrows work orders to S1 ...
    assert [tuple(r) for r in by_site.rows] == [r for r in everything if r[0] == "S1"]
    assert len(everything) > len(by_site.rows)
    assert any(n == "Filters: Sites.code is S1." for n in data.notes)
    # ... and spend, which no site reaches, says the filter does not apply instead.
    assert any(n.startswith("Spend lines:") and "does not apply" in n for n in data.notes)
    # A recipient of site B asking through an S1 filter gets nothing of S1 (never wider).
    site_b = frozenset({world.site_b})
    narrowed = run_for(db, warehouse_settings, world.head_office, options, site_b)
    assert narrowed.tables[0].rows == ()


def _sensor(db: Session, key: str, asset_id: int | None, name: str) -> int:
    device = Device(key=key, name=f"Gateway {key}", protocol=Protocol.MQTT, asset_id=asset_id)
    db.add(device)
    db.flush()
    sensor = Sensor(device_id=device.id, key="temp", name=name, type="temperature", unit="°C")
    db.add(sensor)
    db.flush()
    return sensor.id


def test_live_sensor_tiles_show_the_latest_values_of_the_recipients_sites(
    db: Session, world: World, settings: Settings
) -> None:
    on_a = _sensor(db, "gw-a", world.assets["PA-1"], "Bearing temperature")
    on_b = _sensor(db, "gw-b", world.assets["PB-1"], "Motor temperature")
    loose = _sensor(db, "gw-x", None, "Lab probe")
    old, new = (
        dt.datetime(2026, 2, 27, 8, tzinfo=dt.UTC),
        dt.datetime(2026, 2, 28, 9, tzinfo=dt.UTC),
    )
    write_readings(
        db.connection(),
        [
            ReadingRow(on_a, to_ms(old), 61.5, 0),
            ReadingRow(on_a, to_ms(new), 64.25, 1),
            ReadingRow(on_b, to_ms(old), 40.0, 0),
        ],
    )
    db.commit()
    widget = {"kind": "sensors", "sensor_ids": [on_b, on_a, loose], "title": "Temperatures"}
    board = dashboard(db, world.head_office, [{**widget, "x": 0, "y": 0, "w": 12, "h": 3}])
    # No question tiles: the warehouse is never opened (these settings have none).
    every = run_for(db, settings, world.head_office, {"dashboard_id": board}, None)
    (table,) = every.tables
    assert table.title == "Temperatures"
    values = [(r[0], r[3], r[5], r[6]) for r in table.rows]
    assert values == [
        ("Motor temperature", 40.0, old, "good"),
        ("Bearing temperature", 64.25, new, "uncertain"),
        ("Lab probe", None, None, None),
    ]
    assert any("latest reading" in n for n in every.notes)
    scope = frozenset({world.site_a})
    site_a = run_for(db, settings, world.head_office, {"dashboard_id": board}, scope)
    assert [r[0] for r in site_a.tables[0].rows] == ["Bearing temperature"]


def test_the_dashboard_goes_out_as_sections_in_every_format_and_a_safe_html_summary(
    session_factory: sessionmaker[Session],
    db: Session,
    world: World,
    warehouse_settings: Settings,
    smtp: tuple[Inbox, Settings],
    plant_dashboard: dict[str, int],
) -> None:
    inbox, mail_settings = smtp
    settings = mail_settings.model_copy(
        update={"warehouse_path": warehouse_settings.warehouse_path}
    )
    hostile = db.get(SavedQuestion, plant_dashboard["by_site"])
    assert hostile is not None
    hostile.name = f"{HOSTILE} by site"
    db.commit()
    report = make_definition(
        db,
        world,
        "dashboard",
        name=f"Plant {HOSTILE}",
        params={"dashboard_id": plant_dashboard["dashboard"]},
        formats=("pdf", "xlsx", "csv"),
        owner_id=world.head_office,
    )
    email_recipient(db, report, user_id=world.manager_a)
    run_id = ReportJobs(session_factory, settings, clock=Clock(RUN_AT)).run_now(report)
    with session_factory() as session:
        run = session.get(ReportRun, run_id)
        assert run is not None
        assert run.status is RunStatus.SUCCEEDED, run.error
    message = messages_to(inbox)["manager-a@plant.example"]
    files = attachments(message)
    by_name = {
        part.get_filename() or "": part.get_payload(decode=True)
        for part in message.walk()
        if part.get_filename()
    }
    expected = semantic(warehouse_settings, with_date_range(BY_SITE, FEBRUARY), frozenset({1}))
    # XLSX: the summary, then a sheet per question tile in reading order.
    xlsx = files["xlsx"][1]
    summary_sheet, by_site_sheet, spend_sheet = _sheets(xlsx)
    assert (summary_sheet, spend_sheet) == ("Summary", "Spend lines")
    assert by_site_sheet.startswith("<img src=x")
    assert sheet_rows(xlsx, by_site_sheet)[1:] == expected
    assert len(sheet_rows(xlsx, spend_sheet)) == 1  # the header: no rows for one site
    # CSV: one file per tile, named by its position and title.
    tails = sorted(n.rsplit("_", 1)[-1] for n in by_name if n.endswith(".csv"))
    assert tails == ["01-img-src-x-onerror-alert-1-by-site.csv", "03-spend-lines.csv"]
    (first_csv,) = [
        v for n, v in by_name.items() if n.endswith("_01-img-src-x-onerror-alert-1-by-site.csv")
    ]
    assert isinstance(first_csv, bytes)
    rows = list(csv.reader(io.StringIO(first_csv.decode("utf-8-sig"))))
    assert [(r[0], int(r[1])) for r in rows[1:]] == expected
    # PDF: each section's title is printed (escaped as text, not read as markup).
    pdf = files["pdf"][1]
    assert b"Spend lines" in pdf
    assert b"onerror" in pdf
    # The HTML alternative: the names are text, never markup; the link goes to the hub.
    page = html_of(message)
    assert HOSTILE not in page
    assert "&lt;img src=x onerror=&quot;alert(1)&quot;&gt; by site" in page
    assert f'href="{settings.public_url}/reports/{report}"' in page
    assert f">{expected[0][1]:,}</td>" in page  # the first section's first row, in a cell
    text = text_of(message)
    assert HOSTILE in text  # plain text carries the name as it is
    assert f"{settings.public_url}/reports/{report}" in text


def _sheets(xlsx: bytes) -> list[str]:
    import openpyxl

    return list(openpyxl.load_workbook(io.BytesIO(xlsx)).sheetnames)


@pytest.mark.parametrize(
    ("options", "problem"),
    [
        ({}, "needs dashboard_id"),
        ({"dashboard_id": "3; DROP TABLE dashboards"}, "needs dashboard_id"),
        ({"dashboard_id": True}, "needs dashboard_id"),
        ({"dashboard_id": 0}, "needs dashboard_id"),
        ({"dashboard_id": 1, "use_period": "yes"}, "use_period"),
        ({"dashboard_id": 1, "query": {}}, "takes the options"),
    ],
)
def test_bad_dashboard_options_are_refused(options: dict[str, Any], problem: str) -> None:
    with pytest.raises(SourceError, match=problem):
        checked_params("dashboard", options)


def test_only_a_dashboard_the_author_may_open_is_a_source(
    client: TestClient,
    db: Session,
    world: World,
    make_user: MakeUser,
    session_factory: sessionmaker[Session],
    settings: Settings,
) -> None:
    analyst, token = make_user(Role.ANALYST)
    headers = bearer(token)
    theirs = dashboard(db, world.admin, [])
    mine = dashboard(db, analyst.id, [])
    url = "/api/v1/reports"
    refused = client.post(
        url,
        json={"name": "Not mine", "source": "dashboard", "params": {"dashboard_id": theirs}},
        headers=headers,
    )
    assert refused.status_code == 422
    assert "no dashboard you may open" in refused.json()["detail"]
    missing = {"name": "Gone", "source": "dashboard", "params": {"dashboard_id": 999_999}}
    assert client.post(url, json=missing, headers=headers).status_code == 422
    hostile = {"name": "Bad", "source": "dashboard", "params": {"dashboard_id": HOSTILE}}
    answer_ = client.post(url, json=hostile, headers=headers)
    assert answer_.status_code == 422
    assert HOSTILE not in answer_.text
    made = client.post(
        url,
        json={"name": "Mine", "source": "dashboard", "params": {"dashboard_id": mine}},
        headers=headers,
    )
    assert made.status_code == 201, made.text
    assert made.json()["params"] == {
        "period": "previous_month",
        "dashboard_id": mine,
        "use_period": False,
    }
    # The dashboard removed later: the run fails at once with the reason, not retried.
    report_id = made.json()["id"]
    email_recipient(db, report_id, address="hq@plant.example")
    removed = db.get(Dashboard, mine)
    db.delete(removed)
    db.commit()
    run_id = ReportJobs(session_factory, settings, clock=Clock(RUN_AT)).run_now(report_id)
    with session_factory() as session:
        run = session.get(ReportRun, run_id)
        assert run is not None
        assert (run.status, run.attempts) == (RunStatus.FAILED, 1)
        assert "does not exist or is not shared" in (run.error or "")
