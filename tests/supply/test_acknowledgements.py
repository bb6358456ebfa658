"""Supplier acknowledgements: per-line answers, their history, and what the order expects after."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from maintainpro.supply.acknowledgements import (
    AcknowledgementError,
    LineAck,
    acknowledge_order,
    validate_acknowledgement,
)
from maintainpro.supply.contracts import Contract, ContractError
from maintainpro.supply.order_changes import LineFacts
from maintainpro.supply.purchasing import LineAckStatus, PoStatus, PoTransitionError
from maintainpro.supply.receiving import receive
from maintainpro.supply.requisitions import RequisitionLine, RequisitionLineStatus
from supply.lifecycle_world import build_order
from supply.procurement_world import World

A, C, R = LineAckStatus.ACCEPTED, LineAckStatus.CHANGED, LineAckStatus.REJECTED
AT = dt.datetime(2026, 11, 28, 10, 0, tzinfo=dt.UTC)
FACTS = {
    1: LineFacts(Decimal(10), Decimal("9.00")),
    2: LineFacts(Decimal(5), Decimal("4.00"), received_quantity=Decimal(2)),
}


@pytest.mark.parametrize(
    ("acks", "message"),
    [
        ([LineAck(7, A)], "line 7 is not on the order"),
        ([LineAck(1, A), LineAck(1, R, note="x")], "line 1 is answered twice"),
        ([LineAck(1, C, quantity=Decimal(-1))], "line 1: the quantity must be positive"),
        ([LineAck(1, C, quantity=Decimal(0))], "reject the line instead"),
        ([LineAck(1, C, unit_price=Decimal("-0.01"))], "unit price cannot be negative"),
        ([LineAck(1, R)], "a rejection needs a reason"),
        ([LineAck(1, R, quantity=Decimal(2), note="no")], "carries no quantity"),
        ([LineAck(2, R, note="discontinued")], "already shipped or received"),
        ([LineAck(1, C)], "'changed' needs a quantity, unit price or promised date"),
        ([LineAck(1, A, quantity=Decimal(9))], "send 'changed'"),
        ([LineAck(2, C, quantity=Decimal(1))], "2 already received"),
        ([LineAck(1, LineAckStatus.PENDING)], "answer accepted, changed or rejected"),
        ([], "at least one line"),
    ],
)
def test_bad_acknowledgements_are_refused_with_the_reason(
    acks: list[LineAck], message: str
) -> None:
    with pytest.raises(AcknowledgementError, match=message):
        validate_acknowledgement(PoStatus.SENT, FACTS, acks)


def test_every_bad_line_is_named_in_one_error() -> None:
    with pytest.raises(AcknowledgementError) as caught:
        validate_acknowledgement(
            PoStatus.ACKNOWLEDGED, FACTS, [LineAck(3, A), LineAck(1, C, quantity=Decimal(-2))]
        )
    assert "line 3 is not on the order" in str(caught.value)
    assert "line 1: the quantity must be positive" in str(caught.value)


@pytest.mark.parametrize("status", [PoStatus.DRAFT, PoStatus.APPROVED])
def test_an_order_not_sent_cannot_be_acknowledged(status: PoStatus) -> None:
    with pytest.raises(PoTransitionError, match="not sent"):
        validate_acknowledgement(status, FACTS, [LineAck(1, A)])


@pytest.mark.parametrize("status", [PoStatus.RECEIVED, PoStatus.CANCELLED, PoStatus.CLOSED])
def test_a_finished_order_cannot_be_acknowledged(status: PoStatus) -> None:
    with pytest.raises(PoTransitionError, match="no longer"):
        validate_acknowledgement(status, FACTS, [LineAck(1, A)])


def test_valid_answers_pass() -> None:
    # Nothing is raised, and nothing is returned: valid answers have no problems to report.
    outcome = validate_acknowledgement(  # type: ignore[func-returns-value]
        PoStatus.SENT,
        FACTS,
        [
            LineAck(1, A, quantity=Decimal(10), promised_date=dt.date(2026, 12, 5)),
            LineAck(2, C, quantity=Decimal(2), unit_price=Decimal("4.10")),
        ],
    )
    assert outcome is None


def test_accepted_changed_and_rejected_lines(world: World) -> None:
    order = build_order(world, [("10", "9.00"), ("5", "4.00"), ("3", "2.50")])
    assert order.total == Decimal("117.50")
    promised = dt.date(2026, 12, 4)
    entry = acknowledge_order(
        world.db,
        order,
        [
            LineAck(1, A, promised_date=promised),
            LineAck(2, C, quantity=Decimal(8), unit_price=Decimal("4.25"), note="pack of 8"),
            LineAck(3, R, note="discontinued"),
        ],
        now=AT,
    )
    one, two, three = order.lines
    assert order.status is PoStatus.ACKNOWLEDGED
    assert order.acknowledged_at == AT
    assert (one.ack_status, one.promised_date, one.quantity) == (A, promised, Decimal(10))
    assert (two.ack_status, two.quantity, two.unit_price, two.line_total) == (
        C,
        Decimal(8),
        Decimal("4.25"),
        Decimal("34.00"),
    )
    assert (two.ack_quantity, two.ack_unit_price, two.ack_note) == (
        Decimal(8),
        Decimal("4.25"),
        "pack of 8",
    )
    # The rejected line expects nothing any more; its need goes back to the requisition list.
    assert (three.ack_status, three.quantity, three.outstanding) == (R, 0, 0)
    assert three.ack_note == "discontinued"
    req = world.db.get(RequisitionLine, three.requisition_line_id)
    assert req is not None
    assert req.status is RequisitionLineStatus.OPEN
    assert order.total == Decimal("124.00")  # 90.00 + 34.00 + 0
    assert (entry.from_status, entry.to_status) == (PoStatus.SENT, PoStatus.ACKNOWLEDGED)
    assert "1 accepted, 1 changed, 1 rejected" in entry.note
    assert entry.detail is not None
    changes = {(d["line"], d["field"]): (d["old"], d["new"]) for d in entry.detail}
    assert changes[(2, "quantity")] == ("5", "8")  # the ordered quantity stays visible
    assert changes[(2, "unit_price")] == ("4", "4.25")
    assert changes[(1, "promised_date")] == (None, "2026-12-04")
    assert changes[(3, "quantity")] == ("3", "0")
    assert changes[(3, "ack_status")] == ("pending", "rejected")
    assert changes[(3, "requisition")] == ("ordered", "open")
    world.db.flush()
    world.db.expire_all()
    stored = order.history[-1].detail  # read back from the JSON column
    assert stored is not None
    assert {"line": 2, "field": "quantity", "old": "5", "new": "8"} in stored


def test_a_second_acknowledgement_keeps_the_first_date_and_the_status(world: World) -> None:
    order = build_order(world, [("10", "9.00"), ("5", "4.00")])
    acknowledge_order(world.db, order, [LineAck(1, A), LineAck(2, R, note="gone")], now=AT)
    later = AT + dt.timedelta(days=1)
    entry = acknowledge_order(
        world.db,
        order,
        [LineAck(1, C, promised_date=dt.date(2026, 12, 10)), LineAck(2, R, note="gone")],
        now=later,
    )
    assert order.acknowledged_at == AT
    assert order.status is PoStatus.ACKNOWLEDGED
    assert (entry.from_status, entry.to_status) == (PoStatus.ACKNOWLEDGED, PoStatus.ACKNOWLEDGED)
    assert entry.detail is not None
    assert [(d["line"], d["field"]) for d in entry.detail] == [
        (1, "ack_status"),
        (1, "promised_date"),
    ]
    with pytest.raises(AcknowledgementError, match="line 2 is no longer on order"):
        acknowledge_order(world.db, order, [LineAck(2, A)])


def test_a_price_change_moves_the_contract_drawdown_within_its_cap(world: World) -> None:
    order = build_order(world, [("10", "9.00")], contract_cap="100.00")
    contract = world.db.get(Contract, order.lines[0].contract_id)
    assert contract is not None
    assert contract.drawn == Decimal("90.00")
    acknowledge_order(world.db, order, [LineAck(1, C, unit_price=Decimal("9.50"))], now=AT)
    assert contract.drawn == Decimal("95.00")
    with pytest.raises(ContractError, match=r"has 5\.00 USD left"):
        acknowledge_order(world.db, order, [LineAck(1, C, quantity=Decimal(11))], now=AT)
    # Refused before anything changed.
    assert (order.lines[0].quantity, order.total, contract.drawn) == (
        Decimal(10),
        Decimal("95.00"),
        Decimal("95.00"),
    )


def test_rejecting_the_last_open_line_completes_a_partly_received_order(world: World) -> None:
    order = build_order(world, [("4", "9.00"), ("2", "3.00")])
    receive(world.db, order.lines[0], quantity=Decimal(4), received_at=AT)
    assert order.status is PoStatus.PARTIALLY_RECEIVED
    acknowledge_order(world.db, order, [LineAck(2, R, note="out of production")], now=AT)
    assert order.status is PoStatus.RECEIVED
    assert order.acknowledged_at == AT
    assert [h.to_status for h in order.history][-2:] == [
        PoStatus.PARTIALLY_RECEIVED,
        PoStatus.RECEIVED,
    ]


def test_an_approved_order_is_not_acknowledged(world: World) -> None:
    order = build_order(world, send=False)
    with pytest.raises(PoTransitionError, match="not sent"):
        acknowledge_order(world.db, order, [LineAck(1, A)])
    assert order.acknowledged_at is None
    assert order.lines[0].ack_status is LineAckStatus.PENDING
