"""Changes to approved and sent orders: revisions, history, totals, contracts, line cancels."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from sqlalchemy import select

from maintainpro.core.events import OutboxEvent
from maintainpro.supply.acknowledgements import LineAck, acknowledge_order
from maintainpro.supply.contracts import Contract, ContractError
from maintainpro.supply.order_changes import (
    LineChange,
    LineFacts,
    OrderChangeError,
    cancel_line,
    change_order,
    validate_changes,
)
from maintainpro.supply.purchasing import LineAckStatus, PoStatus, PoTransitionError
from maintainpro.supply.receiving import receive
from maintainpro.supply.requisitions import RequisitionLine, RequisitionLineStatus
from supply.lifecycle_world import build_order
from supply.procurement_world import TODAY, World

AT = dt.datetime(2026, 11, 28, 10, 0, tzinfo=dt.UTC)
FACTS = {1: LineFacts(Decimal(10), Decimal("9.00"), received_quantity=Decimal(4))}


def _changed_events(world: World) -> list[dict[str, object]]:
    rows = world.db.scalars(
        select(OutboxEvent).where(OutboxEvent.topic == "purchase_order.changed")
    ).all()
    return [row.payload for row in rows]


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ([LineChange(2, quantity=Decimal(1))], "line 2 is not on the order"),
        ([LineChange(1, quantity=Decimal(3))], "4 already received, cannot reduce to 3"),
        ([LineChange(1, quantity=Decimal(0))], "cancel the line instead"),
        ([LineChange(1, unit_price=Decimal(-1))], "unit price cannot be negative"),
        ([LineChange(1)], "name a new quantity"),
        ([LineChange(1, quantity=Decimal(10))], "nothing differs"),
        (
            [LineChange(1, quantity=Decimal(12)), LineChange(1, unit_price=Decimal(1))],
            "line 1 is changed twice",
        ),
        ([], "at least one line"),
    ],
)
def test_bad_changes_are_refused(changes: list[LineChange], message: str) -> None:
    with pytest.raises(OrderChangeError, match=message):
        validate_changes(PoStatus.SENT, FACTS, changes)


@pytest.mark.parametrize("status", [PoStatus.DRAFT, PoStatus.RECEIVED, PoStatus.INVOICED])
def test_orders_outside_approval_to_receipt_are_not_changed(status: PoStatus) -> None:
    with pytest.raises(PoTransitionError, match="cannot be changed"):
        validate_changes(status, FACTS, [LineChange(1, quantity=Decimal(12))])


def test_a_change_to_a_sent_order_is_a_new_revision_sent_on(world: World) -> None:
    order = build_order(world, [("10", "9.00"), ("5", "4.00")])
    acknowledge_order(world.db, order, [LineAck(1, LineAckStatus.ACCEPTED)], now=AT)
    new_date = TODAY + dt.timedelta(days=20)
    entry = change_order(
        world.db,
        order,
        [
            LineChange(1, quantity=Decimal(12), need_by=new_date),
            LineChange(2, Decimal(5), Decimal(5)),
        ],
        reason="bigger shutdown",
        now=AT,
    )
    one, two = order.lines
    assert (one.quantity, one.line_total, one.need_by) == (Decimal(12), Decimal("108.00"), new_date)
    assert (two.unit_price, two.line_total) == (Decimal(5), Decimal("25.00"))
    assert (order.total, order.total_base) == (Decimal("133.00"), Decimal("133.00"))
    assert order.revision == 1
    assert entry.note == "revision 1: bigger shutdown"
    assert entry.from_status is entry.to_status is PoStatus.ACKNOWLEDGED
    assert entry.detail is not None
    changes = {(d["line"], d["field"]): (d["old"], d["new"]) for d in entry.detail}
    assert changes[(1, "quantity")] == ("10", "12")
    assert changes[(1, "line_total")] == ("90", "108")
    assert changes[(1, "need_by")] == (
        (TODAY + dt.timedelta(days=10)).isoformat(),
        new_date.isoformat(),
    )
    assert changes[(2, "unit_price")] == ("4", "5")
    assert (2, "quantity") not in changes
    # The supplier accepted the old terms; the new ones wait for a new answer.
    assert changes[(1, "ack_status")] == ("accepted", "pending")
    assert one.ack_status is LineAckStatus.PENDING
    world.db.flush()
    assert _changed_events(world) == [{"order_id": order.id, "revision": 1}]


def test_an_approved_order_changes_without_telling_the_supplier(world: World) -> None:
    order = build_order(world, send=False)
    change_order(world.db, order, [LineChange(1, unit_price=Decimal("8.50"))], now=AT)
    change_order(world.db, order, [LineChange(1, quantity=Decimal(11))], now=AT)
    assert order.revision == 2
    assert order.total == Decimal("93.50")
    world.db.flush()
    assert _changed_events(world) == []


def test_contract_drawdown_follows_the_change_and_its_cap_holds(world: World) -> None:
    order = build_order(world, [("10", "9.00")], contract_cap="120.00")
    contract = world.db.get(Contract, order.lines[0].contract_id)
    assert contract is not None
    change_order(world.db, order, [LineChange(1, quantity=Decimal(12))], now=AT)
    assert contract.drawn == Decimal("108.00")
    change_order(world.db, order, [LineChange(1, quantity=Decimal(8))], now=AT)
    assert contract.drawn == Decimal("72.00")
    with pytest.raises(ContractError, match=r"48\.00 USD left"):
        change_order(world.db, order, [LineChange(1, quantity=Decimal(14))], now=AT)
    assert (order.lines[0].quantity, order.revision, contract.drawn) == (
        Decimal(8),
        2,
        Decimal("72.00"),
    )


def test_a_quantity_below_what_arrived_is_refused(world: World) -> None:
    order = build_order(world, [("10", "9.00"), ("2", "1.00")])
    receive(world.db, order.lines[0], quantity=Decimal(6), received_at=AT)
    with pytest.raises(OrderChangeError, match="6 already received, cannot reduce to 5"):
        change_order(world.db, order, [LineChange(1, quantity=Decimal(5))], now=AT)
    # Down to exactly what arrived is fine; with the other line still open the order waits.
    change_order(world.db, order, [LineChange(1, quantity=Decimal(6))], now=AT)
    assert order.status is PoStatus.PARTIALLY_RECEIVED
    receive(world.db, order.lines[1], quantity=Decimal(2), received_at=AT)
    assert order.status is PoStatus.RECEIVED
    with pytest.raises(PoTransitionError, match="received cannot be changed"):
        change_order(world.db, order, [LineChange(1, quantity=Decimal(7))], now=AT)


def test_cancelling_a_line_reopens_its_requisition_and_is_sent_on(world: World) -> None:
    order = build_order(world, [("10", "9.00"), ("5", "4.00")])
    entry = cancel_line(world.db, order, 2, reason="found in another store", now=AT)
    line = order.lines[1]
    assert (line.quantity, line.line_total, line.outstanding) == (0, 0, 0)
    assert order.total == Decimal("90.00")
    assert order.status is PoStatus.SENT
    assert entry.note == "revision 1: found in another store"
    assert entry.detail is not None
    assert {"line": 2, "field": "status", "old": "open", "new": "cancelled"} in entry.detail
    assert {"line": 2, "field": "quantity", "old": "5", "new": "0"} in entry.detail
    req = world.db.get(RequisitionLine, line.requisition_line_id)
    assert req is not None
    assert req.status is RequisitionLineStatus.OPEN
    with pytest.raises(OrderChangeError, match="nothing left to cancel"):
        cancel_line(world.db, order, 2, now=AT)
    with pytest.raises(OrderChangeError, match="line 2 is cancelled"):
        change_order(world.db, order, [LineChange(2, quantity=Decimal(1))], now=AT)
    with pytest.raises(OrderChangeError, match="line 9 is not on the order"):
        cancel_line(world.db, order, 9, now=AT)
    world.db.flush()
    assert _changed_events(world) == [{"order_id": order.id, "revision": 1}]


def test_cancelling_every_line_cancels_the_order(world: World) -> None:
    order = build_order(world, [("10", "9.00")], contract_cap="500.00", send=False)
    contract = world.db.get(Contract, order.lines[0].contract_id)
    assert contract is not None
    cancel_line(world.db, order, 1, now=AT)
    assert order.status is PoStatus.CANCELLED
    assert contract.drawn == 0
    assert order.history[-1].note == "every line cancelled"


def test_cancelling_the_rest_of_a_partly_received_line_completes_the_order(
    world: World,
) -> None:
    order = build_order(world, [("10", "9.00")])
    receive(world.db, order.lines[0], quantity=Decimal(7), received_at=AT)
    cancel_line(world.db, order, 1, reason="short-close", now=AT)
    line = order.lines[0]
    assert (line.quantity, line.received_quantity, line.line_total) == (
        Decimal(7),
        Decimal(7),
        Decimal("63.00"),
    )
    assert order.status is PoStatus.RECEIVED
    # Part of the need was met, so the requisition is not reopened for the whole quantity.
    req = world.db.get(RequisitionLine, line.requisition_line_id)
    assert req is not None
    assert req.status is RequisitionLineStatus.ORDERED


def test_goods_on_their_way_block_a_line_cancel(world: World) -> None:
    order = build_order(world, [("10", "9.00")])
    order.lines[0].shipped_quantity = Decimal(4)
    with pytest.raises(OrderChangeError, match="shipped and not yet received"):
        cancel_line(world.db, order, 1, now=AT)
