"""User administration and the audit log through the API."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi.testclient import TestClient

from maintainpro.core.users import Role, User
from support import bearer

MakeUser = Callable[..., tuple[User, str]]
NEW_USER = {
    "username": "tina.t",
    "password": "a long enough secret",
    "role": "technician",
    "full_name": "Tina Turner",
    "email": "tina@example.com",
}


def audit(client: TestClient, headers: dict[str, str], **params: Any) -> list[dict[str, Any]]:
    response = client.get("/api/v1/audit", headers=headers, params=params)
    assert response.status_code == 200
    items: list[dict[str, Any]] = response.json()["items"]
    return items


def test_admin_creates_a_user_who_can_sign_in(
    client: TestClient, admin_headers: dict[str, str]
) -> None:
    created = client.post("/api/v1/users", headers=admin_headers, json=NEW_USER)
    assert created.status_code == 201
    assert created.json()["role"] == "technician"
    assert created.json()["active"] is True
    token = client.post(
        "/api/v1/auth/token",
        json={"username": NEW_USER["username"], "password": NEW_USER["password"]},
    )
    assert token.status_code == 201


def test_password_is_never_returned(client: TestClient, admin_headers: dict[str, str]) -> None:
    created = client.post("/api/v1/users", headers=admin_headers, json=NEW_USER)
    user_id = created.json()["id"]
    responses = [
        created,
        client.get(f"/api/v1/users/{user_id}", headers=admin_headers),
        client.get("/api/v1/users", headers=admin_headers),
        client.patch(
            f"/api/v1/users/{user_id}",
            headers=admin_headers,
            json={"password": "another long secret"},
        ),
    ]
    for response in responses:
        assert response.status_code in (200, 201)
        assert "password" not in response.text
        assert "argon2" not in response.text
        assert "another long secret" not in response.text


def test_users_filter_by_role(
    client: TestClient, admin_headers: dict[str, str], make_user: MakeUser
) -> None:
    make_user(Role.ANALYST, username="ann")
    page = client.get("/api/v1/users", headers=admin_headers, params={"role": "analyst"}).json()
    assert [u["username"] for u in page["items"]] == ["ann"]


def test_manager_cannot_administer_users(
    client: TestClient, make_user: MakeUser, admin_headers: dict[str, str]
) -> None:
    _, token = make_user(Role.MAINTENANCE_MANAGER)
    assert client.get("/api/v1/users", headers=bearer(token)).status_code == 403
    response = client.post("/api/v1/users", headers=bearer(token), json=NEW_USER)
    assert response.status_code == 403
    names = [
        u["username"] for u in client.get("/api/v1/users", headers=admin_headers).json()["items"]
    ]
    assert NEW_USER["username"] not in names


def test_duplicate_username_is_409_and_short_password_is_422(
    client: TestClient, admin_headers: dict[str, str]
) -> None:
    assert client.post("/api/v1/users", headers=admin_headers, json=NEW_USER).status_code == 201
    assert client.post("/api/v1/users", headers=admin_headers, json=NEW_USER).status_code == 409
    short = {**NEW_USER, "username": "sam", "password": "tiny-pw9"}
    response = client.post("/api/v1/users", headers=admin_headers, json=short)
    assert response.status_code == 422
    assert "tiny-pw9" not in response.text


def test_changes_are_audited_with_actor_before_and_after(
    client: TestClient, make_user: MakeUser
) -> None:
    manager, token = make_user(Role.MAINTENANCE_MANAGER, username="max")
    headers = bearer(token)
    site = client.post("/api/v1/sites", headers=headers, json={"code": "S1", "name": "One"}).json()
    client.patch(f"/api/v1/sites/{site['id']}", headers=headers, json={"name": "Uno"})
    entries = audit(client, headers, entity="sites", entity_id=str(site["id"]))
    assert [e["action"] for e in entries] == ["update", "create"]  # newest first
    update, create = entries
    assert {(e["actor"], e["actor_id"]) for e in entries} == {("max", manager.id)}
    assert create["before"] is None
    assert create["after"]["code"] == "S1"
    assert create["after"]["name"] == "One"
    assert update["before"]["name"] == "One"
    assert update["after"]["name"] == "Uno"
    assert "code" not in update["after"]  # only what changed


def test_audit_hides_password_hashes(client: TestClient, admin_headers: dict[str, str]) -> None:
    user_id = client.post("/api/v1/users", headers=admin_headers, json=NEW_USER).json()["id"]
    client.patch(
        f"/api/v1/users/{user_id}", headers=admin_headers, json={"password": "another long secret"}
    )
    entries = audit(client, admin_headers, entity="users", entity_id=str(user_id))
    assert [e["action"] for e in entries] == ["update", "create"]
    assert entries[1]["after"]["password_hash"] == "***"
    assert entries[0]["before"] == {"password_hash": "***"}
    assert entries[0]["after"] == {"password_hash": "***"}


def test_audit_is_for_auditors_only(client: TestClient, make_user: MakeUser) -> None:
    _, analyst = make_user(Role.ANALYST)
    _, technician = make_user(Role.TECHNICIAN)
    assert client.get("/api/v1/audit", headers=bearer(analyst)).status_code == 200
    assert client.get("/api/v1/audit", headers=bearer(technician)).status_code == 403
