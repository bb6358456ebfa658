"""Parts, stock levels, adjustments and reservations through the API."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from maintainpro.core.inventory import Reservation, StockLevel
from support import plant


@pytest.fixture
def ids(db: Session) -> dict[str, int]:
    made = plant(db)
    db.commit()
    return made


def count(factory: sessionmaker[Session], model: type[Any]) -> int:
    with factory() as session:
        return session.scalar(select(func.count()).select_from(model)) or 0


def stock(client: TestClient, headers: dict[str, str], stock_id: int) -> dict[str, Decimal]:
    rows = client.get("/api/v1/stock", headers=headers).json()["items"]
    row = next(r for r in rows if r["id"] == stock_id)
    return {k: Decimal(row[k]) for k in ("on_hand", "reserved", "available")}


def open_order(client: TestClient, headers: dict[str, str], asset_id: int) -> int:
    response = client.post(
        "/api/v1/work-orders", headers=headers, json={"asset_id": asset_id, "title": "Fix"}
    )
    assert response.status_code == 201
    order_id: int = response.json()["id"]
    return order_id


def reserve(
    client: TestClient, headers: dict[str, str], order: int, stock_id: int, qty: str
) -> Any:
    return client.post(
        "/api/v1/reservations",
        headers=headers,
        json={"work_order_id": order, "stock_level_id": stock_id, "quantity": qty},
    )


def test_part_is_created_changed_and_searched(
    client: TestClient, admin_headers: dict[str, str]
) -> None:
    created = client.post(
        "/api/v1/parts",
        headers=admin_headers,
        json={"number": "SEAL-22", "name": "Shaft seal", "category": "seals", "unit_cost": "4.25"},
    )
    assert created.status_code == 201
    part = created.json()
    assert part["currency"] == "USD"
    assert Decimal(part["unit_cost"]) == Decimal("4.25")
    client.patch(f"/api/v1/parts/{part['id']}", headers=admin_headers, json={"name": "Lip seal"})
    found = client.get("/api/v1/parts", headers=admin_headers, params={"q": "lip"}).json()
    assert [p["number"] for p in found["items"]] == ["SEAL-22"]
    by_category = client.get(
        "/api/v1/parts", headers=admin_headers, params={"category": "seals"}
    ).json()
    assert by_category["total"] == 1


def test_stock_is_kept_at_a_storeroom(
    client: TestClient, admin_headers: dict[str, str], ids: dict[str, int]
) -> None:
    part = client.post(
        "/api/v1/parts", headers=admin_headers, json={"number": "V-BELT", "name": "V-belt"}
    ).json()
    response = client.post(
        "/api/v1/stock",
        headers=admin_headers,
        json={"part_id": part["id"], "location_id": ids["store"], "on_hand": "12", "bin": "A-01"},
    )
    assert response.status_code == 201
    level = response.json()
    assert Decimal(level["available"]) == Decimal(12)
    assert level["below_reorder_point"] is False


def test_stock_at_a_location_that_is_not_a_storeroom_is_422(
    client: TestClient,
    admin_headers: dict[str, str],
    ids: dict[str, int],
    session_factory: sessionmaker[Session],
) -> None:
    part = client.post(
        "/api/v1/parts", headers=admin_headers, json={"number": "V-BELT", "name": "V-belt"}
    ).json()
    for location_id in (ids["line"], 9999):
        response = client.post(
            "/api/v1/stock",
            headers=admin_headers,
            json={"part_id": part["id"], "location_id": location_id},
        )
        assert response.status_code == 422
        assert "not a storeroom" in response.json()["detail"]
    assert count(session_factory, StockLevel) == 1


def test_maximum_below_reorder_point_is_422(
    client: TestClient, admin_headers: dict[str, str], ids: dict[str, int]
) -> None:
    response = client.patch(
        f"/api/v1/stock/{ids['stock']}", headers=admin_headers, json={"max_level": "1"}
    )
    assert response.status_code == 422
    assert stock(client, admin_headers, ids["stock"])["on_hand"] == Decimal(5)


def test_below_reorder_point_filter_counts_reserved_stock(
    client: TestClient, admin_headers: dict[str, str], ids: dict[str, int]
) -> None:
    def low() -> list[int]:
        page = client.get(
            "/api/v1/stock", headers=admin_headers, params={"below_reorder_point": "true"}
        ).json()
        return [s["id"] for s in page["items"]]

    assert low() == []
    # 5 on hand and a reorder point of 2: reserving 3 leaves 2 available, which is "at" the point.
    order = open_order(client, admin_headers, ids["pump"])
    assert reserve(client, admin_headers, order, ids["stock"], "3").status_code == 201
    assert low() == [ids["stock"]]


def test_adjustments_receive_and_issue_stock(
    client: TestClient, admin_headers: dict[str, str], ids: dict[str, int]
) -> None:
    path = f"/api/v1/stock/{ids['stock']}/adjustments"
    received = client.post(path, headers=admin_headers, json={"delta": "10", "reason": "PO 7"})
    assert received.status_code == 200
    assert Decimal(received.json()["on_hand"]) == Decimal(15)
    issued = client.post(path, headers=admin_headers, json={"delta": "-4", "reason": "issue"})
    assert Decimal(issued.json()["on_hand"]) == Decimal(11)


def test_adjustment_below_reserved_is_409_and_changes_nothing(
    client: TestClient, admin_headers: dict[str, str], ids: dict[str, int]
) -> None:
    order = open_order(client, admin_headers, ids["pump"])
    reserve(client, admin_headers, order, ids["stock"], "4")
    response = client.post(
        f"/api/v1/stock/{ids['stock']}/adjustments",
        headers=admin_headers,
        json={"delta": "-2", "reason": "scrap"},
    )
    assert response.status_code == 409
    assert response.headers["content-type"].startswith("application/problem+json")
    assert stock(client, admin_headers, ids["stock"]) == {
        "on_hand": Decimal(5),
        "reserved": Decimal(4),
        "available": Decimal(1),
    }


def test_over_reserving_is_409_and_reserves_nothing(
    client: TestClient,
    admin_headers: dict[str, str],
    ids: dict[str, int],
    session_factory: sessionmaker[Session],
) -> None:
    order = open_order(client, admin_headers, ids["pump"])
    response = reserve(client, admin_headers, order, ids["stock"], "5.001")
    assert response.status_code == 409
    assert count(session_factory, Reservation) == 0
    assert stock(client, admin_headers, ids["stock"])["reserved"] == Decimal(0)


def test_reserving_for_a_closed_or_unknown_work_order_is_422(
    client: TestClient, admin_headers: dict[str, str], ids: dict[str, int]
) -> None:
    order = open_order(client, admin_headers, ids["pump"])
    client.post(
        f"/api/v1/work-orders/{order}/transitions",
        headers=admin_headers,
        json={"status": "cancelled", "reason": "dup"},
    )
    for work_order_id in (order, 9999):
        assert reserve(client, admin_headers, work_order_id, ids["stock"], "1").status_code == 422
    open_one = open_order(client, admin_headers, ids["pump"])
    assert reserve(client, admin_headers, open_one, 9999, "1").status_code == 422


def test_released_reservation_returns_stock_and_cannot_be_closed_twice(
    client: TestClient, admin_headers: dict[str, str], ids: dict[str, int]
) -> None:
    order = open_order(client, admin_headers, ids["pump"])
    held = reserve(client, admin_headers, order, ids["stock"], "2").json()
    released = client.post(f"/api/v1/reservations/{held['id']}/release", headers=admin_headers)
    assert released.status_code == 200
    assert released.json()["status"] == "released"
    assert stock(client, admin_headers, ids["stock"])["reserved"] == Decimal(0)
    again = client.post(f"/api/v1/reservations/{held['id']}/consume", headers=admin_headers)
    assert again.status_code == 409
    assert stock(client, admin_headers, ids["stock"])["on_hand"] == Decimal(5)


def test_consumed_reservation_takes_stock_off_hand(
    client: TestClient, admin_headers: dict[str, str], ids: dict[str, int]
) -> None:
    order = open_order(client, admin_headers, ids["pump"])
    held = reserve(client, admin_headers, order, ids["stock"], "2").json()
    consumed = client.post(f"/api/v1/reservations/{held['id']}/consume", headers=admin_headers)
    assert consumed.json()["status"] == "consumed"
    assert consumed.json()["closed_at"] is not None
    assert stock(client, admin_headers, ids["stock"]) == {
        "on_hand": Decimal(3),
        "reserved": Decimal(0),
        "available": Decimal(3),
    }


def test_second_stock_level_for_the_same_part_and_storeroom_is_409(
    client: TestClient, admin_headers: dict[str, str], ids: dict[str, int]
) -> None:
    response = client.post(
        "/api/v1/stock",
        headers=admin_headers,
        json={"part_id": ids["part"], "location_id": ids["store"]},
    )
    assert response.status_code == 409
