"""Purchase orders: lines, the exchange rate they were priced at, the status machine, approval."""

from __future__ import annotations

import datetime as dt
import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from sqlalchemy import JSON, Date, ForeignKey, Integer, Numeric, String, Text
from sqlalchemy.orm import Mapped, Session, mapped_column, object_session, relationship

from maintainpro.core.columns import Timestamped, text_enum
from maintainpro.core.db import Base, UTCDateTime, utcnow
from maintainpro.core.events import emit
from maintainpro.core.inventory import Part
from maintainpro.core.users import Role
from maintainpro.supply.contracts import Contract
from maintainpro.supply.fx import AppliedRate
from maintainpro.supply.money import Money, line_total, sum_money
from maintainpro.supply.suppliers import Supplier


class PoStatus(enum.StrEnum):
    """Life of a purchase order."""

    DRAFT = "draft"
    APPROVED = "approved"
    SENT = "sent"
    ACKNOWLEDGED = "acknowledged"
    PARTIALLY_SHIPPED = "partially_shipped"
    SHIPPED = "shipped"
    PARTIALLY_RECEIVED = "partially_received"
    RECEIVED = "received"
    INVOICED = "invoiced"
    CLOSED = "closed"
    CANCELLED = "cancelled"


S = PoStatus
CHANGED_TOPIC = "purchase_order.changed"
# Goods may arrive before the supplier acknowledges or announces shipment, so receipt moves are
# allowed from every state after "sent".
_RECEIVABLE = frozenset({S.SENT, S.ACKNOWLEDGED, S.PARTIALLY_SHIPPED, S.SHIPPED})
# A change order that raises the total beyond the approver's limit sends an order back to draft,
# the one status that waits for approval, until nothing is shipped or received yet (see
# order_changes.py); approving it again returns a sent order to "sent".
PO_TRANSITIONS: Mapping[PoStatus, frozenset[PoStatus]] = {
    S.DRAFT: frozenset({S.APPROVED, S.CANCELLED}),
    S.APPROVED: frozenset({S.SENT, S.CANCELLED, S.DRAFT}),
    S.SENT: frozenset(
        {S.ACKNOWLEDGED, S.PARTIALLY_SHIPPED, S.SHIPPED, S.PARTIALLY_RECEIVED, S.RECEIVED}
        | {S.CANCELLED, S.DRAFT}
    ),
    S.ACKNOWLEDGED: frozenset(
        {S.PARTIALLY_SHIPPED, S.SHIPPED, S.PARTIALLY_RECEIVED, S.RECEIVED, S.DRAFT}
    ),
    S.PARTIALLY_SHIPPED: frozenset({S.SHIPPED, S.PARTIALLY_RECEIVED, S.RECEIVED}),
    S.SHIPPED: frozenset({S.PARTIALLY_RECEIVED, S.RECEIVED}),
    S.PARTIALLY_RECEIVED: frozenset({S.RECEIVED}),
    S.RECEIVED: frozenset({S.INVOICED}),
    S.INVOICED: frozenset({S.CLOSED}),
    S.CLOSED: frozenset(),
    S.CANCELLED: frozenset(),
}
RECEIVING_STATUSES = _RECEIVABLE | {S.PARTIALLY_RECEIVED}
# Orders whose unreceived quantity still counts as stock on its way.
OPEN_PO_STATUSES = frozenset({S.DRAFT, S.APPROVED}) | RECEIVING_STATUSES


class LineAckStatus(enum.StrEnum):
    """The supplier's answer to one order line."""

    PENDING = "pending"
    ACCEPTED = "accepted"
    CHANGED = "changed"
    REJECTED = "rejected"


class PoTransitionError(ValueError):
    """A status change the purchase-order status machine does not allow."""


class ApprovalRefused(PermissionError):
    """The approver's role or limit does not cover the order."""


def check_po_transition(current: PoStatus, target: PoStatus) -> None:
    """Raise PoTransitionError unless the move is allowed."""
    if target not in PO_TRANSITIONS[current]:
        raise PoTransitionError(f"a purchase order cannot go from {current} to {target}")


class PurchaseOrder(Timestamped, Base):
    """An order to one supplier in one currency, with the rate to the company's base currency."""

    __tablename__ = "purchase_orders"

    id: Mapped[int] = mapped_column(primary_key=True)
    supplier_id: Mapped[int] = mapped_column(
        ForeignKey("suppliers.id", ondelete="RESTRICT"), index=True
    )
    status: Mapped[PoStatus] = mapped_column(
        text_enum(PoStatus), default=PoStatus.DRAFT, index=True
    )
    currency: Mapped[str] = mapped_column(String(3))
    total: Mapped[Decimal] = mapped_column(Numeric(18, 4), default=Decimal(0))
    base_currency: Mapped[str] = mapped_column(String(3))
    total_base: Mapped[Decimal] = mapped_column(Numeric(18, 4), default=Decimal(0))
    # The AppliedRate the order was priced at: 1 currency = fx_rate base_currency.
    fx_rate: Mapped[Decimal] = mapped_column(Numeric(28, 12))
    fx_rate_date: Mapped[dt.date] = mapped_column(Date)
    fx_source: Mapped[str] = mapped_column(String(64))
    fx_requested_date: Mapped[dt.date] = mapped_column(Date)
    automatic: Mapped[bool] = mapped_column(default=False)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    approved_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    approved_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    sent_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    acknowledged_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    # Bumped by every change after approval; outbound change orders (EDI 860) carry it.
    revision: Mapped[int] = mapped_column(Integer, default=0)
    note: Mapped[str] = mapped_column(Text, default="")

    supplier: Mapped[Supplier] = relationship()
    lines: Mapped[list[PurchaseOrderLine]] = relationship(
        back_populates="order", cascade="all, delete-orphan", order_by="PurchaseOrderLine.line_no"
    )
    history: Mapped[list[PurchaseOrderHistory]] = relationship(
        back_populates="order", cascade="all, delete-orphan", order_by="PurchaseOrderHistory.id"
    )

    @property
    def number(self) -> str:
        """The order number printed on documents."""
        return f"PO-{self.id:06d}"

    @property
    def applied_rate(self) -> AppliedRate:
        """The stored rate as the fx module's AppliedRate."""
        return AppliedRate(
            self.currency,
            self.base_currency,
            self.fx_rate,
            self.fx_rate_date,
            self.fx_source,
            self.fx_requested_date,
        )

    def set_rate(self, rate: AppliedRate) -> None:
        """Store the rate the order is priced at."""
        if rate.base != self.currency or rate.quote != self.base_currency:
            raise ValueError(f"rate {rate.base}->{rate.quote} does not fit this order")
        self.fx_rate = rate.rate
        self.fx_rate_date = rate.rate_date
        self.fx_source = rate.source
        self.fx_requested_date = rate.requested_date

    def recompute_totals(self) -> None:
        """Sum the rounded line totals and convert the sum at the stored rate."""
        totals = [Money.of(line.line_total, self.currency) for line in self.lines]
        total = sum_money(totals, self.currency)
        self.total = total.amount
        self.total_base = self.applied_rate.convert(total).amount


class PurchaseOrderLine(Base):
    """One part on an order: quantity, price, where the price came from, and what arrived."""

    __tablename__ = "purchase_order_lines"

    id: Mapped[int] = mapped_column(primary_key=True)
    purchase_order_id: Mapped[int] = mapped_column(
        ForeignKey("purchase_orders.id", ondelete="CASCADE"), index=True
    )
    line_no: Mapped[int] = mapped_column(Integer)
    part_id: Mapped[int] = mapped_column(ForeignKey("parts.id", ondelete="RESTRICT"))
    requisition_line_id: Mapped[int | None] = mapped_column(
        ForeignKey("requisition_lines.id", ondelete="SET NULL"), index=True
    )
    catalog_item_id: Mapped[int | None] = mapped_column(
        ForeignKey("catalog_items.id", ondelete="SET NULL")
    )
    contract_id: Mapped[int | None] = mapped_column(ForeignKey("contracts.id", ondelete="SET NULL"))
    stock_level_id: Mapped[int | None] = mapped_column(
        ForeignKey("stock_levels.id", ondelete="SET NULL")
    )
    quantity: Mapped[Decimal] = mapped_column(Numeric(14, 3))
    unit_price: Mapped[Decimal] = mapped_column(Numeric(18, 6))
    line_total: Mapped[Decimal] = mapped_column(Numeric(18, 4))
    need_by: Mapped[dt.date | None] = mapped_column(Date)
    received_quantity: Mapped[Decimal] = mapped_column(Numeric(14, 3), default=Decimal(0))
    rejected_quantity: Mapped[Decimal] = mapped_column(Numeric(14, 3), default=Decimal(0))
    shipped_quantity: Mapped[Decimal] = mapped_column(Numeric(14, 3), default=Decimal(0))
    invoiced_quantity: Mapped[Decimal] = mapped_column(Numeric(14, 3), default=Decimal(0))
    # The supplier's acknowledgement: status, and what it confirmed when it changed the line.
    ack_status: Mapped[LineAckStatus] = mapped_column(
        text_enum(LineAckStatus), default=LineAckStatus.PENDING
    )
    ack_quantity: Mapped[Decimal | None] = mapped_column(Numeric(14, 3))
    ack_unit_price: Mapped[Decimal | None] = mapped_column(Numeric(18, 6))
    promised_date: Mapped[dt.date | None] = mapped_column(Date)
    ack_note: Mapped[str] = mapped_column(Text, default="")
    explanation: Mapped[str] = mapped_column(Text, default="")

    order: Mapped[PurchaseOrder] = relationship(back_populates="lines")
    part: Mapped[Part] = relationship()
    contract: Mapped[Contract | None] = relationship()

    @property
    def outstanding(self) -> Decimal:
        """Quantity not yet received."""
        return max(self.quantity - self.received_quantity, Decimal(0))


class PurchaseOrderHistory(Base):
    """One status change of an order: from, to, who, when, why."""

    __tablename__ = "purchase_order_history"

    id: Mapped[int] = mapped_column(primary_key=True)
    purchase_order_id: Mapped[int] = mapped_column(
        ForeignKey("purchase_orders.id", ondelete="CASCADE"), index=True
    )
    from_status: Mapped[PoStatus | None] = mapped_column(text_enum(PoStatus))
    to_status: Mapped[PoStatus] = mapped_column(text_enum(PoStatus))
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
    note: Mapped[str] = mapped_column(Text, default="")
    # What a change or acknowledgement altered: [{"line": n, "field": f, "old": o, "new": n}, ...].
    detail: Mapped[list[dict[str, Any]] | None] = mapped_column(JSON)

    order: Mapped[PurchaseOrder] = relationship(back_populates="history")


def new_purchase_order(
    session: Session,
    *,
    supplier: Supplier,
    currency: str,
    base_currency: str,
    rate: AppliedRate,
    automatic: bool = False,
    created_by_id: int | None = None,
    now: dt.datetime | None = None,
) -> PurchaseOrder:
    """A draft order, its rate stored, with the creation in its history."""
    # Set explicitly: the column default only applies at flush, and add_line checks the status
    # of orders that have not been flushed yet.
    order = PurchaseOrder(
        status=PoStatus.DRAFT,
        supplier_id=supplier.id,
        supplier=supplier,
        currency=currency,
        base_currency=base_currency,
        automatic=automatic,
        created_by_id=created_by_id,
    )
    order.set_rate(rate)
    order.history.append(
        PurchaseOrderHistory(
            from_status=None,
            to_status=PoStatus.DRAFT,
            actor_id=created_by_id,
            at=now or utcnow(),
            note="created automatically" if automatic else "created",
        )
    )
    session.add(order)
    return order


def add_line(
    order: PurchaseOrder,
    *,
    part_id: int,
    quantity: Decimal,
    unit_price: Decimal,
    explanation: str = "",
    need_by: dt.date | None = None,
    requisition_line_id: int | None = None,
    catalog_item_id: int | None = None,
    contract_id: int | None = None,
    stock_level_id: int | None = None,
) -> PurchaseOrderLine:
    """Append a line (total rounded to the currency's minor unit) and refresh the totals."""
    if order.status is not PoStatus.DRAFT:
        raise PoTransitionError("lines can only be added to a draft order")
    if quantity <= 0 or unit_price < 0:
        raise ValueError("a line needs a positive quantity and a non-negative price")
    total = line_total(Money.of(unit_price, order.currency), quantity)
    line = PurchaseOrderLine(
        line_no=len(order.lines) + 1,
        part_id=part_id,
        quantity=quantity,
        unit_price=unit_price,
        line_total=total.amount,
        explanation=explanation,
        need_by=need_by,
        requisition_line_id=requisition_line_id,
        catalog_item_id=catalog_item_id,
        contract_id=contract_id,
        stock_level_id=stock_level_id,
    )
    order.lines.append(line)
    order.recompute_totals()
    return line


def move_order(
    order: PurchaseOrder,
    target: PoStatus,
    *,
    actor_id: int | None = None,
    note: str = "",
    now: dt.datetime | None = None,
) -> None:
    """Change an order's status through the machine, keeping the change in its history."""
    check_po_transition(order.status, target)
    order.history.append(
        PurchaseOrderHistory(
            from_status=order.status,
            to_status=target,
            actor_id=actor_id,
            at=now or utcnow(),
            note=note,
        )
    )
    order.status = target


@dataclass(frozen=True)
class ApprovalPolicy:
    """Who may approve how much, in base currency; None means no upper limit."""

    limits: Mapping[Role, Decimal | None] = field(
        default_factory=lambda: {Role.PROCUREMENT: Decimal(10_000), Role.ADMIN: None}
    )

    def refusal(self, role: Role, amount: Money) -> str | None:
        """Why the role may not approve this base-currency amount; None when it may."""
        if role not in self.limits:
            return f"the role {role.value} may not approve purchase orders"
        limit = self.limits[role]
        if limit is not None and amount.amount > limit:
            return (
                f"{amount} is above the {role.value} approval limit of "
                f"{Money.of(limit, amount.currency)}"
            )
        return None

    def check(self, role: Role, amount: Money) -> None:
        """Raise ApprovalRefused unless the role may approve this base-currency amount."""
        reason = self.refusal(role, amount)
        if reason is not None:
            raise ApprovalRefused(reason)


def _contract_amounts(order: PurchaseOrder) -> dict[int, Decimal]:
    amounts: dict[int, Decimal] = {}
    for line in order.lines:
        if line.contract_id is not None:
            amounts[line.contract_id] = amounts.get(line.contract_id, Decimal(0)) + line.line_total
    return amounts


def give_back_contract_spend(session: Session, order: PurchaseOrder) -> None:
    """Return what approving the order drew from its contracts' caps."""
    for contract_id, amount in _contract_amounts(order).items():
        contract = session.get(Contract, contract_id)
        if contract is not None:
            contract.draw(-amount)


def approve_order(
    session: Session,
    order: PurchaseOrder,
    *,
    approver_id: int,
    role: Role,
    policy: ApprovalPolicy,
    now: dt.datetime | None = None,
) -> None:
    """Approve a draft within the approver's limit and draw its contract lines down.

    An order that was sent before and came back for approval because a change raised its total
    goes straight back to "sent", and the change (its revision) goes to the supplier now.
    """
    check_po_transition(order.status, PoStatus.APPROVED)
    if not order.lines:
        raise ApprovalRefused("an order without lines cannot be approved")
    policy.check(role, Money.of(order.total_base, order.base_currency))
    for contract_id, amount in _contract_amounts(order).items():
        contract = session.get(Contract, contract_id)
        if contract is not None:
            if contract.currency != order.currency:
                raise ApprovalRefused(f"contract {contract.number} is not in {order.currency}")
            contract.draw(amount)
    when = now or utcnow()
    move_order(order, PoStatus.APPROVED, actor_id=approver_id, now=when, note="approved")
    order.approved_by_id = approver_id
    order.approved_at = when
    if order.sent_at is not None:
        move_order(
            order,
            PoStatus.SENT,
            actor_id=approver_id,
            now=when,
            note=f"revision {order.revision} sent to the supplier after approval",
        )
        session.flush()
        emit(session, CHANGED_TOPIC, {"order_id": order.id, "revision": order.revision})


def send_order(
    order: PurchaseOrder, *, actor_id: int | None = None, now: dt.datetime | None = None
) -> None:
    """Mark an approved order as sent; the outbox event hands it to the supplier's channel."""
    session = object_session(order)
    if session is None:
        raise ValueError("an order must belong to a session to be sent")
    when = now or utcnow()
    move_order(order, PoStatus.SENT, actor_id=actor_id, now=when, note="sent")
    order.sent_at = when
    if order.id is None:
        session.flush()
    emit(session, "purchase_order.sent", {"order_id": order.id})


def cancel_order(
    session: Session,
    order: PurchaseOrder,
    *,
    actor_id: int | None = None,
    reason: str = "",
    now: dt.datetime | None = None,
) -> None:
    """Cancel an order before anything arrived; approved spend goes back to its contracts."""
    if any(line.received_quantity > 0 for line in order.lines):
        raise PoTransitionError("an order with received goods cannot be cancelled")
    was_committed = order.status is not PoStatus.DRAFT
    move_order(order, PoStatus.CANCELLED, actor_id=actor_id, note=reason or "cancelled", now=now)
    if was_committed:
        give_back_contract_spend(session, order)
    # The need behind a cancelled order is still there: reopen its requisition lines. Imported
    # here because the requisitions module imports this one.
    from maintainpro.supply.requisitions import RequisitionLine, RequisitionLineStatus

    for line in order.lines:
        if line.requisition_line_id is not None:
            req = session.get(RequisitionLine, line.requisition_line_id)
            if req is not None and req.status is RequisitionLineStatus.ORDERED:
                req.status = RequisitionLineStatus.OPEN
