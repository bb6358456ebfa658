"""Who may enter the supplier portal: its own sign-in, the portal user and its scope, errors."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any, Final
from urllib.parse import quote

from fastapi import APIRouter, Depends, Form, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy.orm import Session

from maintainpro.api.deps import SessionDep
from maintainpro.core.audit import Actor, set_actor
from maintainpro.core.users import (
    Role,
    User,
    WeakPassword,
    authenticate_password,
    hash_password,
    verify_password,
)
from maintainpro.supply.portal import PortalScope, supplier_of_user
from maintainpro.web.pages import render
from maintainpro.web.session_auth import CsrfChecked, sign_in, sign_out

PORTAL: Final = "/portal"
PORTAL_NAV: Final = (
    ("/portal", "Dashboard"),
    ("/portal/orders", "Orders"),
    ("/portal/shipments", "Shipments"),
    ("/portal/invoices", "Invoices"),
    ("/portal/catalog", "Catalogue"),
    ("/portal/scorecard", "Scorecard"),
)
NOT_A_SUPPLIER: Final = (
    "the supplier portal is for supplier accounts; staff work in the main application"
)

router = APIRouter(include_in_schema=False)


class PortalLoginRequired(Exception):
    """A portal page needs a signed-in supplier; answered with a redirect to /portal/login."""

    def __init__(self, next_path: str) -> None:
        super().__init__(next_path)
        self.next_path = next_path


@dataclass(frozen=True)
class Portal:
    """The signed-in supplier user and the scope every portal query goes through."""

    user: User
    scope: PortalScope


def _portal_supplier(db: Session, user: User) -> int | None:
    # Both are needed: the role keeps staff out even if a link row exists, and the link says
    # which company's data the user sees.
    if user.role is not Role.SUPPLIER:
        return None
    return supplier_of_user(db, user.id)


def portal_access(request: Request, db: SessionDep) -> Portal:
    """The signed-in supplier user with its scope; a redirect to sign in, or 403 for staff."""
    uid = request.session.get("uid")
    user = db.get(User, uid) if isinstance(uid, int) else None
    if user is None or not user.active:
        request.session.pop("uid", None)
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        raise PortalLoginRequired(quote(target, safe="/"))
    supplier_id = _portal_supplier(db, user)
    if supplier_id is None:
        raise HTTPException(403, NOT_A_SUPPLIER)
    set_actor(db, Actor(user_id=user.id, name=user.username))
    return Portal(user, PortalScope(db, supplier_id))


PortalDep = Annotated[Portal, Depends(portal_access)]


def portal_page(
    request: Request, portal: Portal, name: str, status_code: int = 200, **context: Any
) -> HTMLResponse:
    """Render a portal template with the portal's navigation and the supplier's name."""
    return render(
        request,
        f"portal/{name}",
        portal.user,
        status_code=status_code,
        nav=PORTAL_NAV,
        supplier=portal.scope.supplier(),
        **context,
    )


def flash(request: Request, message: str, kind: str = "ok") -> None:
    """A one-time notice shown on the next portal page."""
    request.session["portal_flash"] = {"message": message[:500], "kind": kind}


def take_flash(request: Request) -> dict[str, str] | None:
    """The pending notice, removed from the session."""
    notice = request.session.pop("portal_flash", None)
    return notice if isinstance(notice, dict) else None


def safe_portal_next(target: str) -> str:
    """Only portal paths: an open redirect would let a link send suppliers to a phishing page."""
    if not target.startswith("/portal") or target.startswith("//") or "\\" in target:
        return PORTAL
    rest = target.removeprefix(PORTAL)
    return target if rest == "" or rest[0] in "/?" else PORTAL


@router.get("/portal/login")
def login_form(request: Request, next: str = PORTAL) -> HTMLResponse:
    """The supplier sign-in form."""
    return _login_page(request, next, None)


def _login_page(
    request: Request, next_path: str, error: str | None, status_code: int = 200
) -> HTMLResponse:
    return render(
        request,
        "portal/login.html",
        None,
        status_code=status_code,
        next=safe_portal_next(next_path),
        error=error,
    )


@router.post("/portal/login", dependencies=[CsrfChecked])
def login(
    request: Request,
    db: SessionDep,
    username: Annotated[str, Form(max_length=64)],
    password: Annotated[str, Form(max_length=1024)],
    next: Annotated[str, Form(max_length=2000)] = PORTAL,
) -> Response:
    """Check the password of a supplier account and start its session."""
    user = authenticate_password(db, username.strip(), password)
    if user is None:
        return _login_page(request, next, "Wrong username or password.", 401)
    if _portal_supplier(db, user) is None:
        db.commit()
        return _login_page(
            request, next, "This sign-in is for supplier accounts. Staff sign in at /login.", 403
        )
    db.commit()
    sign_in(request, user)
    return RedirectResponse(safe_portal_next(next), status_code=303)


@router.post("/portal/logout", dependencies=[CsrfChecked])
def logout(request: Request) -> RedirectResponse:
    """End the supplier's session."""
    sign_out(request)
    return RedirectResponse("/portal/login", status_code=303)


@router.get("/portal/account")
def account_page(request: Request, portal: PortalDep) -> HTMLResponse:
    """The supplier user's account: who they are, and a form to change the password."""
    return portal_page(request, portal, "account.html", errors=[], flash=take_flash(request))


@router.post("/portal/account/password", dependencies=[CsrfChecked])
def change_password(
    request: Request,
    db: SessionDep,
    portal: PortalDep,
    current: Annotated[str, Form(max_length=1024)],
    new: Annotated[str, Form(max_length=1024)],
    repeat: Annotated[str, Form(max_length=1024)],
) -> Response:
    """Change the password after checking the current one."""
    errors = []
    if not verify_password(portal.user.password_hash, current):
        errors.append("The current password is wrong.")
    elif new != repeat:
        errors.append("The new password and its repetition differ.")
    else:
        try:
            portal.user.password_hash = hash_password(new)
        except WeakPassword as exc:
            errors.append(f"The new password is too weak: {exc}.")
    if errors:
        db.rollback()
        return portal_page(request, portal, "account.html", status_code=422, errors=errors)
    db.commit()
    flash(request, "Your password was changed.")
    return RedirectResponse("/portal/account", status_code=303)
