"""The EDI API: partner setup (secrets write-only), uploads, the archive, the error queue."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from conftest import MakeUser
from maintainpro.core.assets import Location
from maintainpro.core.users import Role
from maintainpro.iot.credentials import CredentialBox
from maintainpro.supply.edi.order_ack_out import order_ack_content
from maintainpro.supply.edi.partners import TradingPartner
from maintainpro.supply.edi.ship_notice_out import ship_notice_content
from maintainpro.supply.purchasing import PoStatus, PurchaseOrder
from maintainpro.supply.rates import ExchangeRate
from supply.edi.edi_world import (
    acknowledgement,
    edi_supplier,
    from_partner,
    sent_order,
    ship_notice,
    trading_partner,
)
from supply.procurement_world import EUR_USD, TODAY, World
from support import bearer, plant

API = "/api/v1/edi"
PROBLEM = "application/problem+json"
X12 = {"Content-Type": "application/edi-x12"}


@pytest.fixture
def buyer(make_user: MakeUser) -> dict[str, str]:
    """A procurement user: reads, writes and sets up partners."""
    return bearer(make_user(Role.PROCUREMENT)[1])


@pytest.fixture
def manager(make_user: MakeUser) -> dict[str, str]:
    """A maintenance manager: reads procurement, changes nothing there."""
    return bearer(make_user(Role.MAINTENANCE_MANAGER)[1])


def _ok(response: Any, code: int = 200) -> Any:
    assert response.status_code == code, response.text
    return response.json()


def _problem(response: Any, code: int) -> dict[str, Any]:
    assert response.status_code == code, response.text
    assert response.headers["content-type"] == PROBLEM
    body: dict[str, Any] = response.json()
    return body


@pytest.fixture
def acme(session_factory: sessionmaker[Session]) -> dict[str, int]:
    """A plant, the EDI supplier ACME with a partner setup, and a sent order to it."""
    with session_factory() as db, db.begin():
        world = World(db, plant(db))
        db.add(ExchangeRate(day=TODAY, currency="USD", per_eur=EUR_USD, source="ECB"))
        supplier = edi_supplier(world)
        partner = trading_partner(db, supplier)
        order = sent_order(world, supplier)
        return {"supplier": supplier.id, "partner": partner.id, "order": order.id}


def _partner(factory: sessionmaker[Session], partner_id: int) -> TradingPartner:
    with factory() as db:
        partner = db.get(TradingPartner, partner_id)
        assert partner is not None
        _ = partner.supplier.code
        return partner


def _certificate() -> str:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "acme-as2")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + dt.timedelta(days=30))
        .sign(key, hashes.SHA256())
    )
    return cert.public_bytes(serialization.Encoding.PEM).decode()


def test_partner_setup_keeps_secrets_write_only(
    client: TestClient,
    session_factory: sessionmaker[Session],
    buyer: dict[str, str],
    manager: dict[str, str],
) -> None:
    with session_factory() as db, db.begin():
        supplier_id = edi_supplier(World(db, plant(db)), "BOLT").id
    body = {
        "supplier_id": supplier_id,
        "isa_qualifier": "01",
        "isa_id": "123456789",
        "gs_id": "BOLTGS",
        "our_isa_id": "MAINTAINPRO",
        "our_gs_id": "MAINTAINPRO",
        "documents": ["850", "855", "856", "997"],
        "transport": "sftp",
        "sftp_host": "sftp.bolt.example",
        "sftp_username": "maintainpro",
        "partner_cert_pem": _certificate(),
        "settings": {"timezone": "America/Chicago", "buyer_name": "Plant One"},
        "secrets": {"password": "s3cret-pass"},
    }
    created = _ok(client.post(f"{API}/partners", headers=buyer, json=body), 201)
    assert created["has_secrets"] is True
    assert "secrets" not in created
    assert "s3cret-pass" not in str(created)
    assert (created["documents"], created["settings"]["timezone"]) == (
        ["850", "855", "856", "997"],
        "America/Chicago",
    )
    stored = _partner(session_factory, created["id"])
    box: CredentialBox = client.app.state.credential_box  # type: ignore[attr-defined]
    assert box.open(stored.secrets) == {"password": "s3cret-pass"}
    # Readers see the setup (without secrets) but cannot change it.
    listed = _ok(client.get(f"{API}/partners", headers=manager))
    assert [p["id"] for p in listed["items"]] == [created["id"]]
    _problem(client.patch(f"{API}/partners/{created['id']}", headers=manager, json={}), 403)
    changed = _ok(
        client.patch(
            f"{API}/partners/{created['id']}",
            headers=buyer,
            json={"active": False, "secrets": {}, "ack_deadline_minutes": 60},
        )
    )
    assert (changed["active"], changed["has_secrets"], changed["ack_deadline_minutes"]) == (
        False,
        False,
        60,
    )
    assert _partner(session_factory, created["id"]).secrets is None
    assert client.delete(f"{API}/partners/{created['id']}", headers=buyer).status_code == 204
    _problem(client.get(f"{API}/partners/{created['id']}", headers=buyer), 404)


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"isa_id": "BAD*ID"}, "isa_id"),
        ({"isa_qualifier": "zz1"}, "isa_qualifier"),
        ({"documents": ["850", "850"]}, "documents"),
        ({"documents": ["999"]}, "documents"),
        ({"partner_cert_pem": "-----BEGIN CERTIFICATE-----\nnope"}, "partner_cert_pem"),
        ({"settings": {"timezone": "Mars/Olympus"}}, "settings"),
        ({"sftp_outbound_dir": "../etc"}, "sftp_outbound_dir"),
        ({"usage_indicator": "X"}, "usage_indicator"),
        ({"unknown": 1}, "unknown"),
    ],
)
def test_bad_partner_setups_are_refused_without_echo(
    client: TestClient,
    acme: dict[str, int],
    buyer: dict[str, str],
    change: dict[str, Any],
    field: str,
) -> None:
    problem = _problem(
        client.patch(f"{API}/partners/{acme['partner']}", headers=buyer, json=change), 422
    )
    assert field in str(problem["errors"])
    assert "BAD*ID" not in str(problem)
    assert "Olympus" not in str(problem)


def test_partner_conflicts(client: TestClient, acme: dict[str, int], buyer: dict[str, str]) -> None:
    body = {
        "supplier_id": acme["supplier"],
        "isa_id": "OTHER",
        "gs_id": "OTHER",
        "our_isa_id": "MAINTAINPRO",
        "our_gs_id": "MAINTAINPRO",
    }
    taken = _problem(client.post(f"{API}/partners", headers=buyer, json=body), 409)
    assert "already has a trading partner" in taken["detail"]
    missing = client.post(f"{API}/partners", headers=buyer, json={**body, "supplier_id": 999})
    assert _problem(missing, 422)["status"] == 422


def test_partner_ids_are_unique_with_given_or_default_qualifiers(
    client: TestClient, session_factory: sessionmaker[Session], buyer: dict[str, str]
) -> None:
    # Regression: the check used to flush the new partner first and then clash with itself.
    with session_factory() as db, db.begin():
        world = World(db, plant(db))
        first, second, third = (edi_supplier(world, code).id for code in ("ONE", "TWO", "SIX"))
    ids = {"isa_id": "SAMEID", "gs_id": "SAMEGS", "our_isa_id": "US", "our_gs_id": "US"}
    explicit = {**ids, "isa_qualifier": "01", "our_isa_qualifier": "01"}
    made = _ok(
        client.post(f"{API}/partners", headers=buyer, json={"supplier_id": first, **explicit}), 201
    )
    assert (made["isa_qualifier"], made["isa_id"]) == ("01", "SAMEID")
    clash = _problem(
        client.post(f"{API}/partners", headers=buyer, json={"supplier_id": second, **explicit}),
        409,
    )
    assert f"trading partner {made['id']} already uses" in clash["detail"]
    # Left out, the qualifiers default to ZZ: a different pair of ids, then the same one again.
    second_made = _ok(
        client.post(f"{API}/partners", headers=buyer, json={"supplier_id": second, **ids}), 201
    )
    assert second_made["isa_qualifier"] == "ZZ"
    again = client.post(f"{API}/partners", headers=buyer, json={"supplier_id": third, **ids})
    assert f"trading partner {second_made['id']} already uses" in _problem(again, 409)["detail"]


def test_upload_apply_archive_and_error_queue(
    client: TestClient,
    session_factory: sessionmaker[Session],
    acme: dict[str, int],
    buyer: dict[str, str],
    manager: dict[str, str],
) -> None:
    partner = _partner(session_factory, acme["partner"])
    number = f"PO-{acme['order']:06d}"
    raw = from_partner(
        partner,
        order_ack_content(acknowledgement(number, ("1", "IA", "10", "9.00"))),
        ship_notice_content(ship_notice("ASN-1", "PO-000777", ("1", "10"))),
    )
    _problem(client.post(f"{API}/inbound", headers=manager, content=raw), 403)
    (outcome,) = _ok(
        client.post(
            f"{API}/inbound?transport_ref=VAN-box-7", headers={**buyer, **X12}, content=raw
        ),
        201,
    )
    assert outcome["status"] == "partially_applied"
    assert [d["status"] for d in outcome["documents"]] == ["applied", "failed"]
    assert outcome["reasons"] == ["apply"]
    assert outcome["acknowledgement_id"] is not None
    with session_factory() as db:
        order = db.get(PurchaseOrder, acme["order"])
        assert order is not None
        assert order.status is PoStatus.ACKNOWLEDGED

    inbound = _ok(client.get(f"{API}/interchanges?direction=inbound", headers=manager))
    assert [i["id"] for i in inbound["items"]] == [outcome["interchange_id"]]
    assert inbound["items"][0]["transport_ref"] == "VAN-box-7"
    outbound = _ok(
        client.get(
            f"{API}/interchanges?direction=outbound&partner_id={acme['partner']}", headers=buyer
        )
    )
    assert [(i["id"], i["sets"]) for i in outbound["items"]] == [
        (outcome["acknowledgement_id"], ["997", "997"])
    ]
    detail = _ok(client.get(f"{API}/interchanges/{outcome['interchange_id']}", headers=manager))
    assert detail["raw"].encode() == raw
    assert detail["documents"][0]["parsed"]["po_number"] == number
    assert detail["documents"][1]["errors"][0]["message"] == (
        "no purchase order 'PO-000777' for supplier ACME"
    )

    queue = _ok(client.get(f"{API}/documents?status=failed", headers=manager))
    assert [(d["set_id"], d["reference"]) for d in queue["items"]] == [("856", "ASN-1")]
    failed_id = queue["items"][0]["id"]
    _problem(client.post(f"{API}/documents/{failed_id}/reprocess", headers=manager), 403)
    # Fix the cause: the order the notice names now exists.
    with session_factory() as db, db.begin():
        store = db.scalar(select(Location.id).where(Location.code == "ST"))
        world = World(db, {"store": store or 0})
        sent_order(world, db.get(TradingPartner, acme["partner"]).supplier, order_id=777)  # type: ignore[union-attr]
    fixed = _ok(client.post(f"{API}/documents/{failed_id}/reprocess", headers=buyer))
    assert (fixed["status"], fixed["attempts"], fixed["purchase_order_id"]) == ("applied", 2, 777)
    _problem(client.post(f"{API}/documents/{failed_id}/reprocess", headers=buyer), 409)
    assert _ok(client.get(f"{API}/documents?status=failed", headers=buyer))["total"] == 0
    settled = _ok(client.get(f"{API}/interchanges/{outcome['interchange_id']}", headers=buyer))
    assert settled["status"] == "applied"
    # A partner with an archive is deactivated, never deleted (its control numbers must stay).
    _problem(client.delete(f"{API}/partners/{acme['partner']}", headers=buyer), 409)


def test_rejected_and_repeated_uploads_answer_with_problems(
    client: TestClient,
    session_factory: sessionmaker[Session],
    acme: dict[str, int],
    buyer: dict[str, str],
) -> None:
    partner = _partner(session_factory, acme["partner"])
    raw = from_partner(
        partner, ship_notice_content(ship_notice("A1", f"PO-{acme['order']:06d}", ("1", "2")))
    )
    _ok(client.post(f"{API}/inbound", headers=buyer, content=raw), 201)
    repeated = _problem(client.post(f"{API}/inbound", headers=buyer, content=raw), 409)
    assert [i["status"] for i in repeated["interchanges"]] == ["duplicate"]
    hostile = b"ISA*00*<script>alert(1)</script>*"
    rejected = _problem(client.post(f"{API}/inbound", headers=buyer, content=hostile), 422)
    assert "<script>" not in str(rejected)
    assert rejected["interchanges"][0]["reasons"] == ["syntax"]
    _problem(client.post(f"{API}/inbound", headers=buyer, content=b"  "), 422)
    archive = _ok(client.get(f"{API}/interchanges?status=rejected", headers=buyer))
    assert archive["total"] == 1
    detail = _ok(client.get(f"{API}/interchanges/{archive['items'][0]['id']}", headers=buyer))
    assert detail["raw"].encode() == hostile
