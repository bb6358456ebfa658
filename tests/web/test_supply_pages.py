"""The supply-chain pages: dashboard content, order list and detail, supplier page, escaping of
hostile names, permissions, and approving and sending from the order page."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from decimal import Decimal

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from maintainpro.core.db import utcnow
from maintainpro.core.users import Role, User
from maintainpro.supply.purchasing import PoStatus, PurchaseOrder, add_line
from support import plant
from web.supply_world import HOSTILE, HOSTILE_EXPLANATION, seed_supply_shop

MakeUser = Callable[..., tuple[User, str]]
PASSWORD = "correct horse battery"
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
HTML = {"Accept": "text/html"}


@pytest.fixture
def shop(session_factory: sessionmaker[Session]) -> dict[str, int]:
    with session_factory() as session, session.begin():
        ids = plant(session)
        return ids | seed_supply_shop(session, ids, utcnow())


def csrf_of(page: httpx.Response) -> str:
    match = CSRF.search(page.text)
    assert match is not None, "the page has no CSRF token"
    return match.group(1)


def sign_in_as(client: TestClient, make_user: MakeUser, role: Role) -> User:
    user, _ = make_user(role)
    token = csrf_of(client.get("/login"))
    response = client.post(
        "/login",
        data={"username": user.username, "password": PASSWORD, "csrf_token": token},
        follow_redirects=False,
    )
    assert response.status_code == 303
    return user


def order(factory: sessionmaker[Session], order_id: int) -> PurchaseOrder:
    with factory() as session:
        found = session.get(PurchaseOrder, order_id)
        assert found is not None
        session.expunge(found)
        return found


def chart_figure(page: httpx.Response, chart_id: str) -> dict[str, object]:
    match = re.search(
        rf'<script type="application/json" data-chart-for="{chart_id}">(.*?)</script>',
        page.text,
        re.S,
    )
    assert match is not None, f"no chart {chart_id}"
    figure: dict[str, object] = json.loads(match.group(1))
    return figure


def row_of(page: httpx.Response, table_class: str, needle: str) -> str:
    table = re.search(rf'<table class="{table_class}">(.*?)</table>', page.text, re.S)
    assert table is not None, f"no table {table_class}"
    for row in re.findall(r"<tr>(.*?)</tr>", table.group(1), re.S):
        if needle in row:
            return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", row)).strip()
    raise AssertionError(f"no row with {needle} in {table_class}")


def test_dashboard_shows_suppliers_orders_delivery_and_catalogue(
    client: TestClient, make_user: MakeUser, shop: dict[str, int]
) -> None:
    sign_in_as(client, make_user, Role.PROCUREMENT)
    page = client.get("/supply")
    assert page.status_code == 200
    assert row_of(page, "suppliers", "BLK").split()[:3] == ["BLK", "·", "Blocked"]
    assert "blocked" in row_of(page, "suppliers", "BLK")
    assert "email" in row_of(page, "suppliers", "BLK")
    assert f"PO-{shop['delivered']:06d}" in row_of(page, "suppliers", "GOOD")
    assert "portal" in row_of(page, "suppliers", "GOOD")
    assert row_of(page, "order-states", "/supply/orders?status=draft").endswith("draft 1")
    assert row_of(page, "order-states", "/supply/orders?status=received").endswith("received 1")
    figure = chart_figure(page, "orders-by-state")
    trace = figure["data"][0]  # type: ignore[index]
    counts = dict(zip(trace["x"], trace["y"], strict=True))
    assert counts["draft"] == 1
    assert counts["received"] == 1
    assert counts["sent"] == 0
    # One receipt two days after its promised date, one a day early: half on time.
    assert "1 of 2 dated receipts" in page.text
    assert "50.0%" in row_of(page, "delivery", "GOOD")
    assert "no data" in row_of(page, "delivery", "BLK")
    assert row_of(page, "freshness", "GOOD").split()[-1] == "1"  # its one item has expired
    assert row_of(page, "freshness", "EVIL").split()[-1] == "0"
    assert "Parts held for work orders" in page.text


def test_hostile_names_and_explanations_are_escaped_on_every_page(
    client: TestClient, make_user: MakeUser, shop: dict[str, int]
) -> None:
    sign_in_as(client, make_user, Role.ANALYST)
    escaped = "&lt;script&gt;alert(&#34;pwn&#34;)&lt;/script&gt; &amp; Co"
    # The order list names suppliers by code only; the other pages show the legal name.
    for path, shows_name in (
        ("/supply", True),
        ("/supply/orders", False),
        (f"/supply/orders/{shop['draft']}", True),
        (f"/supply/suppliers/{shop['hostile']}", True),
    ):
        page = client.get(path)
        assert page.status_code == 200, path
        assert HOSTILE not in page.text, path
        assert "<script>alert" not in page.text, path
        assert (escaped in page.text) is shows_name, path
    detail = client.get(f"/supply/orders/{shop['draft']}")
    assert HOSTILE_EXPLANATION not in detail.text
    assert "&lt;img src=x onerror=alert(1)&gt; cheapest" in detail.text


@pytest.mark.parametrize("role", [Role.TECHNICIAN, Role.SUPPLIER])
def test_roles_without_supply_read_get_the_403_page(
    client: TestClient, make_user: MakeUser, shop: dict[str, int], role: Role
) -> None:
    sign_in_as(client, make_user, role)
    for path in (
        "/supply",
        "/supply/orders",
        f"/supply/orders/{shop['draft']}",
        f"/supply/suppliers/{shop['good']}",
    ):
        page = client.get(path, headers=HTML)
        assert page.status_code == 403, path
        assert page.headers["content-type"].startswith("text/html"), path
        assert "cannot open this page" in page.text, path
        assert "Good Parts" not in page.text, path


def test_order_page_explains_lines_and_shows_deliveries_and_history(
    client: TestClient, make_user: MakeUser, shop: dict[str, int]
) -> None:
    sign_in_as(client, make_user, Role.ANALYST)
    page = client.get(f"/supply/orders/{shop['delivered']}")
    assert page.status_code == 200
    assert "Why:</span> preferred supplier" in page.text
    first, second = re.findall(r"<tr>\s*<td>(\d)</td>(.*?)</tr>", page.text, re.S)
    assert "late" in first[1]
    assert "late" not in second[1]
    assert "1 EUR = 1.08 USD, ECB rate of" in page.text
    history = re.sub(r"<[^>]+>", " ", page.text.split('id="history-heading"')[1])
    assert re.search(r"new\s+→\s+draft", history)
    assert re.search(r"sent\s+→\s+partially received", history)
    assert re.search(r"partially received\s+→\s+received", history)
    # An analyst may read but neither approve nor send.
    assert "/approve" not in page.text
    assert "/send" not in page.text


def test_orders_list_filters_by_state_and_supplier(
    client: TestClient, make_user: MakeUser, shop: dict[str, int]
) -> None:
    sign_in_as(client, make_user, Role.ANALYST)
    draft_link = f'href="/supply/orders/{shop["draft"]}"'
    delivered_link = f'href="/supply/orders/{shop["delivered"]}"'
    drafts = client.get("/supply/orders", params={"status": "draft"})
    assert draft_link in drafts.text
    assert delivered_link not in drafts.text
    open_orders = client.get("/supply/orders", params={"status": "open"})
    assert draft_link in open_orders.text
    assert delivered_link not in open_orders.text
    by_supplier = client.get("/supply/orders", params={"supplier": str(shop["good"])})
    assert delivered_link in by_supplier.text
    assert draft_link not in by_supplier.text
    unknown = client.get("/supply/orders", params={"status": "<bogus>"})
    assert unknown.status_code == 200
    assert draft_link in unknown.text
    assert delivered_link in unknown.text


def test_supplier_page_shows_master_data_catalogue_and_orders(
    client: TestClient, make_user: MakeUser, shop: dict[str, int]
) -> None:
    sign_in_as(client, make_user, Role.ANALYST)
    page = client.get(f"/supply/suppliers/{shop['good']}")
    assert page.status_code == 200
    assert "Good Parts GmbH" in page.text
    assert "GOOD-1" in page.text
    assert "expired" in page.text
    assert "from 1: 10.50 EUR" in page.text
    assert f'href="/supply/orders/{shop["delivered"]}"' in page.text
    assert client.get("/supply/suppliers/999999", headers=HTML).status_code == 404
    assert client.get("/supply/orders/999999", headers=HTML).status_code == 404


def test_buyer_approves_a_draft_from_its_page(
    client: TestClient,
    make_user: MakeUser,
    shop: dict[str, int],
    session_factory: sessionmaker[Session],
) -> None:
    buyer = sign_in_as(client, make_user, Role.PROCUREMENT)
    path = f"/supply/orders/{shop['draft']}"
    page = client.get(path)
    assert f'action="{path}/approve"' in page.text
    response = client.post(
        f"{path}/approve", data={"csrf_token": csrf_of(page)}, follow_redirects=False
    )
    assert response.status_code == 303
    assert response.headers["location"] == path
    approved = order(session_factory, shop["draft"])
    assert approved.status is PoStatus.APPROVED
    assert approved.approved_by_id == buyer.id
    after = client.get(path)
    assert f"Approved PO-{shop['draft']:06d}." in after.text
    assert f'action="{path}/approve"' not in after.text
    assert f'action="{path}/send"' in after.text


def test_approving_without_the_form_token_changes_nothing(
    client: TestClient,
    make_user: MakeUser,
    shop: dict[str, int],
    session_factory: sessionmaker[Session],
) -> None:
    sign_in_as(client, make_user, Role.PROCUREMENT)
    path = f"/supply/orders/{shop['draft']}/approve"
    response = client.post(path, data={"csrf_token": "forged"}, headers=HTML)
    assert response.status_code == 403
    assert order(session_factory, shop["draft"]).status is PoStatus.DRAFT


def test_analyst_cannot_approve(
    client: TestClient,
    make_user: MakeUser,
    shop: dict[str, int],
    session_factory: sessionmaker[Session],
) -> None:
    sign_in_as(client, make_user, Role.ANALYST)
    page = client.get(f"/supply/orders/{shop['draft']}")
    response = client.post(
        f"/supply/orders/{shop['draft']}/approve",
        data={"csrf_token": csrf_of(page)},
        headers=HTML,
    )
    assert response.status_code == 403
    assert order(session_factory, shop["draft"]).status is PoStatus.DRAFT


def test_approval_above_the_buyers_limit_is_refused_and_changes_nothing(
    client: TestClient,
    make_user: MakeUser,
    shop: dict[str, int],
    session_factory: sessionmaker[Session],
) -> None:
    with session_factory() as session, session.begin():
        draft = session.get(PurchaseOrder, shop["draft"])
        assert draft is not None
        # 1,000 x 10.50 EUR at 1.08 is 11,340 USD, above the procurement limit of 10,000 USD.
        add_line(draft, part_id=shop["part"], quantity=Decimal(1000), unit_price=Decimal("10.50"))
    sign_in_as(client, make_user, Role.PROCUREMENT)
    path = f"/supply/orders/{shop['draft']}"
    response = client.post(
        f"{path}/approve", data={"csrf_token": csrf_of(client.get(path))}, follow_redirects=True
    )
    assert response.status_code == 200
    assert "was not approved" in response.text
    assert "approval limit" in response.text
    assert 'role="alert"' in response.text
    assert order(session_factory, shop["draft"]).status is PoStatus.DRAFT


def test_approved_order_is_sent_from_its_page(
    client: TestClient,
    make_user: MakeUser,
    shop: dict[str, int],
    session_factory: sessionmaker[Session],
) -> None:
    admin = sign_in_as(client, make_user, Role.ADMIN)
    path = f"/supply/orders/{shop['draft']}"
    client.post(f"{path}/approve", data={"csrf_token": csrf_of(client.get(path))})
    response = client.post(
        f"{path}/send", data={"csrf_token": csrf_of(client.get(path))}, follow_redirects=True
    )
    assert f"Sent PO-{shop['draft']:06d} to EVIL." in response.text
    sent = order(session_factory, shop["draft"])
    assert sent.status is PoStatus.SENT
    assert sent.sent_at is not None
    with session_factory() as session:
        actors = session.scalars(
            select(PurchaseOrder.id).where(PurchaseOrder.approved_by_id == admin.id)
        ).all()
    assert actors == [shop["draft"]]


def test_sending_a_draft_is_refused(
    client: TestClient,
    make_user: MakeUser,
    shop: dict[str, int],
    session_factory: sessionmaker[Session],
) -> None:
    sign_in_as(client, make_user, Role.ADMIN)
    path = f"/supply/orders/{shop['draft']}"
    response = client.post(
        f"{path}/send", data={"csrf_token": csrf_of(client.get(path))}, follow_redirects=True
    )
    assert "was not sent" in response.text
    assert order(session_factory, shop["draft"]).status is PoStatus.DRAFT
