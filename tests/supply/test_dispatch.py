"""Sending orders through the outbox: e-mail with the PDF to a real SMTP server, other channels."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from decimal import Decimal
from email.message import Message

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from maintainpro.config import Settings
from maintainpro.core.db import utcnow
from maintainpro.core.events import OutboxEvent, deliver_pending
from maintainpro.supply.dispatch import order_contact, order_dispatch_handlers
from maintainpro.supply.order_changes import LineChange, change_order
from maintainpro.supply.order_pdf import order_document, render_order_pdf
from maintainpro.supply.purchasing import PurchaseOrder
from maintainpro.supply.suppliers import ConnectionType, Supplier
from peers import Inbox, free_port, smtp_peer
from supply.lifecycle_world import build_order
from supply.procurement_world import World

CONTACTS = [
    {"name": "Anna", "role": "sales", "email": "anna@acme.example"},
    {"name": "Otto", "role": "Ordering", "email": "orders@acme.example"},
]


@pytest.fixture
def smtp(settings: Settings) -> Iterator[tuple[Inbox, Settings]]:
    """A local SMTP server (aiosmtpd) and settings pointing at it."""
    with smtp_peer() as (inbox, port):
        yield (
            inbox,
            settings.model_copy(
                update={
                    "smtp_host": "127.0.0.1",
                    "smtp_port": port,
                    "smtp_starttls": False,
                    "smtp_from": "buying@plant.example",
                    "buyer_name": "Plant 1 Buying",
                }
            ),
        )


def _deliver(
    factory: sessionmaker[Session], settings: Settings, ahead: dt.timedelta = dt.timedelta(hours=2)
) -> int:
    handlers = order_dispatch_handlers(factory, settings)
    return deliver_pending(factory, handlers, now=utcnow() + ahead)


def _events(factory: sessionmaker[Session]) -> list[OutboxEvent]:
    with factory() as session:
        return list(session.scalars(select(OutboxEvent).order_by(OutboxEvent.id)))


def _order(factory: sessionmaker[Session], order_id: int) -> PurchaseOrder:
    with factory() as session:
        order = session.get(PurchaseOrder, order_id)
        assert order is not None
        _ = [h.detail for h in order.history]  # loaded before the session closes
        return order


def _pdf_of(message: Message) -> tuple[str, bytes]:
    (part,) = [p for p in message.walk() if p.get_content_type() == "application/pdf"]
    payload = part.get_payload(decode=True)
    assert isinstance(payload, bytes)
    return str(part.get_filename()), payload


def test_a_sent_order_is_emailed_once_with_its_pdf(
    world: World, session_factory: sessionmaker[Session], smtp: tuple[Inbox, Settings]
) -> None:
    inbox, settings = smtp
    order = build_order(world, [("10", "9.00"), ("2", "1234.50")], contacts=CONTACTS)
    world.db.commit()
    assert [(e.topic, e.payload) for e in _events(session_factory)] == [
        ("purchase_order.sent", {"order_id": order.id})
    ]
    assert _deliver(session_factory, settings) == 1
    (recipients, message), *_ = inbox.messages
    assert len(inbox.messages) == 1
    assert recipients == ["orders@acme.example"]  # the ordering contact, not the first one
    assert message["Subject"] == "Purchase order PO-000001"
    assert message["From"] == "buying@plant.example"
    body = next(p for p in message.walk() if p.get_content_type() == "text/plain")
    assert "PO-000001" in body.get_payload(decode=True).decode()
    filename, pdf = _pdf_of(message)
    assert filename == "PO-000001.pdf"
    assert pdf.startswith(b"%PDF-")
    for text in (b"Purchase order PO-000001", b"ACME Ltd", b"2,469.00 USD", b"2,559.00 USD"):
        assert text in pdf, text
    assert b"Payment terms: NET30" in pdf
    assert b"Plant 1 Buying" in pdf  # the buyer_name setting, not the product name
    stored = _order(session_factory, order.id)
    assert stored.history[-1].note == "e-mailed to orders@acme.example"
    assert stored.history[-1].detail == [
        {
            "line": None,
            "field": "dispatch",
            "channel": "email",
            "topic": "purchase_order.sent",
            "revision": 0,
        }
    ]
    # The outbox may hand the same event over again (at-least-once): it is not mailed twice.
    handler = order_dispatch_handlers(session_factory, settings)["purchase_order.sent"][0]
    handler("purchase_order.sent", {"order_id": order.id})
    assert len(inbox.messages) == 1


def test_a_change_to_a_sent_order_is_mailed_as_a_revision(
    world: World, session_factory: sessionmaker[Session], smtp: tuple[Inbox, Settings]
) -> None:
    inbox, settings = smtp
    order = build_order(world, contacts=CONTACTS[:1])
    world.db.commit()
    _deliver(session_factory, settings)
    change_order(world.db, order, [LineChange(1, quantity=Decimal(12))], reason="more")
    world.db.commit()
    assert _deliver(session_factory, settings) == 1
    assert [m["Subject"] for _, m in inbox.messages] == [
        "Purchase order PO-000001",
        "Purchase order PO-000001 revision 1",
    ]
    assert inbox.messages[1][0] == ["anna@acme.example"]  # no ordering role: the first e-mail
    filename, pdf = _pdf_of(inbox.messages[1][1])
    assert filename == "PO-000001-rev1.pdf"
    assert b"PO-000001 rev. 1" in pdf
    assert b"108.00 USD" in pdf


def test_smtp_down_is_retried_by_the_outbox(
    world: World, session_factory: sessionmaker[Session], smtp: tuple[Inbox, Settings]
) -> None:
    inbox, settings = smtp
    order = build_order(world, contacts=CONTACTS)
    world.db.commit()
    down = settings.model_copy(update={"smtp_port": free_port()})
    assert _deliver(session_factory, down) == 0
    (event,) = _events(session_factory)
    assert event.delivered_at is None
    assert event.attempts == 1
    assert event.last_error is not None
    assert event.last_error.startswith("DeliveryError")
    assert not any("e-mailed" in h.note for h in _order(session_factory, order.id).history)
    # Back up: the retry, due after its back-off, goes out.
    assert _deliver(session_factory, settings, dt.timedelta(hours=3)) == 1
    assert len(inbox.messages) == 1


def test_a_supplier_without_an_email_contact_fails_and_is_retried(
    world: World, session_factory: sessionmaker[Session], smtp: tuple[Inbox, Settings]
) -> None:
    inbox, settings = smtp
    build_order(world, contacts=[{"name": "Phone only", "phone": "+49 1"}])
    world.db.commit()
    assert _deliver(session_factory, settings) == 0
    (event,) = _events(session_factory)
    assert event.last_error is not None
    assert "no contact with an e-mail address" in event.last_error
    assert inbox.messages == []


@pytest.mark.parametrize("channel", [ConnectionType.API, ConnectionType.PORTAL])
def test_other_channels_wait_for_their_connector(
    world: World,
    session_factory: sessionmaker[Session],
    smtp: tuple[Inbox, Settings],
    channel: ConnectionType,
) -> None:
    inbox, settings = smtp
    order = build_order(world, connection=channel, contacts=CONTACTS)
    world.db.commit()
    assert _deliver(session_factory, settings) == 1
    assert inbox.messages == []
    assert _order(session_factory, order.id).history[-1].note == (
        f"awaiting {channel.value} connector"
    )


def test_a_registered_sender_replaces_the_placeholder(
    world: World, session_factory: sessionmaker[Session], settings: Settings
) -> None:
    sent: list[tuple[str, int]] = []

    def edi(session: Session, order: PurchaseOrder, topic: str) -> str:
        sent.append((topic, order.id))
        return "sent as EDI 850"

    order = build_order(world, connection=ConnectionType.EDI)
    world.db.commit()
    handlers = order_dispatch_handlers(session_factory, settings, {ConnectionType.EDI: edi})
    assert deliver_pending(session_factory, handlers, now=utcnow() + dt.timedelta(hours=1)) == 1
    assert sent == [("purchase_order.sent", order.id)]
    assert _order(session_factory, order.id).history[-1].note == "sent as EDI 850"


def test_the_ordering_contact_is_chosen() -> None:
    supplier = Supplier(code="S", contacts=CONTACTS)
    assert order_contact(supplier) == "orders@acme.example"


def test_the_pdf_is_reproducible_and_explains_lines_on_request(world: World) -> None:
    order = build_order(world, [("10", "9.00")])
    document = order_document(world.db, order, buyer="Plant <Buying>")
    plain = render_order_pdf(document)
    assert plain == render_order_pdf(document)
    explained = render_order_pdf(document, explanations=True)
    assert b"line 1: cheapest catalogue price" in explained
    assert b"cheapest catalogue price" not in plain
    # The buyer's name is data: escaped for the paragraph markup, printed, never read as a tag.
    assert b"Buyer: Plant <" in plain
