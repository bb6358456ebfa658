"""Purchase-order status machine, approval limits, contract drawdown and history."""

from __future__ import annotations

from decimal import Decimal

import pytest

from maintainpro.core.users import Role
from maintainpro.supply.contracts import ContractError
from maintainpro.supply.money import Money
from maintainpro.supply.purchasing import (
    PO_TRANSITIONS,
    ApprovalPolicy,
    ApprovalRefused,
    PoStatus,
    PoTransitionError,
    PurchaseOrder,
    approve_order,
    cancel_order,
    check_po_transition,
    move_order,
    send_order,
)
from maintainpro.supply.requisitions import RequisitionLineStatus, manual_requisition
from maintainpro.supply.sourcing import generate_purchase_orders
from supply.procurement_world import TODAY, World

S = PoStatus
POLICY = ApprovalPolicy({Role.PROCUREMENT: Decimal("100.00"), Role.ADMIN: None})


def _order(world: World, quantity: str = "10", price: str = "9.00") -> PurchaseOrder:
    acme = world.supplier("ACME", "USD")
    world.item(acme, [("1", price)])
    manual_requisition(world.db, part_id=world.ids["part"], quantity=Decimal(quantity))
    result = generate_purchase_orders(world.db, base_currency="USD", fx=world.fx(), today=TODAY)
    return result.orders[0]


@pytest.mark.parametrize(
    ("current", "target"),
    [
        (S.DRAFT, S.SENT),
        (S.DRAFT, S.RECEIVED),
        (S.APPROVED, S.RECEIVED),
        (S.RECEIVED, S.CANCELLED),
        (S.CLOSED, S.DRAFT),
        (S.CANCELLED, S.APPROVED),
        (S.INVOICED, S.RECEIVED),
        (S.SHIPPED, S.CANCELLED),
    ],
)
def test_illegal_moves_are_refused(current: PoStatus, target: PoStatus) -> None:
    with pytest.raises(PoTransitionError):
        check_po_transition(current, target)


def test_every_state_is_reachable_and_ends_in_closed_or_cancelled() -> None:
    reached = {S.DRAFT}
    frontier = [S.DRAFT]
    while frontier:
        for nxt in PO_TRANSITIONS[frontier.pop()]:
            if nxt not in reached:
                reached.add(nxt)
                frontier.append(nxt)
    assert reached == set(PoStatus)
    assert PO_TRANSITIONS[S.CLOSED] == PO_TRANSITIONS[S.CANCELLED] == frozenset()


def test_procurement_approves_up_to_its_limit_and_admin_above(world: World) -> None:
    policy = POLICY
    policy.check(Role.PROCUREMENT, Money.of("100.00", "USD"))
    with pytest.raises(ApprovalRefused, match="above the procurement approval limit"):
        policy.check(Role.PROCUREMENT, Money.of("100.01", "USD"))
    with pytest.raises(ApprovalRefused, match="may not approve"):
        policy.check(Role.TECHNICIAN, Money.of("1.00", "USD"))
    order = _order(world, "20", "9.00")  # 180.00 USD
    buyer = world.user(Role.PROCUREMENT)
    with pytest.raises(ApprovalRefused):
        approve_order(world.db, order, approver_id=buyer, role=Role.PROCUREMENT, policy=policy)
    assert order.status is S.DRAFT
    approve_order(world.db, order, approver_id=world.user(), role=Role.ADMIN, policy=policy)
    assert order.status is S.APPROVED
    assert order.approved_at is not None


def test_the_order_walks_the_machine_and_keeps_its_history(world: World) -> None:
    order = _order(world)
    approve_order(
        world.db,
        order,
        approver_id=world.user(Role.PROCUREMENT),
        role=Role.PROCUREMENT,
        policy=POLICY,
    )
    send_order(order)
    for status in (S.ACKNOWLEDGED, S.SHIPPED):
        move_order(order, status)
    with pytest.raises(PoTransitionError):
        send_order(order)
    with pytest.raises(PoTransitionError):
        move_order(order, S.CLOSED)
    world.db.flush()
    assert [(h.from_status, h.to_status) for h in order.history] == [
        (None, S.DRAFT),
        (S.DRAFT, S.APPROVED),
        (S.APPROVED, S.SENT),
        (S.SENT, S.ACKNOWLEDGED),
        (S.ACKNOWLEDGED, S.SHIPPED),
    ]
    assert all(h.at.tzinfo is not None for h in order.history)


def test_contract_spend_is_drawn_on_approval_and_given_back_on_cancel(world: World) -> None:
    bound = world.supplier("BOUND", "EUR")
    contract = world.contract(bound, "9.00", cap="100.00")
    manual_requisition(world.db, part_id=world.ids["part"], quantity=Decimal(10))
    (order,) = generate_purchase_orders(
        world.db, base_currency="USD", fx=world.fx(), today=TODAY
    ).orders
    approve_order(world.db, order, approver_id=world.user(), role=Role.ADMIN, policy=POLICY)
    assert contract.drawn == Decimal("90.00")
    with pytest.raises(ContractError):
        contract.draw(Decimal("10.01"))
    cancel_order(world.db, order, reason="not needed")
    assert contract.drawn == 0
    assert order.status is S.CANCELLED
    assert order.history[-1].note == "not needed"
    # The need is still there, so its requisition line is open again.
    assert order.lines[0].requisition_line_id is not None
    from maintainpro.supply.requisitions import RequisitionLine

    req = world.db.get(RequisitionLine, order.lines[0].requisition_line_id)
    assert req is not None
    assert req.status is RequisitionLineStatus.OPEN


def test_cancel_is_refused_once_goods_move(world: World) -> None:
    order = _order(world)
    approve_order(world.db, order, approver_id=world.user(), role=Role.ADMIN, policy=POLICY)
    send_order(order)
    move_order(order, S.ACKNOWLEDGED)
    with pytest.raises(PoTransitionError):
        cancel_order(world.db, order)
