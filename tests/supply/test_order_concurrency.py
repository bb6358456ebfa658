"""Two requests changing one order's status at the same instant: they take turns on both backends.

Without the order lock each request read "draft" before the other committed and both approved
(on SQLite the second simply waited for the first's write and then wrote over it).
"""

from __future__ import annotations

import threading
from decimal import Decimal
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from maintainpro.api.routes import supply as supply_routes
from maintainpro.supply.purchasing import PoStatus, PurchaseOrder
from maintainpro.supply.requisitions import manual_requisition
from supply.procurement_world import World


@pytest.fixture
def draft_id(world: World) -> int:
    """A committed draft order for one part, waiting for approval."""
    acme = world.supplier("ACME", "USD")
    world.item(acme, [("1", "10.00")])
    manual_requisition(world.db, part_id=world.ids["part"], quantity=Decimal(4))
    (order,) = world.auto()
    world.db.commit()
    assert order.status is PoStatus.DRAFT
    return order.id


def _together(
    client: TestClient, headers: dict[str, str], monkeypatch: pytest.MonkeyPatch, paths: list[str]
) -> list[int]:
    """POST to each path from parallel requests that all reach the order lock at once."""
    barrier = threading.Barrier(len(paths))
    lock_order = supply_routes._order_for_update

    def after_everyone_arrived(db: Any, order_id: int) -> PurchaseOrder:
        barrier.wait(timeout=30)
        return lock_order(db, order_id)

    monkeypatch.setattr(supply_routes, "_order_for_update", after_everyone_arrived)
    codes: list[int] = []
    guard = threading.Lock()

    def post(path: str) -> None:
        response = client.post(path, headers=headers, json={"reason": "not needed"})
        with guard:
            codes.append(response.status_code)

    threads = [threading.Thread(target=post, args=(path,)) for path in paths]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not any(thread.is_alive() for thread in threads)
    return sorted(codes)


def _history(factory: sessionmaker[Session], order_id: int) -> list[PoStatus]:
    with factory() as session:
        order = session.get(PurchaseOrder, order_id)
        assert order is not None
        return [h.to_status for h in order.history if h.to_status is not None]


def test_two_approvals_at_once_approve_once(
    client: TestClient,
    admin_headers: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
    session_factory: sessionmaker[Session],
    draft_id: int,
) -> None:
    path = f"/api/v1/purchase-orders/{draft_id}/approve"
    assert _together(client, admin_headers, monkeypatch, [path, path]) == [200, 409]
    assert _history(session_factory, draft_id).count(PoStatus.APPROVED) == 1
