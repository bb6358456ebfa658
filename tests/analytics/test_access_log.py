"""The durable BI access audit: every OData read, export and feed connection becomes a
``bi_access_log`` row; the connections view is computed from the table and survives a restart;
the audit API filters, pages and downloads; retention purges (SQLite and PostgreSQL)."""

from __future__ import annotations

import csv
import datetime as dt
import io
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, delete, func, inspect, select
from sqlalchemy.orm import Session, sessionmaker

from analytics.odata.odata_world import two_sites
from maintainpro.analytics.access import AccessEvent, AccessLedger, access_ledger, record_access
from maintainpro.analytics.access_log import (
    MAX_ERROR_TEXT,
    MAX_LOGGED_VALUE,
    MAX_OPTIONS,
    AccessLogWriter,
    BiAccessRecord,
    audit_row,
    purge_access_log,
    write_rows,
)
from maintainpro.analytics.lineage import lineage_for
from maintainpro.analytics.runs import BuildOptions, build
from maintainpro.analytics.warehouse import DuckDbWarehouse
from maintainpro.app import create_app
from maintainpro.config import Settings
from maintainpro.core.db import build_engine, build_session_factory
from maintainpro.core.users import Role, User
from support import bearer

API = "/api/v1/analytics/access-log"
PROBLEM = "application/problem+json"
T0 = dt.datetime(2026, 3, 1, 12, 0, tzinfo=dt.UTC)


@pytest.fixture
def settings(settings: Settings, tmp_path: Path) -> Settings:
    """The test settings with this test's warehouse, and a quick stream heartbeat."""
    return settings.model_copy(
        update={
            "warehouse_path": tmp_path / "warehouse.duckdb",
            "lineage_file": tmp_path / "lineage.jsonl",
            "feed_heartbeat_s": 0.05,
        }
    )


@pytest.fixture
def world(db: Session) -> dict[str, int]:
    """Sites A and B in the operational database."""
    ids: dict[str, int] = two_sites(db)
    return ids


@pytest.fixture
def built(engine: Engine, world: dict[str, int], settings: Settings, tmp_path: Path) -> Path:
    """The warehouse built from both sites by the ETL (where the settings point the app)."""
    path = tmp_path / "warehouse.duckdb"
    with DuckDbWarehouse(path) as target:
        records = build(
            engine,
            target,
            lineage_for(settings, path),
            BuildOptions(base_currency="USD", full=True),
        )
    assert all(r.status == "completed" for r in records)
    return path


def audit_rows(factory: sessionmaker[Session]) -> list[BiAccessRecord]:
    """Every audit row, oldest first."""
    with factory() as session:
        return list(session.scalars(select(BiAccessRecord).order_by(BiAccessRecord.id)))


def event(user: User | None, **fields: Any) -> AccessEvent:
    """An OData access by a user (or by nobody yet known), with fields overridden."""
    base: dict[str, Any] = {
        "channel": "odata",
        "dataset": "fact_alert",
        "user_id": user.id if user else None,
        "username": user.username if user else None,
        "credential_id": 3,
        "credential_name": "power bi",
        "options": {"$filter": "x eq 1"},
        "rows": 10,
        "duration_ms": 12.5,
        "status": 200,
        "at": T0,
    }
    base.update(fields)
    return AccessEvent(**base)


@pytest.fixture
def app_client(settings: Settings, engine: Engine) -> Iterator[TestClient]:
    """A client on a fresh app (its lifespan runs, so shutdown drains the audit queue)."""
    with TestClient(create_app(settings)) as client:
        yield client


def ledger_of(client: TestClient) -> AccessLedger:
    """The client's app's ledger."""
    return access_ledger(client.app.state)  # type: ignore[attr-defined]


def test_an_odata_read_an_export_and_a_feed_connection_each_leave_a_row(
    app_client: TestClient,
    built: Path,
    world: dict[str, int],
    make_user: Any,
    session_factory: sessionmaker[Session],
) -> None:
    analyst, token = make_user(Role.ANALYST, "analyst-a", site_id=world["site_a"])
    odata = app_client.get("/odata/dim_site?$select=site_key", headers=bearer(token))
    assert odata.status_code == 200
    export = app_client.get("/api/v1/exports/dim_site.csv", headers=bearer(token))
    assert export.status_code == 200
    with app_client.websocket_connect(f"/api/v1/stream/ws?access_token={token}") as ws:
        assert ws.receive_json()["type"] == "heartbeat"
        ws.close()
    ledger_of(app_client).flush()

    rows = {r.channel: r for r in audit_rows(session_factory)}
    assert set(rows) == {"odata", "export", "stream.ws"}
    for row in rows.values():
        assert (row.user_id, row.username) == (analyst.id, "analyst-a")
        assert (row.status, row.outcome, row.error) == (200, "ok", None)
        assert row.at.tzinfo is not None
    # A site-bound analyst sees their own site only, and the row says so.
    assert rows["odata"].rows == len(odata.json()["value"]) == 1
    assert rows["odata"].options == {"$select": "site_key"}
    assert (rows["odata"].dataset, rows["odata"].credential_name) == ("dim_site", "test")
    exported = list(csv.reader(io.StringIO(export.content.decode("utf-8-sig"))))
    assert rows["export"].rows == len(exported) - 1 == 1
    assert rows["export"].dataset == "dim_site"
    assert rows["stream.ws"].options["via"] == "query"
    assert rows["stream.ws"].credential_name == "test"


def test_refusals_are_logged_with_outcome_error(
    app_client: TestClient,
    built: Path,
    world: dict[str, int],
    make_user: Any,
    session_factory: sessionmaker[Session],
) -> None:
    analyst, token = make_user(Role.ANALYST, "analyst-a", site_id=world["site_a"])
    # Spend holds every site's rows: a site-bound analyst is refused.
    assert app_client.get("/odata/fact_spend", headers=bearer(token)).status_code == 403
    assert app_client.get("/odata/dim_site", headers=bearer("mpt_wrong")).status_code == 401
    assert app_client.get("/api/v1/stream?access_token=mpt_wrong").status_code == 401
    ledger_of(app_client).flush()

    rows = audit_rows(session_factory)
    assert [(r.channel, r.status, r.outcome) for r in rows] == [
        ("odata", 403, "error"),
        ("odata", 401, "error"),
        ("stream.sse", 401, "error"),
    ]
    site_refusal, bad_odata_token, bad_feed_token = rows
    assert (site_refusal.user_id, site_refusal.dataset) == (analyst.id, "fact_spend")
    assert site_refusal.error is not None
    assert "every site" in site_refusal.error
    assert (bad_odata_token.user_id, bad_odata_token.username) == (None, None)
    assert bad_feed_token.user_id is None
    assert bad_feed_token.error
    # The connections view counts the known user's refusal; anonymous ones stay in the log.
    (connection,) = ledger_of(app_client).connections()
    assert (connection.user_id, connection.errors, connection.last_status) == (analyst.id, 1, 403)


def test_the_connections_view_survives_a_restart(
    settings: Settings, engine: Engine, built: Path, world: dict[str, int], make_user: Any
) -> None:
    analyst, token = make_user(Role.ANALYST, "analyst-all")
    with TestClient(create_app(settings)) as first:
        for _ in range(3):
            assert first.get("/odata/dim_site", headers=bearer(token)).status_code == 200
        assert (
            first.get("/odata/dim_site?$filter=bad bad", headers=bearer(token)).status_code == 400
        )
        before = ledger_of(first).connections("odata")
    # A new app on the same database: no queue, no memory of the first one.
    with TestClient(create_app(settings)) as second:
        after = ledger_of(second).connections("odata")
    assert after == before
    (stats,) = after
    assert (stats.user_id, stats.requests, stats.errors, stats.rows_served) == (analyst.id, 4, 1, 6)
    assert (stats.last_status, stats.last_dataset) == (400, "dim_site")
    assert stats.last_error is not None
    assert stats.last_error_at == stats.last_access
    assert stats.first_access <= stats.last_access


def test_rows_are_written_off_the_request_and_drained_at_shutdown(
    settings: Settings, engine: Engine, make_user: Any, session_factory: sessionmaker[Session]
) -> None:
    user, _ = make_user(Role.ANALYST)
    with TestClient(create_app(settings)) as client:
        ledger = ledger_of(client)
        for n in range(2000):
            record_access(ledger, event(user, rows=n))
    # The app's shutdown wrote every queued row before it ended.
    with session_factory() as session:
        assert session.scalar(select(func.count()).select_from(BiAccessRecord)) == 2000
        assert session.scalar(select(func.sum(BiAccessRecord.rows))) == sum(range(2000))
    assert ledger.writer.written == 2000


def test_a_failing_audit_write_never_fails_the_request(
    app_client: TestClient,
    built: Path,
    make_user: Any,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    _, token = make_user(Role.ANALYST)
    # A database without the audit table: every write fails.
    broken = build_engine(f"sqlite:///{tmp_path / 'empty.db'}")
    app_client.app.state.analytics_access = AccessLedger(build_session_factory(broken))  # type: ignore[attr-defined]
    caplog.set_level(logging.INFO, logger="maintainpro.analytics")
    response = app_client.get("/odata/dim_site", headers=bearer(token))
    assert response.status_code == 200
    ledger = ledger_of(app_client)
    assert ledger.flush()
    assert ledger.writer.written == 0
    messages = [r.getMessage() for r in caplog.records]
    assert "bi access audit rows not written" in messages
    assert "bi feed access" in messages  # the log line still holds the event
    broken.dispose()


def test_a_row_of_a_user_deleted_meanwhile_keeps_the_username(
    settings: Settings, engine: Engine, make_user: Any
) -> None:
    kept, _ = make_user(Role.ANALYST, "kept")
    gone, _ = make_user(Role.ANALYST, "gone")
    # An engine of its own: every new SQLite connection enforces foreign keys.
    own = build_engine(settings.database_url)
    factory = build_session_factory(own)
    writer = AccessLogWriter(factory)
    writer.submit(event(kept))
    assert writer.close()
    with factory() as session, session.begin():
        session.execute(delete(User).where(User.id == gone.id))
    # Queued before the deletion, written after it.
    assert write_rows(factory, [audit_row(event(kept)), audit_row(event(gone))]) == 2
    with factory() as session, session.begin():
        session.execute(delete(User).where(User.id == kept.id))
    rows = audit_rows(factory)
    own.dispose()
    assert [(r.user_id, r.username) for r in rows] == [
        (None, "kept"),
        (None, "kept"),
        (None, "gone"),
    ]


def test_one_odd_event_does_not_cost_its_batch(
    session_factory: sessionmaker[Session], make_user: Any
) -> None:
    user, _ = make_user(Role.ANALYST)
    writer = AccessLogWriter(session_factory)
    writer.submit(event(user, dataset="naive", at=dt.datetime(2026, 3, 1, 12, 0)))
    writer.submit(event(user, dataset="huge", rows=2**70))
    writer.submit(event(user, dataset="plain"))
    assert writer.close()
    rows = audit_rows(session_factory)
    assert [(r.dataset, r.at) for r in rows] == [("naive", T0), ("huge", T0), ("plain", T0)]
    assert rows[1].rows == 2**63 - 1
    assert writer.written == 3


def test_hostile_option_values_are_clipped_and_stored_verbatim(
    session_factory: sessionmaker[Session], make_user: Any
) -> None:
    user, _ = make_user(Role.ANALYST)
    hostile = {
        "$filter": "x" * 5000,
        "sql": "'); DROP TABLE bi_access_log; --",
        "html": '<script>alert("x")</script>',
        "formula": '=HYPERLINK("http://evil")',
        "nul": "a\x00b",
        "surrogate": "a\udc80b",
        "unicode": "Zürich ✓ 配管\nnext line",
        "n" * 300: "long name",
        **{f"extra{i}": str(i) for i in range(80)},
    }
    ledger = AccessLedger(session_factory)
    record_access(ledger, event(user, options=hostile, error="e" * 5000 + "\x00"))
    ledger.close()
    (row,) = audit_rows(session_factory)
    assert len(row.options) == MAX_OPTIONS
    assert row.options["$filter"] == "x" * MAX_LOGGED_VALUE + "…"
    assert row.options["sql"] == hostile["sql"]
    assert row.options["html"] == hostile["html"]
    assert row.options["formula"] == hostile["formula"]
    assert row.options["unicode"] == hostile["unicode"]
    # PostgreSQL stores no NUL and no lone surrogate: each becomes a replacement character.
    assert row.options["nul"] == "a\ufffdb"
    assert row.options["surrogate"] == "a?b"
    assert [k for k in row.options if k.startswith("nnn")] == ["n" * 100 + "…"]
    assert row.error == "e" * MAX_ERROR_TEXT + "…"
    with session_factory() as session:
        assert "bi_access_log" in inspect(session.connection()).get_table_names()


def test_a_hostile_odata_query_is_audited_as_sent(
    app_client: TestClient, built: Path, make_user: Any, session_factory: sessionmaker[Session]
) -> None:
    _, token = make_user(Role.ANALYST)
    text = "name eq '\x00'); DROP TABLE bi_access_log; --"
    response = app_client.get(f"/odata/dim_site?$filter={quote(text)}", headers=bearer(token))
    assert response.status_code == 400
    ledger_of(app_client).flush()
    (row,) = audit_rows(session_factory)
    assert row.options == {"$filter": text.replace("\x00", "\ufffd")}
    assert row.outcome == "error"


def test_the_api_filters_and_pages(
    app_client: TestClient, make_user: Any, session_factory: sessionmaker[Session]
) -> None:
    auditor, token = make_user(Role.ANALYST, "auditor")
    other, _ = make_user(Role.ANALYST, "other")
    ledger = ledger_of(app_client)
    for n in range(7):
        record_access(ledger, event(auditor, at=T0 + dt.timedelta(minutes=n), rows=n))
    record_access(ledger, event(other, channel="export", dataset="dim_site", at=T0))
    record_access(ledger, event(other, status=400, error="bad $filter", at=T0))
    record_access(ledger, event(None, status=401, error="unknown token", at=T0))
    headers = bearer(token)

    # Keyset paging: newest first, no row twice, the last page has no cursor.
    seen: list[int] = []
    cursor: int | None = None
    pages = 0
    while True:
        params: dict[str, Any] = {"limit": 3, **({"cursor": cursor} if cursor else {})}
        body = app_client.get(API, params=params, headers=headers).json()
        seen += [item["id"] for item in body["items"]]
        cursor = body["next_cursor"]
        pages += 1
        if cursor is None:
            break
    assert pages == 4
    assert seen == sorted(seen, reverse=True)
    assert len(set(seen)) == len(seen) == 10

    def listed(**params: Any) -> list[dict[str, Any]]:
        response = app_client.get(API, params={"limit": 500, **params}, headers=headers)
        assert response.status_code == 200, response.text
        items: list[dict[str, Any]] = response.json()["items"]
        return items

    assert {i["dataset"] for i in listed(channel="export")} == {"dim_site"}
    assert {i["username"] for i in listed(user="other")} == {"other"}
    assert len(listed(user_id=auditor.id)) == 7
    assert len(listed(dataset="fact_alert")) == 9
    errors = listed(outcome="error")
    assert [(i["status"], i["error"]) for i in errors] == [
        (401, "unknown token"),
        (400, "bad $filter"),
    ]
    window = listed(
        since=(T0 + dt.timedelta(minutes=2)).isoformat(),
        until=(T0 + dt.timedelta(minutes=5)).isoformat(),
    )
    assert [i["rows"] for i in window] == [4, 3, 2]
    first = listed(user="auditor")[-1]
    assert first["options"] == {"$filter": "x eq 1"}
    assert dt.datetime.fromisoformat(first["at"]) == T0


def test_the_api_downloads_csv_with_formulas_made_inert(
    app_client: TestClient, make_user: Any
) -> None:
    auditor, token = make_user(Role.ANALYST, "auditor")
    ledger = ledger_of(app_client)
    record_access(ledger, event(auditor, error="=cmd|' /C calc'!A0", status=500))
    record_access(ledger, event(auditor, channel="export"))
    response = app_client.get(
        API, params={"format": "csv", "channel": "odata"}, headers=bearer(token)
    )
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    assert "attachment" in response.headers["content-disposition"]
    table = list(csv.DictReader(io.StringIO(response.content.decode("utf-8-sig"))))
    assert len(table) == 1
    (row,) = table
    assert (row["channel"], row["username"], row["outcome"]) == ("odata", "auditor", "error")
    assert row["error"] == "'=cmd|' /C calc'!A0"
    assert row["options"] == '{"$filter": "x eq 1"}'


def test_the_api_refuses_bad_input_and_other_roles(app_client: TestClient, make_user: Any) -> None:
    _, token = make_user(Role.ANALYST)
    _, tech = make_user(Role.TECHNICIAN)
    headers = bearer(token)
    backwards = app_client.get(
        API,
        params={"since": "2026-03-02T00:00:00Z", "until": "2026-03-01T00:00:00Z"},
        headers=headers,
    )
    assert backwards.status_code == 400
    assert backwards.headers["content-type"] == PROBLEM
    assert backwards.json()["detail"] == "since must be before until"
    for params in (
        {"since": "2026-03-01T00:00:00"},  # no offset
        {"outcome": "maybe"},
        {"cursor": "0"},
        {"limit": "501"},
        {"channel": "<script>"},
        {"format": "xml"},
    ):
        refused = app_client.get(API, params=params, headers=headers)
        assert refused.status_code == 422, params
        assert refused.headers["content-type"] == PROBLEM
    assert app_client.get(API, headers=bearer(tech)).status_code == 403
    assert app_client.get(API).status_code == 401


def test_retention_purges_old_rows_and_zero_keeps_them(
    session_factory: sessionmaker[Session], make_user: Any
) -> None:
    user, _ = make_user(Role.ANALYST)
    now = dt.datetime(2026, 6, 1, tzinfo=dt.UTC)
    rows = [
        event(user, at=now - dt.timedelta(days=days), dataset=f"d{days}")
        for days in (400, 31, 29, 0)
    ]
    assert write_rows(session_factory, [audit_row(e) for e in rows]) == 4
    assert purge_access_log(session_factory, 0, now) == 0
    assert len(audit_rows(session_factory)) == 4
    assert purge_access_log(session_factory, 30, now) == 2
    assert [r.dataset for r in audit_rows(session_factory)] == ["d29", "d0"]


def test_the_daily_purge_is_registered_with_the_background_jobs(settings: Settings) -> None:
    app = create_app(settings.model_copy(update={"run_background_jobs": True}))
    names = {status.name for status in app.state.supervisor.statuses}
    assert "bi-access-retention" in names
