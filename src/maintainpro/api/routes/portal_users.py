"""Supplier portal administration and order messages for buyers.

Buyers invite a supplier's people as portal users (a user of role supplier linked to one
supplier) and read and write messages on orders, which suppliers see in the portal.
"""

from __future__ import annotations

import datetime as dt
import secrets
from typing import Annotated

from fastapi import APIRouter, Depends, File, Form, Response, UploadFile, status
from pydantic import BaseModel, ConfigDict, EmailStr, Field
from sqlalchemy import select

from maintainpro.api.crud import get_or_404
from maintainpro.api.deps import CurrentUser, SessionDep, require
from maintainpro.api.fields import Name, Username
from maintainpro.api.problems import Problem
from maintainpro.core.users import Permission, Role, User, hash_password
from maintainpro.supply.portal import (
    MAX_ATTACHMENT_BYTES,
    MAX_MESSAGE_CHARS,
    MessageError,
    check_attachment,
    download_headers,
    order_message,
    order_messages,
    post_order_message,
)
from maintainpro.supply.portal_records import OrderMessage, SupplierUser
from maintainpro.supply.purchasing import PurchaseOrder
from maintainpro.supply.suppliers import Supplier

router = APIRouter(tags=["supplier portal"])
Reader = Depends(require(Permission.SUPPLY_READ))
Writer = Depends(require(Permission.SUPPLY_WRITE))
Approver = Depends(require(Permission.SUPPLY_APPROVE))
# Long enough that it is never guessed, short enough to pass on by telephone if need be.
INITIAL_PASSWORD_BYTES = 12


# --- portal users -------------------------------------------------------------------------------


class PortalUserIn(BaseModel):
    """A new portal user of a supplier; without a password one is generated and shown once."""

    model_config = ConfigDict(extra="forbid")
    username: Username
    full_name: Name | None = None
    email: EmailStr | None = None
    password: Annotated[str, Field(min_length=10, max_length=1024)] | None = None


class PortalUserOut(BaseModel):
    """A supplier's portal user."""

    model_config = ConfigDict(from_attributes=True)
    id: int
    username: str
    full_name: str
    email: str | None
    active: bool
    supplier_id: int
    created_at: dt.datetime


class PortalUserCreated(PortalUserOut):
    """A new portal user; initial_password is set only when it was generated, and shown once."""

    initial_password: str | None = None


def _out(user: User, supplier_id: int) -> PortalUserOut:
    return PortalUserOut(
        id=user.id,
        username=user.username,
        full_name=user.full_name,
        email=user.email,
        active=user.active,
        supplier_id=supplier_id,
        created_at=user.created_at,
    )


@router.post(
    "/suppliers/{supplier_id}/portal-users",
    status_code=status.HTTP_201_CREATED,
    dependencies=[Approver],
)
def create_portal_user(db: SessionDep, supplier_id: int, body: PortalUserIn) -> PortalUserCreated:
    """Invite a person of the supplier to the portal: a supplier-role user linked to it."""
    supplier = get_or_404(db, Supplier, supplier_id)
    if db.scalar(select(User.id).where(User.username == body.username)) is not None:
        raise Problem(409, "this username is taken", title="Duplicate username")
    generated = None if body.password else secrets.token_urlsafe(INITIAL_PASSWORD_BYTES)
    password = body.password or generated or ""
    user = User(
        username=body.username,
        password_hash=hash_password(password),
        role=Role.SUPPLIER,
        full_name=body.full_name or "",
        email=body.email,
    )
    db.add(user)
    db.flush()
    db.add(SupplierUser(user_id=user.id, supplier_id=supplier.id))
    db.commit()
    out = _out(user, supplier.id)
    return PortalUserCreated(**out.model_dump(), initial_password=generated)


@router.get("/suppliers/{supplier_id}/portal-users", dependencies=[Reader])
def list_portal_users(db: SessionDep, supplier_id: int) -> list[PortalUserOut]:
    """The supplier's portal users."""
    supplier = get_or_404(db, Supplier, supplier_id)
    users = db.scalars(
        select(User)
        .join(SupplierUser, SupplierUser.user_id == User.id)
        .where(SupplierUser.supplier_id == supplier.id)
        .order_by(User.username)
    )
    return [_out(user, supplier.id) for user in users]


@router.post("/suppliers/{supplier_id}/portal-users/{user_id}/deactivate", dependencies=[Approver])
def deactivate_portal_user(db: SessionDep, supplier_id: int, user_id: int) -> PortalUserOut:
    """Stop a portal user from signing in (their session ends with the next page)."""
    link = db.scalar(
        select(SupplierUser).where(
            SupplierUser.user_id == user_id, SupplierUser.supplier_id == supplier_id
        )
    )
    if link is None:
        raise Problem(404, f"supplier {supplier_id} has no portal user {user_id}")
    user = get_or_404(db, User, user_id)
    user.active = False
    db.commit()
    return _out(user, supplier_id)


# --- order messages -----------------------------------------------------------------------------


class OrderMessageOut(BaseModel):
    """A message on an order; the attachment is fetched from attachment_url."""

    id: int
    purchase_order_id: int
    from_supplier: bool
    author: str | None
    body: str
    attachment_name: str | None
    attachment_type: str | None
    attachment_size: int | None
    attachment_url: str | None
    created_at: dt.datetime


def _message_out(message: OrderMessage, authors: dict[int, str]) -> OrderMessageOut:
    url = None
    if message.attachment is not None:
        url = (
            f"/api/v1/purchase-orders/{message.purchase_order_id}/messages/{message.id}/attachment"
        )
    return OrderMessageOut(
        id=message.id,
        purchase_order_id=message.purchase_order_id,
        from_supplier=message.from_supplier,
        author=authors.get(message.author_id) if message.author_id is not None else None,
        body=message.body,
        attachment_name=message.attachment_name,
        attachment_type=message.attachment_type,
        attachment_size=len(message.attachment) if message.attachment is not None else None,
        attachment_url=url,
        created_at=message.created_at,
    )


def _authors(db: SessionDep, messages: list[OrderMessage]) -> dict[int, str]:
    ids = {m.author_id for m in messages if m.author_id is not None}
    if not ids:
        return {}
    return dict(db.execute(select(User.id, User.username).where(User.id.in_(ids))).all())


@router.get("/purchase-orders/{order_id}/messages", dependencies=[Reader])
def list_order_messages(db: SessionDep, order_id: int) -> list[OrderMessageOut]:
    """The messages between buyers and the supplier on an order, oldest first."""
    order = get_or_404(db, PurchaseOrder, order_id)
    messages = order_messages(db, order.id)
    authors = _authors(db, messages)
    return [_message_out(m, authors) for m in messages]


@router.post(
    "/purchase-orders/{order_id}/messages",
    status_code=status.HTTP_201_CREATED,
    dependencies=[Writer],
)
def post_message(
    db: SessionDep,
    user: CurrentUser,
    order_id: int,
    body: Annotated[str, Form(max_length=MAX_MESSAGE_CHARS)] = "",
    attachment: Annotated[UploadFile | None, File()] = None,
) -> OrderMessageOut:
    """Write to the supplier on an order (multipart form: body, optional attachment file)."""
    order = get_or_404(db, PurchaseOrder, order_id)
    try:
        checked = None
        if attachment is not None and attachment.filename:
            data = attachment.file.read(MAX_ATTACHMENT_BYTES + 1)
            checked = check_attachment(attachment.filename, attachment.content_type or "", data)
        message = post_order_message(
            db, order, body=body, author_id=user.id, from_supplier=False, attachment=checked
        )
    except MessageError as exc:
        raise Problem(422, str(exc), title="Invalid message") from None
    db.commit()
    return _message_out(message, {user.id: user.username})


@router.get(
    "/purchase-orders/{order_id}/messages/{message_id}/attachment",
    dependencies=[Reader],
    response_class=Response,
)
def download_attachment(db: SessionDep, order_id: int, message_id: int) -> Response:
    """A message's attachment, as a download with its checked type."""
    message = order_message(db, order_id, message_id)
    if message is None or message.attachment is None or message.attachment_name is None:
        raise Problem(404, f"message {message_id} of order {order_id} has no attachment")
    return Response(
        message.attachment,
        media_type=message.attachment_type or "application/octet-stream",
        headers=download_headers(message.attachment_name),
    )
