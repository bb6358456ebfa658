"""997s both ways: partners' answers matched to what we sent, and the overdue alarm."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy.orm import Session, sessionmaker

from maintainpro.core.db import utcnow
from maintainpro.supply.edi.acks import (
    ACK_OVERDUE_TOPIC,
    ACK_REJECTED_TOPIC,
    mark_overdue,
    overdue_acks_job,
)
from maintainpro.supply.edi.archive import AckState, DocumentStatus, EdiInterchange
from maintainpro.supply.edi.functional_ack import (
    AckStatus,
    FunctionalAcknowledgement,
    SetAcknowledgement,
    functional_ack_content,
)
from maintainpro.supply.edi.inbound import receive_interchanges
from maintainpro.supply.edi.outbound import queue_purchase_order
from maintainpro.supply.edi.partners import TradingPartner
from maintainpro.supply.purchasing import PurchaseOrder
from supply.edi.edi_world import edi_supplier, events, from_partner, sent_order, trading_partner
from supply.procurement_world import World

NOW = dt.datetime(2026, 11, 28, 10, 0, tzinfo=dt.UTC)
DEADLINE = dt.timedelta(minutes=240)


@pytest.fixture
def partner(world: World) -> TradingPartner:
    """ACME, answering our groups with 997s."""
    return trading_partner(world.db, edi_supplier(world))


@pytest.fixture
def order(world: World, partner: TradingPartner) -> PurchaseOrder:
    """A sent order to ACME."""
    return sent_order(world, partner.supplier)


def _sent(world: World, order: PurchaseOrder) -> EdiInterchange:
    return queue_purchase_order(world.db, order, "purchase_order.sent", now=NOW)


def _answer(
    world: World,
    partner: TradingPartner,
    group: str,
    status: AckStatus,
    *sets: tuple[str, AckStatus],
    functional_id: str = "PO",
    control: int = 1,
) -> DocumentStatus:
    accepted = sum(1 for _, s in sets if s is AckStatus.ACCEPTED)
    ack = FunctionalAcknowledgement(
        functional_id=functional_id,
        group_control_number=group,
        status=status,
        sets_included=len(sets),
        sets_received=len(sets),
        sets_accepted=accepted,
        sets=tuple(
            SetAcknowledgement("850", number, state, ("5",) if state is AckStatus.REJECTED else ())
            for number, state in sets
        ),
    )
    raw = from_partner(partner, functional_ack_content(ack), control=control)
    (result,) = receive_interchanges(world.db, raw, now=NOW + dt.timedelta(minutes=30))
    assert result.acknowledgement is None  # a 997 is never answered with a 997
    return result.interchange.documents[0].status


def test_an_accepting_997_settles_the_interchange(
    world: World, partner: TradingPartner, order: PurchaseOrder
) -> None:
    sent = _sent(world, order)
    assert _answer(world, partner, "1", AckStatus.ACCEPTED, ("0001", AckStatus.ACCEPTED)) == (
        DocumentStatus.APPLIED
    )
    assert (sent.ack_state, sent.acknowledged_at) == (
        AckState.ACCEPTED,
        NOW + dt.timedelta(minutes=30),
    )
    assert events(world.db, ACK_REJECTED_TOPIC) == []


def test_a_rejecting_997_raises_an_alert(
    world: World, partner: TradingPartner, order: PurchaseOrder
) -> None:
    sent = _sent(world, order)
    _answer(world, partner, "1", AckStatus.REJECTED, ("0001", AckStatus.REJECTED))
    assert sent.ack_state is AckState.REJECTED
    assert "AK5 R, error codes 5" in sent.documents[0].errors[0]["message"]
    (alert,) = events(world.db, ACK_REJECTED_TOPIC)
    assert (alert["interchange_id"], alert["purchase_order_ids"], alert["severity"]) == (
        sent.id,
        [order.id],
        "major",
    )
    assert alert["title"] == f"ACME rejected EDI 850 {order.number}"


def test_a_partly_accepting_997_is_accepted_with_errors_and_alerts(
    world: World, partner: TradingPartner, order: PurchaseOrder
) -> None:
    sent = _sent(world, order)
    _answer(world, partner, "1", AckStatus.PARTIALLY_ACCEPTED, ("0001", AckStatus.REJECTED))
    assert sent.ack_state is AckState.ACCEPTED_WITH_ERRORS
    assert [a["rejected_sets"] for a in events(world.db, ACK_REJECTED_TOPIC)] == [["0001"]]


@pytest.mark.parametrize(
    ("group", "functional_id", "reason"),
    [
        ("77", "PO", "no PO group 77 was sent to this partner"),
        ("1", "IN", "no IN group 1 was sent to this partner"),
    ],
)
def test_a_997_for_something_we_did_not_send_waits_in_the_error_queue(
    world: World,
    partner: TradingPartner,
    order: PurchaseOrder,
    group: str,
    functional_id: str,
    reason: str,
) -> None:
    sent = _sent(world, order)
    status = _answer(
        world,
        partner,
        group,
        AckStatus.ACCEPTED,
        ("0001", AckStatus.ACCEPTED),
        functional_id=functional_id,
    )
    assert status is DocumentStatus.FAILED
    failed = world.db.get(EdiInterchange, sent.id + 1)
    assert failed is not None
    assert failed.documents[0].errors[0]["message"] == reason
    assert sent.ack_state is AckState.PENDING


def test_no_997_within_the_deadline_is_overdue_once(
    world: World, partner: TradingPartner, order: PurchaseOrder
) -> None:
    sent = _sent(world, order)
    assert mark_overdue(world.db, now=NOW + DEADLINE - dt.timedelta(seconds=1)) == []
    assert mark_overdue(world.db, now=NOW + DEADLINE) == [sent]
    assert sent.ack_state is AckState.OVERDUE
    assert mark_overdue(world.db, now=NOW + 2 * DEADLINE) == []
    (alert,) = events(world.db, ACK_OVERDUE_TOPIC)
    assert (alert["interchange_id"], alert["severity"]) == (sent.id, "warning")
    assert alert["title"] == f"No 997 from ACME for EDI 850 {order.number}"
    # A late 997 still counts.
    _answer(world, partner, "1", AckStatus.ACCEPTED, ("0001", AckStatus.ACCEPTED))
    assert sent.ack_state is AckState.ACCEPTED


def test_acknowledged_and_unacknowledgeable_interchanges_are_never_overdue(
    world: World, partner: TradingPartner, order: PurchaseOrder
) -> None:
    _sent(world, order)
    _answer(world, partner, "1", AckStatus.ACCEPTED, ("0001", AckStatus.ACCEPTED))
    # Our own 997s (NOT_REQUESTED) and the accepted 850 stay as they are.
    assert mark_overdue(world.db, now=NOW + 10 * DEADLINE) == []


def test_the_overdue_job_commits_its_findings(
    world: World, order: PurchaseOrder, session_factory: sessionmaker[Session]
) -> None:
    sent = _sent(world, order)
    sent.ack_due_at = utcnow() - dt.timedelta(minutes=1)
    world.db.commit()
    assert overdue_acks_job(session_factory) == 1
    with session_factory() as session:
        stored = session.get(EdiInterchange, sent.id)
        assert stored is not None
        assert stored.ack_state is AckState.OVERDUE
    assert overdue_acks_job(session_factory) == 0
