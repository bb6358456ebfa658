"""Tenant isolation of the supplier portal and the walls around it.

Every GET route of the app is walked as a supplier: outside /portal nothing answers 200 unless
anonymous visitors get it too. Inside the portal every URL with the other supplier's ids is a
404, lists hold only the supplier's own rows, and posts naming another supplier's order, lines,
items or messages are refused without changing anything.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from maintainpro.core.users import Role, User, issue_token
from maintainpro.supply.catalogs import PriceBreak, PriceChange
from maintainpro.supply.invoices import SupplierInvoice
from maintainpro.supply.portal_records import OrderMessage
from maintainpro.supply.purchasing import PurchaseOrder
from maintainpro.supply.shipments import Shipment
from supply.portal_world import HTML, PASSWORD, PortalWorld, Side, csrf_of, portal_sign_in, seeded
from support import bearer

MakeUser = Callable[..., tuple[User, str]]
PARAM = re.compile(r"{(\w+)(?::\w+)?}")


@pytest.fixture
def two(session_factory: sessionmaker[Session]) -> PortalWorld:
    return seeded(session_factory)


@pytest.fixture
def second_client(client: TestClient) -> TestClient:
    """Another browser on the same app (its own cookie jar); the app's lifespan is the first
    client's, so this one does not run it a second time."""
    return TestClient(client.app)


def get_paths(app: FastAPI) -> list[str]:
    """Every GET route's path template, including those of included routers."""
    paths = []
    for route in app.routes:
        contexts: Any = (
            route.effective_route_contexts()
            if hasattr(route, "effective_route_contexts")
            else [route]
        )
        for context in contexts:
            if "GET" in (getattr(context, "methods", None) or set()):
                paths.append(context.path)
    return sorted(set(paths))


def fill(path: str, side: Side) -> str:
    """A path with real ids of one supplier's objects where the parameter names one."""
    ids = {
        "order_id": side.order,
        "supplier_id": side.supplier,
        "item_id": side.item,
        "shipment_id": side.shipment,
        "invoice_id": side.invoice,
        "message_id": side.message,
        "user_id": side.user,
    }

    def value(match: re.Match[str]) -> str:
        name = match.group(1)
        if ids.get(name) is not None:
            return str(ids[name])
        return "1" if name.endswith("_id") else "x"

    return PARAM.sub(value, path)


def lists_nothing(response: httpx.Response) -> bool:
    """A catalogue of what the caller may read that names nothing (an OData service document
    or $metadata for a role without permissions): answered, but without any data."""
    if response.headers.get("content-type", "").startswith("application/json"):
        body = response.json()
        return isinstance(body, dict) and body.get("value") == []
    if "xml" in response.headers.get("content-type", ""):
        return "<EntitySet" not in response.text
    return False


def _token(factory: sessionmaker[Session], user_id: int) -> str:
    with factory() as session, session.begin():
        user = session.get(User, user_id)
        assert user is not None
        return issue_token(session, user, "probe")[1]


def test_a_supplier_reaches_nothing_outside_the_portal(
    client: TestClient,
    second_client: TestClient,
    session_factory: sessionmaker[Session],
    two: PortalWorld,
) -> None:
    portal_sign_in(client, two.b.username)
    token = bearer(_token(session_factory, two.b.user))
    anonymous = second_client
    app = client.app
    assert isinstance(app, FastAPI)
    paths = [p for p in get_paths(app) if not p.startswith("/portal")]
    assert "/supply/orders/{order_id}" in paths
    assert "/api/v1/purchase-orders" in paths
    checked = 0
    for template in paths:
        path = fill(template, two.b)
        as_page = client.get(path, headers=HTML, follow_redirects=False)
        with_token = anonymous.get(path, headers=token, follow_redirects=False)
        if as_page.status_code == 200 or with_token.status_code == 200:
            public = anonymous.get(path, headers=HTML, follow_redirects=False)
            answered = with_token if with_token.status_code == 200 else as_page
            assert public.status_code == 200 or lists_nothing(answered), (
                f"{path} answers a supplier with data the public does not get"
            )
            continue
        checked += 1
        # A page refuses the signed-in supplier (403); a route that takes only tokens does not
        # see the session (401) and must refuse the supplier's token instead.
        assert as_page.status_code in (401, 403), (path, as_page.status_code)
        if as_page.status_code == 401 or path.startswith("/api/"):
            refused = (403,) if path.startswith("/api/") else (403, 404)
            assert with_token.status_code in refused, (path, with_token.status_code)
        else:
            assert with_token.status_code in (303, 401, 403), (path, with_token.status_code)
    assert checked > 60


def test_staff_and_unlinked_users_cannot_use_the_portal(
    client: TestClient, make_user: MakeUser, two: PortalWorld
) -> None:
    for role in (Role.ADMIN, Role.PROCUREMENT, Role.SUPPLIER):
        user, _ = make_user(role)
        token = csrf_of(client.get("/portal/login").text)
        refused = client.post(
            "/portal/login",
            data={"username": user.username, "password": PASSWORD, "csrf_token": token},
            follow_redirects=False,
        )
        assert refused.status_code == 403
        assert "supplier accounts" in refused.text
        # Signed in as staff through the staff login, the portal still refuses them.
        staff_token = csrf_of(client.get("/login").text)
        client.post(
            "/login",
            data={"username": user.username, "password": PASSWORD, "csrf_token": staff_token},
        )
        for path in ("/portal", f"/portal/orders/{two.a.order}", "/portal/catalog"):
            assert client.get(path, headers=HTML, follow_redirects=False).status_code == 403
        client.cookies.clear()


def test_signed_out_visitors_are_sent_to_the_portal_login(client: TestClient) -> None:
    response = client.get("/portal/orders?show=all", follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"] == "/portal/login?next=/portal/orders%3Fshow%3Dall"


def test_every_portal_url_with_the_other_suppliers_ids_is_not_found(
    client: TestClient, second_client: TestClient, two: PortalWorld
) -> None:
    portal_sign_in(client, two.a.username)
    portal_sign_in(second_client, two.b.username)
    app = client.app
    assert isinstance(app, FastAPI)
    with_ids = [p for p in get_paths(app) if p.startswith("/portal") and "{" in p]
    assert len(with_ids) >= 7
    for template in with_ids:
        path = fill(template, two.b)
        own = second_client.get(path, headers=HTML)
        assert own.status_code == 200, (path, own.status_code)
        foreign = client.get(path, headers=HTML)
        assert foreign.status_code == 404, (path, foreign.status_code)
        assert "was not found" in foreign.text
        missing = client.get(PARAM.sub("987654", template), headers=HTML)
        assert missing.status_code == 404
        # Another supplier's object and a missing one look the same (apart from the id).
        assert re.sub(r"\d+", "N", foreign.text) == re.sub(r"\d+", "N", missing.text)
    assert client.get(f"/portal/orders/{two.a.draft}", headers=HTML).status_code == 404


def _rows(page: httpx.Response) -> str:
    return re.sub(r"\s+", " ", page.text)


def test_lists_show_only_own_rows(
    client: TestClient, session_factory: sessionmaker[Session], two: PortalWorld
) -> None:
    with session_factory() as session:
        order_a = session.get(PurchaseOrder, two.a.order)
        order_b = session.get(PurchaseOrder, two.b.order)
        assert order_a is not None
        assert order_b is not None
        number_a, number_b = order_a.number, order_b.number
    portal_sign_in(client, two.a.username)
    for path in ("/portal", "/portal/orders", "/portal/orders?show=all"):
        text = _rows(client.get(path))
        assert number_a in text
        assert number_b not in text
    assert "BETA-SHIP-1" not in client.get("/portal/shipments").text
    assert "BETA-INV-1" not in client.get("/portal/invoices").text
    catalog = client.get("/portal/catalog").text
    assert "ACME-" in catalog
    assert "BETA-" not in catalog
    assert "Beta&#39;s private note" not in client.get(f"/portal/orders/{two.a.order}").text
    portal_sign_in(client, two.b.username)
    assert "BETA-SHIP-1" in client.get("/portal/shipments").text
    assert "BETA-INV-1" in client.get("/portal/invoices").text
    assert "Beta&#39;s private note" in client.get(f"/portal/orders/{two.b.order}").text


def _snapshot(factory: sessionmaker[Session]) -> tuple[object, ...]:
    with factory() as session:
        orders = session.scalars(select(PurchaseOrder).order_by(PurchaseOrder.id)).all()
        breaks = session.scalars(select(PriceBreak).order_by(PriceBreak.id)).all()
        return (
            [
                (o.status, o.revision, [(x.ack_status, x.shipped_quantity) for x in o.lines])
                for o in orders
            ],
            [(b.catalog_item_id, b.min_quantity, b.unit_price) for b in breaks],
            *(
                session.scalar(select(func.count()).select_from(table))
                for table in (Shipment, SupplierInvoice, OrderMessage, PriceChange)
            ),
        )


def _fields(line_id: int, values: dict[str, str]) -> dict[str, Any]:
    """Form fields for one line: per-line names get the line id, the others stay."""
    per_line = {"decision", "ship", "invqty", "invprice", "quantity", "note"}
    fields: dict[str, Any] = {"line": line_id}
    for key, value in values.items():
        fields[f"{key}_{line_id}" if key in per_line else key] = value
    return fields


def test_posts_naming_another_suppliers_objects_are_refused(
    client: TestClient, session_factory: sessionmaker[Session], two: PortalWorld
) -> None:
    portal_sign_in(client, two.a.username)
    csrf = csrf_of(client.get("/portal").text)
    b_line, a_line = two.b.lines[0], two.a.lines[0]
    before = _snapshot(session_factory)
    own, foreign = f"/portal/orders/{two.a.order}", f"/portal/orders/{two.b.order}"
    shipped = {"ship": "1", "shipment_number": "X1"}
    billed = {"invqty": "1", "invprice": "7", "invoice_number": "X1"}
    attempts: list[tuple[str, dict[str, Any]]] = [
        # Another supplier's order, with its own line.
        (f"{foreign}/acknowledgement", _fields(b_line, {"decision": "accept"})),
        (f"{foreign}/shipments", _fields(b_line, shipped)),
        (f"{foreign}/invoices", _fields(b_line, billed)),
        (f"{foreign}/messages", {"body": "hello"}),
        (f"/portal/catalog/{two.b.item}/prices", {"min_quantity": "1", "unit_price": "1"}),
        # The supplier's own order, naming the other supplier's line.
        (
            f"{own}/acknowledgement",
            {"line": [a_line, b_line], f"decision_{b_line}": "reject", f"note_{b_line}": "no"},
        ),
        (f"{own}/shipments", _fields(b_line, shipped)),
        (f"{own}/invoices", _fields(b_line, billed)),
        # An order the supplier never received (a draft).
        (f"/portal/orders/{two.a.draft}/messages", {"body": "hello"}),
    ]
    for path, data in attempts:
        response = client.post(path, data={**data, "csrf_token": csrf}, headers=HTML)
        assert response.status_code == 404, (path, response.status_code)
    assert _snapshot(session_factory) == before


def test_bearer_tokens_of_suppliers_are_refused_by_the_api(
    client: TestClient, session_factory: sessionmaker[Session], two: PortalWorld
) -> None:
    token = bearer(_token(session_factory, two.a.user))
    assert client.get("/api/v1/auth/me", headers=token).status_code == 403
    refused = client.post(
        f"/api/v1/purchase-orders/{two.a.order}/acknowledgement",
        headers=token,
        json={"lines": [{"line_no": 1, "status": "accepted"}]},
    )
    assert refused.status_code == 403
    assert refused.headers["content-type"] == "application/problem+json"
