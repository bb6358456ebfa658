"""Alert pages over HTTP: filters, bulk actions with CSRF, detail, threshold preview and save."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from unittest.mock import MagicMock

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from maintainpro.core.db import utcnow
from maintainpro.core.users import Role, User
from maintainpro.iot.alerts import Alert, AlertRule, AlertStatus
from maintainpro.iot.timeseries import ReadingRow, to_ms, write_readings
from monitoring_world import (
    EXCURSION,
    EXCURSION_AGO,
    EXCURSION_VALUE,
    PASSWORD,
    USERNAME,
    seed_monitored_plant,
)

MakeUser = Callable[..., tuple[User, str]]
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def csrf_of(page: httpx.Response) -> str:
    match = CSRF.search(page.text)
    assert match is not None, "the page has no CSRF token"
    return match.group(1)


def sign_in(client: TestClient, username: str = USERNAME) -> None:
    token = csrf_of(client.get("/login"))
    response = client.post(
        "/login",
        data={"username": username, "password": PASSWORD, "csrf_token": token},
        follow_redirects=False,
    )
    assert response.status_code == 303


@pytest.fixture
def ids(session_factory: sessionmaker[Session]) -> dict[str, int]:
    return seed_monitored_plant(session_factory, utcnow())


def statuses(factory: sessionmaker[Session]) -> dict[int, AlertStatus]:
    with factory() as session:
        return {pk: status for pk, status in session.execute(select(Alert.id, Alert.status))}


def test_list_filters_by_status_severity_asset_and_period(
    client: TestClient, ids: dict[str, int], session_factory: sessionmaker[Session]
) -> None:
    with session_factory() as session, session.begin():
        old = session.get(Alert, ids["other_alert"])
        assert old is not None
        old.raised_at = utcnow() - dt.timedelta(days=3)
    sign_in(client)
    page = client.get("/alerts")
    assert page.status_code == 200
    assert "Vibration above warning" in page.text
    assert "Vibration above major" in page.text
    assert "Vibration above major" not in client.get("/alerts?period=24h").text
    assert "Vibration above warning" not in client.get("/alerts?severity=major").text
    assert "No alerts match" in client.get(f"/alerts?asset={ids['motor']}").text
    assert "No alerts match" in client.get("/alerts?status=closed").text
    # Unknown filter values fall back to the defaults instead of failing.
    assert client.get("/alerts?status=nope&severity=x&asset=y&period=z").status_code == 200


def test_bulk_acknowledge_needs_the_csrf_token_and_records_the_note(
    client: TestClient, ids: dict[str, int], session_factory: sessionmaker[Session]
) -> None:
    sign_in(client)
    token = csrf_of(client.get("/alerts"))
    chosen = [ids["alert"], ids["other_alert"]]
    form = {"ids": chosen, "action": "acknowledge", "note": "on it", "back": "/alerts?status=any"}
    assert client.post("/alerts/actions", data=form).status_code == 403
    response = client.post(
        "/alerts/actions", data={**form, "csrf_token": token}, follow_redirects=False
    )
    assert response.status_code == 303
    assert response.headers["location"] == "/alerts?status=any"
    assert set(statuses(session_factory).values()) == {AlertStatus.ACKNOWLEDGED}
    assert "Acknowledged 2 alerts." in client.get("/alerts").text
    detail = client.get(f"/alerts/{ids['alert']}")
    assert "acknowledged" in detail.text
    assert "on it" in detail.text


def test_refused_bulk_move_changes_nothing_and_says_why(
    client: TestClient, ids: dict[str, int], session_factory: sessionmaker[Session]
) -> None:
    sign_in(client)
    token = csrf_of(client.get("/alerts"))
    for data in (
        {"ids": [ids["alert"]], "action": "close"},
        {"ids": [ids["alert"]], "action": "note", "note": "  "},
        {"action": "acknowledge"},
        {"ids": [ids["alert"], 999_999], "action": "acknowledge"},
    ):
        response = client.post(
            "/alerts/actions",
            data={**data, "csrf_token": token, "back": "https://evil.example/"},
            follow_redirects=False,
        )
        assert response.status_code == 303
        assert response.headers["location"] == "/alerts"
        assert 'class="error"' in client.get("/alerts").text
    assert set(statuses(session_factory).values()) == {AlertStatus.ACTIVE}


def test_detail_links_the_work_order_and_offers_only_legal_moves(
    client: TestClient, ids: dict[str, int]
) -> None:
    sign_in(client)
    page = client.get(f"/alerts/{ids['alert']}")
    assert page.status_code == 200
    assert 'value="acknowledge"' in page.text
    assert 'value="close"' not in page.text
    assert f"/sensors/{ids['sensor']}/thresholds" in page.text
    assert client.get("/alerts/999999", headers={"accept": "text/html"}).status_code == 404


def test_analyst_sees_alerts_but_cannot_act_or_save_thresholds(
    client: TestClient, ids: dict[str, int], make_user: MakeUser
) -> None:
    make_user(Role.ANALYST, username="ann")
    sign_in(client, "ann")
    page = client.get("/alerts")
    assert page.status_code == 200
    assert 'name="ids"' not in page.text
    token = csrf_of(page)
    acted = client.post(
        "/alerts/actions",
        data={"ids": [ids["alert"]], "action": "acknowledge", "csrf_token": token},
    )
    assert acted.status_code == 403
    form = {"warning": "5", "intent": "save", "csrf_token": token}
    assert client.post(f"/sensors/{ids['sensor']}/thresholds", data=form).status_code == 403
    previewed = client.post(f"/sensors/{ids['sensor']}/thresholds", data={**form, "intent": ""})
    assert previewed.status_code == 200


def test_threshold_preview_on_raw_readings_then_save(
    client: TestClient, ids: dict[str, int], session_factory: sessionmaker[Session]
) -> None:
    engine = MagicMock()
    client.app.state.alert_engine = engine  # type: ignore[attr-defined]
    sign_in(client)
    path = f"/sensors/{ids['sensor']}/thresholds"
    token = csrf_of(client.get(path))
    form = {"warning": "5", "major": "6", "clear_at": "4", "duration_s": "0", "csrf_token": token}
    page = client.post(path, data={**form, "intent": "preview"})
    assert page.status_code == 200
    assert "raw readings" in page.text
    assert "would have raised <strong>1</strong> alert." in page.text
    events = re.findall(r"<td>(raised|escalated|cleared)</td>", page.text)
    # Both levels are breached by the same reading: one alert, raised at the higher severity.
    assert events == ["raised", "cleared"]
    assert '<td><span class="badge badge-major">major</span></td>' in page.text
    assert 'data-chart-for="preview-chart"' in page.text
    with session_factory() as session:
        assert session.scalars(select(AlertRule)).all() == []
    engine.invalidate.assert_not_called()
    saved = client.post(path, data={**form, "intent": "save"}, follow_redirects=False)
    assert saved.status_code == 303
    engine.invalidate.assert_called_once()
    with session_factory() as session:
        rule = session.scalars(select(AlertRule)).one()
    assert rule.sensor_id == ids["sensor"]
    assert [lv["threshold"] for lv in rule.condition["levels"]] == [5.0, 6.0]
    # Saving again edits the same rule instead of adding one.
    client.post(path, data={**form, "warning": "5.5", "intent": "save"})
    with session_factory() as session:
        assert session.scalars(select(AlertRule.condition)).one()["levels"][0]["threshold"] == 5.5


def test_threshold_preview_uses_minute_averages_when_readings_are_many(
    client: TestClient, ids: dict[str, int], session_factory: sessionmaker[Session]
) -> None:
    # Seven more days at 10 s: too many raw readings, so the 1-minute rollups are replayed.
    now = utcnow()
    start = now - dt.timedelta(days=7)
    bump = (now - EXCURSION_AGO, now - EXCURSION_AGO + EXCURSION)

    def value(moment: dt.datetime) -> float:
        return EXCURSION_VALUE if bump[0] <= moment < bump[1] else 1.0

    with session_factory() as session, session.begin():
        moments = [start + dt.timedelta(seconds=10 * i) for i in range(7 * 8640)]
        rows = [ReadingRow(ids["sensor"], to_ms(m) + 1, value(m), 0) for m in moments]
        for offset in range(0, len(rows), 20_000):
            write_readings(session.connection(), rows[offset : offset + 20_000])
    sign_in(client)
    path = f"/sensors/{ids['sensor']}/thresholds"
    token = csrf_of(client.get(path))
    page = client.post(path, data={"warning": "5", "csrf_token": token, "intent": "preview"})
    assert "1-minute averages" in page.text
    assert "would have raised <strong>1</strong> alert." in page.text


def test_invalid_levels_are_shown_with_the_form_unchanged(
    client: TestClient, ids: dict[str, int]
) -> None:
    sign_in(client)
    path = f"/sensors/{ids['sensor']}/thresholds"
    token = csrf_of(client.get(path))
    for data, message in (
        ({"warning": "7", "major": "6"}, "major threshold must be strictly further above"),
        ({"warning": "abc"}, "warning: enter a number"),
        ({"warning": "5", "clear_at": "6"}, "clear_at must not lie beyond"),
        ({}, "enter at least one level"),
    ):
        page = client.post(path, data={**data, "csrf_token": token, "intent": "save"})
        assert page.status_code == 422
        assert message in page.text
    assert client.get("/sensors/999999/thresholds").status_code == 404
