"""Outbound X12: 850/860 from our orders, archived and queued, then handed to the transport."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from maintainpro.config import Settings
from maintainpro.core.db import utcnow
from maintainpro.core.events import OutboxEvent, deliver_pending
from maintainpro.supply.dispatch import order_dispatch_handlers
from maintainpro.supply.edi.archive import (
    AckState,
    Direction,
    DocumentStatus,
    EdiInterchange,
    InterchangeStatus,
)
from maintainpro.supply.edi.orders import PurchaseOrder as X12Order
from maintainpro.supply.edi.orders import PurchaseOrderChange
from maintainpro.supply.edi.outbound import (
    OUTBOUND_TOPIC,
    EdiSetupError,
    outbound_handlers,
    queue_purchase_order,
)
from maintainpro.supply.edi.partners import EdiTransport, TradingPartner
from maintainpro.supply.edi.transactions import read_transaction
from maintainpro.supply.edi.x12 import parse_interchange
from maintainpro.supply.order_changes import CHANGED_TOPIC, LineChange, change_order
from maintainpro.supply.purchasing import PurchaseOrder
from supply.edi.edi_world import edi_supplier, events, sent_order, trading_partner
from supply.procurement_world import TODAY, World

NOW = dt.datetime(2026, 11, 28, 10, 0, tzinfo=dt.UTC)
SENT = "purchase_order.sent"


class RecordingSender:
    """A transport double: records what it was handed, or fails while told to."""

    def __init__(self) -> None:
        self.calls: list[tuple[int, str, bytes]] = []
        self.failure: Exception | None = None

    def __call__(self, partner: TradingPartner, filename: str, payload: bytes) -> str:
        if self.failure is not None:
            raise self.failure
        self.calls.append((partner.id, filename, payload))
        return f"/inbound/{filename}"


@pytest.fixture
def partner(world: World) -> TradingPartner:
    """ACME's EDI profile: we are ZZ/MAINTAINPRO to them, they are ZZ/ACMEEDI (GS ACMEGS)."""
    return trading_partner(
        world.db, edi_supplier(world), gs_id="ACMEGS", documents=["850", "860", "997"]
    )


def _order(world: World, partner: TradingPartner) -> PurchaseOrder:
    return sent_order(world, partner.supplier, [("BRG-1", "10", "9.25"), ("SEAL-2", "4", "2.50")])


def test_850_carries_our_order_and_parses_back(world: World, partner: TradingPartner) -> None:
    order = _order(world, partner)
    order.lines[0].part.name = "Bearing 6204*2RS~sealed"  # delimiters in free text
    row = queue_purchase_order(world.db, order, SENT, now=NOW)
    parsed = parse_interchange(row.raw)
    assert parsed.ok, [str(p) for p in parsed.problems]
    interchange = parsed.interchange
    assert (interchange.sender_id, interchange.receiver_id, interchange.control_number) == (
        "MAINTAINPRO",
        "ACMEEDI",
        "000000001",
    )
    (group,) = interchange.groups
    assert (group.functional_id, group.sender, group.receiver, group.version) == (
        "PO",
        "MAINTAINPRO",
        "ACMEGS",
        "004010",
    )
    document = read_transaction(group.transaction_sets[0])
    assert isinstance(document, X12Order)
    assert (document.po_number, document.currency, document.order_date) == (
        order.number,
        "USD",
        order.sent_at.date(),  # type: ignore[union-attr]
    )
    assert [(d.qualifier, d.date) for d in document.dates] == [
        ("002", TODAY + dt.timedelta(days=10))
    ]
    first, second = document.lines
    assert (first.line_number, first.quantity, first.unit_price, first.unit) == (
        "1",
        Decimal(10),
        Decimal("9.25"),
        "EA",
    )
    assert [(p.qualifier, p.value) for p in first.product_ids] == [
        ("BP", "BRG-1"),
        ("VP", "S-BRG-1"),
    ]
    assert first.descriptions == ("Bearing 6204 2RS sealed",)
    assert second.product_ids[1].value == "S-SEAL-2"
    assert [a.amount for a in document.amounts] == [Decimal("102.50")]
    # Each line's need-by date travels in its own loop as well.
    assert row.raw.count(b"DTM*002*20261207~") == 3
    assert (row.direction, row.status, row.ack_state, row.ack_due_at) == (
        Direction.OUTBOUND,
        InterchangeStatus.QUEUED,
        AckState.PENDING,
        NOW + dt.timedelta(minutes=240),
    )
    (stored,) = row.documents
    assert (stored.set_id, stored.reference, stored.purchase_order_id, stored.group_control) == (
        "850",
        order.number,
        order.id,
        1,
    )
    assert stored.parsed is not None
    assert stored.parsed["po_number"] == order.number
    assert [e["interchange_id"] for e in events(world.db, OUTBOUND_TOPIC)] == [row.id]


def test_control_numbers_continue_per_partner(world: World, partner: TradingPartner) -> None:
    first = queue_purchase_order(world.db, _order(world, partner), SENT, now=NOW)
    second = queue_purchase_order(world.db, _order(world, partner), SENT, now=NOW)
    header = parse_interchange(second.raw).interchange
    assert (first.control_number, second.control_number) == (1, 2)
    assert (
        header.groups[0].control_number,
        header.groups[0].transaction_sets[0].control_number,
    ) == (
        "2",
        "0002",
    )


def test_860_sends_the_changed_line_of_the_revision(world: World, partner: TradingPartner) -> None:
    order = _order(world, partner)
    change_order(world.db, order, [LineChange(2, quantity=Decimal(6))], reason="more seals")
    row = queue_purchase_order(world.db, order, CHANGED_TOPIC, now=NOW)
    parsed = parse_interchange(row.raw)
    assert parsed.ok
    (transaction_set,) = parsed.interchange.transaction_sets()
    change = read_transaction(transaction_set)
    assert isinstance(change, PurchaseOrderChange)
    assert (change.po_number, change.change_sequence, change.purpose, change.change_date) == (
        order.number,
        "1",
        "04",
        NOW.date(),
    )
    (line,) = change.lines
    assert (line.line_number, line.change_type, line.quantity, line.quantity_left) == (
        "2",
        "CA",
        Decimal(6),
        Decimal(6),
    )
    assert parsed.interchange.groups[0].functional_id == "PC"


def test_a_partner_not_set_up_for_the_document_is_refused(
    world: World, partner: TradingPartner
) -> None:
    partner.documents = ["850"]
    order = _order(world, partner)
    with pytest.raises(EdiSetupError, match="not set up for 860"):
        queue_purchase_order(world.db, order, CHANGED_TOPIC, now=NOW)


def _deliver(factory: sessionmaker[Session], handlers: dict) -> int:  # type: ignore[type-arg]
    return deliver_pending(factory, handlers, now=utcnow() + dt.timedelta(hours=1))


def test_sending_a_po_to_an_edi_supplier_queues_an_850_for_its_transport(
    world: World,
    partner: TradingPartner,
    session_factory: sessionmaker[Session],
    settings: Settings,
) -> None:
    order = _order(world, partner)
    world.db.commit()
    # The dispatch handler (default channel map) turns the sent order into a queued 850 ...
    assert _deliver(session_factory, order_dispatch_handlers(session_factory, settings)) == 1
    with session_factory() as session:
        row = session.scalars(select(EdiInterchange)).one()
        assert (row.status, row.documents[0].set_id) == (InterchangeStatus.QUEUED, "850")
        history = session.get(PurchaseOrder, order.id).history[-1].note  # type: ignore[union-attr]
        assert history == "EDI 850 queued as interchange 000000001 (sftp)"
    # ... which the outbox hands to the transport injected for SFTP.
    sftp = RecordingSender()
    assert (
        _deliver(session_factory, outbound_handlers(session_factory, {EdiTransport.SFTP: sftp}))
        == 1
    )
    ((partner_id, filename, payload),) = sftp.calls
    assert (partner_id, filename) == (partner.id, "ACME_850_000000001.x12")
    with session_factory() as session:
        row = session.scalars(select(EdiInterchange)).one()
        assert payload == row.raw
        assert (row.status, row.transport_ref, row.documents[0].status) == (
            InterchangeStatus.SENT,
            "/inbound/ACME_850_000000001.x12",
            DocumentStatus.SENT,
        )
        assert row.ack_due_at is not None
        assert row.ack_due_at > row.created_at


def test_an_unreachable_partner_keeps_the_document_for_a_retry(
    world: World, partner: TradingPartner, session_factory: sessionmaker[Session]
) -> None:
    row = queue_purchase_order(world.db, _order(world, partner), SENT, now=NOW)
    world.db.commit()
    sftp = RecordingSender()
    sftp.failure = ConnectionRefusedError("partner down")
    handlers = outbound_handlers(session_factory, {EdiTransport.SFTP: sftp})
    _deliver(session_factory, handlers)
    with session_factory() as session:
        event = session.scalars(
            select(OutboxEvent).where(OutboxEvent.topic == OUTBOUND_TOPIC)
        ).one()
        assert (event.delivered_at, event.attempts) == (None, 1)
        assert "partner down" in (event.last_error or "")
        stored = session.get(EdiInterchange, row.id)
        assert stored is not None
        assert stored.status is InterchangeStatus.QUEUED
        assert stored.errors[-1]["code"] == "transport"
    sftp.failure = None
    later = utcnow() + dt.timedelta(hours=2)
    deliver_pending(session_factory, handlers, now=later)
    assert len(sftp.calls) == 1
    # Delivered again (at least once), the event does not send the file twice.
    with session_factory() as session, session.begin():
        again = session.scalars(select(OutboxEvent).where(OutboxEvent.topic == OUTBOUND_TOPIC))
        again.one().delivered_at = None
    assert deliver_pending(session_factory, handlers, now=later) == 1
    assert len(sftp.calls) == 1


def test_a_transport_without_a_sender_is_retried_with_a_reason(
    world: World, partner: TradingPartner, session_factory: sessionmaker[Session]
) -> None:
    partner.transport = EdiTransport.AS2
    queue_purchase_order(world.db, _order(world, partner), SENT, now=NOW)
    world.db.commit()
    _deliver(session_factory, outbound_handlers(session_factory, {}))
    with session_factory() as session:
        event = session.scalars(
            select(OutboxEvent).where(OutboxEvent.topic == OUTBOUND_TOPIC)
        ).one()
        assert "no as2 sender is wired" in (event.last_error or "")


def test_a_van_partner_collects_its_files_itself(
    world: World, partner: TradingPartner, session_factory: sessionmaker[Session]
) -> None:
    partner.transport = EdiTransport.NONE
    row = queue_purchase_order(world.db, _order(world, partner), SENT, now=NOW)
    world.db.commit()
    sftp = RecordingSender()
    _deliver(session_factory, outbound_handlers(session_factory, {EdiTransport.SFTP: sftp}))
    with session_factory() as session:
        event = session.scalars(select(OutboxEvent).where(OutboxEvent.topic == OUTBOUND_TOPIC))
        assert event.one().delivered_at is not None
        stored = session.get(EdiInterchange, row.id)
        assert stored is not None
        assert stored.status is InterchangeStatus.QUEUED
    assert sftp.calls == []


def test_a_supplier_without_a_partner_is_not_lost(
    world: World, session_factory: sessionmaker[Session], settings: Settings
) -> None:
    order = sent_order(world, edi_supplier(world, "NOEDI"))
    world.db.commit()
    assert _deliver(session_factory, order_dispatch_handlers(session_factory, settings)) == 0
    with session_factory() as session:
        event = session.scalars(select(OutboxEvent).where(OutboxEvent.topic == SENT)).one()
        assert "has no EDI trading partner" in (event.last_error or "")
        assert session.scalars(select(EdiInterchange)).all() == []
    assert order.id is not None


def test_the_buyer_is_named_by_the_setting_unless_the_partner_names_it(
    world: World, partner: TradingPartner
) -> None:
    row = queue_purchase_order(
        world.db, _order(world, partner), SENT, now=NOW, buyer_name="Plant 1 Buying"
    )
    assert b"N1*BY*Plant 1 Buying*" in row.raw
    partner.settings = {**(partner.settings or {}), "buyer_name": "Plant 1 (EDI desk)"}
    world.db.flush()
    row = queue_purchase_order(
        world.db, _order(world, partner), SENT, now=NOW, buyer_name="Plant 1 Buying"
    )
    assert b"N1*BY*Plant 1 (EDI desk)*" in row.raw
