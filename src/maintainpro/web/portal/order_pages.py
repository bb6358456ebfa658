"""Portal pages on orders: dashboard, orders, acknowledgements, ship notices, invoices, scorecard.

Every page resolves what it shows through the signed-in supplier's PortalScope; an id that is
not the supplier's answers 404 like a missing one.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Final

from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.datastructures import FormData

from maintainpro.api.deps import SessionDep
from maintainpro.config import Settings
from maintainpro.core.db import utcnow
from maintainpro.supply.acknowledgements import ACKNOWLEDGEABLE, AcknowledgementError, LineAck
from maintainpro.supply.invoices import InvoiceStatus
from maintainpro.supply.invoicing import (
    INVOICEABLE,
    DuplicateInvoice,
    InvoiceError,
    InvoiceIn,
    InvoiceLineIn,
)
from maintainpro.supply.matching import Tolerances
from maintainpro.supply.money import MoneyError
from maintainpro.supply.performance import Period, ScorecardRules
from maintainpro.supply.purchasing import PoTransitionError, PurchaseOrder
from maintainpro.supply.shipments import DocumentSource, ShipmentStatus
from maintainpro.supply.shipping import (
    SHIPPABLE,
    DuplicateShipment,
    ShipmentError,
    ShipNotice,
    ShipNoticeLine,
    record_carrier_event,
)
from maintainpro.web.portal.access import (
    Portal,
    PortalDep,
    flash,
    portal_page,
    router,
    take_flash,
)
from maintainpro.web.portal.form_input import FormDep, form_values, text_fields, texts, uploaded
from maintainpro.web.portal.forms import (
    FormProblems,
    Getter,
    invoice_total,
    line_ids,
    read_acknowledgement,
    read_invoice_csv,
    read_invoice_header,
    read_invoice_lines,
    read_ship_notice,
)
from maintainpro.web.session_auth import CsrfChecked

SCORECARD_DAYS: Final = 90
MAX_CSV_BYTES: Final = 512 * 1024


def _settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def _midnight(day: dt.date) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(), tzinfo=dt.UTC)


class Refused(Exception):
    """A domain rule refused the supplier's document; the page shows why."""

    def __init__(self, status_code: int, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.status_code = status_code
        self.problems = problems


@contextmanager
def refusals() -> Iterator[None]:
    """Domain refusals as Refused (409 for state and duplicates, 422 for bad content)."""
    try:
        yield
    except FormProblems as exc:
        raise Refused(422, exc.problems) from None
    except (PoTransitionError, DuplicateShipment, DuplicateInvoice) as exc:
        raise Refused(409, [str(exc)]) from None
    except (AcknowledgementError, ShipmentError, InvoiceError, MoneyError) as exc:
        raise Refused(422, [str(exc)]) from None


def scorecard_period(today: dt.date) -> Period:
    """The scorecard's window: the last 90 days including today."""
    return Period(today - dt.timedelta(days=SCORECARD_DAYS - 1), today + dt.timedelta(days=1))


# --- dashboard and lists ------------------------------------------------------------------------


@router.get("/portal")
def dashboard(request: Request, portal: PortalDep) -> HTMLResponse:
    """What needs the supplier: orders to answer, shipments on the way, invoices in dispute."""
    scope = portal.scope
    now = utcnow()
    rules = ScorecardRules(tolerance_pct=_settings(request).receipt_tolerance_pct)
    return portal_page(
        request,
        portal,
        "dashboard.html",
        awaiting=scope.orders_awaiting_answer(),
        open_orders=scope.orders(open_only=True),
        shipments=[s for s in scope.shipments() if s.status is not ShipmentStatus.DELIVERED][:20],
        disputed=scope.invoices(exceptions_only=True),
        card=scope.scorecard(scorecard_period(now.date()), rules=rules, as_of=now),
        flash=take_flash(request),
    )


@router.get("/portal/orders")
def orders_page(request: Request, portal: PortalDep, show: str = "open") -> HTMLResponse:
    """The supplier's orders: open ones, or all."""
    show = "all" if show == "all" else "open"
    orders = portal.scope.orders(open_only=show == "open")
    return portal_page(
        request,
        portal,
        "orders.html",
        orders=orders,
        show=show,
        messages=portal.scope.message_counts([o.id for o in orders]),
    )


@router.get("/portal/shipments")
def shipments_page(request: Request, portal: PortalDep) -> HTMLResponse:
    """The supplier's ship notices, newest first."""
    return portal_page(request, portal, "shipments.html", shipments=portal.scope.shipments())


@router.get("/portal/shipments/{shipment_id}")
def shipment_page(request: Request, portal: PortalDep, shipment_id: int) -> HTMLResponse:
    """One ship notice with its lines and carrier events."""
    shipment = portal.scope.shipment(shipment_id)
    return portal_page(
        request, portal, "shipment.html", shipment=shipment, flash=take_flash(request)
    )


@router.get("/portal/invoices")
def invoices_page(request: Request, portal: PortalDep) -> HTMLResponse:
    """The supplier's invoices with their match result."""
    return portal_page(request, portal, "invoices.html", invoices=portal.scope.invoices())


@router.get("/portal/invoices/{invoice_id}")
def invoice_page(request: Request, portal: PortalDep, invoice_id: int) -> HTMLResponse:
    """One invoice: lines, match result and the exceptions found."""
    invoice = portal.scope.invoice(invoice_id)
    return portal_page(
        request,
        portal,
        "invoice.html",
        invoice=invoice,
        flash=take_flash(request),
        InvoiceStatus=InvoiceStatus,
    )


@router.get("/portal/scorecard")
def scorecard_page(request: Request, portal: PortalDep) -> HTMLResponse:
    """The supplier's own scorecard over the last 90 days."""
    now = utcnow()
    rules = ScorecardRules(tolerance_pct=_settings(request).receipt_tolerance_pct)
    card = portal.scope.scorecard(scorecard_period(now.date()), rules=rules, as_of=now)
    return portal_page(request, portal, "scorecard.html", card=card, rules=rules)


# --- one order and its acknowledgement ----------------------------------------------------------


def order_view(
    request: Request,
    portal: Portal,
    order: PurchaseOrder,
    *,
    errors: list[str] | None = None,
    values: dict[str, str] | None = None,
    status_code: int = 200,
    message_errors: list[str] | None = None,
) -> HTMLResponse:
    """The order page, with a form's problems and typed values when it was refused."""
    scope = portal.scope
    return portal_page(
        request,
        portal,
        "order.html",
        status_code=status_code,
        order=order,
        shipments=scope.shipments(order.id),
        invoices=scope.invoices(order.id),
        messages=scope.messages(order.id),
        can_answer=order.status in ACKNOWLEDGEABLE,
        can_ship=order.status in SHIPPABLE,
        can_invoice=order.status in INVOICEABLE,
        errors=errors or [],
        message_errors=message_errors or [],
        values=values or {},
        flash=take_flash(request),
    )


@router.get("/portal/orders/{order_id}")
def order_page(request: Request, portal: PortalDep, order_id: int) -> HTMLResponse:
    """One order: lines to answer, shipments, invoices and messages."""
    return order_view(request, portal, portal.scope.order(order_id))


@router.post("/portal/orders/{order_id}/acknowledgement", dependencies=[CsrfChecked])
def acknowledge(
    request: Request, db: SessionDep, portal: PortalDep, order_id: int, form: FormDep
) -> Response:
    """Accept, reject (with a reason) or propose other terms for lines of the order."""
    scope = portal.scope
    order = scope.order(order_id, lock=True)
    get = text_fields(form)
    try:
        with refusals():
            ids = line_ids(texts(form, "line"))
            numbers = scope.line_numbers(order, ids)
            answers = read_acknowledgement(ids, get, numbers)
            acks = [
                LineAck(
                    line_no=numbers[a.line_id],
                    status=a.status,
                    quantity=a.quantity,
                    unit_price=a.unit_price,
                    promised_date=a.promised_date,
                    note=a.note,
                )
                for a in answers
            ]
            scope.acknowledge(order_id, acks, actor_id=portal.user.id)
    except Refused as exc:
        db.rollback()
        return order_view(
            request,
            portal,
            scope.order(order_id),
            errors=exc.problems,
            values=form_values(form),
            status_code=exc.status_code,
        )
    db.commit()
    flash(request, f"Your answer on {order.number} was sent to the buyer.")
    return RedirectResponse(f"/portal/orders/{order_id}", status_code=303)


# --- ship notices -------------------------------------------------------------------------------


def _document_form(
    request: Request,
    portal: Portal,
    template: str,
    order: PurchaseOrder,
    errors: list[str],
    values: dict[str, str],
    status_code: int = 200,
) -> HTMLResponse:
    """A ship-notice or invoice form for the order, refilled after a refusal."""
    return portal_page(
        request,
        portal,
        template,
        status_code=status_code,
        order=order,
        errors=errors,
        values=values,
        today=utcnow().date(),
    )


@router.get("/portal/orders/{order_id}/ship")
def ship_form(request: Request, portal: PortalDep, order_id: int) -> HTMLResponse:
    """The form for a ship notice on the order."""
    return _document_form(request, portal, "ship.html", portal.scope.order(order_id), [], {})


@router.post("/portal/orders/{order_id}/shipments", dependencies=[CsrfChecked])
def create_shipment(
    request: Request, db: SessionDep, portal: PortalDep, order_id: int, form: FormDep
) -> Response:
    """Record a ship notice: quantities per line, carrier and tracking numbers."""
    scope = portal.scope
    order = scope.order(order_id, lock=True)
    now = utcnow()
    try:
        with refusals():
            ids = line_ids(texts(form, "line"))
            numbers = scope.line_numbers(order, ids)
            typed = read_ship_notice(ids, text_fields(form), now.date())
            shipped_at = _midnight(typed.shipped_on)
            notice = ShipNotice(
                shipment_number=typed.shipment_number,
                lines=[ShipNoticeLine(numbers[i], q) for i, q in typed.quantities.items()],
                shipped_at=shipped_at,
                carrier_scac=typed.carrier_scac,
                carrier_name=typed.carrier_name,
                tracking_number=typed.tracking_numbers[0] if typed.tracking_numbers else None,
                expected_delivery=_midnight(typed.expected_on) if typed.expected_on else None,
                source=DocumentSource.PORTAL,
            )
            outcome = scope.ship(
                order_id,
                notice,
                tolerance_pct=_settings(request).receipt_tolerance_pct,
                actor_id=portal.user.id,
            )
            if outcome.created and len(typed.tracking_numbers) > 1:
                # A shipment stores one tracking number (the one carrier events are matched
                # on); the parcels' other numbers are kept with the notice's first event.
                record_carrier_event(
                    db,
                    outcome.shipment,
                    ShipmentStatus.INFO_RECEIVED,
                    shipped_at,
                    source=DocumentSource.PORTAL,
                    note="tracking numbers: " + ", ".join(typed.tracking_numbers),
                )
    except Refused as exc:
        db.rollback()
        return _document_form(
            request,
            portal,
            "ship.html",
            scope.order(order_id),
            exc.problems,
            form_values(form),
            exc.status_code,
        )
    db.commit()
    flash(request, f"Ship notice {outcome.shipment.shipment_number} recorded.")
    return RedirectResponse(f"/portal/shipments/{outcome.shipment.id}", status_code=303)


# --- invoices -----------------------------------------------------------------------------------


@router.get("/portal/orders/{order_id}/invoice")
def invoice_form(request: Request, portal: PortalDep, order_id: int) -> HTMLResponse:
    """The form to send an invoice for the order: lines typed in, or a CSV file."""
    order = portal.scope.order(order_id)
    return _document_form(request, portal, "invoice_new.html", order, [], {})


def _invoice_lines(
    portal: Portal, order: PurchaseOrder, form: FormData, get: Getter
) -> list[InvoiceLineIn]:
    upload = uploaded(form, "lines_file", MAX_CSV_BYTES)
    csv_data = upload[0] if upload else None
    ids = line_ids(texts(form, "line"))
    numbers = portal.scope.line_numbers(order, ids)
    typed = read_invoice_lines(ids, get, numbers)
    if csv_data is None:
        if not typed:
            raise FormProblems(["enter the quantity billed on at least one line, or a CSV file"])
        return typed
    if typed:
        raise FormProblems(["send either lines typed in the form or a CSV file, not both"])
    return read_invoice_csv(csv_data)


@router.post("/portal/orders/{order_id}/invoices", dependencies=[CsrfChecked])
def create_invoice(
    request: Request, db: SessionDep, portal: PortalDep, order_id: int, form: FormDep
) -> Response:
    """Record an invoice and match it against the order and what was received."""
    scope = portal.scope
    order = scope.order(order_id, lock=True)
    get = text_fields(form)
    settings = _settings(request)
    limits = Tolerances(
        price_pct=settings.invoice_price_tolerance_pct,
        quantity_pct=settings.invoice_quantity_tolerance_pct,
    )
    try:
        with refusals():
            header = read_invoice_header(get, utcnow().date())
            lines = _invoice_lines(portal, order, form, get)
            total = header.total
            if total is None:
                total = invoice_total(lines, header.tax, order.currency)
            data = InvoiceIn(
                invoice_number=header.invoice_number,
                invoice_date=header.invoice_date,
                currency=order.currency,
                total=total,
                tax=header.tax,
                lines=lines,
                source=DocumentSource.PORTAL,
            )
            invoice = scope.invoice_order(
                order_id, data, tolerances=limits, actor_id=portal.user.id
            )
    except Refused as exc:
        db.rollback()
        return _document_form(
            request,
            portal,
            "invoice_new.html",
            scope.order(order_id),
            exc.problems,
            form_values(form),
            exc.status_code,
        )
    db.commit()
    if invoice.status is InvoiceStatus.MATCHED:
        flash(request, f"Invoice {invoice.invoice_number} matched the order and receipts.")
    else:
        flash(
            request,
            f"Invoice {invoice.invoice_number} was received with {len(invoice.exceptions)} "
            "exception(s); the buyer will review them.",
            "error",
        )
    return RedirectResponse(f"/portal/invoices/{invoice.id}", status_code=303)
