"""The web shell: sign-in with CSRF, the pages, the work-order forms and role limits."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from maintainpro.core.db import utcnow
from maintainpro.core.schedules import Meter, MeterReading
from maintainpro.core.users import Role, User
from maintainpro.core.work_orders import WorkOrder, WorkOrderStatus
from support import bearer, plant

MakeUser = Callable[..., tuple[User, str]]
PASSWORD = "correct horse battery"
NAV_LABELS = ("Plant &amp; IoT", "Analytics", "Supply chain", "Assets", "Work orders")
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


@pytest.fixture
def ids(db: Session) -> dict[str, int]:
    made = plant(db)
    db.commit()
    return made


def csrf_of(page: httpx.Response) -> str:
    match = CSRF.search(page.text)
    assert match is not None, "the page has no CSRF token"
    return match.group(1)


def sign_in(client: TestClient, username: str, next_path: str = "/") -> httpx.Response:
    token = csrf_of(client.get("/login"))
    return client.post(
        "/login",
        data={"username": username, "password": PASSWORD, "next": next_path, "csrf_token": token},
        follow_redirects=False,
    )


@pytest.fixture
def admin(client: TestClient, make_user: MakeUser) -> User:
    """An administrator signed in on the client."""
    user, _ = make_user(Role.ADMIN, username="ada")
    assert sign_in(client, "ada").status_code == 303
    return user


def work_orders(factory: sessionmaker[Session]) -> list[WorkOrder]:
    with factory() as session:
        return list(session.scalars(select(WorkOrder).order_by(WorkOrder.id)).all())


def post_form(client: TestClient, path: str, data: dict[str, Any]) -> httpx.Response:
    token = csrf_of(client.get("/work-orders/new"))
    return client.post(path, data={**data, "csrf_token": token}, follow_redirects=False)


def test_page_without_session_redirects_to_login_with_next(client: TestClient) -> None:
    response = client.get("/assets?status=down&q=pump", follow_redirects=False)
    assert response.status_code == 303
    target = urlsplit(response.headers["location"])
    assert target.path == "/login"
    assert parse_qs(target.query) == {"next": ["/assets?status=down&q=pump"]}


def test_sign_in_with_csrf_token_leads_to_the_next_page(
    client: TestClient, make_user: MakeUser
) -> None:
    make_user(Role.TECHNICIAN, username="tom")
    response = sign_in(client, "tom", next_path="/work-orders")
    assert response.status_code == 303
    assert response.headers["location"] == "/work-orders"
    assert "secure" not in response.headers["set-cookie"].lower()
    page = client.get("/work-orders")
    assert page.status_code == 200
    assert "<h1>Work orders</h1>" in page.text


def test_wrong_password_shows_the_form_again_with_401(
    client: TestClient, make_user: MakeUser
) -> None:
    make_user(Role.TECHNICIAN, username="tom")
    token = csrf_of(client.get("/login"))
    response = client.post(
        "/login",
        data={"username": "tom", "password": "wrong password", "csrf_token": token},
        follow_redirects=False,
    )
    assert response.status_code == 401
    assert "Wrong username or password." in response.text
    assert client.get("/", follow_redirects=False).status_code == 303


def test_sign_in_without_the_right_csrf_token_is_403(
    client: TestClient, make_user: MakeUser
) -> None:
    make_user(Role.TECHNICIAN, username="tom")
    client.get("/login")
    data = {"username": "tom", "password": PASSWORD}
    for extra in ({}, {"csrf_token": "forged-token"}):
        response = client.post("/login", data={**data, **extra}, follow_redirects=False)
        assert response.status_code == 403, extra
    assert client.get("/", follow_redirects=False).status_code == 303


def test_sign_in_never_redirects_off_site(client: TestClient, make_user: MakeUser) -> None:
    make_user(Role.TECHNICIAN, username="tom")
    for next_path in ("//evil.example", "https://evil.example/", "/\\evil.example", "evil.x"):
        response = sign_in(client, "tom", next_path=next_path)
        assert response.status_code == 303
        assert response.headers["location"] == "/", next_path


def test_overview_shows_the_navigation(
    client: TestClient, admin: User, ids: dict[str, int]
) -> None:
    page = client.get("/")
    assert page.status_code == 200
    assert "<h1>Overview</h1>" in page.text
    for label in NAV_LABELS:
        assert label in page.text
    assert "ada" in page.text


def test_area_pages_render(client: TestClient, admin: User, ids: dict[str, int]) -> None:
    for path, expected in (
        ("/assets", "P-1"),
        ("/assets?status=operational&q=motor", "M-1"),
        ("/work-orders?show=all", "<h1>Work orders</h1>"),
        ("/work-orders/new", "Open work order"),
        ("/plant", "Line 1"),
        ("/analytics", "PM compliance"),
        ("/supply", "<h1>Supply chain</h1>"),
    ):
        page = client.get(path)
        assert page.status_code == 200, path
        assert page.headers["content-type"].startswith("text/html")
        assert expected in page.text, path
        assert NAV_LABELS[0] in page.text


def test_asset_search_narrows_the_list(
    client: TestClient, admin: User, ids: dict[str, int]
) -> None:
    page = client.get("/assets", params={"q": "motor"})
    assert f'href="/assets/{ids["motor"]}"' in page.text
    assert f'href="/assets/{ids["pump"]}"' not in page.text


def test_asset_page_shows_details_components_and_meter_chart(
    client: TestClient, admin: User, ids: dict[str, int], db: Session
) -> None:
    meter = Meter(asset_id=ids["pump"], name="Runtime", unit="h", current_value=12.0)
    db.add(meter)
    db.flush()
    db.add(MeterReading(meter_id=meter.id, value=12.0, read_at=utcnow(), source="test"))
    db.commit()
    page = client.get(f"/assets/{ids['pump']}")
    assert page.status_code == 200
    assert "P-1 · Pump" in page.text
    assert f'href="/assets/{ids["motor"]}"' in page.text  # the motor is a component
    assert "/static/vendor/plotly.min.js" in page.text
    assert 'data-chart-for="meter-' in page.text


def test_unknown_asset_page_is_404(client: TestClient, admin: User) -> None:
    page = client.get("/assets/999", headers={"Accept": "text/html"})
    assert page.status_code == 404
    assert "asset 999 does not exist" in page.text


def test_creating_a_work_order_through_the_form(
    client: TestClient, admin: User, ids: dict[str, int], session_factory: sessionmaker[Session]
) -> None:
    response = post_form(
        client,
        "/work-orders",
        {
            "asset_id": ids["pump"],
            "title": "Leaking seal",
            "type": "corrective",
            "priority": "high",
            "description": "Drips at the shaft",
            "part_id": ids["part"],
            "part_quantity": "2",
        },
    )
    assert response.status_code == 303
    [order] = work_orders(session_factory)
    assert response.headers["location"] == f"/work-orders/{order.id}"
    assert (order.title, order.created_by_id, order.status) == (
        "Leaking seal",
        admin.id,
        WorkOrderStatus.OPEN,
    )
    page = client.get(response.headers["location"])
    assert "Leaking seal" in page.text
    assert "BRG-1" in page.text


def test_work_order_form_refuses_markup_in_the_title(
    client: TestClient, admin: User, ids: dict[str, int], session_factory: sessionmaker[Session]
) -> None:
    response = post_form(
        client,
        "/work-orders",
        {
            "asset_id": ids["pump"],
            "title": "<script>alert(1)</script>",
            "type": "corrective",
            "priority": "low",
        },
    )
    assert response.status_code == 422
    assert "without markup" in response.text
    assert "<script>alert" not in response.text
    assert work_orders(session_factory) == []


def test_work_order_form_post_without_csrf_is_403(
    client: TestClient, admin: User, ids: dict[str, int], session_factory: sessionmaker[Session]
) -> None:
    response = client.post(
        "/work-orders",
        data={"asset_id": ids["pump"], "title": "X", "type": "corrective", "priority": "low"},
        follow_redirects=False,
    )
    assert response.status_code == 403
    assert work_orders(session_factory) == []


def test_moving_a_work_order_through_the_form(
    client: TestClient, admin: User, ids: dict[str, int], session_factory: sessionmaker[Session]
) -> None:
    created = post_form(
        client,
        "/work-orders",
        {"asset_id": ids["pump"], "title": "Check", "type": "inspection", "priority": "low"},
    )
    path = created.headers["location"]
    steps = [
        {"status": "assigned", "assignee_id": str(admin.id)},
        {"status": "in_progress"},
        {"status": "completed"},
    ]
    for step in steps:
        token = csrf_of(client.get(path))
        moved = client.post(
            f"{path}/transition", data={**step, "csrf_token": token}, follow_redirects=False
        )
        assert moved.status_code == 303, step
    [order] = work_orders(session_factory)
    assert order.status is WorkOrderStatus.COMPLETED
    assert order.assignee_id == admin.id
    assert order.completed_at is not None
    assert "badge-completed" in client.get(path).text


def test_illegal_move_in_the_form_shows_the_error(
    client: TestClient, admin: User, ids: dict[str, int], session_factory: sessionmaker[Session]
) -> None:
    created = post_form(
        client,
        "/work-orders",
        {"asset_id": ids["pump"], "title": "Check", "type": "inspection", "priority": "low"},
    )
    path = created.headers["location"]
    token = csrf_of(client.get(path))
    response = client.post(
        f"{path}/transition", data={"status": "closed", "csrf_token": token}, follow_redirects=False
    )
    assert response.status_code == 409
    assert 'role="alert"' in response.text
    assert "cannot go from open to closed" in response.text
    [order] = work_orders(session_factory)
    assert order.status is WorkOrderStatus.OPEN


def test_description_markup_from_the_api_is_escaped_on_the_page(
    client: TestClient, admin: User, ids: dict[str, int], make_user: MakeUser
) -> None:
    _, token = make_user(Role.TECHNICIAN)
    created = client.post(
        "/api/v1/work-orders",
        headers=bearer(token),
        json={
            "asset_id": ids["pump"],
            "title": "Noise",
            "description": "<script>alert(1)</script>",
        },
    )
    assert created.status_code == 201
    page = client.get(f"/work-orders/{created.json()['id']}")
    assert page.status_code == 200
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page.text
    assert "<script>alert" not in page.text


def test_sign_out_ends_the_session(client: TestClient, admin: User) -> None:
    token = csrf_of(client.get("/"))
    response = client.post("/logout", data={"csrf_token": token}, follow_redirects=False)
    assert response.status_code == 303
    assert client.get("/", follow_redirects=False).status_code == 303


def test_plotly_is_served_from_the_installed_package(client: TestClient) -> None:
    response = client.get("/static/vendor/plotly.min.js")
    assert response.status_code == 200
    assert "javascript" in response.headers["content-type"]
    assert len(response.content) > 1_000_000
    assert b"plotly" in response.content[:2000].lower()


def test_supplier_may_not_open_cmms_pages(
    client: TestClient, make_user: MakeUser, ids: dict[str, int]
) -> None:
    make_user(Role.SUPPLIER, username="sue")
    assert sign_in(client, "sue", next_path="/assets").status_code == 303
    for path in ("/assets", f"/assets/{ids['pump']}", "/work-orders", "/supply", "/"):
        page = client.get(path, headers={"Accept": "text/html"})
        assert page.status_code == 403, path
        assert "P-1" not in page.text


def test_analyst_sees_work_orders_but_not_the_new_work_order_form(
    client: TestClient, make_user: MakeUser
) -> None:
    make_user(Role.ANALYST, username="ann")
    sign_in(client, "ann")
    assert client.get("/work-orders").status_code == 200
    assert client.get("/work-orders/new").status_code == 403


def test_deactivated_user_is_signed_out(
    client: TestClient, make_user: MakeUser, session_factory: sessionmaker[Session]
) -> None:
    user, _ = make_user(Role.TECHNICIAN, username="tom")
    sign_in(client, "tom")
    assert client.get("/work-orders").status_code == 200
    with session_factory() as session, session.begin():
        stored = session.get(User, user.id)
        assert stored is not None
        stored.active = False
    assert client.get("/work-orders", follow_redirects=False).status_code == 303
