"""The tracking API: the signed carrier webhook, late shipments, parts ETAs, ERP sync state."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from conftest import MakeUser
from maintainpro.app import create_app
from maintainpro.config import Settings
from maintainpro.core.events import OutboxEvent
from maintainpro.core.users import Role
from maintainpro.supply.carrier_webhooks import sign_easypost, sign_generic
from maintainpro.supply.erp.http import HttpOptions
from maintainpro.supply.erp_config import build_connector
from maintainpro.supply.rates import ExchangeRate
from supply.erp import fake_sap
from supply.erp.fakes import PASSWORD, USER, serve
from supply.procurement_world import EUR_USD, TODAY, World
from supply.tracking_world import TRACKING, waiting_work_order
from support import bearer, plant

API = "/api/v1"
PROBLEM = "application/problem+json"
SECRET = "shared-carrier-secret-for-the-api-tests"
SAP_ENV = "H12_API_TEST_SAP_PASSWORD"


@pytest.fixture
def tracked(settings: Settings, engine: Any) -> Iterator[TestClient]:
    """An app with the carrier webhook secret set."""
    configured = settings.model_copy(update={"carrier_webhook_secret": SecretStr(SECRET)})
    with TestClient(create_app(configured)) as client:
        yield client


def _waiting(factory: sessionmaker[Session], **kw: Any) -> dict[str, int]:
    with factory() as db, db.begin():
        world = World(db, plant(db))
        db.add(ExchangeRate(day=TODAY, currency="USD", per_eur=EUR_USD, source="ECB"))
        db.flush()
        waiting = waiting_work_order(world, **kw)
        shipment = waiting.shipment.id if waiting.shipment is not None else 0
        return {"wo": waiting.work_order.id, "order": waiting.order.id, "shipment": shipment}


def _post(client: TestClient, body: dict[str, Any], **headers: str) -> Any:
    raw = json.dumps(body).encode()
    signed = {
        "X-MaintainPro-Signature": sign_generic(SECRET, raw),
        "Content-Type": "application/json",
    }
    return client.post(f"{API}/carrier-events", content=raw, headers={**signed, **headers})


def _problem(response: Any, code: int) -> dict[str, Any]:
    assert response.status_code == code, response.text
    assert response.headers["content-type"] == PROBLEM
    body: dict[str, Any] = response.json()
    return body


def _iso(moment: dt.datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def test_the_webhook_needs_a_configured_secret(client: TestClient) -> None:
    response = client.post(f"{API}/carrier-events", content=b"{}")
    assert "not configured" in _problem(response, 503)["detail"]


def test_unsigned_and_tampered_reports_are_refused_and_change_nothing(
    tracked: TestClient, session_factory: sessionmaker[Session], admin_headers: dict[str, str]
) -> None:
    ids = _waiting(session_factory)
    body = {
        "tracking_number": TRACKING,
        "events": [{"status": "delivered", "occurred_at": _iso(dt.datetime.now(dt.UTC))}],
    }
    raw = json.dumps(body).encode()
    unsigned = tracked.post(f"{API}/carrier-events", content=raw)
    assert _problem(unsigned, 401)["detail"] == "the report is not signed with the shared secret"
    tampered = tracked.post(
        f"{API}/carrier-events",
        content=raw.replace(b"delivered", b"exception"),
        headers={"X-MaintainPro-Signature": sign_generic(SECRET, raw)},
    )
    _problem(tampered, 401)
    wrong_key = tracked.post(
        f"{API}/carrier-events",
        content=raw,
        headers={"X-MaintainPro-Signature": sign_generic("not-the-secret", raw)},
    )
    _problem(wrong_key, 401)
    shipment = tracked.get(f"{API}/shipments/{ids['shipment']}", headers=admin_headers)
    assert shipment.json()["events"] == []


def test_signed_reports_are_applied_and_what_cannot_be_is_kept(
    tracked: TestClient, session_factory: sessionmaker[Session], admin_headers: dict[str, str]
) -> None:
    ids = _waiting(session_factory)
    now = dt.datetime.now(dt.UTC)
    delivered = _post(
        tracked,
        {
            "tracking_number": TRACKING,
            "carrier": "UPS",
            "events": [
                {"status": "in_transit", "occurred_at": _iso(now - dt.timedelta(hours=5))},
                {"status": "delivered", "occurred_at": _iso(now - dt.timedelta(minutes=5))},
                {"status": "beamed", "occurred_at": _iso(now)},
            ],
        },
    )
    assert delivered.status_code == 200, delivered.text
    result = delivered.json()
    assert (result["shipment_ids"], result["recorded"], result["duplicates"]) == (
        [ids["shipment"]],
        2,
        0,
    )
    assert result["reason"] == "event 3: unknown status code beamed"
    again = _post(
        tracked,
        {
            "tracking_number": TRACKING,
            "events": [{"status": "in_transit", "occurred_at": _iso(now - dt.timedelta(hours=5))}],
        },
    )
    assert (again.status_code, again.json()["duplicates"], again.json()["dead_letter_id"]) == (
        200,
        1,
        None,
    )
    shipment = tracked.get(f"{API}/shipments/{ids['shipment']}", headers=admin_headers).json()
    assert shipment["status"] == "delivered"
    with session_factory() as session:
        topics = session.scalars(select(OutboxEvent.topic).order_by(OutboxEvent.id)).all()
    assert topics.count("shipment.delivered") == 1

    waiting = tracked.get(f"{API}/shipments/awaiting-receipt", headers=admin_headers).json()
    assert [(s["shipment_id"], s["lines"][0]["suggested"]) for s in waiting["items"]] == [
        (ids["shipment"], "4.000")
    ]
    times = tracked.get(f"{API}/shipments/{ids['shipment']}/delivery", headers=admin_headers).json()
    assert times["variance_hours"] < 0  # two days early

    unknown = _post(tracked, {"tracking_number": "NO-SUCH-PARCEL", "events": []})
    assert unknown.status_code == 202
    assert unknown.json()["reason"] == "unknown tracking number"
    raw = b"this is not json at all"
    garbage = tracked.post(
        f"{API}/carrier-events",
        content=raw,
        headers={"X-Hmac-Signature": sign_easypost(SECRET, raw)},
    )
    assert garbage.status_code == 202
    assert garbage.json()["reason"].startswith("not a carrier report")

    letters = tracked.get(f"{API}/carrier-events/dead-letters", headers=admin_headers).json()
    assert [(x["format"], x["tracking_number"], x["reason"]) for x in letters["items"]] == [
        ("unknown", None, garbage.json()["reason"]),
        ("generic", "NO-SUCH-PARCEL", "unknown tracking number"),
        ("generic", TRACKING, "event 3: unknown status code beamed"),
    ]
    assert letters["items"][0]["payload"] == "this is not json at all"


def test_late_shipments_and_parts_eta(
    tracked: TestClient, session_factory: sessionmaker[Session], make_user: MakeUser
) -> None:
    ids = _waiting(session_factory, expected_in=-dt.timedelta(hours=3))
    technician = bearer(make_user(Role.TECHNICIAN)[1])
    buyer = bearer(make_user(Role.PROCUREMENT)[1])
    late = tracked.get(f"{API}/shipments/late", headers=buyer)
    assert late.status_code == 200, late.text
    (item,) = late.json()["items"]
    assert (item["id"], item["purchase_order_number"], item["hours_late"]) == (
        ids["shipment"],
        "PO-000001",
        3,
    )
    _problem(tracked.get(f"{API}/shipments/late", headers=technician), 403)

    eta = tracked.get(f"{API}/work-orders/{ids['wo']}/parts-eta", headers=technician)
    assert eta.status_code == 200, eta.text
    body = eta.json()
    (line,) = body["lines"]
    assert (line["eta_source"], line["late"], line["shipment_number"], line["part_number"]) == (
        "carrier",
        True,
        "ASN-1",
        "BRG-1",
    )
    assert body["eta"] == line["eta"]
    _problem(tracked.get(f"{API}/work-orders/999999/parts-eta", headers=technician), 404)


def test_erp_sync_state_and_a_manual_run(
    settings: Settings,
    engine: Any,
    make_user: MakeUser,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(SAP_ENV, PASSWORD)
    state = fake_sap.SapState()
    with serve(fake_sap.build_app(state)) as url:
        connection = {
            "name": "s4",
            "system": "sap",
            "base_url": f"{url}/sap/opu/odata/sap",
            "auth": {"type": "basic", "username": USER, "password_env": SAP_ENV},
            "options": {
                "company_code": "1710",
                "purchasing_organization": "1710",
                "purchasing_group": "001",
                "plant": "1710",
            },
            "suppliers": ["ACME"],
        }
        configured = settings.model_copy(update={"erp_connections": [connection]})
        buyer = bearer(make_user(Role.PROCUREMENT)[1])
        analyst = bearer(make_user(Role.ANALYST)[1])
        with TestClient(create_app(configured)) as client:
            client.app.state.erp_connect = lambda spec: build_connector(  # type: ignore[attr-defined]
                spec, options=HttpOptions(sleep=lambda _: None)
            )
            before = client.get(f"{API}/erp/sync-state", headers=analyst)
            assert before.status_code == 200, before.text
            (row,) = before.json()
            assert (row["connector"], row["system"], row["watermark"], row["suppliers"]) == (
                "s4",
                "sap",
                None,
                ["ACME"],
            )
            assert PASSWORD not in before.text
            _problem(client.post(f"{API}/erp/sync", headers=analyst), 403)
            _problem(client.post(f"{API}/erp/sync?connector=nope", headers=buyer), 404)

            state.products.append(
                {
                    "Product": "BRG-1",
                    "BaseUnit": "EA",
                    "_changed": dt.datetime.now(dt.UTC),
                    "to_Description": {"results": [{"Language": "EN", "ProductDescription": "x"}]},
                }
            )
            run = client.post(f"{API}/erp/sync", headers=buyer)
            assert run.status_code == 200, run.text
            (outcome,) = run.json()
            assert (outcome["connector"], outcome["ok"], outcome["error"]) == ("s4", True, None)
            assert outcome["detail"]["counts"] == {"item.unchanged": 1}

            state.knobs.unavailable = 50
            failed = client.post(f"{API}/erp/sync", headers=buyer).json()[0]
            assert not failed["ok"]
            after = client.get(f"{API}/erp/sync-state", headers=analyst).json()[0]
            assert after["watermark"] == outcome["watermark"]
            assert after["last_error"] == failed["error"]
