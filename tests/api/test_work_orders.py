"""Work orders through the API: opening with parts, filters, changes and the status machine."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from maintainpro.core.events import OutboxEvent
from maintainpro.core.inventory import StockLevel
from maintainpro.core.users import Role, User
from maintainpro.core.work_orders import WorkOrder
from support import bearer, plant

MakeUser = Callable[..., tuple[User, str]]
WO = "/api/v1/work-orders"


@pytest.fixture
def ids(db: Session) -> dict[str, int]:
    made = plant(db)
    db.commit()
    return made


def count(factory: sessionmaker[Session], model: type[Any]) -> int:
    with factory() as session:
        return session.scalar(select(func.count()).select_from(model)) or 0


def stock_of(factory: sessionmaker[Session], stock_id: int) -> tuple[Decimal, Decimal]:
    with factory() as session:
        stock = session.get(StockLevel, stock_id)
        assert stock is not None
        return stock.on_hand, stock.reserved


def open_order(
    client: TestClient, headers: dict[str, str], asset_id: int, **extra: Any
) -> dict[str, Any]:
    response = client.post(
        WO, headers=headers, json={"asset_id": asset_id, "title": "Fix", **extra}
    )
    assert response.status_code == 201, response.text
    order: dict[str, Any] = response.json()
    return order


def move(
    client: TestClient, headers: dict[str, str], order_id: int, status: str, **extra: Any
) -> Any:
    return client.post(
        f"{WO}/{order_id}/transitions", headers=headers, json={"status": status, **extra}
    )


def test_opening_with_parts_in_stock_reserves_them(
    client: TestClient,
    admin_headers: dict[str, str],
    ids: dict[str, int],
    session_factory: sessionmaker[Session],
) -> None:
    order = open_order(
        client, admin_headers, ids["pump"], parts=[{"part_id": ids["part"], "quantity": "3"}]
    )
    assert order["status"] == "open"
    assert order["number"] == f"WO-{order['id']:06d}"
    assert order["shortages"] == []
    assert [(p["part_id"], Decimal(p["quantity"])) for p in order["parts"]] == [
        (ids["part"], Decimal(3))
    ]
    assert stock_of(session_factory, ids["stock"]) == (Decimal(5), Decimal(3))
    held = client.get(
        "/api/v1/reservations", headers=admin_headers, params={"work_order_id": order["id"]}
    ).json()
    assert [Decimal(r["quantity"]) for r in held["items"]] == [Decimal(3)]


def test_opening_with_too_few_parts_reports_shortage_and_demands_the_rest(
    client: TestClient,
    admin_headers: dict[str, str],
    ids: dict[str, int],
    session_factory: sessionmaker[Session],
) -> None:
    order = open_order(
        client, admin_headers, ids["pump"], parts=[{"part_id": ids["part"], "quantity": "8"}]
    )
    assert [(s["part_id"], Decimal(s["quantity"])) for s in order["shortages"]] == [
        (ids["part"], Decimal(3))
    ]
    assert stock_of(session_factory, ids["stock"]) == (Decimal(5), Decimal(5))
    with session_factory() as session:
        demands = session.scalars(
            select(OutboxEvent).where(OutboxEvent.topic == "part.demand")
        ).all()
    assert len(demands) == 1
    assert demands[0].payload["work_order_id"] == order["id"]
    assert demands[0].payload["part_id"] == ids["part"]
    assert Decimal(demands[0].payload["quantity"]) == Decimal(3)


def test_opening_with_stock_to_spare_emits_no_demand(
    client: TestClient,
    admin_headers: dict[str, str],
    ids: dict[str, int],
    session_factory: sessionmaker[Session],
) -> None:
    open_order(client, admin_headers, ids["pump"], parts=[{"part_id": ids["part"], "quantity": 1}])
    with session_factory() as session:
        topics = session.scalars(select(OutboxEvent.topic)).all()
    assert "part.demand" not in topics
    assert "work_order.opened" in topics


def test_opening_with_bad_references_or_quantities_is_422_and_opens_nothing(
    client: TestClient,
    admin_headers: dict[str, str],
    ids: dict[str, int],
    session_factory: sessionmaker[Session],
) -> None:
    pump, part = ids["pump"], ids["part"]
    for asset_id, part_id, quantity in (
        (999, part, "1"),
        (pump, 999, "1"),
        (pump, part, "0"),
        (pump, part, "-2"),
    ):
        body = {
            "asset_id": asset_id,
            "title": "Fix",
            "parts": [{"part_id": part_id, "quantity": quantity}],
        }
        response = client.post(WO, headers=admin_headers, json=body)
        assert response.status_code == 422, body
        assert response.headers["content-type"].startswith("application/problem+json")
    assert count(session_factory, WorkOrder) == 0
    assert stock_of(session_factory, ids["stock"]) == (Decimal(5), Decimal(0))


def test_opening_with_a_part_listed_twice_is_422(
    client: TestClient,
    admin_headers: dict[str, str],
    ids: dict[str, int],
    session_factory: sessionmaker[Session],
) -> None:
    parts = [{"part_id": ids["part"], "quantity": 1}, {"part_id": ids["part"], "quantity": 2}]
    response = client.post(
        WO, headers=admin_headers, json={"asset_id": ids["pump"], "title": "Fix", "parts": parts}
    )
    assert response.status_code == 422
    assert count(session_factory, WorkOrder) == 0


def test_list_filters_by_repeated_status_asset_and_priority(
    client: TestClient, admin_headers: dict[str, str], ids: dict[str, int], make_user: MakeUser
) -> None:
    tech, _ = make_user(Role.TECHNICIAN)
    a = open_order(client, admin_headers, ids["pump"], priority="urgent")
    b = open_order(client, admin_headers, ids["motor"], type="inspection")
    c = open_order(client, admin_headers, ids["motor"])
    move(client, admin_headers, b["id"], "assigned", assignee_id=tech.id)
    move(client, admin_headers, c["id"], "cancelled", reason="duplicate")

    def numbers(params: Any) -> list[int]:
        page = client.get(WO, headers=admin_headers, params=params).json()
        return [o["id"] for o in page["items"]]

    assert numbers([("status", "open"), ("status", "assigned")]) == [b["id"], a["id"]]
    assert numbers({"status": "cancelled"}) == [c["id"]]
    assert numbers({"asset_id": ids["motor"]}) == [c["id"], b["id"]]
    assert numbers({"priority": "urgent"}) == [a["id"]]
    assert numbers({"type": "inspection"}) == [b["id"]]
    assert numbers({"assignee_id": tech.id}) == [b["id"]]


def test_list_pages_newest_first(
    client: TestClient, admin_headers: dict[str, str], ids: dict[str, int]
) -> None:
    made = [open_order(client, admin_headers, ids["pump"])["id"] for _ in range(3)]
    page = client.get(WO, headers=admin_headers, params={"limit": 2, "offset": 1}).json()
    assert page["total"] == 3
    assert [o["id"] for o in page["items"]] == [made[1], made[0]]


def test_unknown_status_filter_is_422(client: TestClient, admin_headers: dict[str, str]) -> None:
    response = client.get(WO, headers=admin_headers, params={"status": "done"})
    assert response.status_code == 422


def test_patch_changes_title_priority_and_due_date(
    client: TestClient, admin_headers: dict[str, str], ids: dict[str, int]
) -> None:
    order = open_order(client, admin_headers, ids["pump"])
    response = client.patch(
        f"{WO}/{order['id']}",
        headers=admin_headers,
        json={"title": "Replace seal", "priority": "high", "due_at": "2030-01-02T03:04:05+02:00"},
    )
    assert response.status_code == 200
    changed = client.get(f"{WO}/{order['id']}", headers=admin_headers).json()
    assert changed["title"] == "Replace seal"
    assert changed["priority"] == "high"
    assert dt.datetime.fromisoformat(changed["due_at"]) == dt.datetime(
        2030, 1, 2, 1, 4, 5, tzinfo=dt.UTC
    )
    assert changed["status"] == "open"


def test_patch_cannot_change_status(
    client: TestClient, admin_headers: dict[str, str], ids: dict[str, int]
) -> None:
    order = open_order(client, admin_headers, ids["pump"])
    response = client.patch(f"{WO}/{order['id']}", headers=admin_headers, json={"status": "closed"})
    assert response.status_code == 422
    assert client.get(f"{WO}/{order['id']}", headers=admin_headers).json()["status"] == "open"


def test_legal_moves_stamp_start_completion_and_close(
    client: TestClient, admin_headers: dict[str, str], ids: dict[str, int], make_user: MakeUser
) -> None:
    tech, _ = make_user(Role.TECHNICIAN)
    order = open_order(client, admin_headers, ids["pump"])
    assigned = move(client, admin_headers, order["id"], "assigned", assignee_id=tech.id).json()
    assert assigned["status"] == "assigned"
    assert assigned["assignee_id"] == tech.id
    started = move(client, admin_headers, order["id"], "in_progress").json()
    assert started["started_at"] is not None
    assert started["completed_at"] is None
    completed = move(client, admin_headers, order["id"], "completed").json()
    assert completed["completed_at"] is not None
    assert completed["started_at"] == started["started_at"]
    closed = move(client, admin_headers, order["id"], "closed").json()
    assert closed["status"] == "closed"
    assert closed["closed_at"] is not None
    assert dt.datetime.fromisoformat(closed["closed_at"]) >= dt.datetime.fromisoformat(
        closed["completed_at"]
    )


def test_illegal_move_is_409_problem_and_changes_nothing(
    client: TestClient,
    admin_headers: dict[str, str],
    ids: dict[str, int],
    session_factory: sessionmaker[Session],
) -> None:
    order = open_order(client, admin_headers, ids["pump"])
    events = count(session_factory, OutboxEvent)
    response = move(client, admin_headers, order["id"], "completed")
    assert response.status_code == 409
    assert response.headers["content-type"].startswith("application/problem+json")
    assert "cannot go from open to completed" in response.json()["detail"]
    after = client.get(f"{WO}/{order['id']}", headers=admin_headers).json()
    assert after == {k: v for k, v in order.items() if k != "shortages"}
    assert count(session_factory, OutboxEvent) == events


def test_closed_work_order_is_final(
    client: TestClient, admin_headers: dict[str, str], ids: dict[str, int]
) -> None:
    order = open_order(client, admin_headers, ids["pump"])
    for status in ("in_progress", "completed", "closed"):
        assert move(client, admin_headers, order["id"], status).status_code == 200
    for status in ("open", "in_progress", "cancelled"):
        response = move(client, admin_headers, order["id"], status, reason="try")
        assert response.status_code == 409, status


def test_moves_that_need_a_reason_are_refused_without_one(
    client: TestClient, admin_headers: dict[str, str], ids: dict[str, int]
) -> None:
    for status in ("on_hold", "waiting_for_parts", "cancelled"):
        order = open_order(client, admin_headers, ids["pump"])
        for reason in (None, "   "):
            refused = move(client, admin_headers, order["id"], status, reason=reason)
            assert refused.status_code == 409, status
            assert "needs a reason" in refused.json()["detail"]
        accepted = move(client, admin_headers, order["id"], status, reason="motor on back order")
        assert accepted.status_code == 200, status
        assert accepted.json()["status_reason"] == "motor on back order"


def test_assigning_needs_an_assignee(
    client: TestClient, admin_headers: dict[str, str], ids: dict[str, int]
) -> None:
    order = open_order(client, admin_headers, ids["pump"])
    response = move(client, admin_headers, order["id"], "assigned")
    assert response.status_code == 409
    assert "assignee" in response.json()["detail"]
    assert client.get(f"{WO}/{order['id']}", headers=admin_headers).json()["status"] == "open"


def test_assigning_to_an_unknown_user_is_422(
    client: TestClient, admin_headers: dict[str, str], ids: dict[str, int]
) -> None:
    order = open_order(client, admin_headers, ids["pump"])
    response = move(client, admin_headers, order["id"], "assigned", assignee_id=9999)
    assert response.status_code == 422
    assert client.get(f"{WO}/{order['id']}", headers=admin_headers).json()["assignee_id"] is None


def test_completing_consumes_reservations_and_reduces_stock(
    client: TestClient,
    admin_headers: dict[str, str],
    ids: dict[str, int],
    session_factory: sessionmaker[Session],
) -> None:
    order = open_order(
        client, admin_headers, ids["pump"], parts=[{"part_id": ids["part"], "quantity": "2"}]
    )
    move(client, admin_headers, order["id"], "in_progress")
    assert move(client, admin_headers, order["id"], "completed").status_code == 200
    assert stock_of(session_factory, ids["stock"]) == (Decimal(3), Decimal(0))
    held = client.get(
        "/api/v1/reservations", headers=admin_headers, params={"work_order_id": order["id"]}
    ).json()
    assert [r["status"] for r in held["items"]] == ["consumed"]


def test_cancelling_releases_reservations(
    client: TestClient,
    admin_headers: dict[str, str],
    ids: dict[str, int],
    session_factory: sessionmaker[Session],
) -> None:
    order = open_order(
        client, admin_headers, ids["pump"], parts=[{"part_id": ids["part"], "quantity": "2"}]
    )
    response = move(client, admin_headers, order["id"], "cancelled", reason="not needed")
    assert response.status_code == 200
    assert stock_of(session_factory, ids["stock"]) == (Decimal(5), Decimal(0))
    held = client.get(
        "/api/v1/reservations", headers=admin_headers, params={"work_order_id": order["id"]}
    ).json()
    assert [r["status"] for r in held["items"]] == ["released"]


def test_labour_notes_are_added_and_listed_with_author(
    client: TestClient, make_user: MakeUser, ids: dict[str, int]
) -> None:
    tech, token = make_user(Role.TECHNICIAN)
    order = open_order(client, bearer(token), ids["pump"])
    added = client.post(
        f"{WO}/{order['id']}/notes",
        headers=bearer(token),
        json={"body": "Replaced the seal", "hours": "1.5"},
    )
    assert added.status_code == 201
    notes = client.get(f"{WO}/{order['id']}/notes", headers=bearer(token)).json()
    assert [(n["body"], Decimal(n["hours"]), n["author_id"]) for n in notes] == [
        ("Replaced the seal", Decimal("1.5"), tech.id)
    ]


def test_analyst_reads_but_cannot_open_work_orders(
    client: TestClient, make_user: MakeUser, ids: dict[str, int]
) -> None:
    _, token = make_user(Role.ANALYST)
    assert client.get(WO, headers=bearer(token)).status_code == 200
    response = client.post(WO, headers=bearer(token), json={"asset_id": ids["pump"], "title": "X"})
    assert response.status_code == 403
