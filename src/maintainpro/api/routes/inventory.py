"""Parts, stock per location, stock adjustments and reservations against work orders."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Annotated

from fastapi import APIRouter, Depends, Query, status
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import or_, select

from maintainpro.api.crud import apply_changes, get_or_404, require_exists
from maintainpro.api.deps import SessionDep, require
from maintainpro.api.fields import Code, CurrencyCode, FreeText, Name, ShortText, contains_pattern
from maintainpro.api.pagination import Page, WindowDep, list_page
from maintainpro.api.problems import Problem
from maintainpro.core.assets import Location, LocationKind
from maintainpro.core.inventory import (
    Part,
    Reservation,
    ReservationStatus,
    StockLevel,
    adjust_stock,
    close_reservation,
    reserve,
)
from maintainpro.core.users import Permission
from maintainpro.core.work_orders import WorkOrder

router = APIRouter(tags=["inventory"])
Reader = Depends(require(Permission.INVENTORY_READ))
Writer = Depends(require(Permission.INVENTORY_WRITE))
WorkOrderWriter = Depends(require(Permission.WORK_ORDERS_WRITE))
Quantity = Annotated[Decimal, Field(ge=0, le=1_000_000_000, max_digits=14, decimal_places=3)]
Money = Annotated[Decimal, Field(ge=0, le=1_000_000_000, max_digits=14, decimal_places=4)]


class PartIn(BaseModel):
    """A new part."""

    model_config = ConfigDict(extra="forbid")
    number: Code
    name: Name
    description: FreeText = ""
    category: Code = "general"
    unit: Code = "EA"
    manufacturer: ShortText | None = None
    manufacturer_part_number: ShortText | None = None
    unit_cost: Money | None = None
    currency: CurrencyCode = "USD"


class PartPatch(BaseModel):
    """Changes to a part."""

    model_config = ConfigDict(extra="forbid")
    name: Name | None = None
    description: FreeText | None = None
    category: Code | None = None
    unit: Code | None = None
    manufacturer: ShortText | None = None
    manufacturer_part_number: ShortText | None = None
    unit_cost: Money | None = None
    currency: CurrencyCode | None = None


class PartOut(BaseModel):
    """A part."""

    model_config = ConfigDict(from_attributes=True)
    id: int
    number: str
    name: str
    description: str
    category: str
    unit: str
    manufacturer: str | None
    manufacturer_part_number: str | None
    unit_cost: Decimal | None
    currency: str


class StockIn(BaseModel):
    """Stock of a part at a storeroom."""

    model_config = ConfigDict(extra="forbid")
    part_id: int
    location_id: int
    on_hand: Quantity = Decimal(0)
    reorder_point: Quantity = Decimal(0)
    max_level: Quantity | None = None
    bin: Code | None = None


class StockPatch(BaseModel):
    """Changes to reorder settings (quantities move through adjustments)."""

    model_config = ConfigDict(extra="forbid")
    reorder_point: Quantity | None = None
    max_level: Quantity | None = None
    bin: Code | None = None


class StockOut(BaseModel):
    """Stock of a part at a storeroom."""

    model_config = ConfigDict(from_attributes=True)
    id: int
    part_id: int
    location_id: int
    on_hand: Decimal
    reserved: Decimal
    available: Decimal
    reorder_point: Decimal
    max_level: Decimal | None
    bin: str | None
    below_reorder_point: bool


class AdjustmentIn(BaseModel):
    """A stock movement: positive to receive, negative to issue."""

    model_config = ConfigDict(extra="forbid")
    delta: Annotated[Decimal, Field(ge=-1_000_000, le=1_000_000, max_digits=14, decimal_places=3)]
    reason: Annotated[FreeText, Field(min_length=1)]


class ReservationIn(BaseModel):
    """Hold stock for a work order."""

    model_config = ConfigDict(extra="forbid")
    work_order_id: int
    stock_level_id: int
    quantity: Annotated[Decimal, Field(gt=0, le=1_000_000, max_digits=14, decimal_places=3)]


class ReservationOut(BaseModel):
    """A reservation."""

    model_config = ConfigDict(from_attributes=True)
    id: int
    work_order_id: int
    stock_level_id: int
    quantity: Decimal
    status: ReservationStatus
    created_at: dt.datetime
    closed_at: dt.datetime | None


@router.get("/parts", dependencies=[Reader])
def list_parts(
    db: SessionDep,
    page: WindowDep,
    category: str | None = None,
    q: Annotated[str | None, Query(max_length=100, description="search number and name")] = None,
) -> Page[PartOut]:
    """List parts."""
    stmt = select(Part).order_by(Part.id)
    if category is not None:
        stmt = stmt.where(Part.category == category)
    if q:
        pattern = contains_pattern(q)
        stmt = stmt.where(or_(Part.number.ilike(pattern), Part.name.ilike(pattern)))
    return list_page(db, stmt, page, PartOut)


@router.post("/parts", status_code=status.HTTP_201_CREATED, dependencies=[Writer])
def create_part(db: SessionDep, body: PartIn) -> PartOut:
    """Create a part."""
    part = Part(**body.model_dump())
    db.add(part)
    db.commit()
    return PartOut.model_validate(part)


@router.get("/parts/{part_id}", dependencies=[Reader])
def get_part(db: SessionDep, part_id: int) -> PartOut:
    """One part."""
    return PartOut.model_validate(get_or_404(db, Part, part_id))


@router.patch("/parts/{part_id}", dependencies=[Writer])
def update_part(db: SessionDep, part_id: int, body: PartPatch) -> PartOut:
    """Change a part."""
    part = get_or_404(db, Part, part_id)
    apply_changes(part, body)
    db.commit()
    return PartOut.model_validate(part)


@router.get("/stock", dependencies=[Reader])
def list_stock(
    db: SessionDep,
    page: WindowDep,
    part_id: int | None = None,
    location_id: int | None = None,
    below_reorder_point: bool = False,
) -> Page[StockOut]:
    """Stock levels; below_reorder_point=true lists what needs ordering."""
    stmt = select(StockLevel).order_by(StockLevel.id)
    if part_id is not None:
        stmt = stmt.where(StockLevel.part_id == part_id)
    if location_id is not None:
        stmt = stmt.where(StockLevel.location_id == location_id)
    if below_reorder_point:
        stmt = stmt.where(StockLevel.on_hand - StockLevel.reserved <= StockLevel.reorder_point)
    return list_page(db, stmt, page, StockOut)


@router.post("/stock", status_code=status.HTTP_201_CREATED, dependencies=[Writer])
def create_stock(db: SessionDep, body: StockIn) -> StockOut:
    """Start keeping a part at a storeroom."""
    require_exists(db, Part, body.part_id, "part")
    location = db.get(Location, body.location_id)
    if location is None or location.kind is not LocationKind.STOREROOM:
        raise Problem(422, f"location {body.location_id} is not a storeroom")
    if body.max_level is not None and body.max_level < body.reorder_point:
        raise Problem(422, "the maximum level must not be below the reorder point")
    stock = StockLevel(**body.model_dump())
    db.add(stock)
    db.commit()
    return StockOut.model_validate(stock)


@router.patch("/stock/{stock_id}", dependencies=[Writer])
def update_stock(db: SessionDep, stock_id: int, body: StockPatch) -> StockOut:
    """Change reorder point, maximum or bin."""
    stock = get_or_404(db, StockLevel, stock_id)
    apply_changes(stock, body)
    if stock.max_level is not None and stock.max_level < stock.reorder_point:
        raise Problem(422, "the maximum level must not be below the reorder point")
    db.commit()
    return StockOut.model_validate(stock)


@router.post("/stock/{stock_id}/adjustments", dependencies=[Writer])
def adjust(db: SessionDep, stock_id: int, body: AdjustmentIn) -> StockOut:
    """Receive or issue stock; never below what is reserved."""
    get_or_404(db, StockLevel, stock_id)
    stock = adjust_stock(db, stock_id, body.delta)
    db.commit()
    return StockOut.model_validate(stock)


@router.get("/reservations", dependencies=[Reader])
def list_reservations(
    db: SessionDep,
    page: WindowDep,
    work_order_id: int | None = None,
    status: ReservationStatus | None = None,
) -> Page[ReservationOut]:
    """Reservations, optionally of one work order."""
    stmt = select(Reservation).order_by(Reservation.id)
    if work_order_id is not None:
        stmt = stmt.where(Reservation.work_order_id == work_order_id)
    if status is not None:
        stmt = stmt.where(Reservation.status == status)
    return list_page(db, stmt, page, ReservationOut)


@router.post("/reservations", status_code=status.HTTP_201_CREATED, dependencies=[WorkOrderWriter])
def create_reservation(db: SessionDep, body: ReservationIn) -> ReservationOut:
    """Reserve stock for an open work order."""
    order = db.get(WorkOrder, body.work_order_id)
    if order is None or not order.is_open:
        raise Problem(422, f"work order {body.work_order_id} does not exist or is not open")
    require_exists(db, StockLevel, body.stock_level_id, "stock level")
    reservation = reserve(
        db,
        work_order_id=order.id,
        stock_level_id=body.stock_level_id,
        quantity=body.quantity,
    )
    db.commit()
    return ReservationOut.model_validate(reservation)


@router.post("/reservations/{reservation_id}/release", dependencies=[WorkOrderWriter])
def release_reservation(db: SessionDep, reservation_id: int) -> ReservationOut:
    """Give reserved stock back."""
    reservation = get_or_404(db, Reservation, reservation_id)
    close_reservation(db, reservation, consume=False)
    db.commit()
    return ReservationOut.model_validate(reservation)


@router.post("/reservations/{reservation_id}/consume", dependencies=[WorkOrderWriter])
def consume_reservation(db: SessionDep, reservation_id: int) -> ReservationOut:
    """Record that the reserved parts were used."""
    reservation = get_or_404(db, Reservation, reservation_id)
    close_reservation(db, reservation, consume=True)
    db.commit()
    return ReservationOut.model_validate(reservation)
