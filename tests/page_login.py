"""Signing a test client in through the login form."""

from __future__ import annotations

import re
from typing import Any

from fastapi.testclient import TestClient

from maintainpro.core.users import Role

PASSWORD = "correct horse battery"


def login(client: TestClient, make_user: Any, role: Role) -> None:
    """Create a user with the role and sign the client in as that user."""
    user, _ = make_user(role)
    page = client.get("/login")
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert token is not None
    response = client.post(
        "/login",
        data={"username": user.username, "password": PASSWORD, "csrf_token": token.group(1)},
        follow_redirects=False,
    )
    assert response.status_code == 303
