"""Procurement: suppliers, catalogues (with import), contracts, requisitions, purchase orders."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request, status
from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    field_validator,
    model_validator,
)
from sqlalchemy import select

from maintainpro.api.crud import apply_changes, get_or_404, require_exists
from maintainpro.api.deps import CurrentUser, SessionDep, SettingsDep, require
from maintainpro.api.fields import Code, FreeText, Name, ShortText
from maintainpro.api.pagination import Page, WindowDep, list_page
from maintainpro.api.problems import Problem
from maintainpro.config import Settings
from maintainpro.core.db import claim_writer, utcnow
from maintainpro.core.inventory import Part
from maintainpro.core.users import Permission, Role
from maintainpro.supply.catalog_import import import_catalog
from maintainpro.supply.catalogs import CatalogItem, PriceBreak
from maintainpro.supply.contracts import (
    Contract,
    ContractError,
    ContractKind,
    ContractPrice,
    ContractStatus,
)
from maintainpro.supply.fx import FxError
from maintainpro.supply.money import Money, MoneyError, validate_currency
from maintainpro.supply.purchasing import (
    ApprovalPolicy,
    ApprovalRefused,
    LineAckStatus,
    PoStatus,
    PoTransitionError,
    PurchaseOrder,
    PurchaseOrderLine,
    approve_order,
    cancel_order,
    send_order,
)
from maintainpro.supply.rates import ExchangeRate, stored_converter
from maintainpro.supply.receiving import ReceiptError, receive
from maintainpro.supply.requisitions import (
    RequisitionError,
    RequisitionLine,
    RequisitionLineStatus,
    RequisitionSource,
    manual_requisition,
    requisitions_from_reorder_points,
)
from maintainpro.supply.sourcing import generate_purchase_orders
from maintainpro.supply.suppliers import ConnectionType, Supplier, SupplierStatus

router = APIRouter(tags=["supply"])
Reader = Depends(require(Permission.SUPPLY_READ))
Writer = Depends(require(Permission.SUPPLY_WRITE))
Approver = Depends(require(Permission.SUPPLY_APPROVE))

Currency = Annotated[str, Field(pattern=r"^[A-Z]{3}$"), AfterValidator(validate_currency)]
Country = Annotated[str, Field(pattern=r"^[A-Z]{2}$")]
Quantity = Annotated[Decimal, Field(gt=0, le=1_000_000_000, max_digits=14, decimal_places=3)]
UnitPrice = Annotated[Decimal, Field(ge=0, le=10**12, max_digits=18, decimal_places=6)]
Amount = Annotated[Decimal, Field(ge=0, le=10**13, max_digits=18, decimal_places=4)]
XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def base_currency(settings: SettingsDep) -> str:
    """The company's base currency (setting ``base_currency``, USD until it exists)."""
    # Read defensively: the setting is requested from the config owner and may not exist yet.
    return validate_currency(settings.base_currency)


def approval_policy(settings: SettingsDep) -> ApprovalPolicy:
    """Approval limits in base currency: procurement up to its limit, admin without one."""
    limit = settings.procurement_approval_limit
    return ApprovalPolicy({Role.PROCUREMENT: limit, Role.ADMIN: None})


BaseCurrency = Annotated[str, Depends(base_currency)]
Policy = Annotated[ApprovalPolicy, Depends(approval_policy)]


@contextmanager
def domain_errors() -> Iterator[None]:
    """Answer procurement rule violations as problems instead of 500s."""
    try:
        yield
    except ApprovalRefused as exc:
        raise Problem(403, str(exc), title="Approval refused") from None
    except (PoTransitionError, ContractError) as exc:
        raise Problem(409, str(exc), title="Illegal status change") from None
    except (ReceiptError, RequisitionError, MoneyError) as exc:
        raise Problem(422, str(exc), title="Invalid request") from None
    except FxError as exc:
        raise Problem(422, str(exc), title="No exchange rate") from None


def _rounded(amount: Decimal | None, currency: str, what: str) -> None:
    if amount is not None and not Money.of(amount, currency).is_rounded:
        raise ValueError(f"{what} has more decimals than {currency} allows")


# --- suppliers ------------------------------------------------------------------------------


class Contact(BaseModel):
    """A person at the supplier."""

    model_config = ConfigDict(extra="forbid")
    name: Name
    role: ShortText = ""
    email: Annotated[str, Field(max_length=254, pattern=r"^[^@\s]+@[^@\s]+$")] | None = None
    phone: Annotated[str, Field(max_length=40, pattern=r"^[0-9+()\-. ]*$")] | None = None


class SupplierIn(BaseModel):
    """A new supplier."""

    model_config = ConfigDict(extra="forbid")
    code: Code
    legal_name: Name
    country: Country
    currency: Currency
    payment_terms: Code = "NET30"
    incoterms: Annotated[str, Field(pattern=r"^[A-Z]{3}$")] | None = None
    contacts: Annotated[list[Contact], Field(max_length=50)] = []
    connection_type: ConnectionType = ConnectionType.EMAIL
    capabilities: Annotated[list[Code], Field(max_length=50)] = []
    status: SupplierStatus = SupplierStatus.PENDING
    preferred: bool = False


class SupplierPatch(BaseModel):
    """Changes to a supplier."""

    model_config = ConfigDict(extra="forbid")
    legal_name: Name | None = None
    country: Country | None = None
    currency: Currency | None = None
    payment_terms: Code | None = None
    incoterms: Annotated[str, Field(pattern=r"^[A-Z]{3}$")] | None = None
    contacts: Annotated[list[Contact], Field(max_length=50)] | None = None
    connection_type: ConnectionType | None = None
    capabilities: Annotated[list[Code], Field(max_length=50)] | None = None
    status: SupplierStatus | None = None
    preferred: bool | None = None


class SupplierOut(BaseModel):
    """A supplier."""

    model_config = ConfigDict(from_attributes=True)
    id: int
    code: str
    legal_name: str
    country: str
    currency: str
    payment_terms: str
    incoterms: str | None
    contacts: list[dict[str, Any]]
    connection_type: ConnectionType
    capabilities: list[str]
    status: SupplierStatus
    preferred: bool


@router.get("/suppliers", dependencies=[Reader])
def list_suppliers(
    db: SessionDep, page: WindowDep, status: SupplierStatus | None = None
) -> Page[SupplierOut]:
    """List suppliers."""
    stmt = select(Supplier).order_by(Supplier.id)
    if status is not None:
        stmt = stmt.where(Supplier.status == status)
    return list_page(db, stmt, page, SupplierOut)


@router.post("/suppliers", status_code=status.HTTP_201_CREATED, dependencies=[Writer])
def create_supplier(db: SessionDep, body: SupplierIn) -> SupplierOut:
    """Create a supplier."""
    supplier = Supplier(**body.model_dump(mode="json"))
    db.add(supplier)
    db.commit()
    return SupplierOut.model_validate(supplier)


@router.get("/suppliers/{supplier_id}", dependencies=[Reader])
def get_supplier(db: SessionDep, supplier_id: int) -> SupplierOut:
    """One supplier."""
    return SupplierOut.model_validate(get_or_404(db, Supplier, supplier_id))


@router.patch("/suppliers/{supplier_id}", dependencies=[Writer])
def update_supplier(db: SessionDep, supplier_id: int, body: SupplierPatch) -> SupplierOut:
    """Change a supplier."""
    supplier = get_or_404(db, Supplier, supplier_id)
    changes = body.model_dump(exclude_unset=True, mode="json")
    apply_changes(supplier, body)
    for key in ("contacts", "capabilities"):
        if key in changes:
            setattr(supplier, key, changes[key])  # JSON columns take plain dicts, not models
    db.commit()
    return SupplierOut.model_validate(supplier)


@router.delete(
    "/suppliers/{supplier_id}", status_code=status.HTTP_204_NO_CONTENT, dependencies=[Writer]
)
def delete_supplier(db: SessionDep, supplier_id: int) -> None:
    """Delete a supplier nothing refers to (orders and contracts keep it; block it instead)."""
    db.delete(get_or_404(db, Supplier, supplier_id))
    db.commit()


# --- catalogue ------------------------------------------------------------------------------


class PriceBreakIn(BaseModel):
    """A unit price from a minimum quantity."""

    model_config = ConfigDict(extra="forbid")
    min_quantity: Quantity = Decimal(1)
    unit_price: UnitPrice


class PriceBreakOut(BaseModel):
    """A price break."""

    model_config = ConfigDict(from_attributes=True)
    min_quantity: Decimal
    unit_price: Decimal


class CatalogItemIn(BaseModel):
    """A new catalogue item."""

    model_config = ConfigDict(extra="forbid")
    supplier_id: int
    supplier_part_number: Code
    part_id: int
    description: FreeText = ""
    unit: Code = "EA"
    pack_size: Quantity = Decimal(1)
    currency: Currency
    valid_from: dt.date | None = None
    valid_to: dt.date | None = None
    lead_time_days: Annotated[int, Field(ge=0, le=3650)] = 0
    landed_cost_pct: Annotated[Decimal, Field(ge=0, le=1000, decimal_places=3)] = Decimal(0)
    price_breaks: Annotated[list[PriceBreakIn], Field(min_length=1, max_length=50)]

    @model_validator(mode="after")
    def _check(self) -> CatalogItemIn:
        if self.valid_from and self.valid_to and self.valid_to < self.valid_from:
            raise ValueError("valid_to is before valid_from")
        minimums = [b.min_quantity for b in self.price_breaks]
        if len(set(minimums)) != len(minimums):
            raise ValueError("two price breaks have the same minimum quantity")
        return self


class CatalogItemOut(BaseModel):
    """A catalogue item with its price breaks."""

    model_config = ConfigDict(from_attributes=True)
    id: int
    supplier_id: int
    supplier_part_number: str
    part_id: int
    description: str
    unit: str
    pack_size: Decimal
    currency: str
    valid_from: dt.date | None
    valid_to: dt.date | None
    lead_time_days: int
    landed_cost_pct: Decimal
    price_breaks: list[PriceBreakOut]


class LineErrorOut(BaseModel):
    """A problem on one line of an imported file."""

    line: int
    column: str | None
    message: str


class ImportReportOut(BaseModel):
    """What a catalogue import found and did."""

    rows: int
    applied: bool
    items_created: int
    items_updated: int
    price_changes: int
    errors: list[LineErrorOut]


@router.get("/catalog-items", dependencies=[Reader])
def list_catalog_items(
    db: SessionDep, page: WindowDep, supplier_id: int | None = None, part_id: int | None = None
) -> Page[CatalogItemOut]:
    """Catalogue items, optionally of one supplier or for one part."""
    stmt = select(CatalogItem).order_by(CatalogItem.id)
    if supplier_id is not None:
        stmt = stmt.where(CatalogItem.supplier_id == supplier_id)
    if part_id is not None:
        stmt = stmt.where(CatalogItem.part_id == part_id)
    return list_page(db, stmt, page, CatalogItemOut)


@router.post("/catalog-items", status_code=status.HTTP_201_CREATED, dependencies=[Writer])
def create_catalog_item(db: SessionDep, body: CatalogItemIn) -> CatalogItemOut:
    """Add an item to a supplier's catalogue."""
    require_exists(db, Supplier, body.supplier_id, "supplier")
    require_exists(db, Part, body.part_id, "part")
    fields = body.model_dump(exclude={"price_breaks"})
    item = CatalogItem(**fields)
    item.price_breaks = [PriceBreak(**b.model_dump()) for b in body.price_breaks]
    db.add(item)
    db.commit()
    return CatalogItemOut.model_validate(item)


@router.get("/catalog-items/{item_id}", dependencies=[Reader])
def get_catalog_item(db: SessionDep, item_id: int) -> CatalogItemOut:
    """One catalogue item."""
    return CatalogItemOut.model_validate(get_or_404(db, CatalogItem, item_id))


async def uploaded_file(request: Request) -> tuple[bytes, str]:
    """The uploaded catalogue and its format: multipart ``file``, raw CSV or raw XLSX body."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type == "multipart/form-data":
        form = await request.form()
        upload = form.get("file")
        if upload is None or isinstance(upload, str):
            raise Problem(422, "the form needs a 'file' field holding the catalogue")
        data = await upload.read()
        name = (upload.filename or "").lower()
        kind = upload.content_type or ""
        return data, "xlsx" if name.endswith(".xlsx") or kind == XLSX_TYPE else "csv"
    if content_type in ("text/csv", "text/plain", "application/csv"):
        return await request.body(), "csv"
    if content_type == XLSX_TYPE:
        return await request.body(), "xlsx"
    raise Problem(415, "send text/csv, an XLSX workbook, or multipart/form-data with 'file'")


@router.post("/suppliers/{supplier_id}/catalog/import", dependencies=[Writer])
def import_supplier_catalog(
    db: SessionDep,
    user: CurrentUser,
    supplier_id: int,
    upload: Annotated[tuple[bytes, str], Depends(uploaded_file)],
) -> ImportReportOut:
    """Import a catalogue; with any invalid line nothing is applied and 422 lists the lines."""
    supplier = get_or_404(db, Supplier, supplier_id)
    data, file_format = upload
    report = import_catalog(db, supplier, data, file_format=file_format, changed_by_id=user.id)
    out = ImportReportOut(
        rows=report.rows,
        applied=report.applied,
        items_created=report.items_created,
        items_updated=report.items_updated,
        price_changes=report.price_changes,
        errors=[
            LineErrorOut(line=e.line, column=e.column, message=e.message) for e in report.errors
        ],
    )
    if not report.ok:
        db.rollback()
        raise Problem(
            422,
            f"{len(report.errors)} problem(s) in the file; nothing was imported",
            title="Invalid catalogue",
            report=out.model_dump(mode="json"),
        )
    db.commit()
    return out


# --- contracts ------------------------------------------------------------------------------


class ContractPriceIn(BaseModel):
    """An agreed unit price for a part."""

    model_config = ConfigDict(extra="forbid")
    part_id: int
    unit_price: UnitPrice


class ContractPriceOut(BaseModel):
    """An agreed unit price."""

    model_config = ConfigDict(from_attributes=True)
    part_id: int
    unit_price: Decimal


class ContractIn(BaseModel):
    """A new contract."""

    model_config = ConfigDict(extra="forbid")
    number: Code
    supplier_id: int
    kind: ContractKind
    currency: Currency
    valid_from: dt.date
    valid_to: dt.date | None = None
    spend_cap: Amount | None = None
    terms: FreeText = ""
    prices: Annotated[list[ContractPriceIn], Field(max_length=5000)] = []

    @model_validator(mode="after")
    def _check(self) -> ContractIn:
        if self.valid_to and self.valid_to < self.valid_from:
            raise ValueError("valid_to is before valid_from")
        _rounded(self.spend_cap, self.currency, "spend_cap")
        parts = [p.part_id for p in self.prices]
        if len(set(parts)) != len(parts):
            raise ValueError("a part has two prices")
        return self


class ContractPatch(BaseModel):
    """Changes to a contract (its currency and supplier stay)."""

    model_config = ConfigDict(extra="forbid")
    status: ContractStatus | None = None
    valid_to: dt.date | None = None
    spend_cap: Amount | None = None
    terms: FreeText | None = None


class ContractOut(BaseModel):
    """A contract."""

    model_config = ConfigDict(from_attributes=True)
    id: int
    number: str
    supplier_id: int
    kind: ContractKind
    status: ContractStatus
    currency: str
    valid_from: dt.date
    valid_to: dt.date | None
    spend_cap: Decimal | None
    drawn: Decimal
    remaining: Decimal | None
    terms: str
    prices: list[ContractPriceOut]


@router.get("/contracts", dependencies=[Reader])
def list_contracts(
    db: SessionDep, page: WindowDep, supplier_id: int | None = None
) -> Page[ContractOut]:
    """List contracts."""
    stmt = select(Contract).order_by(Contract.id)
    if supplier_id is not None:
        stmt = stmt.where(Contract.supplier_id == supplier_id)
    return list_page(db, stmt, page, ContractOut)


@router.post("/contracts", status_code=status.HTTP_201_CREATED, dependencies=[Writer])
def create_contract(db: SessionDep, body: ContractIn) -> ContractOut:
    """Create a contract with its prices."""
    require_exists(db, Supplier, body.supplier_id, "supplier")
    for price in body.prices:
        require_exists(db, Part, price.part_id, "part")
    contract = Contract(**body.model_dump(exclude={"prices"}))
    contract.prices = [ContractPrice(**p.model_dump()) for p in body.prices]
    db.add(contract)
    db.commit()
    return ContractOut.model_validate(contract)


@router.get("/contracts/{contract_id}", dependencies=[Reader])
def get_contract(db: SessionDep, contract_id: int) -> ContractOut:
    """One contract."""
    return ContractOut.model_validate(get_or_404(db, Contract, contract_id))


@router.patch("/contracts/{contract_id}", dependencies=[Writer])
def update_contract(db: SessionDep, contract_id: int, body: ContractPatch) -> ContractOut:
    """Change a contract's status, end date, cap or terms."""
    contract = get_or_404(db, Contract, contract_id)
    apply_changes(contract, body)
    try:
        _rounded(contract.spend_cap, contract.currency, "spend_cap")
    except ValueError as exc:
        raise Problem(422, str(exc), title="Invalid request") from None
    if contract.valid_to is not None and contract.valid_to < contract.valid_from:
        raise Problem(422, "valid_to is before valid_from", title="Invalid request")
    db.commit()
    return ContractOut.model_validate(contract)


@router.delete(
    "/contracts/{contract_id}", status_code=status.HTTP_204_NO_CONTENT, dependencies=[Writer]
)
def delete_contract(db: SessionDep, contract_id: int) -> None:
    """Delete a contract no order has drawn on (close it otherwise)."""
    contract = get_or_404(db, Contract, contract_id)
    if contract.drawn > 0:
        raise Problem(409, "orders have drawn on this contract; close it instead")
    db.delete(contract)
    db.commit()


# --- exchange rates -------------------------------------------------------------------------


class ExchangeRateIn(BaseModel):
    """Units of a currency per 1 EUR on a day."""

    model_config = ConfigDict(extra="forbid")
    day: dt.date
    currency: Currency
    per_eur: Annotated[Decimal, Field(gt=0, le=10**9, max_digits=24, decimal_places=10)]
    source: Code = "manual"

    @model_validator(mode="after")
    def _check(self) -> ExchangeRateIn:
        if self.currency == "EUR":
            raise ValueError("rates are per EUR; EUR itself needs none")
        return self


class ExchangeRateOut(BaseModel):
    """A stored rate."""

    model_config = ConfigDict(from_attributes=True)
    id: int
    day: dt.date
    currency: str
    per_eur: Decimal
    source: str


@router.get("/exchange-rates", dependencies=[Reader])
def list_rates(db: SessionDep, page: WindowDep) -> Page[ExchangeRateOut]:
    """Stored exchange rates, newest first."""
    stmt = select(ExchangeRate).order_by(ExchangeRate.day.desc(), ExchangeRate.id)
    return list_page(db, stmt, page, ExchangeRateOut)


@router.post("/exchange-rates", status_code=status.HTTP_201_CREATED, dependencies=[Writer])
def create_rate(db: SessionDep, body: ExchangeRateIn) -> ExchangeRateOut:
    """Store an exchange rate."""
    rate = ExchangeRate(**body.model_dump())
    db.add(rate)
    db.commit()
    return ExchangeRateOut.model_validate(rate)


# --- requisitions ---------------------------------------------------------------------------


class RequisitionIn(BaseModel):
    """A manual request to buy a part."""

    model_config = ConfigDict(extra="forbid")
    part_id: int
    quantity: Quantity
    need_by: dt.date | None = None
    stock_level_id: int | None = None
    note: Annotated[str, Field(max_length=500)] = ""


class RequisitionLineOut(BaseModel):
    """A requisition line."""

    model_config = ConfigDict(from_attributes=True)
    id: int
    requisition_id: int
    source: RequisitionSource
    part_id: int
    quantity: Decimal
    need_by: dt.date | None
    status: RequisitionLineStatus
    work_order_id: int | None
    stock_level_id: int | None
    sourcing_note: str | None


@router.get("/requisitions", dependencies=[Reader])
def list_requisitions(
    db: SessionDep,
    page: WindowDep,
    status: RequisitionLineStatus | None = None,
    source: RequisitionSource | None = None,
) -> Page[RequisitionLineOut]:
    """Requisition lines."""
    stmt = select(RequisitionLine).order_by(RequisitionLine.id)
    if status is not None:
        stmt = stmt.where(RequisitionLine.status == status)
    if source is not None:
        stmt = stmt.where(RequisitionLine.source == source)
    return list_page(db, stmt, page, RequisitionLineOut)


@router.post("/requisitions", status_code=status.HTTP_201_CREATED, dependencies=[Writer])
def create_requisition(
    db: SessionDep, user: CurrentUser, body: RequisitionIn
) -> RequisitionLineOut:
    """Raise a manual requisition."""
    with domain_errors():
        line = manual_requisition(
            db,
            part_id=body.part_id,
            quantity=body.quantity,
            need_by=body.need_by,
            stock_level_id=body.stock_level_id,
            requested_by_id=user.id,
            note=body.note,
        )
    db.commit()
    return RequisitionLineOut.model_validate(line)


@router.post("/requisitions/reorder-points", dependencies=[Writer])
def requisition_reorder_points(db: SessionDep) -> list[RequisitionLineOut]:
    """Requisition every stock level at or below its reorder point, up to its maximum."""
    lines = requisitions_from_reorder_points(db)
    db.commit()
    return [RequisitionLineOut.model_validate(line) for line in lines]


# --- purchase orders ------------------------------------------------------------------------


class PoLineOut(BaseModel):
    """An order line."""

    model_config = ConfigDict(from_attributes=True)
    id: int
    line_no: int
    part_id: int
    requisition_line_id: int | None
    catalog_item_id: int | None
    contract_id: int | None
    stock_level_id: int | None
    quantity: Decimal
    unit_price: Decimal
    line_total: Decimal
    need_by: dt.date | None
    received_quantity: Decimal
    rejected_quantity: Decimal
    explanation: str
    # The supplier's answer and what is on its way or billed (the order lifecycle).
    ack_status: LineAckStatus = LineAckStatus.PENDING
    promised_date: dt.date | None = None
    shipped_quantity: Decimal = Decimal(0)
    invoiced_quantity: Decimal = Decimal(0)


class PoHistoryOut(BaseModel):
    """A status change."""

    model_config = ConfigDict(from_attributes=True)
    from_status: PoStatus | None
    to_status: PoStatus
    actor_id: int | None
    at: dt.datetime
    note: str
    detail: list[dict[str, Any]] | None = None


class PurchaseOrderOut(BaseModel):
    """A purchase order with its lines and history."""

    model_config = ConfigDict(from_attributes=True)
    id: int
    number: str
    supplier_id: int
    status: PoStatus
    currency: str
    total: Decimal
    base_currency: str
    total_base: Decimal
    fx_rate: Decimal
    fx_rate_date: dt.date
    fx_source: str
    automatic: bool
    approved_by_id: int | None
    approved_at: dt.datetime | None
    sent_at: dt.datetime | None
    acknowledged_at: dt.datetime | None = None
    revision: int = 0
    lines: list[PoLineOut]
    history: list[PoHistoryOut]


class AutoPoOut(BaseModel):
    """What automatic ordering did."""

    orders: list[PurchaseOrderOut]
    considered: int
    ordered: int
    automation_rate: Decimal
    left_for_buyer: list[int]


class CancelIn(BaseModel):
    """Why an order is cancelled."""

    model_config = ConfigDict(extra="forbid")
    reason: Annotated[str, Field(max_length=500)] = ""


class ReceiptIn(BaseModel):
    """A delivery against an order line."""

    model_config = ConfigDict(extra="forbid")
    line_id: int
    quantity_received: Annotated[Decimal, Field(ge=0, le=10**9, decimal_places=3)]
    quantity_rejected: Annotated[Decimal, Field(ge=0, le=10**9, decimal_places=3)] = Decimal(0)
    rejection_reason: Annotated[str, Field(max_length=500)] | None = None
    stock_level_id: int | None = None
    received_at: AwareDatetime | None = None

    @field_validator("received_at")
    @classmethod
    def _not_in_future(cls, value: dt.datetime | None) -> dt.datetime | None:
        # Goods cannot arrive in the future; five minutes cover the clocks of scanners.
        if value is not None and value > utcnow() + dt.timedelta(minutes=5):
            raise ValueError("received_at lies in the future")
        return value


class ReceiptOut(BaseModel):
    """A booked receipt and the work orders told about it."""

    id: int
    purchase_order_line_id: int
    stock_level_id: int
    quantity_received: Decimal
    quantity_rejected: Decimal
    rejection_reason: str | None
    received_at: dt.datetime
    order_status: PoStatus
    notified_work_orders: list[int]


@router.get("/purchase-orders", dependencies=[Reader])
def list_purchase_orders(
    db: SessionDep,
    page: WindowDep,
    status: PoStatus | None = None,
    supplier_id: int | None = None,
) -> Page[PurchaseOrderOut]:
    """List purchase orders."""
    stmt = select(PurchaseOrder).order_by(PurchaseOrder.id)
    if status is not None:
        stmt = stmt.where(PurchaseOrder.status == status)
    if supplier_id is not None:
        stmt = stmt.where(PurchaseOrder.supplier_id == supplier_id)
    return list_page(db, stmt, page, PurchaseOrderOut)


@router.post("/purchase-orders/auto", dependencies=[Writer])
def auto_purchase_orders(db: SessionDep, user: CurrentUser, base: BaseCurrency) -> AutoPoOut:
    """Source every open requisition line and draft one order per supplier."""
    with domain_errors():
        result = generate_purchase_orders(
            db,
            base_currency=base,
            fx=stored_converter(db),
            today=dt.datetime.now(dt.UTC).date(),
            created_by_id=user.id,
        )
    db.commit()
    return AutoPoOut(
        orders=[PurchaseOrderOut.model_validate(o) for o in result.orders],
        considered=result.considered,
        ordered=result.ordered,
        automation_rate=result.automation_rate,
        left_for_buyer=result.left_for_buyer,
    )


@router.get("/purchase-orders/{order_id}", dependencies=[Reader])
def get_purchase_order(db: SessionDep, order_id: int) -> PurchaseOrderOut:
    """One purchase order."""
    return PurchaseOrderOut.model_validate(get_or_404(db, PurchaseOrder, order_id))


def _order_for_update(db: SessionDep, order_id: int) -> PurchaseOrder:
    # Status changes on one order take turns with change orders and receipts (PostgreSQL row
    # lock; on SQLite the request becomes the one writer before it reads): an approval never
    # works on a status or total another request just replaced.
    claim_writer(db)
    order = db.get(PurchaseOrder, order_id, with_for_update=True, populate_existing=True)
    if order is None:
        raise Problem(404, f"purchase order {order_id} does not exist")
    return order


@router.post("/purchase-orders/{order_id}/approve", dependencies=[Approver])
def approve_purchase_order(
    db: SessionDep, user: CurrentUser, policy: Policy, order_id: int
) -> PurchaseOrderOut:
    """Approve a draft within the approver's limit."""
    order = _order_for_update(db, order_id)
    with domain_errors():
        approve_order(db, order, approver_id=user.id, role=user.role, policy=policy)
    db.commit()
    return PurchaseOrderOut.model_validate(order)


@router.post("/purchase-orders/{order_id}/send", dependencies=[Writer])
def send_purchase_order(db: SessionDep, user: CurrentUser, order_id: int) -> PurchaseOrderOut:
    """Mark an approved order as sent to the supplier."""
    order = _order_for_update(db, order_id)
    with domain_errors():
        send_order(order, actor_id=user.id)
    db.commit()
    return PurchaseOrderOut.model_validate(order)


@router.post("/purchase-orders/{order_id}/cancel", dependencies=[Writer])
def cancel_purchase_order(
    db: SessionDep, user: CurrentUser, order_id: int, body: CancelIn
) -> PurchaseOrderOut:
    """Cancel an order before anything arrived."""
    order = _order_for_update(db, order_id)
    with domain_errors():
        cancel_order(db, order, actor_id=user.id, reason=body.reason)
    db.commit()
    return PurchaseOrderOut.model_validate(order)


@router.post(
    "/purchase-orders/{order_id}/receipts",
    status_code=status.HTTP_201_CREATED,
    dependencies=[Writer],
)
def receive_goods(
    db: SessionDep, user: CurrentUser, settings: SettingsDep, order_id: int, body: ReceiptIn
) -> ReceiptOut:
    """Book a delivery on one line: stock goes up and waiting work orders are told."""
    order = get_or_404(db, PurchaseOrder, order_id)
    line = db.get(PurchaseOrderLine, body.line_id)
    if line is None or line.purchase_order_id != order.id:
        raise Problem(404, f"line {body.line_id} is not on {order.number}")
    with domain_errors():
        outcome = receive(
            db,
            line,
            quantity=body.quantity_received,
            rejected=body.quantity_rejected,
            rejection_reason=body.rejection_reason,
            stock_level_id=body.stock_level_id,
            received_at=body.received_at,
            received_by_id=user.id,
            tolerance_pct=_tolerance(settings),
        )
    db.commit()
    receipt = outcome.receipt
    return ReceiptOut(
        id=receipt.id,
        purchase_order_line_id=receipt.purchase_order_line_id,
        stock_level_id=receipt.stock_level_id,
        quantity_received=receipt.quantity_received,
        quantity_rejected=receipt.quantity_rejected,
        rejection_reason=receipt.rejection_reason,
        received_at=receipt.received_at,
        order_status=order.status,
        notified_work_orders=outcome.notified_work_orders,
    )


def _tolerance(settings: Settings) -> Decimal:
    # Over-receipt tolerance in percent (setting ``receipt_tolerance_pct``, 0 until it exists).
    return settings.receipt_tolerance_pct
