"""Purchase-order lifecycle: acknowledgements, changes, ship notices, invoices, three-way match."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Response, status
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator
from sqlalchemy import select

from maintainpro.api.crud import get_or_404
from maintainpro.api.deps import CurrentUser, SessionDep, SettingsDep, require
from maintainpro.api.fields import Code, FreeText, Name, ShortText
from maintainpro.api.pagination import Page, WindowDep, list_page
from maintainpro.api.problems import Problem
from maintainpro.api.routes.supply import (
    Amount,
    Currency,
    Policy,
    PurchaseOrderOut,
    Quantity,
    UnitPrice,
)
from maintainpro.config import Settings
from maintainpro.core.db import claim_writer
from maintainpro.core.users import Permission
from maintainpro.supply.acknowledgements import AcknowledgementError, LineAck, acknowledge_order
from maintainpro.supply.contracts import ContractError
from maintainpro.supply.invoices import InvoiceStatus, SupplierInvoice
from maintainpro.supply.invoicing import (
    DuplicateInvoice,
    InvoiceError,
    InvoiceIn,
    InvoiceLineIn,
    InvoiceStateError,
    approve_invoice,
    close_order,
    record_invoice,
    reject_invoice,
)
from maintainpro.supply.matching import Tolerances
from maintainpro.supply.money import MoneyError
from maintainpro.supply.order_changes import LineChange, OrderChangeError, cancel_line, change_order
from maintainpro.supply.order_pdf import PDF_MIME, order_document, render_order_pdf
from maintainpro.supply.purchasing import (
    ApprovalRefused,
    LineAckStatus,
    PoTransitionError,
    PurchaseOrder,
)
from maintainpro.supply.shipments import DocumentSource, Shipment, ShipmentStatus
from maintainpro.supply.shipping import (
    DuplicateShipment,
    ShipmentError,
    ShipNotice,
    ShipNoticeLine,
    record_carrier_event,
    record_shipment,
)

router = APIRouter(tags=["supply"])
Reader = Depends(require(Permission.SUPPLY_READ))
Writer = Depends(require(Permission.SUPPLY_WRITE))
Approver = Depends(require(Permission.SUPPLY_APPROVE))

LineNo = Annotated[int, Field(ge=1, le=100_000)]
Reason = Annotated[str, Field(max_length=500)]
Lines = Field(min_length=1, max_length=1000)


@contextmanager
def lifecycle_errors() -> Iterator[None]:
    """Answer lifecycle rule violations as problems; the request's session then rolls back."""
    try:
        yield
    except ApprovalRefused as exc:
        raise Problem(403, str(exc), title="Approval refused") from None
    except (DuplicateShipment, DuplicateInvoice) as exc:
        raise Problem(409, str(exc), title="Duplicate document") from None
    except (PoTransitionError, InvoiceStateError) as exc:
        raise Problem(409, str(exc), title="Illegal status change") from None
    except ContractError as exc:
        raise Problem(409, str(exc), title="Contract limit") from None
    except (AcknowledgementError, OrderChangeError, ShipmentError, InvoiceError, MoneyError) as exc:
        raise Problem(422, str(exc), title="Invalid request") from None


def _locked_order(db: SessionDep, order_id: int) -> PurchaseOrder:
    # Writes on one order take turns (PostgreSQL row lock; on SQLite the request becomes the one
    # writer first), so two requests cannot both pass checks on what they read before the other
    # committed.
    claim_writer(db)
    order = db.get(PurchaseOrder, order_id, with_for_update=True, populate_existing=True)
    if order is None:
        raise Problem(404, f"purchase order {order_id} does not exist")
    return order


# --- acknowledgements and changes ----------------------------------------------------------


class LineAckIn(BaseModel):
    """The supplier's answer for one line."""

    model_config = ConfigDict(extra="forbid")
    line_no: LineNo
    status: LineAckStatus
    quantity: Quantity | None = None
    unit_price: UnitPrice | None = None
    promised_date: dt.date | None = None
    note: Annotated[FreeText, Field(max_length=2000)] = ""

    @model_validator(mode="after")
    def _check(self) -> LineAckIn:
        if self.status is LineAckStatus.PENDING:
            raise ValueError("status must be accepted, changed or rejected")
        return self


class AcknowledgementIn(BaseModel):
    """A supplier acknowledgement (EDI 855, portal, e-mail typed in)."""

    model_config = ConfigDict(extra="forbid")
    lines: Annotated[list[LineAckIn], Lines]
    source: DocumentSource = DocumentSource.MANUAL
    note: Reason = ""


class LineChangeIn(BaseModel):
    """New terms for one line."""

    model_config = ConfigDict(extra="forbid")
    line_no: LineNo
    quantity: Quantity | None = None
    unit_price: UnitPrice | None = None
    need_by: dt.date | None = None


class OrderChangeIn(BaseModel):
    """A change order."""

    model_config = ConfigDict(extra="forbid")
    lines: Annotated[list[LineChangeIn], Lines]
    reason: Reason = ""


class ReasonIn(BaseModel):
    """Why."""

    model_config = ConfigDict(extra="forbid")
    reason: Reason = ""


class RequiredReasonIn(BaseModel):
    """Why, which must be said."""

    model_config = ConfigDict(extra="forbid")
    reason: Annotated[str, Field(min_length=1, max_length=500)]


@router.post("/purchase-orders/{order_id}/acknowledgement", dependencies=[Writer])
def acknowledge_purchase_order(
    db: SessionDep, user: CurrentUser, order_id: int, body: AcknowledgementIn
) -> PurchaseOrderOut:
    """Record the supplier's answer per line: accepted, changed or rejected."""
    order = _locked_order(db, order_id)
    acks = [LineAck(**line.model_dump()) for line in body.lines]
    with lifecycle_errors():
        acknowledge_order(db, order, acks, actor_id=user.id, source=body.source, note=body.note)
    db.commit()
    return PurchaseOrderOut.model_validate(order)


@router.post("/purchase-orders/{order_id}/changes", dependencies=[Writer])
def change_purchase_order(
    db: SessionDep, user: CurrentUser, policy: Policy, order_id: int, body: OrderChangeIn
) -> PurchaseOrderOut:
    """Change quantity, price or need-by date of lines: a new revision for the supplier.

    A raise beyond the approver's limit puts the order back to draft for approval instead.
    """
    order = _locked_order(db, order_id)
    changes = [LineChange(**line.model_dump()) for line in body.lines]
    with lifecycle_errors():
        change_order(db, order, changes, actor_id=user.id, reason=body.reason, policy=policy)
    db.commit()
    return PurchaseOrderOut.model_validate(order)


@router.post("/purchase-orders/{order_id}/lines/{line_no}/cancel", dependencies=[Writer])
def cancel_purchase_order_line(
    db: SessionDep, user: CurrentUser, order_id: int, line_no: int, body: ReasonIn
) -> PurchaseOrderOut:
    """Cancel what is outstanding on one line."""
    order = _locked_order(db, order_id)
    with lifecycle_errors():
        cancel_line(db, order, line_no, actor_id=user.id, reason=body.reason)
    db.commit()
    return PurchaseOrderOut.model_validate(order)


@router.post("/purchase-orders/{order_id}/close", dependencies=[Writer])
def close_purchase_order(
    db: SessionDep, user: CurrentUser, order_id: int, body: ReasonIn | None = None
) -> PurchaseOrderOut:
    """Close an invoiced order."""
    order = _locked_order(db, order_id)
    with lifecycle_errors():
        close_order(order, actor_id=user.id, note=body.reason if body else "")
    db.commit()
    return PurchaseOrderOut.model_validate(order)


@router.get(
    "/purchase-orders/{order_id}/pdf",
    dependencies=[Reader],
    response_class=Response,
    responses={200: {"content": {PDF_MIME: {}}, "description": "The order as PDF"}},
)
def purchase_order_pdf(
    db: SessionDep, settings: SettingsDep, order_id: int, explanations: bool = False
) -> Response:
    """The order as the supplier receives it, as PDF."""
    order = get_or_404(db, PurchaseOrder, order_id)
    pdf = render_order_pdf(
        order_document(db, order, buyer=settings.buyer_name), explanations=explanations
    )
    return Response(
        pdf,
        media_type=PDF_MIME,
        headers={"Content-Disposition": f'inline; filename="{order.number}.pdf"'},
    )


# --- shipments ------------------------------------------------------------------------------


class ShipNoticeLineIn(BaseModel):
    """Quantity of one order line in the shipment."""

    model_config = ConfigDict(extra="forbid")
    line_no: LineNo
    quantity: Quantity


class ShipmentIn(BaseModel):
    """A ship notice."""

    model_config = ConfigDict(extra="forbid")
    shipment_number: Code
    lines: Annotated[list[ShipNoticeLineIn], Lines]
    shipped_at: AwareDatetime
    expected_delivery: AwareDatetime | None = None
    carrier_scac: Annotated[str, Field(pattern=r"^[A-Z]{2,4}$")] | None = None
    carrier_name: Name | None = None
    tracking_number: Annotated[str, Field(pattern=r"^[A-Za-z0-9\-]{1,64}$")] | None = None
    source: DocumentSource = DocumentSource.MANUAL


class CarrierEventIn(BaseModel):
    """A carrier status report."""

    model_config = ConfigDict(extra="forbid")
    status: ShipmentStatus
    occurred_at: AwareDatetime
    location: ShortText | None = None
    source: DocumentSource = DocumentSource.CARRIER
    raw_code: Annotated[str, Field(pattern=r"^[A-Za-z0-9]{1,32}$")] | None = None
    note: Annotated[FreeText, Field(max_length=2000)] = ""


class ShipmentLineOut(BaseModel):
    """Quantity of one order line in the shipment."""

    purchase_order_line_id: int
    line_no: int
    quantity: Decimal


class ShipmentEventOut(BaseModel):
    """A carrier status report."""

    model_config = ConfigDict(from_attributes=True)
    id: int
    status: ShipmentStatus
    occurred_at: dt.datetime
    location: str | None
    source: DocumentSource
    raw_code: str | None
    note: str
    recorded_at: dt.datetime


class ShipmentOut(BaseModel):
    """A shipment with its lines and carrier events."""

    model_config = ConfigDict(from_attributes=True)
    id: int
    purchase_order_id: int
    supplier_id: int
    shipment_number: str
    source: DocumentSource
    carrier_scac: str | None
    carrier_name: str | None
    tracking_number: str | None
    shipped_at: dt.datetime
    expected_delivery: dt.datetime | None
    delivered_at: dt.datetime | None
    status: ShipmentStatus
    lines: list[ShipmentLineOut]
    events: list[ShipmentEventOut]

    @model_validator(mode="before")
    @classmethod
    def _from_row(cls, data: Any) -> Any:
        if isinstance(data, Shipment):
            fields = {name: getattr(data, name) for name in cls.model_fields if name != "lines"}
            fields["lines"] = [
                ShipmentLineOut(
                    purchase_order_line_id=item.purchase_order_line_id,
                    line_no=item.line.line_no,
                    quantity=item.quantity,
                )
                for item in data.lines
            ]
            return fields
        return data


def _tolerance(settings: Settings) -> Decimal:
    return settings.receipt_tolerance_pct


@router.post(
    "/purchase-orders/{order_id}/shipments",
    status_code=status.HTTP_201_CREATED,
    dependencies=[Writer],
)
def create_shipment(
    db: SessionDep,
    user: CurrentUser,
    settings: SettingsDep,
    response: Response,
    order_id: int,
    body: ShipmentIn,
) -> ShipmentOut:
    """Record a ship notice; the same notice again answers 200 with the stored shipment."""
    order = _locked_order(db, order_id)
    notice = ShipNotice(
        shipment_number=body.shipment_number,
        lines=[ShipNoticeLine(item.line_no, item.quantity) for item in body.lines],
        shipped_at=body.shipped_at,
        carrier_scac=body.carrier_scac,
        carrier_name=body.carrier_name,
        tracking_number=body.tracking_number,
        expected_delivery=body.expected_delivery,
        source=body.source,
    )
    with lifecycle_errors():
        outcome = record_shipment(
            db, order, notice, tolerance_pct=_tolerance(settings), actor_id=user.id
        )
    db.commit()
    if not outcome.created:
        response.status_code = status.HTTP_200_OK
    return ShipmentOut.model_validate(outcome.shipment)


@router.get("/shipments", dependencies=[Reader])
def list_shipments(
    db: SessionDep,
    page: WindowDep,
    purchase_order_id: int | None = None,
    status: ShipmentStatus | None = None,
) -> Page[ShipmentOut]:
    """Shipments, optionally of one order or in one status."""
    stmt = select(Shipment).order_by(Shipment.id)
    if purchase_order_id is not None:
        stmt = stmt.where(Shipment.purchase_order_id == purchase_order_id)
    if status is not None:
        stmt = stmt.where(Shipment.status == status)
    return list_page(db, stmt, page, ShipmentOut)


@router.get("/shipments/{shipment_id}", dependencies=[Reader])
def get_shipment(db: SessionDep, shipment_id: int) -> ShipmentOut:
    """One shipment with its carrier events."""
    return ShipmentOut.model_validate(get_or_404(db, Shipment, shipment_id))


@router.post("/shipments/{shipment_id}/events", dependencies=[Writer])
def add_carrier_event(db: SessionDep, shipment_id: int, body: CarrierEventIn) -> ShipmentOut:
    """Record a carrier status report; the latest occurrence sets the shipment's status."""
    shipment = db.get(Shipment, shipment_id, with_for_update=True)
    if shipment is None:
        raise Problem(404, f"shipment {shipment_id} does not exist")
    with lifecycle_errors():
        record_carrier_event(db, shipment, **body.model_dump())
    db.commit()
    return ShipmentOut.model_validate(shipment)


# --- invoices -------------------------------------------------------------------------------


class InvoiceLineBody(BaseModel):
    """One billed line."""

    model_config = ConfigDict(extra="forbid")
    order_line_no: LineNo | None = None
    quantity: Quantity
    unit_price: UnitPrice
    line_total: Amount | None = None
    description: ShortText = ""


class InvoiceBody(BaseModel):
    """A supplier invoice for one order."""

    model_config = ConfigDict(extra="forbid")
    invoice_number: Code
    invoice_date: dt.date
    currency: Currency
    total: Amount
    tax: Amount = Decimal(0)
    lines: Annotated[list[InvoiceLineBody], Lines]
    source: DocumentSource = DocumentSource.MANUAL


class InvoiceLineOut(BaseModel):
    """A billed line."""

    model_config = ConfigDict(from_attributes=True)
    line_no: int
    purchase_order_line_id: int | None
    quantity: Decimal
    unit_price: Decimal
    line_total: Decimal
    description: str


class InvoiceOut(BaseModel):
    """An invoice with its lines and the three-way match's findings."""

    model_config = ConfigDict(from_attributes=True)
    id: int
    supplier_id: int
    purchase_order_id: int
    invoice_number: str
    invoice_date: dt.date
    currency: str
    total: Decimal
    tax: Decimal
    source: DocumentSource
    status: InvoiceStatus
    exceptions: list[dict[str, Any]]
    lines: list[InvoiceLineOut]


def tolerances(settings: SettingsDep) -> Tolerances:
    """The three-way match's tolerances from the settings."""
    return Tolerances(
        price_pct=settings.invoice_price_tolerance_pct,
        quantity_pct=settings.invoice_quantity_tolerance_pct,
    )


@router.post(
    "/purchase-orders/{order_id}/invoices",
    status_code=status.HTTP_201_CREATED,
    dependencies=[Writer],
)
def create_invoice(
    db: SessionDep,
    user: CurrentUser,
    limits: Annotated[Tolerances, Depends(tolerances)],
    order_id: int,
    body: InvoiceBody,
) -> InvoiceOut:
    """Record an invoice and match it against the order and the receipts."""
    order = _locked_order(db, order_id)
    data = InvoiceIn(
        invoice_number=body.invoice_number,
        invoice_date=body.invoice_date,
        currency=body.currency,
        total=body.total,
        tax=body.tax,
        source=body.source,
        lines=[InvoiceLineIn(**line.model_dump()) for line in body.lines],
    )
    with lifecycle_errors():
        invoice = record_invoice(db, order, data, tolerances=limits, actor_id=user.id)
    db.commit()
    return InvoiceOut.model_validate(invoice)


@router.get("/invoices", dependencies=[Reader])
def list_invoices(
    db: SessionDep,
    page: WindowDep,
    status: InvoiceStatus | None = None,
    purchase_order_id: int | None = None,
) -> Page[InvoiceOut]:
    """Invoices, optionally in one status or of one order."""
    stmt = select(SupplierInvoice).order_by(SupplierInvoice.id)
    if status is not None:
        stmt = stmt.where(SupplierInvoice.status == status)
    if purchase_order_id is not None:
        stmt = stmt.where(SupplierInvoice.purchase_order_id == purchase_order_id)
    return list_page(db, stmt, page, InvoiceOut)


@router.get("/invoices/{invoice_id}", dependencies=[Reader])
def get_invoice(db: SessionDep, invoice_id: int) -> InvoiceOut:
    """One invoice with its exceptions."""
    return InvoiceOut.model_validate(get_or_404(db, SupplierInvoice, invoice_id))


def _locked_invoice(db: SessionDep, invoice_id: int) -> SupplierInvoice:
    invoice = get_or_404(db, SupplierInvoice, invoice_id)
    # The order row is the lock every write on its lines takes (see _locked_order).
    _locked_order(db, invoice.purchase_order_id)
    db.refresh(invoice, with_for_update=True)
    return invoice


@router.post("/invoices/{invoice_id}/approve", dependencies=[Approver])
def approve_exception_invoice(
    db: SessionDep, user: CurrentUser, invoice_id: int, body: RequiredReasonIn
) -> InvoiceOut:
    """Accept an invoice with exceptions for payment, saying why."""
    invoice = _locked_invoice(db, invoice_id)
    with lifecycle_errors():
        approve_invoice(db, invoice, approver=user, reason=body.reason)
    db.commit()
    return InvoiceOut.model_validate(invoice)


@router.post("/invoices/{invoice_id}/reject", dependencies=[Approver])
def reject_exception_invoice(
    db: SessionDep, user: CurrentUser, invoice_id: int, body: RequiredReasonIn
) -> InvoiceOut:
    """Refuse an invoice with exceptions, saying why."""
    invoice = _locked_invoice(db, invoice_id)
    with lifecycle_errors():
        reject_invoice(db, invoice, actor_id=user.id, reason=body.reason)
    db.commit()
    return InvoiceOut.model_validate(invoice)
