"""The buyers' side of the portal in the API: inviting supplier users, and messages on orders."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from maintainpro.core.users import Role, User
from maintainpro.supply.portal_records import SupplierUser
from supply.portal_world import HTML, PASSWORD, PDF, PortalWorld, csrf_of, seeded
from support import bearer

MakeUser = Callable[..., tuple[User, str]]
API = "/api/v1"


@pytest.fixture
def two(session_factory: sessionmaker[Session]) -> PortalWorld:
    return seeded(session_factory)


def _portal_login(client: TestClient, username: str, password: str) -> int:
    token = csrf_of(client.get("/portal/login").text)
    response = client.post(
        "/portal/login",
        data={"username": username, "password": password, "csrf_token": token},
        follow_redirects=False,
    )
    return response.status_code


def test_a_buyer_invites_a_supplier_user_who_can_then_sign_in(
    client: TestClient,
    make_user: MakeUser,
    session_factory: sessionmaker[Session],
    two: PortalWorld,
) -> None:
    buyer = bearer(make_user(Role.PROCUREMENT)[1])
    created = client.post(
        f"{API}/suppliers/{two.a.supplier}/portal-users",
        headers=buyer,
        json={"username": "acme-sales", "full_name": "Ann Acme", "email": "ann@acme.example"},
    )
    assert created.status_code == 201
    body = created.json()
    assert body["supplier_id"] == two.a.supplier
    assert body["active"] is True
    password = body["initial_password"]
    assert isinstance(password, str)
    assert len(password) >= 16
    with session_factory() as session:
        user = session.get(User, body["id"])
        assert user is not None
        assert user.role is Role.SUPPLIER
        assert PASSWORD not in user.password_hash
        link = session.get(SupplierUser, user.id)
        assert link is not None
        assert link.supplier_id == two.a.supplier
    listed = client.get(f"{API}/suppliers/{two.a.supplier}/portal-users", headers=buyer).json()
    assert [u["username"] for u in listed] == ["acme-clerk", "acme-sales"]
    assert "initial_password" not in listed[0]
    assert _portal_login(client, "acme-sales", password) == 303
    assert "ACME Ltd" in client.get("/portal", headers=HTML).text


def test_a_chosen_password_is_not_echoed(
    client: TestClient, make_user: MakeUser, two: PortalWorld
) -> None:
    admin = bearer(make_user(Role.ADMIN)[1])
    created = client.post(
        f"{API}/suppliers/{two.b.supplier}/portal-users",
        headers=admin,
        json={"username": "beta-sales", "password": "a long enough secret"},
    )
    assert created.status_code == 201
    assert created.json()["initial_password"] is None
    assert _portal_login(client, "beta-sales", "a long enough secret") == 303


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({"username": "acme-clerk"}, 409),
        ({"username": "Bad Name"}, 422),
        ({"username": "ok-name", "password": "short"}, 422),
        ({"username": "ok-name", "full_name": "<b>x</b>"}, 422),
        ({"username": "ok-name", "role": "admin"}, 422),
    ],
)
def test_refused_invitations(
    client: TestClient,
    make_user: MakeUser,
    two: PortalWorld,
    body: dict[str, str],
    status: int,
) -> None:
    admin = bearer(make_user(Role.ADMIN)[1])
    response = client.post(
        f"{API}/suppliers/{two.a.supplier}/portal-users", headers=admin, json=body
    )
    assert response.status_code == status
    assert response.headers["content-type"] == "application/problem+json"
    listed = client.get(f"{API}/suppliers/{two.a.supplier}/portal-users", headers=admin).json()
    assert [u["username"] for u in listed] == ["acme-clerk"]


def test_who_may_invite(client: TestClient, make_user: MakeUser, two: PortalWorld) -> None:
    path = f"{API}/suppliers/{two.a.supplier}/portal-users"
    for role in (Role.MAINTENANCE_MANAGER, Role.TECHNICIAN, Role.ANALYST):
        response = client.post(path, headers=bearer(make_user(role)[1]), json={"username": "x-1"})
        assert response.status_code == 403, role
    missing = client.post(
        f"{API}/suppliers/999999/portal-users",
        headers=bearer(make_user(Role.ADMIN)[1]),
        json={"username": "x-2"},
    )
    assert missing.status_code == 404


def test_a_deactivated_portal_user_is_signed_out(
    client: TestClient, make_user: MakeUser, two: PortalWorld
) -> None:
    assert _portal_login(client, two.a.username, PASSWORD) == 303
    admin = bearer(make_user(Role.ADMIN)[1])
    wrong_supplier = client.post(
        f"{API}/suppliers/{two.b.supplier}/portal-users/{two.a.user}/deactivate", headers=admin
    )
    assert wrong_supplier.status_code == 404
    done = client.post(
        f"{API}/suppliers/{two.a.supplier}/portal-users/{two.a.user}/deactivate", headers=admin
    )
    assert done.status_code == 200
    assert done.json()["active"] is False
    assert client.get("/portal", follow_redirects=False).status_code == 303
    assert _portal_login(client, two.a.username, PASSWORD) == 401


def test_order_messages_for_buyers(
    client: TestClient, make_user: MakeUser, two: PortalWorld
) -> None:
    buyer = bearer(make_user(Role.PROCUREMENT)[1])
    listed = client.get(f"{API}/purchase-orders/{two.b.order}/messages", headers=buyer)
    assert listed.status_code == 200
    messages = listed.json()
    assert [m["body"] for m in messages] == ["Beta's private note", "drawing"]
    assert messages[1]["author"] == "beta-clerk"
    assert messages[1]["attachment_size"] == len(PDF)
    download = client.get(messages[1]["attachment_url"], headers=buyer)
    assert download.status_code == 200
    assert download.content == PDF
    assert download.headers["content-disposition"] == 'attachment; filename="drawing.pdf"'
    assert download.headers["x-content-type-options"] == "nosniff"
    # A message id of another order is not found, and neither is a message without a file.
    other = f"{API}/purchase-orders/{two.a.order}/messages/{two.b.message}/attachment"
    assert client.get(other, headers=buyer).status_code == 404
    no_file = f"{API}/purchase-orders/{two.b.order}/messages/{messages[0]['id']}/attachment"
    assert client.get(no_file, headers=buyer).status_code == 404
    assert client.get(f"{API}/purchase-orders/999999/messages", headers=buyer).status_code == 404


def test_posting_messages_needs_supply_write_and_valid_files(
    client: TestClient, make_user: MakeUser, two: PortalWorld
) -> None:
    path = f"{API}/purchase-orders/{two.a.order}/messages"
    analyst = bearer(make_user(Role.ANALYST)[1])
    assert client.get(path, headers=analyst).status_code == 200
    assert client.post(path, headers=analyst, data={"body": "hi"}).status_code == 403
    technician = bearer(make_user(Role.TECHNICIAN)[1])
    assert client.get(path, headers=technician).status_code == 403
    buyer = bearer(make_user(Role.PROCUREMENT)[1])
    refused = client.post(
        path,
        headers=buyer,
        data={"body": "see"},
        files={"attachment": ("x.svg", b"<svg onload=alert(1)>", "image/svg+xml")},
    )
    assert refused.status_code == 422
    assert "cannot be attached" in refused.json()["detail"]
    empty = client.post(path, headers=buyer, data={"body": " "})
    assert empty.status_code == 422
    sent = client.post(path, headers=buyer, data={"body": "Please confirm the date"})
    assert sent.status_code == 201
    assert sent.json()["from_supplier"] is False
    assert sent.json()["attachment_url"] is None
    assert [m["body"] for m in client.get(path, headers=buyer).json()] == [
        "Please confirm the date"
    ]
