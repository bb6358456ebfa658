"""Token exchange and the caller's own tokens."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

from fastapi import APIRouter, status
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select

from maintainpro.api.crud import get_or_404
from maintainpro.api.deps import CurrentUser, SessionDep, SettingsDep
from maintainpro.api.fields import Name
from maintainpro.api.problems import Problem
from maintainpro.core.audit import Actor, set_actor
from maintainpro.core.db import utcnow
from maintainpro.core.users import (
    ApiToken,
    Permission,
    Role,
    authenticate_password,
    issue_token,
)

router = APIRouter(prefix="/auth", tags=["auth"])


class TokenRequest(BaseModel):
    """Username and password to exchange for an API token."""

    model_config = ConfigDict(extra="forbid")
    username: Annotated[str, Field(min_length=1, max_length=64)]
    password: Annotated[str, Field(min_length=1, max_length=1024)]
    name: Name = "api"
    expires_in_days: Annotated[int, Field(ge=1, le=3650)] | None = None


class TokenIssued(BaseModel):
    """A new token: the clear text is shown this once."""

    access_token: str
    token_type: str = "bearer"  # noqa: S105 - the OAuth2 token type, not a secret
    token_id: int
    expires_at: dt.datetime | None


class TokenOut(BaseModel):
    """A token as listed (never its secret)."""

    model_config = ConfigDict(from_attributes=True)
    id: int
    user_id: int
    name: str
    hint: str
    created_at: dt.datetime
    expires_at: dt.datetime | None
    last_used_at: dt.datetime | None
    revoked_at: dt.datetime | None


class Me(BaseModel):
    """The authenticated user."""

    model_config = ConfigDict(from_attributes=True)
    id: int
    username: str
    full_name: str
    email: str | None
    role: Role
    site_id: int | None
    permissions: list[Permission]


@router.post("/token", status_code=status.HTTP_201_CREATED)
def exchange_password(db: SessionDep, settings: SettingsDep, body: TokenRequest) -> TokenIssued:
    """Exchange username and password for a personal API token."""
    user = authenticate_password(db, body.username, body.password)
    if user is None:
        raise Problem(401, "wrong username or password", headers={"WWW-Authenticate": "Bearer"})
    if user.role is Role.SUPPLIER:
        # A token would be refused on every API route; say so now instead of issuing a dud.
        raise Problem(403, "supplier accounts use the supplier portal at /portal, not API tokens")
    set_actor(db, Actor(user_id=user.id, name=user.username))
    days = body.expires_in_days or settings.api_token_ttl_days
    expires = utcnow() + dt.timedelta(days=days) if days else None
    token, secret = issue_token(db, user, body.name, expires)
    db.commit()
    return TokenIssued(access_token=secret, token_id=token.id, expires_at=token.expires_at)


@router.get("/me")
def me(user: CurrentUser) -> Me:
    """Who the token belongs to and what it may do."""
    return Me(
        id=user.id,
        username=user.username,
        full_name=user.full_name,
        email=user.email,
        role=user.role,
        site_id=user.site_id,
        permissions=sorted(user.permissions),
    )


@router.get("/tokens")
def list_tokens(db: SessionDep, user: CurrentUser) -> list[TokenOut]:
    """The caller's tokens."""
    rows = db.scalars(
        select(ApiToken).where(ApiToken.user_id == user.id).order_by(ApiToken.id)
    ).all()
    return [TokenOut.model_validate(t) for t in rows]


@router.delete("/tokens/{token_id}")
def revoke_token(db: SessionDep, user: CurrentUser, token_id: int) -> TokenOut:
    """Revoke a token at once: one's own, or anyone's for an administrator."""
    token = get_or_404(db, ApiToken, token_id)
    if token.user_id != user.id and Permission.USERS_ADMIN not in user.permissions:
        raise Problem(404, f"api token {token_id} does not exist")
    if token.revoked_at is None:
        token.revoked_at = utcnow()
        db.commit()
    return TokenOut.model_validate(token)
