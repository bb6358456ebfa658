"""Sign-in for pages: signed session cookies, CSRF tokens, the signed-in user."""

from __future__ import annotations

import hmac
import secrets
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import Depends, Form, HTTPException, Request
from sqlalchemy.orm import Session

from maintainpro.api.deps import SessionDep
from maintainpro.core.audit import Actor, set_actor
from maintainpro.core.users import Permission, Role, User

CSRF_FIELD = "csrf_token"


class LoginRequired(Exception):
    """The page needs a signed-in user; answered with a redirect to /login."""

    def __init__(self, next_path: str) -> None:
        super().__init__(next_path)
        self.next_path = next_path


def csrf_token(request: Request) -> str:
    """The session's CSRF token, created on first use."""
    token = request.session.get("csrf")
    if not isinstance(token, str):
        token = secrets.token_urlsafe(32)
        request.session["csrf"] = token
    return token


def check_csrf(request: Request, csrf_token: Annotated[str, Form()] = "") -> None:
    """Refuse a form post whose token does not match the session's."""
    expected = request.session.get("csrf")
    if not isinstance(expected, str) or not hmac.compare_digest(expected, csrf_token):
        raise HTTPException(403, "the form has expired or did not come from this site; reload it")


def sign_in(request: Request, user: User) -> None:
    """Start a fresh session for the user (a new CSRF token prevents session fixation)."""
    request.session.clear()
    request.session["uid"] = user.id
    request.session["csrf"] = secrets.token_urlsafe(32)


def sign_out(request: Request) -> None:
    """End the session."""
    request.session.clear()


def _page_user(request: Request, db: Session) -> User:
    uid = request.session.get("uid")
    user = db.get(User, uid) if isinstance(uid, int) else None
    if user is None or not user.active:
        request.session.pop("uid", None)
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        raise LoginRequired(quote(target, safe="/"))
    if user.role is Role.SUPPLIER:
        # Supplier accounts see their own company's data in the portal, never the staff pages.
        raise HTTPException(
            403, "your role (supplier) cannot open this page; suppliers use the portal at /portal"
        )
    set_actor(db, Actor(user_id=user.id, name=user.username))
    return user


def page_user(request: Request, db: SessionDep) -> User:
    """The signed-in user of a page, or a redirect to the login page."""
    return _page_user(request, db)


PageUser = Annotated[User, Depends(page_user)]
CsrfChecked = Depends(check_csrf)


def page_permission(permission: Permission) -> Any:
    """A dependency allowing the page only to roles with the permission."""

    def check(user: PageUser) -> User:
        if permission not in user.permissions:
            raise HTTPException(403, f"your role ({user.role.value}) cannot open this page")
        return user

    return Depends(check)
