"""A change order that raises an order beyond its approver's limit needs approval again."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from maintainpro.core.events import OutboxEvent
from maintainpro.core.users import Role
from maintainpro.supply.contracts import Contract
from maintainpro.supply.money import Money
from maintainpro.supply.order_changes import (
    CHANGED_TOPIC,
    LineChange,
    change_order,
    reapproval_reason,
)
from maintainpro.supply.purchasing import (
    ApprovalPolicy,
    ApprovalRefused,
    PoStatus,
    PoTransitionError,
    PurchaseOrder,
    approve_order,
    cancel_order,
    send_order,
)
from maintainpro.supply.receiving import receive
from maintainpro.supply.requisitions import manual_requisition
from supply.procurement_world import World
from support import bearer, plant

API = "/api/v1"
AT = dt.datetime(2026, 11, 28, 10, 0, tzinfo=dt.UTC)
POLICY = ApprovalPolicy({Role.PROCUREMENT: Decimal("100.00"), Role.ADMIN: None})
SENT_TOPIC = "purchase_order.sent"


def _usd(amount: str) -> Money:
    return Money.of(Decimal(amount), "USD")


@pytest.mark.parametrize(
    ("old", "new", "role", "needs_approval"),
    [
        ("90.00", "80.00", Role.PROCUREMENT, False),  # lowered
        ("90.00", "100.00", Role.PROCUREMENT, False),  # raised, up to the limit
        ("90.00", "100.01", Role.PROCUREMENT, True),  # raised past it
        ("150.00", "120.00", Role.PROCUREMENT, False),  # lowered, though still above it
        ("90.00", "5000.00", Role.ADMIN, False),  # no limit to outgrow
        ("90.00", "95.00", Role.TECHNICIAN, True),  # the approver's role approves no longer
    ],
)
def test_only_a_raise_beyond_the_approvers_limit_needs_approval_again(
    old: str, new: str, role: Role, needs_approval: bool
) -> None:
    reason = reapproval_reason(_usd(old), _usd(new), role, POLICY)
    assert (reason is not None) is needs_approval
    if needs_approval and role is Role.PROCUREMENT:
        assert reason == (
            f"the change raises the total from {old} USD to {new} USD: "
            f"{new} USD is above the procurement approval limit of 100.00 USD"
        )


def _order(world: World, *, price: str = "9.00", contract_cap: str | None = None) -> PurchaseOrder:
    """10 bearings at price from ACME, drafted automatically, approved by a buyer (limit 100)."""
    acme = world.supplier("ACME", "USD")
    if contract_cap is not None:
        world.contract(acme, price, cap=contract_cap)
    else:
        world.item(acme, [("1", price)])
    manual_requisition(world.db, part_id=world.ids["part"], quantity=Decimal(10))
    (order,) = world.auto()
    approve_order(
        world.db,
        order,
        approver_id=world.user(Role.PROCUREMENT),
        role=Role.PROCUREMENT,
        policy=POLICY,
        now=AT - dt.timedelta(hours=2),
    )
    return order


def _events(world: World, topic: str) -> list[dict[str, Any]]:
    world.db.flush()
    rows = world.db.scalars(select(OutboxEvent).where(OutboxEvent.topic == topic)).all()
    return [row.payload for row in rows]


def test_a_raise_within_the_limit_keeps_the_order_sent(world: World) -> None:
    order = _order(world)
    send_order(order, now=AT - dt.timedelta(hours=1))
    change_order(world.db, order, [LineChange(1, quantity=Decimal(11))], policy=POLICY, now=AT)
    assert (order.status, order.total_base, order.revision) == (
        PoStatus.SENT,
        Decimal("99.00"),
        1,
    )
    assert order.approved_by_id is not None
    assert _events(world, CHANGED_TOPIC) == [{"order_id": order.id, "revision": 1}]


def test_a_raise_above_the_limit_waits_for_approval_then_goes_to_the_supplier(
    world: World,
) -> None:
    order = _order(world)
    send_order(order, now=AT - dt.timedelta(hours=1))
    entry = change_order(
        world.db,
        order,
        [LineChange(1, quantity=Decimal(12))],
        reason="bigger shutdown",
        policy=POLICY,
        now=AT,
    )
    assert (order.status, order.total_base, order.revision) == (
        PoStatus.DRAFT,
        Decimal("108.00"),
        1,
    )
    assert (order.approved_by_id, order.approved_at) == (None, None)
    # The change is in the history, and so is why the order waits for approval.
    assert entry.note == "revision 1: bigger shutdown"
    back = order.history[-1]
    assert (back.from_status, back.to_status) == (PoStatus.SENT, PoStatus.DRAFT)
    assert back.note == (
        "needs approval again: the change raises the total from 90.00 USD to 108.00 USD: "
        "108.00 USD is above the procurement approval limit of 100.00 USD"
    )
    # Nothing reaches the supplier yet; the original order is all they have.
    assert _events(world, CHANGED_TOPIC) == []
    assert len(_events(world, SENT_TOPIC)) == 1
    # The buyer's limit does not cover it; someone's whose does approves, and the revision goes.
    with pytest.raises(ApprovalRefused, match="approval limit"):
        approve_order(
            world.db,
            order,
            approver_id=world.user(Role.PROCUREMENT),
            role=Role.PROCUREMENT,
            policy=POLICY,
        )
    approve_order(world.db, order, approver_id=world.user(), role=Role.ADMIN, policy=POLICY)
    assert order.status is PoStatus.SENT
    assert [(h.from_status, h.to_status) for h in order.history][-2:] == [
        (PoStatus.DRAFT, PoStatus.APPROVED),
        (PoStatus.APPROVED, PoStatus.SENT),
    ]
    assert order.history[-1].note == "revision 1 sent to the supplier after approval"
    assert _events(world, CHANGED_TOPIC) == [{"order_id": order.id, "revision": 1}]
    assert len(_events(world, SENT_TOPIC)) == 1
    assert (order.lines[0].quantity, order.total) == (Decimal(12), Decimal("108.00"))


def test_an_approved_order_not_yet_sent_is_sent_whole_after_approval(world: World) -> None:
    order = _order(world)
    change_order(world.db, order, [LineChange(1, unit_price=Decimal(11))], policy=POLICY, now=AT)
    assert order.status is PoStatus.DRAFT
    approve_order(world.db, order, approver_id=world.user(), role=Role.ADMIN, policy=POLICY)
    assert order.status is PoStatus.APPROVED
    send_order(order)
    assert order.status is PoStatus.SENT
    assert _events(world, CHANGED_TOPIC) == []
    assert _events(world, SENT_TOPIC) == [{"order_id": order.id}]
    assert order.total == Decimal("110.00")


def test_contract_spend_is_given_back_while_waiting_and_drawn_again(world: World) -> None:
    order = _order(world, contract_cap="1000.00")
    contract = world.db.scalars(select(Contract)).one()
    assert contract.drawn == Decimal("90.00")
    change_order(world.db, order, [LineChange(1, quantity=Decimal(20))], policy=POLICY, now=AT)
    assert (order.status, contract.drawn) == (PoStatus.DRAFT, Decimal(0))
    approve_order(world.db, order, approver_id=world.user(), role=Role.ADMIN, policy=POLICY)
    assert contract.drawn == Decimal("180.00")
    cancel_order(world.db, order, reason="not needed")
    assert contract.drawn == Decimal(0)


def test_lowering_an_order_keeps_its_approval(world: World) -> None:
    order = _order(world)
    send_order(order)
    change_order(world.db, order, [LineChange(1, quantity=Decimal(5))], policy=POLICY, now=AT)
    assert (order.status, order.total_base) == (PoStatus.SENT, Decimal("45.00"))


def test_an_approver_no_longer_on_record_is_held_to_the_buyers_limit(world: World) -> None:
    order = _order(world)
    order.approved_by_id = None  # the user was deleted (the key is SET NULL)
    change_order(world.db, order, [LineChange(1, quantity=Decimal(12))], policy=POLICY, now=AT)
    assert order.status is PoStatus.DRAFT


def test_an_order_receiving_goods_is_not_raised_past_the_limit(world: World) -> None:
    order = _order(world)
    send_order(order)
    receive(world.db, order.lines[0], quantity=Decimal(2))
    assert order.status is PoStatus.PARTIALLY_RECEIVED
    with pytest.raises(PoTransitionError, match="cannot go back for approval"):
        change_order(world.db, order, [LineChange(1, quantity=Decimal(12))], policy=POLICY, now=AT)
    assert (order.status, order.revision, order.lines[0].quantity) == (
        PoStatus.PARTIALLY_RECEIVED,
        0,
        Decimal(10),
    )
    change_order(world.db, order, [LineChange(1, quantity=Decimal(11))], policy=POLICY, now=AT)
    assert (order.status, order.revision) == (PoStatus.PARTIALLY_RECEIVED, 1)


# --- over the API, with the configured limit (procurement_approval_limit, 10 000) ------------


def _post(client: TestClient, path: str, headers: dict[str, str], body: Any = None) -> Any:
    response = client.post(API + path, headers=headers, json=body)
    assert response.status_code in (200, 201), response.text
    return response.json()


def _outbox(factory: sessionmaker[Session], topic: str) -> list[dict[str, Any]]:
    with factory() as session:
        rows = session.scalars(select(OutboxEvent).where(OutboxEvent.topic == topic)).all()
        return [row.payload for row in rows]


def test_change_order_route_sends_a_raise_past_the_limit_back_for_approval(
    client: TestClient, session_factory: sessionmaker[Session], make_user: Any
) -> None:
    with session_factory() as db, db.begin():
        ids = plant(db)
    buyer = bearer(make_user(Role.PROCUREMENT)[1])
    admin = bearer(make_user(Role.ADMIN)[1])
    supplier = _post(
        client,
        "/suppliers",
        buyer,
        {
            "code": "ACME",
            "legal_name": "ACME Inc",
            "country": "US",
            "currency": "USD",
            "status": "active",
        },
    )["id"]
    _post(
        client,
        "/catalog-items",
        buyer,
        {
            "supplier_id": supplier,
            "supplier_part_number": "A1",
            "part_id": ids["part"],
            "currency": "USD",
            "price_breaks": [{"unit_price": "1000.00"}],
        },
    )
    _post(client, "/requisitions", buyer, {"part_id": ids["part"], "quantity": "5"})
    (po,) = _post(client, "/purchase-orders/auto", buyer)["orders"]
    order = f"/purchase-orders/{po['id']}"
    assert _post(client, f"{order}/approve", buyer)["status"] == "approved"
    assert _post(client, f"{order}/send", buyer)["status"] == "sent"

    within = _post(client, f"{order}/changes", buyer, {"lines": [{"line_no": 1, "quantity": "8"}]})
    assert (within["status"], within["revision"], Decimal(within["total_base"])) == (
        "sent",
        1,
        Decimal("8000.00"),
    )
    over = _post(
        client,
        f"{order}/changes",
        buyer,
        {"lines": [{"line_no": 1, "quantity": "12"}], "reason": "second pump"},
    )
    assert (over["status"], over["revision"], Decimal(over["total_base"])) == (
        "draft",
        2,
        Decimal("12000.00"),
    )
    assert over["history"][-2]["note"] == "revision 2: second pump"
    assert over["history"][-1]["note"] == (
        "needs approval again: the change raises the total from 8000.00 USD to 12000.00 USD: "
        "12000.00 USD is above the procurement approval limit of 10000.00 USD"
    )
    assert _outbox(session_factory, CHANGED_TOPIC) == [{"order_id": po["id"], "revision": 1}]
    early = client.post(f"{API}{order}/send", headers=buyer)
    assert early.status_code == 409
    refused = client.post(f"{API}{order}/approve", headers=buyer)
    assert refused.status_code == 403

    approved = _post(client, f"{order}/approve", admin)
    assert (approved["status"], approved["revision"]) == ("sent", 2)
    assert Decimal(approved["lines"][0]["quantity"]) == Decimal(12)
    assert _outbox(session_factory, CHANGED_TOPIC) == [
        {"order_id": po["id"], "revision": 1},
        {"order_id": po["id"], "revision": 2},
    ]
    assert _outbox(session_factory, SENT_TOPIC) == [{"order_id": po["id"]}]
