"""Supply-chain pages: the dashboard (with supplier connectivity), purchase orders (list,
detail, approve and send), a supplier's master data with its catalogue and contracts, and the
EDI archive with its error queue."""

from __future__ import annotations

from decimal import Decimal
from typing import Final

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse
from sqlalchemy import select
from sqlalchemy.orm import Session

from maintainpro.api.deps import SessionDep
from maintainpro.api.routes.edi import apply_options
from maintainpro.api.routes.supply import approval_policy
from maintainpro.core.db import utcnow
from maintainpro.core.inventory import Part, Reservation, ReservationStatus, StockLevel
from maintainpro.core.users import Permission, User
from maintainpro.supply.catalogs import CatalogItem, PriceChange
from maintainpro.supply.contracts import Contract, ContractError
from maintainpro.supply.edi.archive import (
    Direction,
    DocumentStatus,
    EdiDocument,
    InterchangeStatus,
)
from maintainpro.supply.edi.reprocess import ReprocessError, reprocess_document
from maintainpro.supply.money import Money, MoneyError
from maintainpro.supply.purchasing import (
    OPEN_PO_STATUSES,
    ApprovalRefused,
    PoStatus,
    PoTransitionError,
    PurchaseOrder,
    approve_order,
    send_order,
)
from maintainpro.supply.shipments import Shipment
from maintainpro.supply.sourcing import qty_text
from maintainpro.supply.suppliers import Supplier, SupplierStatus
from maintainpro.web.pages import render, templates
from maintainpro.web.session_auth import CsrfChecked, PageUser, page_permission
from maintainpro.web.supply_views import (
    EDI_TONES,
    SUPPLIER_TONES,
    PollerView,
    catalog_freshness,
    catalog_sync,
    connection_rows,
    delivery_performance,
    erp_connectors_by_supplier,
    error_queue,
    interchange_rows,
    last_price_updates,
    line_states,
    open_value,
    order_status_counts,
    orders_figure,
    shipments_in_transit,
    supplier_rows,
    supplier_status_counts,
)

router = APIRouter(include_in_schema=False)
CanRead = page_permission(Permission.SUPPLY_READ)
CanWrite = page_permission(Permission.SUPPLY_WRITE)
CanApprove = page_permission(Permission.SUPPLY_APPROVE)
LIST_LIMIT: Final = 500
STATUS_FILTERS: Final = ("all", "open", *(s.value for s in PoStatus))


def _money(amount: Decimal | None, currency: str) -> str:
    """An amount in its currency, rounded to the minor unit ("1,234.50 EUR")."""
    if amount is None:
        return "—"
    try:
        return Money.of(amount, currency).format(grouping=True)
    except MoneyError:
        return f"{amount} {currency}"


def _price(amount: Decimal | None, currency: str) -> str:
    """A unit price: the minor unit at least, more digits only when the price has them."""
    if amount is None:
        return "—"
    try:
        return str(Money.of(amount.normalize(), currency))
    except MoneyError:
        return f"{amount} {currency}"


def _qty(quantity: Decimal | None) -> str:
    return "—" if quantity is None else qty_text(quantity)


templates.env.filters["money"] = _money
templates.env.filters["unit_price"] = _price
templates.env.filters["qty"] = _qty


def _flash(request: Request, message: str, kind: str = "ok") -> None:
    request.session["flash"] = {"message": message[:500], "kind": kind}


def _take_flash(request: Request) -> dict[str, str] | None:
    flash = request.session.pop("flash", None)
    return flash if isinstance(flash, dict) else None


@router.get("/supply", dependencies=[CanRead])
def supply_page(request: Request, db: SessionDep, user: PageUser) -> HTMLResponse:
    """The supply-chain dashboard: suppliers and their connections, orders by state, shipments on
    their way, delivery, catalogue freshness and synchronisation."""
    now = utcnow()
    today = now.date()
    counts = order_status_counts(db)
    by_status = supplier_status_counts(db)
    stock = Permission.INVENTORY_READ in user.permissions
    erp = erp_connectors_by_supplier(request.app.state.settings.erp_connections)
    pollers, problems, polling = _sftp_status(request)
    return render(
        request,
        "supply.html",
        user,
        suppliers=supplier_rows(db),
        supplier_counts=by_status,
        active_suppliers=by_status[SupplierStatus.ACTIVE],
        tones=SUPPLIER_TONES,
        order_counts=counts,
        drafts=counts[PoStatus.DRAFT],
        open_orders=sum(n for status, n in counts.items() if status in OPEN_PO_STATUSES),
        open_value=open_value(db),
        figure=orders_figure(counts),
        delivery=delivery_performance(db, today),
        freshness=catalog_freshness(db, today),
        connections=connection_rows(
            db, erp_by_supplier=erp, pollers=pollers, poller_problems=problems
        ),
        polling=polling,
        edi_tones=EDI_TONES,
        in_transit=shipments_in_transit(db, now),
        catalog_sync=catalog_sync(db, now, erp_by_supplier=erp),
        low=_low_stock(db) if stock else None,
        held=_held_parts(db) if stock else None,
    )


def _sftp_status(request: Request) -> tuple[dict[int, PollerView], dict[int, str], bool]:
    """The SFTP pollers' state per partner id, their setup problems, and whether they run."""
    connectivity = getattr(request.app.state, "supplier_connectivity", None)
    if connectivity is None:
        return {}, {}, False
    views = {
        partner_id: PollerView(
            poller.status.connected,
            poller.status.last_poll_at,
            poller.status.last_success_at,
            poller.status.last_error,
        )
        for partner_id, poller in dict(connectivity.sftp.pollers).items()
    }
    return views, dict(connectivity.sftp.problems), bool(connectivity.jobs_running)


def _low_stock(db: Session) -> list[StockLevel]:
    return list(
        db.scalars(
            select(StockLevel)
            .where(StockLevel.on_hand - StockLevel.reserved <= StockLevel.reorder_point)
            .order_by(StockLevel.part_id)
        )
    )


def _held_parts(db: Session) -> list[Reservation]:
    return list(
        db.scalars(
            select(Reservation)
            .where(Reservation.status == ReservationStatus.ACTIVE)
            .order_by(Reservation.id.desc())
            .limit(50)
        )
    )


@router.get("/supply/orders", dependencies=[CanRead])
def orders_page(
    request: Request,
    db: SessionDep,
    user: PageUser,
    status: str = "all",
    supplier: str = "",
) -> HTMLResponse:
    """Purchase orders, newest first, filtered by state and supplier."""
    status = status if status in STATUS_FILTERS else "all"
    supplier_id = int(supplier) if supplier.isdigit() else None
    stmt = select(PurchaseOrder).order_by(PurchaseOrder.id.desc())
    if status == "open":
        stmt = stmt.where(PurchaseOrder.status.in_(OPEN_PO_STATUSES))
    elif status != "all":
        stmt = stmt.where(PurchaseOrder.status == PoStatus(status))
    if supplier_id is not None:
        stmt = stmt.where(PurchaseOrder.supplier_id == supplier_id)
    orders = db.scalars(stmt.limit(LIST_LIMIT + 1)).all()
    return render(
        request,
        "supply_orders.html",
        user,
        orders=orders[:LIST_LIMIT],
        truncated=len(orders) > LIST_LIMIT,
        statuses=STATUS_FILTERS,
        status=status,
        suppliers=db.scalars(select(Supplier).order_by(Supplier.code)).all(),
        supplier_id=supplier_id,
    )


def _order_or_404(db: Session, order_id: int) -> PurchaseOrder:
    order = db.get(PurchaseOrder, order_id)
    if order is None:
        raise HTTPException(404, f"purchase order {order_id} does not exist")
    return order


@router.get("/supply/orders/{order_id}", dependencies=[CanRead])
def order_page(request: Request, db: SessionDep, user: PageUser, order_id: int) -> HTMLResponse:
    """One order: its lines with the sourcing explanation, acknowledgement, deliveries, history."""
    order = _order_or_404(db, order_id)
    rights = user.permissions
    return render(
        request,
        "supply_order.html",
        user,
        order=order,
        lines=line_states(db, order, utcnow().date()),
        shipments=db.scalars(
            select(Shipment).where(Shipment.purchase_order_id == order.id).order_by(Shipment.id)
        ).all(),
        users={u.id: u for u in db.scalars(select(User))},
        can_approve=order.status is PoStatus.DRAFT and Permission.SUPPLY_APPROVE in rights,
        can_send=order.status is PoStatus.APPROVED and Permission.SUPPLY_WRITE in rights,
        flash=_take_flash(request),
    )


@router.post("/supply/orders/{order_id}/approve", dependencies=[CsrfChecked, CanApprove])
def approve_page_order(
    request: Request, db: SessionDep, user: PageUser, order_id: int
) -> RedirectResponse:
    """Approve a draft within the approver's role limit; a refusal changes nothing."""
    order = _order_or_404(db, order_id)
    number = order.number
    policy = approval_policy(request.app.state.settings)
    try:
        approve_order(db, order, approver_id=user.id, role=user.role, policy=policy)
    except (ApprovalRefused, PoTransitionError, ContractError) as exc:
        db.rollback()
        _flash(request, f"{number} was not approved: {exc}.", "error")
    else:
        db.commit()
        _flash(request, f"Approved {number}.")
    return RedirectResponse(f"/supply/orders/{order_id}", status_code=303)


@router.post("/supply/orders/{order_id}/send", dependencies=[CsrfChecked, CanWrite])
def send_page_order(
    request: Request, db: SessionDep, user: PageUser, order_id: int
) -> RedirectResponse:
    """Send an approved order to the supplier's channel."""
    order = _order_or_404(db, order_id)
    number = order.number
    try:
        send_order(order, actor_id=user.id)
    except PoTransitionError as exc:
        db.rollback()
        _flash(request, f"{number} was not sent: {exc}.", "error")
    else:
        db.commit()
        _flash(request, f"Sent {number} to {order.supplier.code}.")
    return RedirectResponse(f"/supply/orders/{order_id}", status_code=303)


@router.get("/supply/suppliers/{supplier_id}", dependencies=[CanRead])
def supplier_page(
    request: Request, db: SessionDep, user: PageUser, supplier_id: int
) -> HTMLResponse:
    """A supplier: master data, catalogue with price history, contracts, orders, delivery."""
    supplier = db.get(Supplier, supplier_id)
    if supplier is None:
        raise HTTPException(404, f"supplier {supplier_id} does not exist")
    today = utcnow().date()
    items = db.scalars(
        select(CatalogItem)
        .where(CatalogItem.supplier_id == supplier.id)
        .order_by(CatalogItem.supplier_part_number)
    ).all()
    changes = db.scalars(
        select(PriceChange)
        .where(PriceChange.catalog_item_id.in_([item.id for item in items]))
        .order_by(PriceChange.changed_at.desc(), PriceChange.id.desc())
        .limit(20)
    ).all()
    contracts = db.scalars(
        select(Contract).where(Contract.supplier_id == supplier.id).order_by(Contract.number)
    ).all()
    part_ids = {price.part_id for contract in contracts for price in contract.prices}
    delivery = delivery_performance(db, today, supplier_ids=[supplier.id])
    return render(
        request,
        "supply_supplier.html",
        user,
        supplier=supplier,
        tone=SUPPLIER_TONES.get(supplier.status, ""),
        items=items,
        updates=last_price_updates(db, items),
        item_numbers={item.id: item.supplier_part_number for item in items},
        changes=changes,
        contracts=contracts,
        parts={p.id: p for p in db.scalars(select(Part).where(Part.id.in_(part_ids)))},
        orders=db.scalars(
            select(PurchaseOrder)
            .where(PurchaseOrder.supplier_id == supplier.id)
            .order_by(PurchaseOrder.id.desc())
            .limit(20)
        ).all(),
        delivery=delivery.rows[0] if delivery.rows else None,
        period=delivery.period,
        last_day=delivery.last_day,
        today=today,
    )


EDI_DIRECTIONS: Final = ("all", *(d.value for d in Direction))
EDI_STATUSES: Final = ("all", *(s.value for s in InterchangeStatus))


@router.get("/supply/edi", dependencies=[CanRead])
def edi_page(
    request: Request,
    db: SessionDep,
    user: PageUser,
    direction: str = "all",
    status: str = "all",
) -> HTMLResponse:
    """The EDI archive (newest interchanges, filtered) and the error queue with reprocessing."""
    direction = direction if direction in EDI_DIRECTIONS else "all"
    status = status if status in EDI_STATUSES else "all"
    return render(
        request,
        "supply_edi.html",
        user,
        interchanges=interchange_rows(
            db,
            direction=Direction(direction) if direction != "all" else None,
            status=InterchangeStatus(status) if status != "all" else None,
        ),
        queue=error_queue(db),
        edi_tones=EDI_TONES,
        directions=EDI_DIRECTIONS,
        statuses=EDI_STATUSES,
        direction=direction,
        status=status,
        can_reprocess=Permission.SUPPLY_WRITE in user.permissions,
        flash=_take_flash(request),
    )


@router.post("/supply/edi/documents/{document_id}/reprocess", dependencies=[CsrfChecked, CanWrite])
def reprocess_page_document(
    request: Request, db: SessionDep, user: PageUser, document_id: int
) -> RedirectResponse:
    """Apply a failed document again from its archived raw, after its cause was fixed."""
    document = db.get(EdiDocument, document_id)
    if document is None:
        raise HTTPException(404, f"EDI document {document_id} does not exist")
    label = f"{document.set_id} document {document.id}"
    try:
        reprocess_document(db, document, options=apply_options(request.app.state.settings))
    except ReprocessError as exc:
        db.rollback()
        _flash(request, f"{label} was not reprocessed: {exc}.", "error")
    else:
        db.commit()
        if document.status is DocumentStatus.APPLIED:
            _flash(request, f"Reprocessed {label}: applied.")
        else:
            reason = document.errors[0].get("message", "") if document.errors else ""
            _flash(
                request, f"Reprocessed {label}: still {document.status.value}. {reason}", "error"
            )
    return RedirectResponse("/supply/edi", status_code=303)
