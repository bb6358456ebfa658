"""Concurrent goods receipts on one order line: real races on SQLite and PostgreSQL.

PostgreSQL serialises them with a row lock on the order, SQLite by making each receipt the one
writer (``BEGIN IMMEDIATE``) before it re-reads the order; both must give the same outcomes.
"""

from __future__ import annotations

import threading
from decimal import Decimal
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from maintainpro.core.inventory import StockLevel
from maintainpro.core.users import Role
from maintainpro.supply.purchasing import (
    ApprovalPolicy,
    PoStatus,
    PurchaseOrder,
    PurchaseOrderLine,
    approve_order,
    send_order,
)
from maintainpro.supply.receiving import GoodsReceipt, ReceiptError, receive
from maintainpro.supply.requisitions import manual_requisition
from supply.procurement_world import World


@pytest.fixture
def sent_lines(world: World) -> list[int]:
    """Two lines (4 and 6 bearings-like parts) on one sent order, committed for other sessions."""
    acme = world.supplier("ACME", "USD")
    other = world.part("SEAL-1")
    world.item(acme, [("1", "10.00")])
    world.item(acme, [("1", "2.00")], part_id=other)
    manual_requisition(world.db, part_id=world.ids["part"], quantity=Decimal(4))
    manual_requisition(world.db, part_id=other, quantity=Decimal(6))
    (order,) = world.auto()
    approve_order(
        world.db, order, approver_id=world.user(), role=Role.ADMIN, policy=ApprovalPolicy()
    )
    send_order(order)
    world.db.commit()
    return [line.id for line in order.lines]


def _race(
    factory: sessionmaker[Session], bookings: list[tuple[int, Decimal]], tolerance: Decimal
) -> list[str]:
    """Book receipts from parallel sessions that all read their line before any of them writes."""
    barrier = threading.Barrier(len(bookings))
    outcomes: list[str] = []
    lock = threading.Lock()

    def book(line_id: int, quantity: Decimal) -> None:
        outcome = "ok"
        try:
            with factory() as session, session.begin():
                line = session.get(PurchaseOrderLine, line_id)
                assert line is not None
                _ = line.order.status, [other.received_quantity for other in line.order.lines]
                barrier.wait(timeout=30)  # every session now holds a stale copy of the line
                receive(session, line, quantity=quantity, tolerance_pct=tolerance)
        except ReceiptError:
            outcome = "refused"
        except Exception as exc:  # noqa: BLE001 - reported by the assertions on outcomes
            outcome = f"error: {type(exc).__name__}: {exc}"
        with lock:
            outcomes.append(outcome)

    threads = [threading.Thread(target=book, args=booking) for booking in bookings]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not any(thread.is_alive() for thread in threads)
    return outcomes


def _received(factory: sessionmaker[Session], line_id: int) -> tuple[Decimal, Decimal]:
    with factory() as session:
        line = session.get(PurchaseOrderLine, line_id)
        assert line is not None
        booked = session.scalar(
            select(func.coalesce(func.sum(GoodsReceipt.quantity_received), 0)).where(
                GoodsReceipt.purchase_order_line_id == line_id
            )
        )
        return line.received_quantity, Decimal(booked or 0)


def test_two_receipts_of_the_same_line_cannot_over_receive(
    session_factory: sessionmaker[Session], world: World, sent_lines: list[int]
) -> None:
    line_id = sent_lines[0]  # 4 ordered; 3 + 3 would be 6, beyond a 10 % tolerance (4.4)
    with session_factory() as check:
        before = check.get(StockLevel, world.ids["stock"])
        assert before is not None
        on_hand = before.on_hand
    outcomes = _race(session_factory, [(line_id, Decimal(3)), (line_id, Decimal(3))], Decimal(10))
    assert sorted(outcomes) == ["ok", "refused"], outcomes
    received, booked = _received(session_factory, line_id)
    assert received == booked == Decimal(3)
    with session_factory() as check:
        stock = check.get(StockLevel, world.ids["stock"])
        assert stock is not None
        assert stock.on_hand == on_hand + 3


def test_two_receipts_within_the_order_are_both_counted(
    session_factory: sessionmaker[Session], sent_lines: list[int]
) -> None:
    line_id = sent_lines[0]
    outcomes = _race(session_factory, [(line_id, Decimal(2)), (line_id, Decimal(2))], Decimal(0))
    assert outcomes == ["ok", "ok"], outcomes
    received, booked = _received(session_factory, line_id)
    assert received == booked == Decimal(4)


def test_receipts_completing_two_lines_at_once_complete_the_order(
    session_factory: sessionmaker[Session], sent_lines: list[int]
) -> None:
    first, second = sent_lines
    outcomes = _race(session_factory, [(first, Decimal(4)), (second, Decimal(6))], Decimal(0))
    assert outcomes == ["ok", "ok"], outcomes
    with session_factory() as check:
        line = check.get(PurchaseOrderLine, first)
        assert line is not None
        order = check.get(PurchaseOrder, line.purchase_order_id)
        assert order is not None
        # Each receipt saw the other line finished, so the last one closed the order.
        assert order.status is PoStatus.RECEIVED
        assert [h.to_status for h in order.history][-2:] == [
            PoStatus.PARTIALLY_RECEIVED,
            PoStatus.RECEIVED,
        ]


def _post_together(
    client: TestClient,
    headers: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
    line_id: int,
    quantities: list[str],
) -> list[tuple[int, str]]:
    """POST receipts in parallel requests that have all read the order before any of them books."""
    with session_factory_of(client)() as session:
        line = session.get(PurchaseOrderLine, line_id)
        assert line is not None
        order_id = line.purchase_order_id
    barrier = threading.Barrier(len(quantities))

    def receive_after_every_read(*args: Any, **kwargs: Any) -> Any:
        barrier.wait(timeout=30)  # every request has read its order and line by now
        return receive(*args, **kwargs)

    monkeypatch.setattr("maintainpro.api.routes.supply.receive", receive_after_every_read)
    answers: list[tuple[int, str]] = []
    lock = threading.Lock()

    def post(quantity: str) -> None:
        response = client.post(
            f"/api/v1/purchase-orders/{order_id}/receipts",
            headers=headers,
            json={"line_id": line_id, "quantity_received": quantity},
        )
        with lock:
            answers.append((response.status_code, response.text))

    threads = [threading.Thread(target=post, args=(quantity,)) for quantity in quantities]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not any(thread.is_alive() for thread in threads)
    return answers


def session_factory_of(client: TestClient) -> sessionmaker[Session]:
    """The session factory of the app behind a test client."""
    app: Any = client.app
    factory: sessionmaker[Session] = app.state.session_factory
    return factory


def test_two_posted_receipts_within_the_order_are_both_booked(
    client: TestClient,
    admin_headers: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
    session_factory: sessionmaker[Session],
    sent_lines: list[int],
) -> None:
    line_id = sent_lines[0]
    answers = _post_together(client, admin_headers, monkeypatch, line_id, ["2", "2"])
    assert [status for status, _ in answers] == [201, 201], answers
    received, booked = _received(session_factory, line_id)
    assert received == booked == Decimal(4)


def test_two_posted_receipts_beyond_the_order_refuse_one_cleanly(
    client: TestClient,
    admin_headers: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
    session_factory: sessionmaker[Session],
    sent_lines: list[int],
) -> None:
    line_id = sent_lines[0]  # 4 ordered, no tolerance: 3 + 3 is one receipt too many
    answers = _post_together(client, admin_headers, monkeypatch, line_id, ["3", "3"])
    assert sorted(status for status, _ in answers) == [201, 422], answers
    refusal = next(text for status, text in answers if status == 422)
    assert "exceeds the limit" in refusal
    received, booked = _received(session_factory, line_id)
    assert received == booked == Decimal(3)
