"""Portal messages on an order: write one (with an optional attachment), download attachments."""

from __future__ import annotations

from fastapi import Request
from fastapi.responses import RedirectResponse, Response

from maintainpro.api.deps import SessionDep
from maintainpro.supply.portal import (
    MAX_ATTACHMENT_BYTES,
    MessageError,
    PortalNotFound,
    check_attachment,
    download_headers,
)
from maintainpro.web.portal.access import PortalDep, flash, router
from maintainpro.web.portal.form_input import (
    FormDep,
    form_values,
    text_fields,
    uploaded,
    uploaded_name,
)
from maintainpro.web.portal.forms import FormProblems
from maintainpro.web.portal.order_pages import order_view
from maintainpro.web.session_auth import CsrfChecked


@router.post("/portal/orders/{order_id}/messages", dependencies=[CsrfChecked])
def post_message(
    request: Request, db: SessionDep, portal: PortalDep, order_id: int, form: FormDep
) -> Response:
    """Write to the buyer on an order, optionally attaching one file."""
    order = portal.scope.order(order_id)
    try:
        upload = uploaded(form, "attachment", MAX_ATTACHMENT_BYTES)
        attachment = None
        if upload is not None:
            data, declared = upload
            attachment = check_attachment(uploaded_name(form, "attachment"), declared, data)
        portal.scope.post_message(
            order.id,
            text_fields(form)("body"),
            author_id=portal.user.id,
            attachment=attachment,
        )
    except (FormProblems, MessageError) as exc:
        db.rollback()
        problems = exc.problems if isinstance(exc, FormProblems) else [str(exc)]
        return order_view(
            request,
            portal,
            portal.scope.order(order_id),
            message_errors=problems,
            values=form_values(form),
            status_code=422,
        )
    db.commit()
    flash(request, "Your message was sent.")
    return RedirectResponse(f"/portal/orders/{order_id}#messages", status_code=303)


@router.get("/portal/orders/{order_id}/messages/{message_id}/attachment")
def download_attachment(portal: PortalDep, order_id: int, message_id: int) -> Response:
    """A message's attachment, always as a download with its checked type."""
    message = portal.scope.message(order_id, message_id)
    if message.attachment is None or message.attachment_name is None:
        raise PortalNotFound(f"attachment of message {message_id}")
    return Response(
        message.attachment,
        media_type=message.attachment_type or "application/octet-stream",
        headers=download_headers(message.attachment_name),
    )
