"""Authentication and authorisation on the API: 401, 403, token exchange and revocation."""

from __future__ import annotations

from fastapi.testclient import TestClient

from maintainpro.core.users import Role
from support import bearer

PASSWORD = "correct horse battery"


def test_api_without_token_is_401_problem(client: TestClient) -> None:
    response = client.get("/api/v1/assets")
    assert response.status_code == 401
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.headers["www-authenticate"].startswith("Bearer")
    assert response.json()["status"] == 401


def test_unknown_token_is_401(client: TestClient) -> None:
    response = client.get("/api/v1/assets", headers=bearer("mpt_not-a-real-token-value"))
    assert response.status_code == 401


def test_password_exchange_gives_a_working_token(client: TestClient, make_user) -> None:
    make_user(Role.TECHNICIAN, username="tina")
    response = client.post(
        "/api/v1/auth/token", json={"username": "tina", "password": PASSWORD, "name": "laptop"}
    )
    assert response.status_code == 201
    token = response.json()["access_token"]
    me = client.get("/api/v1/auth/me", headers=bearer(token)).json()
    assert me["username"] == "tina"
    assert me["role"] == "technician"
    assert "users:admin" not in me["permissions"]


def test_wrong_password_is_401(client: TestClient, make_user) -> None:
    make_user(Role.TECHNICIAN, username="tom")
    response = client.post("/api/v1/auth/token", json={"username": "tom", "password": "nope"})
    assert response.status_code == 401
    response = client.post("/api/v1/auth/token", json={"username": "ghost", "password": "x"})
    assert response.status_code == 401


def test_supplier_accounts_get_no_api_token(client: TestClient, make_user) -> None:
    make_user(Role.SUPPLIER, username="sid")
    response = client.post("/api/v1/auth/token", json={"username": "sid", "password": PASSWORD})
    assert response.status_code == 403
    assert "/portal" in response.json()["detail"]


def test_technician_doing_admin_action_is_403(client: TestClient, make_user) -> None:
    _, token = make_user(Role.TECHNICIAN)
    response = client.post(
        "/api/v1/users",
        headers=bearer(token),
        json={"username": "newbie", "password": "long enough pw", "role": "admin"},
    )
    assert response.status_code == 403
    assert response.headers["content-type"].startswith("application/problem+json")
    assert "users:admin" in response.json()["detail"]
    assert client.get("/api/v1/users", headers=bearer(token)).status_code == 403


def test_technician_cannot_create_assets_but_can_read(client: TestClient, make_user) -> None:
    _, token = make_user(Role.TECHNICIAN)
    assert client.get("/api/v1/assets", headers=bearer(token)).status_code == 200
    response = client.post("/api/v1/sites", headers=bearer(token), json={"code": "X", "name": "X"})
    assert response.status_code == 403


def test_supplier_sees_nothing_of_the_cmms(client: TestClient, make_user) -> None:
    _, token = make_user(Role.SUPPLIER)
    for path in ("/api/v1/assets", "/api/v1/work-orders", "/api/v1/parts", "/api/v1/audit"):
        assert client.get(path, headers=bearer(token)).status_code == 403, path


def test_revoked_token_stops_working_at_once(client: TestClient, make_user) -> None:
    _, token = make_user(Role.MAINTENANCE_MANAGER)
    headers = bearer(token)
    assert client.get("/api/v1/assets", headers=headers).status_code == 200
    tokens = client.get("/api/v1/auth/tokens", headers=headers).json()
    assert len(tokens) == 1
    assert "token_hash" not in tokens[0]
    revoked = client.delete(f"/api/v1/auth/tokens/{tokens[0]['id']}", headers=headers)
    assert revoked.status_code == 200
    assert revoked.json()["revoked_at"] is not None
    assert client.get("/api/v1/assets", headers=headers).status_code == 401


def test_admin_revokes_another_users_token(client: TestClient, make_user, admin_headers) -> None:
    _, token = make_user(Role.TECHNICIAN)
    me = client.get("/api/v1/auth/me", headers=bearer(token)).json()
    token_id = client.get("/api/v1/auth/tokens", headers=bearer(token)).json()[0]["id"]
    response = client.delete(f"/api/v1/auth/tokens/{token_id}", headers=admin_headers)
    assert response.status_code == 200
    assert response.json()["user_id"] == me["id"]
    assert client.get("/api/v1/assets", headers=bearer(token)).status_code == 401


def test_user_cannot_revoke_someone_elses_token(client: TestClient, make_user) -> None:
    _, victim = make_user(Role.TECHNICIAN)
    _, attacker = make_user(Role.TECHNICIAN)
    token_id = client.get("/api/v1/auth/tokens", headers=bearer(victim)).json()[0]["id"]
    response = client.delete(f"/api/v1/auth/tokens/{token_id}", headers=bearer(attacker))
    assert response.status_code == 404
    assert client.get("/api/v1/assets", headers=bearer(victim)).status_code == 200


def test_deactivated_user_token_stops_working(client: TestClient, make_user, admin_headers) -> None:
    user, token = make_user(Role.TECHNICIAN)
    response = client.patch(
        f"/api/v1/users/{user.id}", headers=admin_headers, json={"active": False}
    )
    assert response.status_code == 200
    assert client.get("/api/v1/assets", headers=bearer(token)).status_code == 401


def test_expired_token_is_refused(client: TestClient, make_user) -> None:
    make_user(Role.TECHNICIAN, username="eve")
    issued = client.post(
        "/api/v1/auth/token",
        json={"username": "eve", "password": PASSWORD, "expires_in_days": 1},
    ).json()
    assert issued["expires_at"] is not None
    headers = bearer(issued["access_token"])
    assert client.get("/api/v1/assets", headers=headers).status_code == 200
