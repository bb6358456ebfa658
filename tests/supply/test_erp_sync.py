"""ERP connections wired into the hub, end to end against the local SAP and Business Central:
orders pushed through the outbox with their ErpLink, pulls applied once, watermarks kept."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from maintainpro.config import ConfigurationError, Settings, load_settings
from maintainpro.core.db import utcnow
from maintainpro.core.events import deliver_pending
from maintainpro.supply import erp_sync
from maintainpro.supply.catalogs import CatalogItem
from maintainpro.supply.dispatch import order_dispatch_handlers
from maintainpro.supply.erp.auth import OAuthClientCredentials
from maintainpro.supply.erp.base import ErpConnector
from maintainpro.supply.erp.http import HttpOptions
from maintainpro.supply.erp_config import (
    ErpConnectionSpec,
    build_connector,
    erp_connections,
    parse_connections,
)
from maintainpro.supply.erp_records import ErpLink, ErpReceiptRecord, ErpReceiptStatus, ErpSyncState
from maintainpro.supply.erp_sync import SyncOutcome, sync_all
from maintainpro.supply.purchasing import PoStatus, PurchaseOrder, PurchaseOrderLine
from maintainpro.supply.receiving import GoodsReceipt
from maintainpro.supply.suppliers import ConnectionType, Supplier, SupplierStatus
from supply.erp import fake_bc, fake_sap
from supply.erp.fake_bc import COMPANY, BcState, iso
from supply.erp.fake_sap import SapState, material_document
from supply.erp.fakes import CLIENT_ID, CLIENT_SECRET, PASSWORD, USER, now, serve
from supply.lifecycle_world import build_order
from supply.procurement_world import World

SAP_ENV, BC_ENV = "H12_TEST_SAP_PASSWORD", "H12_TEST_BC_SECRET"


@pytest.fixture
def sap_server() -> Iterator[tuple[SapState, str]]:
    """The local S/4HANA of the connector tests."""
    state = SapState()
    with serve(fake_sap.build_app(state)) as url:
        try:
            yield state, url
        finally:
            state.knobs.release.set()


@pytest.fixture
def bc_server() -> Iterator[tuple[BcState, str]]:
    """The local Business Central of the connector tests."""
    state = BcState()
    with serve(fake_bc.build_app(state)) as url:
        yield state, url


def sap_connection(url: str, **extra: Any) -> dict[str, Any]:
    """A settings entry for the local SAP serving ACME (vendor 17300001 there)."""
    return {
        "name": "s4",
        "system": "sap",
        "base_url": f"{url}/sap/opu/odata/sap",
        "auth": {"type": "basic", "username": USER, "password_env": SAP_ENV},
        "options": {
            "company_code": "1710",
            "purchasing_organization": "1710",
            "purchasing_group": "001",
            "plant": "1710",
            "sap_client": "100",
        },
        "suppliers": ["ACME"],
        "vendor_numbers": {"ACME": "17300001"},
        "max_attempts": 2,
        "timeout_s": 5,
        **extra,
    }


def bc_connection(url: str) -> dict[str, Any]:
    """A settings entry for the local Business Central serving ACME (vendor V10000 there)."""
    return {
        "name": "bc",
        "system": "business_central",
        "base_url": f"{url}/api/v2.0",
        "auth": {
            "type": "oauth",
            "token_url": f"{url}/oauth2/token",
            "client_id": CLIENT_ID,
            "client_secret_env": BC_ENV,
        },
        "options": {"company_id": COMPANY},
        "suppliers": ["ACME"],
        "vendor_numbers": {"ACME": "V10000"},
        "max_attempts": 2,
        "timeout_s": 5,
    }


@pytest.fixture(autouse=True)
def erp_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    """The secrets the connection entries name, in the environment."""
    monkeypatch.setenv(SAP_ENV, PASSWORD)
    monkeypatch.setenv(BC_ENV, CLIENT_SECRET)


def fast(spec: ErpConnectionSpec) -> ErpConnector:
    """A connector that does not sleep between retries."""
    return build_connector(spec, options=HttpOptions(sleep=lambda _: None))


def dispatch(factory: sessionmaker[Session], settings: Settings) -> int:
    """Run the outbox with the app's dispatch handlers (ERP routing included)."""
    handlers = order_dispatch_handlers(factory, settings)
    return deliver_pending(factory, handlers, now=utcnow() + dt.timedelta(hours=1))


def sync(factory: sessionmaker[Session], settings: Settings) -> SyncOutcome:
    """One sync run of the only connection."""
    (outcome,) = sync_all(factory, settings, connect=fast)
    return outcome


def state_of(factory: sessionmaker[Session], name: str) -> ErpSyncState:
    """The stored sync state of a connection."""
    with factory() as session:
        state = session.get(ErpSyncState, name)
        assert state is not None
        session.expunge(state)
        return state


def received(factory: sessionmaker[Session], order_id: int) -> list[Decimal]:
    """Received quantities of an order's lines."""
    with factory() as session:
        return list(
            session.scalars(
                select(PurchaseOrderLine.received_quantity)
                .where(PurchaseOrderLine.purchase_order_id == order_id)
                .order_by(PurchaseOrderLine.line_no)
            )
        )


def sent_to_sap(
    world: World,
    factory: sessionmaker[Session],
    settings: Settings,
    state: SapState,
    connection: ConnectionType = ConnectionType.EMAIL,
) -> PurchaseOrder:
    """An order to ACME sent through the outbox, which pushes it to the local SAP."""
    order = build_order(world, [("10", "9.00"), ("4", "2.00")], connection=connection)
    world.db.commit()
    assert dispatch(factory, settings) == 1
    assert len(state.orders) == 1
    return order


# --- configuration ------------------------------------------------------------------------


def test_connections_are_validated_without_echoing_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    good = sap_connection("http://sap.example")
    (spec,) = parse_connections([good])
    assert spec.credentials is not None
    assert spec.erp_code("ACME") == "17300001"
    assert spec.our_code("17300001") == "ACME"
    assert "basic-password" not in repr(spec)

    inline = {**good, "auth": {**good["auth"], "password": "hunter2-in-the-toml"}}
    with pytest.raises(ConfigurationError) as caught:
        parse_connections([inline])
    assert "auth.password" in str(caught.value)
    assert "hunter2" not in str(caught.value)

    monkeypatch.delenv(SAP_ENV)
    with pytest.raises(ConfigurationError, match=f"{SAP_ENV} .* is not set"):
        parse_connections([good])
    monkeypatch.setenv(SAP_ENV, PASSWORD)
    with pytest.raises(ConfigurationError, match="unknown options for sap: colour"):
        parse_connections([{**good, "options": {**good["options"], "colour": "red"}}])
    with pytest.raises(ConfigurationError, match="sap needs the options plant"):
        parse_connections(
            [
                {
                    **good,
                    "options": {
                        "company_code": "1",
                        "purchasing_organization": "1",
                        "purchasing_group": "1",
                    },
                }
            ]
        )
    with pytest.raises(ConfigurationError, match="option max_pages of sap has the wrong type"):
        parse_connections([{**good, "options": {**good["options"], "max_pages": "many"}}])
    with pytest.raises(ConfigurationError, match="supplier ACME is served by both s4 and s5"):
        parse_connections([good, {**good, "name": "s5"}])
    with pytest.raises(ConfigurationError, match="invalid system"):
        parse_connections([{**good, "system": "navision"}])


def test_connections_load_from_the_toml_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    toml = tmp_path / "maintainpro.toml"
    toml.write_text(
        """
[[erp_connections]]
name = "bc"
system = "business_central"
base_url = "https://api.businesscentral.dynamics.com/v2.0/tenant/production/api/v2.0"
suppliers = ["ACME", "BOSCH"]
vendor_numbers = { ACME = "V10000" }

[erp_connections.auth]
type = "oauth"
token_url = "https://login.microsoftonline.com/tenant/oauth2/v2.0/token"
client_id = "maintainpro"
client_secret_env = "H12_TEST_BC_SECRET"
scope = "https://api.businesscentral.dynamics.com/.default"

[erp_connections.options]
company_id = "c0ffee00-0000-4000-8000-000000000001"
""",
        encoding="utf-8",
    )
    monkeypatch.setenv("MAINTAINPRO_CONFIG", str(toml))
    (spec,) = erp_connections(load_settings())
    assert (spec.name, spec.system, spec.suppliers, spec.erp_code("ACME")) == (
        "bc",
        "business_central",
        ("ACME", "BOSCH"),
        "V10000",
    )
    assert isinstance(spec.credentials, OAuthClientCredentials)
    assert spec.credentials.client_secret == CLIENT_SECRET


# --- pushing through the outbox -----------------------------------------------------------


def test_a_sent_order_for_a_served_supplier_is_pushed_to_the_erp_and_linked(
    world: World,
    session_factory: sessionmaker[Session],
    settings: Settings,
    sap_server: tuple[SapState, str],
) -> None:
    state, url = sap_server
    settings = settings.model_copy(update={"erp_connections": [sap_connection(url)]})
    # E-mail is ACME's channel, but the ERP connection serving it wins: no mail is tried.
    order = sent_to_sap(world, session_factory, settings, state)
    (external_id, sap_order), *_ = state.orders.items()
    assert sap_order["CorrespncExternalReference"] == "PO-000001"
    assert sap_order["Supplier"] == "17300001"
    assert [item["OrderQuantity"] for item in sap_order["items"]] == ["10.000", "4.000"]
    with session_factory() as session:
        (link,) = session.scalars(select(ErpLink)).all()
        assert (link.order_id, link.system, link.external_id) == (order.id, "s4", external_id)
        stored = session.get(PurchaseOrder, order.id)
        assert stored is not None
        assert stored.history[-1].note == f"in s4 as {external_id}"
    assert dispatch(session_factory, settings) == 0  # delivered once; nothing left
    assert len(state.posts) == 1

    # A supplier no connection serves keeps its own channel.
    unserved = build_order(world, [("1", "5.00")], code="OTHER", connection=ConnectionType.API)
    world.db.commit()
    assert dispatch(session_factory, settings) == 1
    with session_factory() as session:
        stored = session.get(PurchaseOrder, unserved.id)
        assert stored is not None
        assert stored.history[-1].note == "awaiting api connector"
    assert len(state.posts) == 1


# --- pulling ------------------------------------------------------------------------------


def test_receipts_from_sap_are_booked_once_and_the_watermark_moves_only_on_success(
    world: World,
    session_factory: sessionmaker[Session],
    settings: Settings,
    sap_server: tuple[SapState, str],
) -> None:
    state, url = sap_server
    settings = settings.model_copy(update={"erp_connections": [sap_connection(url)]})
    order = sent_to_sap(world, session_factory, settings, state)
    (sap_number,) = state.orders

    first = sync(session_factory, settings)
    assert first.ok
    assert first.detail["counts"] == {"status.unchanged": 1}  # open in SAP: nothing to move
    watermark = state_of(session_factory, "s4").watermark
    assert watermark is not None

    # SAP stamps material documents to the second: a second later than the order's change.
    state.material_documents.append(
        material_document(
            "5000000001", now() + dt.timedelta(seconds=1), [(sap_number, "10", "4", "101")]
        )
    )
    second = sync(session_factory, settings)
    assert (second.ok, second.rows) == (True, 1)
    assert received(session_factory, order.id) == [Decimal(4), Decimal(0)]
    with session_factory() as session:
        (record,) = session.scalars(select(ErpReceiptRecord)).all()
        assert (record.receipt_id, record.status, record.quantity) == (
            f"{now().year}/5000000001/1",
            ErpReceiptStatus.BOOKED,
            Decimal(4),
        )
        assert record.goods_receipt_id is not None
        stored = session.get(PurchaseOrder, order.id)
        assert stored is not None
        assert stored.status is PoStatus.PARTIALLY_RECEIVED

    # The next pull overlaps the last one a little: what comes again changes nothing.
    third = sync(session_factory, settings)
    assert (third.ok, third.rows) == (True, 0)
    assert not [key for key in third.detail["counts"] if not key.endswith(".unchanged")]
    assert received(session_factory, order.id) == [Decimal(4), Decimal(0)]

    # Even asked again from the start, the receipt is not booked twice.
    with session_factory() as session, session.begin():
        stored_state = session.get(ErpSyncState, "s4")
        assert stored_state is not None
        stored_state.watermark = None
    again = sync(session_factory, settings)
    assert again.detail["counts"]["receipt.unchanged"] == 1
    assert received(session_factory, order.id) == [Decimal(4), Decimal(0)]
    with session_factory() as session:
        assert len(session.scalars(select(GoodsReceipt)).all()) == 1
    before = state_of(session_factory, "s4").watermark

    # SAP unavailable: the run fails, says why, and the watermark stays.
    state.material_documents.append(
        material_document(
            "5000000002", now() + dt.timedelta(seconds=2), [(sap_number, "20", "4", "101")]
        )
    )
    state.knobs.unavailable = 100
    failed = sync(session_factory, settings)
    assert not failed.ok
    assert failed.error is not None
    assert "503" in failed.error
    stored_state = state_of(session_factory, "s4")
    assert (stored_state.watermark, stored_state.last_error) == (before, failed.error)
    assert received(session_factory, order.id) == [Decimal(4), Decimal(0)]

    state.knobs.unavailable = 0
    recovered = sync(session_factory, settings)
    assert (recovered.ok, recovered.rows) == (True, 1)
    assert received(session_factory, order.id) == [Decimal(4), Decimal(4)]
    stored_state = state_of(session_factory, "s4")
    assert stored_state.last_error is None
    assert stored_state.watermark is not None
    assert before is not None
    assert stored_state.watermark > before


def test_a_failure_while_applying_rolls_everything_back_and_keeps_the_watermark(
    world: World,
    session_factory: sessionmaker[Session],
    settings: Settings,
    bc_server: tuple[BcState, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    state, url = bc_server
    settings = settings.model_copy(update={"erp_connections": [bc_connection(url)]})
    world.supplier("ACME", "USD")
    world.db.commit()

    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("disk full")

    monkeypatch.setattr(erp_sync, "apply_item", broken)
    state.items.append(
        {"number": "BRG-1", "displayName": "Bearing", "lastModifiedDateTime": iso(now())}
    )
    outcome = sync(session_factory, settings)
    assert not outcome.ok
    assert outcome.error == "applying failed: RuntimeError: disk full"
    with session_factory() as session:
        acme = session.scalar(select(Supplier).where(Supplier.code == "ACME"))
        assert acme is not None
        assert acme.legal_name == "ACME Ltd"  # the vendor update went with the rollback
    stored_state = state_of(session_factory, "bc")
    assert (stored_state.watermark, stored_state.last_success_at) == (None, None)
    assert stored_state.last_error == outcome.error

    monkeypatch.undo()
    monkeypatch.setenv(BC_ENV, CLIENT_SECRET)
    assert sync(session_factory, settings).ok
    assert state_of(session_factory, "bc").watermark is not None


def test_sap_cancellation_moves_the_order_where_the_machine_allows(
    world: World,
    session_factory: sessionmaker[Session],
    settings: Settings,
    sap_server: tuple[SapState, str],
) -> None:
    state, url = sap_server
    settings = settings.model_copy(update={"erp_connections": [sap_connection(url)]})
    order = sent_to_sap(world, session_factory, settings, state)
    (sap_number,) = state.orders
    assert sync(session_factory, settings).ok

    # Deleted in SAP after goods arrived: our order cannot be cancelled, the run says why.
    state.material_documents.append(
        material_document("5000000009", now(), [(sap_number, "10", "1", "101")])
    )
    state.orders[sap_number]["PurchasingDocumentDeletionCode"] = "L"
    state.orders[sap_number]["LastChangeDateTime"] = now() + dt.timedelta(seconds=1)
    outcome = sync(session_factory, settings)
    assert outcome.ok
    counts = outcome.detail["counts"]
    assert (counts["receipt.applied"], counts["status.skipped"]) == (1, 1)
    (reason,) = outcome.detail["skipped"]
    assert reason == (
        "status: PO-000001: a purchase order cannot go from partially_received to cancelled"
    )
    assert state_of(session_factory, "s4").detail == outcome.detail

    # A second order, nothing received: the cancellation in SAP cancels it here.
    second = build_order(world, [("2", "9.00")], code="ACME2")
    world.db.commit()
    with session_factory() as session, session.begin():
        session.add(ErpLink(order_id=second.id, system="s4", external_id="4500009999"))
    state.orders["4500009999"] = {
        **state.orders[sap_number],
        "PurchaseOrder": "4500009999",
        "CorrespncExternalReference": "",
        "LastChangeDateTime": now() + dt.timedelta(seconds=2),
    }
    outcome = sync(session_factory, settings)
    assert outcome.detail["counts"]["status.applied"] == 1
    with session_factory() as session:
        stored = session.get(PurchaseOrder, second.id)
        assert stored is not None
        assert stored.status is PoStatus.CANCELLED
        assert stored.history[-1].note == "cancelled in s4 (02)"
        first = session.get(PurchaseOrder, order.id)
        assert first is not None
        assert first.status is PoStatus.PARTIALLY_RECEIVED


def test_business_central_vendors_items_and_receipts(
    world: World,
    session_factory: sessionmaker[Session],
    settings: Settings,
    bc_server: tuple[BcState, str],
) -> None:
    state, url = bc_server
    settings = settings.model_copy(update={"erp_connections": [bc_connection(url)]})
    order = build_order(world, [("10", "9.00")], connection=ConnectionType.API)
    acme = world.db.get(Supplier, order.supplier_id)
    assert acme is not None
    served = world.item(acme, [("1", "9.00")])
    other = world.item(world.supplier("ELSE", "USD"), [("1", "8.00")])
    served.description = other.description = "old text"
    world.db.commit()

    assert dispatch(session_factory, settings) == 1
    (bc_id,) = state.orders
    assert [line["sequence"] for line in state.lines[bc_id]] == [10000]
    with session_factory() as session:
        link = session.scalar(select(ErpLink))
        assert link is not None
        assert (link.system, link.external_id) == ("bc", bc_id)

    stamp = iso(now())
    state.vendors[0].update(
        displayName="Acme Bearings GmbH", blocked="Payment", lastModifiedDateTime=stamp
    )
    state.items.append(
        {
            "number": "BRG-1",
            "displayName": "Deep groove ball bearing 6205",
            "baseUnitOfMeasureCode": "PCS",
            "lastModifiedDateTime": stamp,
        }
    )
    state.receipts.append(
        {
            "number": "107001",
            "orderNumber": "PO-000001",
            "postingDate": stamp[:10],
            "lastModifiedDateTime": stamp,
            "purchaseReceiptLines": [
                {
                    "sequence": 10000,
                    "lineType": "Item",
                    "lineObjectNumber": "BRG-1",
                    "quantity": 3,
                    "unitOfMeasureCode": "PCS",
                },
            ],
        }
    )
    state.receipts.append(
        {
            "number": "107002",
            "orderNumber": "PO-000001",
            "postingDate": stamp[:10],
            "lastModifiedDateTime": stamp,
            "purchaseReceiptLines": [
                {
                    "sequence": 10000,
                    "lineType": "Item",
                    "lineObjectNumber": "BRG-1",
                    "quantity": -1,
                    "unitOfMeasureCode": "PCS",
                },
            ],
        }
    )
    outcome = sync(session_factory, settings)
    assert outcome.ok
    counts = outcome.detail["counts"]
    assert (counts["vendor.applied"], counts["item.applied"], counts["receipt.applied"]) == (
        1,
        1,
        1,
    )
    assert counts["receipt.skipped"] == 1
    assert received(session_factory, order.id) == [Decimal(3)]
    with session_factory() as session:
        supplier = session.get(Supplier, order.supplier_id)
        assert supplier is not None
        assert (supplier.legal_name, supplier.status) == (
            "Acme Bearings GmbH",
            SupplierStatus.BLOCKED,
        )
        texts = {item.id: item.description for item in session.scalars(select(CatalogItem))}
        assert texts == {served.id: "Deep groove ball bearing 6205", other.id: "old text"}
        records = {r.receipt_id: r for r in session.scalars(select(ErpReceiptRecord))}
        assert records["107001/10000"].status is ErpReceiptStatus.BOOKED
        assert records["107002/10000"].status is ErpReceiptStatus.SKIPPED
        assert "reversal" in records["107002/10000"].reason

    state.vendors[0].update(blocked=" ", lastModifiedDateTime=iso(now() + dt.timedelta(seconds=1)))
    unblocked = sync(session_factory, settings)
    assert (unblocked.rows, unblocked.detail["counts"]["vendor.applied"]) == (1, 1)
    with session_factory() as session:
        supplier = session.get(Supplier, order.supplier_id)
        assert supplier is not None
        assert supplier.status is SupplierStatus.ACTIVE
