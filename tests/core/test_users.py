"""Passwords, roles and API tokens."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy.orm import Session

from maintainpro.core.db import utcnow
from maintainpro.core.users import (
    ROLE_PERMISSIONS,
    Permission,
    Role,
    User,
    WeakPassword,
    authenticate_password,
    authenticate_token,
    hash_password,
    issue_token,
    verify_password,
)


def test_argon2_hashes_and_verifies() -> None:
    hashed = hash_password("a long passphrase")
    assert hashed.startswith("$argon2id$")
    assert verify_password(hashed, "a long passphrase")
    assert not verify_password(hashed, "a wrong passphrase")
    assert not verify_password("not-a-hash", "x")
    with pytest.raises(WeakPassword):
        hash_password("short")


def test_roles_and_permissions() -> None:
    assert ROLE_PERMISSIONS[Role.ADMIN] == frozenset(Permission)
    assert Permission.USERS_ADMIN not in ROLE_PERMISSIONS[Role.MAINTENANCE_MANAGER]
    assert Permission.WORK_ORDERS_WRITE in ROLE_PERMISSIONS[Role.TECHNICIAN]
    assert Permission.ASSETS_WRITE not in ROLE_PERMISSIONS[Role.TECHNICIAN]
    assert ROLE_PERMISSIONS[Role.SUPPLIER] == frozenset()


def test_tokens_expire_and_inactive_users_lose_access(db: Session) -> None:
    user = User(username="op", role=Role.TECHNICIAN, password_hash=hash_password("0123456789"))
    db.add(user)
    db.flush()
    now = utcnow()
    _, lasting = issue_token(db, user, "a")
    _, brief = issue_token(db, user, "b", expires_at=now + dt.timedelta(hours=1))
    assert authenticate_token(db, lasting, now) is user
    assert authenticate_token(db, brief, now) is user
    assert authenticate_token(db, brief, now + dt.timedelta(hours=2)) is None
    assert authenticate_token(db, "not-ours", now) is None
    user.active = False
    assert authenticate_token(db, lasting, now) is None
    assert authenticate_password(db, "op", "0123456789") is None


def test_password_login(db: Session) -> None:
    db.add(User(username="op", role=Role.ANALYST, password_hash=hash_password("0123456789")))
    db.flush()
    user = authenticate_password(db, "op", "0123456789")
    assert user is not None
    assert user.username == "op"
    assert authenticate_password(db, "op", "wrong-password") is None
    assert authenticate_password(db, "nobody", "0123456789") is None
