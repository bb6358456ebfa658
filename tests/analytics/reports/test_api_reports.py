"""The reports API: definitions, schedules and recipients; run-now; hostile input refused."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from analytics.reports.mail import attachments, messages_to
from analytics.reports.report_world import World
from maintainpro.analytics.reports.records import ReportRecipient
from maintainpro.analytics.reports.scheduler import checked_zone, next_fire
from maintainpro.app import create_app
from maintainpro.config import Settings
from maintainpro.core.db import utcnow
from maintainpro.core.users import Role, User
from peers import Inbox
from support import bearer

API = "/api/v1"
MakeUser = Callable[..., tuple[User, str]]
PROBLEM = "application/problem+json"


@pytest.fixture
def mail_client(smtp: tuple[Inbox, Settings]) -> Iterator[TestClient]:
    """The app with its SMTP pointing at the test server."""
    with TestClient(create_app(smtp[1])) as client:
        yield client


def create(client: TestClient, headers: dict[str, str], **body: Any) -> dict[str, Any]:
    """POST /reports, expecting 201."""
    payload = {"name": "PM compliance", "source": "pm_compliance", **body}
    response = client.post(f"{API}/reports", json=payload, headers=headers)
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


def test_a_report_is_defined_scheduled_addressed_and_removed(
    client: TestClient, admin_headers: dict[str, str], world: World
) -> None:
    report = create(client, admin_headers, params={"period": "previous_week"})
    assert report["params"] == {"period": "previous_week"}
    assert report["formats"] == ["pdf", "xlsx"]
    rid = report["id"]
    before = utcnow()
    response = client.post(
        f"{API}/reports/{rid}/schedules",
        json={"cron": "0  6 1 * *", "timezone": "Europe/Berlin"},
        headers=admin_headers,
    )
    assert response.status_code == 201, response.text
    plan = response.json()
    assert plan["cron"] == "0 6 1 * *"
    expected = next_fire("0 6 1 * *", checked_zone("Europe/Berlin"), before)
    assert dt.datetime.fromisoformat(plan["next_run_at"]) == expected
    for body in (
        {"kind": "email", "address": "hq@plant.example"},
        {"kind": "email", "user_id": world.manager_a},
    ):
        added = client.post(f"{API}/reports/{rid}/recipients", json=body, headers=admin_headers)
        assert added.status_code == 201, added.text
    paused = client.patch(
        f"{API}/report-schedules/{plan['id']}", json={"enabled": False}, headers=admin_headers
    )
    assert paused.json()["next_run_at"] is None
    resumed = client.patch(
        f"{API}/report-schedules/{plan['id']}", json={"enabled": True}, headers=admin_headers
    )
    assert dt.datetime.fromisoformat(resumed.json()["next_run_at"]) >= expected
    changed = client.patch(
        f"{API}/reports/{rid}",
        json={"params": {"period": "previous_month"}, "skip_when_empty": True},
        headers=admin_headers,
    )
    assert changed.status_code == 200
    shown = client.get(f"{API}/reports/{rid}", headers=admin_headers).json()
    assert (shown["params"], shown["skip_when_empty"]) == ({"period": "previous_month"}, True)
    assert [r["address"] for r in shown["recipients"]] == ["hq@plant.example", None]
    assert len(shown["schedules"]) == 1
    listed = client.get(f"{API}/reports", headers=admin_headers).json()
    assert [r["id"] for r in listed["items"]] == [rid]
    sources = client.get(f"{API}/report-sources", headers=admin_headers).json()
    assert {s["name"] for s in sources} == {
        "pm_compliance",
        "bad_actors",
        "backlog",
        "supplier_scorecards",
        "spend",
        "saved_query",
        "dashboard",
    }
    assert client.delete(f"{API}/reports/{rid}", headers=admin_headers).status_code == 204
    assert client.get(f"{API}/reports/{rid}", headers=admin_headers).status_code == 404


HOSTILE = "<script>alert(1)</script>"


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("reports", {"name": "x", "source": HOSTILE}),
        ("reports", {"name": HOSTILE, "source": "backlog"}),
        ("reports", {"name": "x", "source": "backlog", "params": {"period": HOSTILE}}),
        ("reports", {"name": "x", "source": "bad_actors", "params": {"top": 10_000}}),
        ("reports", {"name": "x", "source": "backlog", "params": {HOSTILE: 1}}),
        ("reports", {"name": "x", "source": "backlog", "formats": ["exe"]}),
        ("reports", {"name": "x", "source": "backlog", "formats": ["pdf", "pdf"]}),
        ("reports", {"name": "x", "source": "backlog", HOSTILE: True}),
        (
            "reports",
            {"name": "x", "source": "saved_query", "params": {"query": {"measures": [HOSTILE]}}},
        ),
        ("reports", {"name": "x", "source": "saved_query", "params": {"query": HOSTILE}}),
        ("schedules", {"cron": "61 * * * *"}),
        ("schedules", {"cron": "* * * * * *"}),
        ("schedules", {"cron": f"0 6 * * {HOSTILE}"}),
        ("schedules", {"cron": "0 0 31 2 *"}),
        ("schedules", {"cron": "0 6 * * *", "timezone": "Mars/Olympus"}),
        ("schedules", {"cron": "0 6 * * *", "timezone": "../../../etc/passwd"}),
        ("schedules", {"cron": "0 6 * * *", "timezone": HOSTILE}),
        ("recipients", {"kind": "email"}),
        ("recipients", {"kind": "email", "address": HOSTILE}),
        ("recipients", {"kind": "webhook", "address": "a@b.example"}),
        ("recipients", {"kind": "carrier-pigeon", "address": "a@b.example"}),
        ("recipients", {"kind": "webhook", "webhook_id": 999_999}),
        ("recipients", {"kind": "email", "user_id": 999_999}),
        (
            "recipients",
            {"kind": "sftp", "sftp": {"host": "h", "username": "u", "host_keys": ["ssh-ed25519"]}},
        ),
        (
            "recipients",
            {
                "kind": "sftp",
                "sftp": {
                    "host": "h",
                    "username": "u",
                    "password": "secret",
                    "host_keys": ["SHA256:" + "A" * 43],
                    "folder": "../../etc",
                },
            },
        ),
    ],
)
def test_hostile_input_is_refused_as_problem_json(
    client: TestClient, admin_headers: dict[str, str], path: str, body: dict[str, Any]
) -> None:
    url = f"{API}/reports"
    if path != "reports":
        rid = create(client, admin_headers, name="Target")["id"]
        url = f"{API}/reports/{rid}/{path}"
    response = client.post(url, json=body, headers=admin_headers)
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == PROBLEM
    assert "<script>" not in response.text
    assert "etc/passwd" not in response.text
    assert client.get(f"{API}/report-runs", headers=admin_headers).json()["total"] == 0


def test_nothing_is_half_applied(client: TestClient, admin_headers: dict[str, str]) -> None:
    rid = create(client, admin_headers, name="Keep")["id"]
    response = client.patch(
        f"{API}/reports/{rid}",
        json={"name": "Renamed", "params": {"period": "never"}},
        headers=admin_headers,
    )
    assert response.status_code == 422
    assert client.get(f"{API}/reports/{rid}", headers=admin_headers).json()["name"] == "Keep"
    create(client, admin_headers, name="Other")
    clash = client.patch(f"{API}/reports/{rid}", json={"name": "Other"}, headers=admin_headers)
    assert clash.status_code == 409


def test_who_may_do_what(client: TestClient, make_user: MakeUser, world: World) -> None:
    technician = bearer(make_user(Role.TECHNICIAN)[1])
    procurement = bearer(make_user(Role.PROCUREMENT)[1])
    analyst = bearer(make_user(Role.ANALYST)[1])
    for path in ("report-runs", "reports", "report-sources"):
        refused = client.get(f"{API}/{path}", headers=technician)
        assert refused.status_code == 403, path
        assert refused.headers["content-type"] == PROBLEM
        assert client.get(f"{API}/{path}", headers=procurement).status_code == 200, path
    payload = {"name": "x", "source": "backlog"}
    assert client.post(f"{API}/reports", json=payload, headers=technician).status_code == 403
    assert client.post(f"{API}/reports", json=payload, headers=procurement).status_code == 403
    # Analysts write reports (reports:write) without managing maintenance schedules.
    written = create(client, analyst, **payload)
    assert client.get(f"{API}/reports/{written['id']}", headers=procurement).status_code == 200
    run_now = client.post(f"{API}/reports/{written['id']}/run-now", headers=procurement)
    assert run_now.status_code == 403
    removed = client.delete(f"{API}/reports/{written['id']}", headers=procurement)
    assert removed.status_code == 403
    assert client.delete(f"{API}/reports/{written['id']}", headers=analyst).status_code == 204
    # A manager of site A: their recipients see site A, whatever they ask for.
    manager = bearer(make_user(Role.MAINTENANCE_MANAGER, site_id=world.site_a)[1])
    own = create(client, manager, name="Site A backlog", source="backlog")
    url = f"{API}/reports/{own['id']}/recipients"
    added = client.post(url, json={"kind": "email", "address": "x@plant.example"}, headers=manager)
    assert added.json()["site_id"] == world.site_a
    other = {"kind": "email", "address": "x@plant.example", "site_id": world.site_b}
    assert client.post(url, json=other, headers=manager).status_code == 403
    admin = bearer(make_user(Role.ADMIN)[1])
    theirs = create(client, admin, name="Everything")
    change = client.patch(f"{API}/reports/{theirs['id']}", json={"name": "Mine"}, headers=manager)
    assert change.status_code == 403


def test_sftp_credentials_are_sealed_and_never_shown(
    client: TestClient, admin_headers: dict[str, str], db: Session
) -> None:
    rid = create(client, admin_headers, name="Drop")["id"]
    body = {
        "kind": "sftp",
        "sftp": {
            "host": "sftp.example.com",
            "username": "reports",
            "password": "do-not-echo-this-password",
            "host_keys": ["SHA256:" + "A" * 43],
            "folder": "incoming/maintenance",
        },
    }
    response = client.post(f"{API}/reports/{rid}/recipients", json=body, headers=admin_headers)
    assert response.status_code == 201, response.text
    shown = response.json()
    assert shown["has_credentials"] is True
    assert shown["sftp"]["folder"] == "incoming/maintenance"
    assert "do-not-echo" not in response.text
    detail = client.get(f"{API}/reports/{rid}", headers=admin_headers).text
    assert "do-not-echo" not in detail
    stored = db.get(ReportRecipient, shown["id"])
    assert stored is not None
    assert stored.secrets is not None
    assert b"do-not-echo" not in stored.secrets


def test_run_now_sends_at_once_and_is_logged(
    mail_client: TestClient,
    smtp: tuple[Inbox, Settings],
    make_user: MakeUser,
    world: World,
) -> None:
    inbox = smtp[0]
    headers = bearer(make_user(Role.ADMIN)[1])
    rid = create(mail_client, headers, name="Backlog now", source="backlog", formats=["xlsx"])["id"]
    mail_client.post(
        f"{API}/reports/{rid}/recipients",
        json={"kind": "email", "user_id": world.manager_b},
        headers=headers,
    )
    response = mail_client.post(f"{API}/reports/{rid}/run-now", headers=headers)
    assert response.status_code == 201, response.text
    run = response.json()
    assert (run["status"], run["trigger"], run["attempts"]) == ("succeeded", "manual", 1)
    assert run["recipients"][0]["target"] == "manager-b@plant.example"
    assert run["recipients"][0]["sites"] == [world.site_b]
    (message,) = messages_to(inbox).values()
    assert set(attachments(message)) == {"xlsx"}
    assert run["size_bytes"] == len(attachments(message)["xlsx"][1])
    log = mail_client.get(f"{API}/report-runs", params={"report_id": rid}, headers=headers)
    assert [r["id"] for r in log.json()["items"]] == [run["id"]]
    missing = mail_client.post(f"{API}/reports/999999/run-now", headers=headers)
    assert missing.status_code == 404
    assert missing.headers["content-type"] == PROBLEM


def test_a_saved_question_is_checked_and_completed(
    client: TestClient, admin_headers: dict[str, str]
) -> None:
    query = {"measures": ["WorkOrders.count"], "dimensions": ["Assets.site"]}
    report = create(
        client, admin_headers, name="WO by site", source="saved_query", params={"query": query}
    )
    assert report["params"] == {
        "period": "previous_month",
        "query": query,
        "chart": "bar",
        "use_period": True,
    }
