"""Automatic ordering run twice at the same moment orders each requisition line once.

Both runs are held at a barrier after they have read the open lines and chosen an offer, so each
holds a stale "open" copy of every line when it starts writing. On PostgreSQL that is a real race
decided by row locks; SQLite lets one writer through at a time, and the run that waits must
still see that the lines are no longer open.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from maintainpro.config import Settings
from maintainpro.core.inventory import StockLevel
from maintainpro.core.users import Role
from maintainpro.supply import sourcing
from maintainpro.supply.jobs import reorder_check
from maintainpro.supply.purchasing import PurchaseOrder, PurchaseOrderLine
from maintainpro.supply.rates import stored_converter
from maintainpro.supply.requisitions import (
    RequisitionLine,
    RequisitionLineStatus,
    manual_requisition,
)
from maintainpro.supply.sourcing import generate_purchase_orders
from supply.procurement_world import TODAY, World
from support import bearer

API = "/api/v1"
NOW = dt.datetime.combine(TODAY, dt.time(6, 0), tzinfo=dt.UTC)


@pytest.fixture
def open_lines(world: World) -> dict[int, Decimal]:
    """Two open requisition lines (7 bearings, 3 seals) ACME sells; committed for other sessions."""
    acme = world.supplier("ACME", "USD")
    seal = world.part("SEAL-1")
    world.item(acme, [("1", "10.00")])
    world.item(acme, [("1", "2.00")], part_id=seal)
    lines = [
        manual_requisition(world.db, part_id=world.ids["part"], quantity=Decimal(7)),
        manual_requisition(world.db, part_id=seal, quantity=Decimal(3)),
    ]
    world.db.commit()
    return {line.id: line.quantity for line in lines}


@pytest.fixture
def held_at_choice(monkeypatch: pytest.MonkeyPatch) -> threading.Barrier:
    """Make every thread's first offer choice wait for the other thread's first choice."""
    barrier = threading.Barrier(2)
    waited = threading.local()
    choose = sourcing.choose_offer

    def choose_after_both_read(*args: Any, **kwargs: Any) -> sourcing.Choice | None:
        if not getattr(waited, "done", False):
            waited.done = True
            barrier.wait(timeout=30)
        return choose(*args, **kwargs)

    monkeypatch.setattr(sourcing, "choose_offer", choose_after_both_read)
    return barrier


def _in_parallel(*runs: Callable[[], Any]) -> list[Any]:
    """Run the callables in threads at once; their results, or the exception each raised."""
    outcomes: list[Any] = [None] * len(runs)

    def run(index: int) -> None:
        try:
            outcomes[index] = runs[index]()
        except Exception as exc:  # noqa: BLE001 - the test asserts there is none
            outcomes[index] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(runs))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=90)
    assert not any(thread.is_alive() for thread in threads)
    errors = [o for o in outcomes if isinstance(o, Exception)]
    assert not errors, errors
    return outcomes


def _order_lines(factory: sessionmaker[Session]) -> dict[int, list[Decimal]]:
    """Ordered quantities by requisition line, every order line counted."""
    with factory() as session:
        found: dict[int, list[Decimal]] = {}
        for line in session.scalars(select(PurchaseOrderLine).order_by(PurchaseOrderLine.id)):
            assert line.requisition_line_id is not None
            found.setdefault(line.requisition_line_id, []).append(line.quantity)
        return found


def _statuses(factory: sessionmaker[Session]) -> dict[int, RequisitionLineStatus]:
    with factory() as session:
        return {
            line.id: line.status
            for line in session.scalars(select(RequisitionLine).order_by(RequisitionLine.id))
        }


def _source(factory: sessionmaker[Session]) -> Callable[[], tuple[int, int, int]]:
    def run() -> tuple[int, int, int]:
        with factory() as session, session.begin():
            result = generate_purchase_orders(
                session, base_currency="USD", fx=stored_converter(session), today=TODAY
            )
            return result.considered, result.ordered, len(result.orders)

    return run


def test_two_runs_at_once_order_each_requisition_line_once(
    session_factory: sessionmaker[Session],
    open_lines: dict[int, Decimal],
    held_at_choice: threading.Barrier,
) -> None:
    outcomes = _in_parallel(_source(session_factory), _source(session_factory))
    # Both read both lines as open; the first to claim line 1 makes the other wait for its
    # commit, after which the other finds nothing open and drafts no empty order.
    assert sorted(outcomes) == [(0, 0, 0), (2, 2, 1)], outcomes
    assert _order_lines(session_factory) == {i: [q] for i, q in open_lines.items()}
    assert set(_statuses(session_factory).values()) == {RequisitionLineStatus.ORDERED}
    with session_factory() as session:
        assert session.scalar(select(func.count()).select_from(PurchaseOrder)) == 1


def test_a_line_ordered_meanwhile_is_neither_ordered_again_nor_counted(
    session_factory: sessionmaker[Session],
    open_lines: dict[int, Decimal],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    first, second = open_lines
    choose = sourcing.choose_offer
    calls = iter(range(100))

    def another_run_orders_first_line(*args: Any, **kwargs: Any) -> sourcing.Choice | None:
        # After this run read both lines as open and before it writes, another transaction
        # orders the first line and commits.
        if next(calls) == 0:
            with session_factory() as other, other.begin():
                line = other.get(RequisitionLine, first)
                assert line is not None
                line.status = RequisitionLineStatus.ORDERED
        return choose(*args, **kwargs)

    monkeypatch.setattr(sourcing, "choose_offer", another_run_orders_first_line)
    with session_factory() as session, session.begin():
        result = generate_purchase_orders(
            session, base_currency="USD", fx=stored_converter(session), today=TODAY
        )
        assert (result.considered, result.ordered, result.left_for_buyer) == (1, 1, [])
        (order,) = result.orders
        assert [line.requisition_line_id for line in order.lines] == [second]
    assert _order_lines(session_factory) == {second: [open_lines[second]]}


def test_reorder_job_and_auto_endpoint_at_once_order_each_line_once(
    session_factory: sessionmaker[Session],
    settings: Settings,
    client: TestClient,
    make_user: Any,
    world: World,
    open_lines: dict[int, Decimal],
    held_at_choice: threading.Barrier,
) -> None:
    # With the 7 requisitioned the bearing (1 on hand) is still at or below its reorder point
    # of 10, so the job adds a third line of its own.
    with session_factory() as session, session.begin():
        stock = session.get(StockLevel, world.ids["stock"])
        assert stock is not None
        stock.on_hand, stock.reorder_point, stock.max_level = Decimal(1), Decimal(10), Decimal(20)
    buyer = bearer(make_user(Role.PROCUREMENT)[1])

    def endpoint() -> tuple[int, int]:
        response = client.post(f"{API}/purchase-orders/auto", headers=buyer)
        assert response.status_code == 200, response.text
        body = response.json()
        return body["considered"], body["ordered"]

    def job() -> tuple[int, int]:
        run = reorder_check(session_factory, settings, now=NOW)
        return run.considered, run.ordered

    api_run, job_run = _in_parallel(endpoint, job)
    statuses = _statuses(session_factory)
    assert len(statuses) == 3
    assert set(statuses.values()) == {RequisitionLineStatus.ORDERED}
    with session_factory() as session:
        quantities = {line.id: line.quantity for line in session.scalars(select(RequisitionLine))}
    # 7 bearings and 3 seals asked for; the job's line tops the bearing up: 20 - (1 + 7) = 12.
    assert sorted(quantities.values()) == [Decimal(3), Decimal(7), Decimal(12)]
    assert _order_lines(session_factory) == {i: [q] for i, q in quantities.items()}
    # Every line was counted by exactly one of the two runs.
    assert api_run[1] + job_run[1] == 3, (api_run, job_run)
    assert api_run[0] + job_run[0] == 3, (api_run, job_run)
