"""User administration and the audit log."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from fastapi import APIRouter, Depends, status
from pydantic import BaseModel, ConfigDict, EmailStr, Field
from sqlalchemy import select

from maintainpro.api.crud import get_or_404, refuse_nulls, require_exists
from maintainpro.api.deps import SessionDep, require
from maintainpro.api.fields import Code, Name, Username
from maintainpro.api.pagination import Page, WindowDep, list_page
from maintainpro.core.assets import Site
from maintainpro.core.audit import AuditEntry
from maintainpro.core.users import Permission, Role, User, hash_password

router = APIRouter(tags=["users"])
Admin = Depends(require(Permission.USERS_ADMIN))
Auditor = Depends(require(Permission.AUDIT_READ))


class UserIn(BaseModel):
    """A new user."""

    model_config = ConfigDict(extra="forbid")
    username: Username
    password: Annotated[str, Field(min_length=10, max_length=1024)]
    role: Role
    full_name: Name | None = None
    email: EmailStr | None = None
    site_id: int | None = None


class UserPatch(BaseModel):
    """Changes to a user."""

    model_config = ConfigDict(extra="forbid")
    role: Role | None = None
    full_name: Name | None = None
    email: EmailStr | None = None
    active: bool | None = None
    site_id: int | None = None
    password: Annotated[str, Field(min_length=10, max_length=1024)] | None = None


class UserOut(BaseModel):
    """A user (never the password hash)."""

    model_config = ConfigDict(from_attributes=True)
    id: int
    username: str
    full_name: str
    email: str | None
    role: Role
    active: bool
    site_id: int | None
    created_at: dt.datetime


class AuditOut(BaseModel):
    """An audit record."""

    model_config = ConfigDict(from_attributes=True)
    id: int
    at: dt.datetime
    actor_id: int | None
    actor: str
    action: str
    entity: str
    entity_id: str
    before: dict[str, Any] | None
    after: dict[str, Any] | None


@router.get("/users", dependencies=[Admin])
def list_users(db: SessionDep, page: WindowDep, role: Role | None = None) -> Page[UserOut]:
    """List users."""
    stmt = select(User).order_by(User.id)
    if role is not None:
        stmt = stmt.where(User.role == role)
    return list_page(db, stmt, page, UserOut)


@router.post("/users", status_code=status.HTTP_201_CREATED, dependencies=[Admin])
def create_user(db: SessionDep, body: UserIn) -> UserOut:
    """Create a user."""
    require_exists(db, Site, body.site_id, "site")
    user = User(
        username=body.username,
        password_hash=hash_password(body.password),
        role=body.role,
        full_name=body.full_name or "",
        email=body.email,
        site_id=body.site_id,
    )
    db.add(user)
    db.commit()
    return UserOut.model_validate(user)


@router.get("/users/{user_id}", dependencies=[Admin])
def get_user(db: SessionDep, user_id: int) -> UserOut:
    """One user."""
    return UserOut.model_validate(get_or_404(db, User, user_id))


@router.patch("/users/{user_id}", dependencies=[Admin])
def update_user(db: SessionDep, user_id: int, body: UserPatch) -> UserOut:
    """Change a user; deactivating one stops their tokens at once."""
    user = get_or_404(db, User, user_id)
    changes = body.model_dump(exclude_unset=True)
    refuse_nulls(user, {k: v for k, v in changes.items() if k != "password"})
    require_exists(db, Site, changes.get("site_id"), "site")
    password = changes.pop("password", None)
    if password is not None:
        user.password_hash = hash_password(password)
    for key, value in changes.items():
        setattr(user, key, value if key != "full_name" else (value or ""))
    db.commit()
    return UserOut.model_validate(user)


@router.get("/audit", dependencies=[Auditor])
def list_audit(
    db: SessionDep,
    page: WindowDep,
    entity: Code | None = None,
    entity_id: Code | None = None,
    actor_id: int | None = None,
) -> Page[AuditOut]:
    """The audit log, newest first."""
    stmt = select(AuditEntry).order_by(AuditEntry.id.desc())
    if entity is not None:
        stmt = stmt.where(AuditEntry.entity == entity)
    if entity_id is not None:
        stmt = stmt.where(AuditEntry.entity_id == entity_id)
    if actor_id is not None:
        stmt = stmt.where(AuditEntry.actor_id == actor_id)
    return list_page(db, stmt, page, AuditOut)
