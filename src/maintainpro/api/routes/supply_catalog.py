"""Catalogue price maintenance and contract compliance."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal
from typing import Annotated

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select

from maintainpro.api.crud import get_or_404, refuse_nulls
from maintainpro.api.deps import CurrentUser, SessionDep, require
from maintainpro.api.fields import Code, FreeText
from maintainpro.api.pagination import Page, WindowDep, paginate
from maintainpro.api.problems import Problem
from maintainpro.api.routes.supply import CatalogItemOut, Currency, Quantity
from maintainpro.core.users import Permission, User
from maintainpro.supply.catalogs import (
    CatalogError,
    CatalogItem,
    PriceChange,
    replace_price_breaks,
    update_catalog_item,
)
from maintainpro.supply.compliance import (
    Finding,
    Reason,
    Utilisation,
    compliance_findings,
    summary,
    utilisation,
)
from maintainpro.supply.contracts import Contract

router = APIRouter(tags=["supply"])
Reader = Depends(require(Permission.SUPPLY_READ))
Writer = Depends(require(Permission.SUPPLY_WRITE))

PositivePrice = Annotated[Decimal, Field(gt=0, le=10**12, max_digits=18, decimal_places=6)]
MAX_COMPLIANCE_DAYS = 366


@contextmanager
def catalog_errors() -> Iterator[None]:
    """Answer catalogue rule violations as 422 problems."""
    try:
        yield
    except CatalogError as exc:
        raise Problem(422, str(exc), title="Invalid request") from None


# --- catalogue prices -------------------------------------------------------------------------


class BreakIn(BaseModel):
    """The unit price from a minimum quantity upwards."""

    model_config = ConfigDict(extra="forbid")
    min_quantity: Quantity
    unit_price: PositivePrice


class PriceBreakSetIn(BaseModel):
    """An item's whole set of price breaks, ascending from one pack, in the item's currency."""

    model_config = ConfigDict(extra="forbid")
    currency: Currency
    breaks: Annotated[list[BreakIn], Field(min_length=1, max_length=50)]

    def pairs(self) -> list[tuple[Decimal, Decimal]]:
        """The breaks as (min quantity, unit price) in the order given."""
        return [(b.min_quantity, b.unit_price) for b in self.breaks]


class CatalogItemPatch(BaseModel):
    """Changes to an item's terms; a new pack size may bring its new price breaks along."""

    model_config = ConfigDict(extra="forbid")
    description: FreeText | None = None
    unit: Code | None = None
    pack_size: Quantity | None = None
    lead_time_days: Annotated[int, Field(ge=0, le=3650)] | None = None
    valid_from: dt.date | None = None
    valid_to: dt.date | None = None
    landed_cost_pct: Annotated[Decimal, Field(ge=0, le=1000, decimal_places=3)] | None = None
    price_breaks: PriceBreakSetIn | None = None


class PriceChangeOut(BaseModel):
    """One recorded price change of an item's break."""

    id: int
    min_quantity: Decimal
    currency: str
    old_price: Decimal | None
    new_price: Decimal | None
    changed_by_id: int | None
    changed_by: str | None
    changed_at: dt.datetime


class CatalogItemChangeOut(BaseModel):
    """The item after a change and the price history rows the change wrote."""

    item: CatalogItemOut
    price_changes: list[PriceChangeOut]


def _changes_out(db: SessionDep, rows: list[PriceChange]) -> list[PriceChangeOut]:
    ids = {row.changed_by_id for row in rows if row.changed_by_id is not None}
    names = {
        row.id: row.username
        for row in db.execute(select(User.id, User.username).where(User.id.in_(ids)))
    }
    return [
        PriceChangeOut(
            id=row.id,
            min_quantity=row.min_quantity,
            currency=row.currency,
            old_price=row.old_price,
            new_price=row.new_price,
            changed_by_id=row.changed_by_id,
            changed_by=names.get(row.changed_by_id) if row.changed_by_id is not None else None,
            changed_at=row.changed_at,
        )
        for row in rows
    ]


@router.put("/catalog-items/{item_id}/price-breaks", dependencies=[Writer])
def put_price_breaks(
    db: SessionDep, user: CurrentUser, item_id: int, body: PriceBreakSetIn
) -> CatalogItemChangeOut:
    """Replace an item's price breaks; every changed price goes into its history."""
    item = get_or_404(db, CatalogItem, item_id)
    with catalog_errors():
        changes = replace_price_breaks(
            db, item, body.pairs(), currency=body.currency, changed_by_id=user.id
        )
    db.commit()
    return CatalogItemChangeOut(
        item=CatalogItemOut.model_validate(item), price_changes=_changes_out(db, changes)
    )


@router.patch("/catalog-items/{item_id}", dependencies=[Writer])
def patch_catalog_item(
    db: SessionDep, user: CurrentUser, item_id: int, body: CatalogItemPatch
) -> CatalogItemChangeOut:
    """Change an item's description, unit, pack size, lead time, validity or landed cost."""
    item = get_or_404(db, CatalogItem, item_id)
    fields = body.model_dump(exclude_unset=True, exclude={"price_breaks"})
    refuse_nulls(item, fields)
    breaks = body.price_breaks
    with catalog_errors():
        changes = update_catalog_item(
            db,
            item,
            fields,
            breaks=breaks.pairs() if breaks is not None else None,
            currency=breaks.currency if breaks is not None else None,
            changed_by_id=user.id,
        )
    db.commit()
    return CatalogItemChangeOut(
        item=CatalogItemOut.model_validate(item), price_changes=_changes_out(db, changes)
    )


@router.get("/catalog-items/{item_id}/price-history", dependencies=[Reader])
def price_history(db: SessionDep, page: WindowDep, item_id: int) -> Page[PriceChangeOut]:
    """Every price change of an item, newest first: who, when, old and new price."""
    get_or_404(db, CatalogItem, item_id)
    stmt = (
        select(PriceChange)
        .where(PriceChange.catalog_item_id == item_id)
        .order_by(PriceChange.changed_at.desc(), PriceChange.id.desc())
    )
    rows, total = paginate(db, stmt, page)
    return Page[PriceChangeOut](
        items=_changes_out(db, rows), total=total, limit=page.limit, offset=page.offset
    )


# --- contract compliance ----------------------------------------------------------------------


class FindingOut(BaseModel):
    """An order line that breaks contract compliance, and why."""

    purchase_order_id: int
    order_number: str
    line_id: int
    line_no: int
    supplier_id: int
    part_id: int
    ordered_on: dt.date
    quantity: Decimal
    unit_price: Decimal
    currency: str
    reason: Reason
    contract_id: int
    contract_number: str
    contract_price: Decimal | None
    contract_currency: str
    excess: Decimal | None
    message: str

    @classmethod
    def of(cls, finding: Finding) -> FindingOut:
        """The response form of a finding."""
        line, contract = finding.line, finding.contract
        return cls(
            purchase_order_id=line.order_id,
            order_number=line.order_number,
            line_id=line.line_id,
            line_no=line.line_no,
            supplier_id=line.supplier_id,
            part_id=line.part_id,
            ordered_on=line.ordered_on,
            quantity=line.quantity,
            unit_price=line.unit_price,
            currency=line.currency,
            reason=finding.reason,
            contract_id=contract.id,
            contract_number=contract.number,
            contract_price=finding.contract_price,
            contract_currency=contract.currency,
            excess=finding.excess.amount if finding.excess is not None else None,
            message=finding.message,
        )


class ComplianceOut(BaseModel):
    """Flagged order lines of a period, with how many there are of each reason."""

    start: dt.date
    end: dt.date
    counts: dict[Reason, int]
    items: list[FindingOut]
    total: int
    limit: int
    offset: int


@router.get("/contracts/compliance", dependencies=[Reader])
def contract_compliance(
    db: SessionDep,
    page: WindowDep,
    start: Annotated[dt.date, Query(description="first order day")],
    end: Annotated[dt.date, Query(description="last order day, inclusive")],
    reason: Reason | None = None,
    supplier_id: int | None = None,
) -> ComplianceOut:
    """Order lines bought off a valid contract price, or under a contract outside its validity."""
    if end < start:
        raise Problem(422, "end is before start", title="Invalid request")
    if (end - start).days >= MAX_COMPLIANCE_DAYS:
        raise Problem(
            422, f"ask for at most {MAX_COMPLIANCE_DAYS} days at a time", title="Invalid request"
        )
    findings = [
        f
        for f in compliance_findings(db, start, end)
        if (reason is None or f.reason is reason)
        and (supplier_id is None or f.line.supplier_id == supplier_id)
    ]
    counts = summary(findings)
    window = findings[page.offset : page.offset + page.limit]
    return ComplianceOut(
        start=start,
        end=end,
        counts=counts,
        items=[FindingOut.of(f) for f in window],
        total=len(findings),
        limit=page.limit,
        offset=page.offset,
    )


@router.get("/contracts/{contract_id}/utilisation", dependencies=[Reader])
def contract_utilisation(
    db: SessionDep,
    contract_id: int,
    on: Annotated[dt.date | None, Query(description="the day to compute for; today")] = None,
) -> Utilisation:
    """Drawn spend against the cap, the share used, what remains and the days left."""
    contract = get_or_404(db, Contract, contract_id)
    day = on or dt.datetime.now(dt.UTC).date()
    return utilisation(contract, day)
