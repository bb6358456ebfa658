"""Request dependencies: settings, database session, the authenticated user, permissions."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.orm import Session, sessionmaker

from maintainpro.api.problems import Problem
from maintainpro.config import Settings
from maintainpro.core.audit import Actor, set_actor
from maintainpro.core.db import utcnow
from maintainpro.core.users import Permission, Role, User, authenticate_token

_bearer = HTTPBearer(auto_error=False, description="A personal API token (mpt_...)")


def get_settings(request: Request) -> Settings:
    """The settings the app was built with."""
    settings: Settings = request.app.state.settings
    return settings


def get_session_factory(request: Request) -> sessionmaker[Session]:
    """The app's session factory."""
    factory: sessionmaker[Session] = request.app.state.session_factory
    return factory


def get_db(
    factory: Annotated[sessionmaker[Session], Depends(get_session_factory)],
) -> Iterator[Session]:
    """A session for one request; routes commit explicitly, anything else is rolled back."""
    with factory() as session:
        try:
            yield session
        finally:
            session.rollback()


SettingsDep = Annotated[Settings, Depends(get_settings)]
SessionDep = Annotated[Session, Depends(get_db)]


def _unauthorized(detail: str) -> Problem:
    return Problem(401, detail, headers={"WWW-Authenticate": 'Bearer realm="maintainpro"'})


def get_current_user(
    db: SessionDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> User:
    """The user behind the request's bearer token; 401 without a usable one."""
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise _unauthorized("a bearer token is required (POST /api/v1/auth/token to get one)")
    user = authenticate_token(db, credentials.credentials, utcnow())
    if user is None:
        raise _unauthorized("the token is unknown, expired or revoked")
    if user.role is Role.SUPPLIER:
        # Supplier accounts work only in the supplier portal, which scopes every query.
        raise Problem(403, "supplier accounts use the supplier portal, not the API")
    db.commit()  # keeps last_used_at; nothing else is pending yet
    set_actor(db, Actor(user_id=user.id, name=user.username))
    return user


CurrentUser = Annotated[User, Depends(get_current_user)]


def require(permission: Permission) -> Callable[[User], User]:
    """A dependency that lets the request through only if the user's role has the permission."""

    def check(user: CurrentUser) -> User:
        if permission not in user.permissions:
            raise Problem(
                403,
                f"the role {user.role.value} may not do this (needs {permission.value})",
            )
        return user

    return check
