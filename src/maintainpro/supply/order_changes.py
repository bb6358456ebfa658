"""Changes to approved or sent orders: quantity, price and need-by date per line, line cancel."""

from __future__ import annotations

import datetime as dt
import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from sqlalchemy.orm import Session

from maintainpro.core.db import utcnow
from maintainpro.core.events import emit
from maintainpro.core.users import Role, User
from maintainpro.supply.contracts import Contract, ContractError
from maintainpro.supply.money import Money, line_total, sum_money
from maintainpro.supply.purchasing import CHANGED_TOPIC as CHANGED_TOPIC  # dispatch, EDI, ERP
from maintainpro.supply.purchasing import (
    PO_TRANSITIONS,
    ApprovalPolicy,
    LineAckStatus,
    PoStatus,
    PoTransitionError,
    PurchaseOrder,
    PurchaseOrderHistory,
    PurchaseOrderLine,
    give_back_contract_spend,
    move_order,
)
from maintainpro.supply.requisitions import RequisitionLine, RequisitionLineStatus

S = PoStatus
# After approval and until everything has arrived an order can still be changed; a draft is
# edited directly and a received order is history.
CHANGEABLE = frozenset(
    {S.APPROVED, S.SENT, S.ACKNOWLEDGED, S.PARTIALLY_SHIPPED, S.SHIPPED, S.PARTIALLY_RECEIVED}
)
# Where a change beyond the approver's limit can send an order back to draft: nothing has been
# shipped or received against it yet, so waiting for approval holds up no goods in transit.
REAPPROVABLE = frozenset({S.APPROVED, S.SENT, S.ACKNOWLEDGED})
# The limits the approve route uses by default; callers with configured limits pass their own.
DEFAULT_POLICY = ApprovalPolicy()


class OrderChangeError(ValueError):
    """A change that does not fit the order's lines."""


@dataclass(frozen=True)
class LineFacts:
    """What the rules need to know about one order line."""

    quantity: Decimal
    unit_price: Decimal
    received_quantity: Decimal = Decimal(0)
    shipped_quantity: Decimal = Decimal(0)
    need_by: dt.date | None = None

    @classmethod
    def of(cls, line: PurchaseOrderLine) -> LineFacts:
        """The facts of a stored line."""
        return cls(
            quantity=line.quantity,
            unit_price=line.unit_price,
            received_quantity=line.received_quantity,
            shipped_quantity=line.shipped_quantity,
            need_by=line.need_by,
        )

    @property
    def on_order(self) -> bool:
        """Whether anything is still expected or was delivered (a cancelled line holds 0)."""
        return self.quantity > 0


@dataclass(frozen=True)
class LineChange:
    """New terms for one line; None leaves that term as it is."""

    line_no: int
    quantity: Decimal | None = None
    unit_price: Decimal | None = None
    need_by: dt.date | None = None


def facts_of(order: PurchaseOrder) -> dict[int, LineFacts]:
    """The order's lines by line number, as facts for the pure checks."""
    return {line.line_no: LineFacts.of(line) for line in order.lines}


def json_value(value: object) -> Any:
    """A value as history detail stores it: decimals and dates as text, enums by value."""
    if isinstance(value, Decimal):
        return f"{value.normalize():f}" if value != 0 else "0"
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, enum.Enum):
        return value.value
    return value


def detail(line_no: int, field: str, old: object, new: object) -> dict[str, Any]:
    """One entry of a history detail list."""
    return {"line": line_no, "field": field, "old": json_value(old), "new": json_value(new)}


def validate_changes(
    status: PoStatus, lines: Mapping[int, LineFacts], changes: Sequence[LineChange]
) -> None:
    """Raise PoTransitionError for an order past changing, OrderChangeError for bad changes."""
    if status not in CHANGEABLE:
        raise PoTransitionError(f"an order that is {status} cannot be changed")
    if not changes:
        raise OrderChangeError("a change needs at least one line")
    problems: list[str] = []
    seen: set[int] = set()
    for change in changes:
        n = change.line_no
        if n in seen:
            problems.append(f"line {n} is changed twice")
            continue
        seen.add(n)
        facts = lines.get(n)
        if facts is None:
            problems.append(f"line {n} is not on the order")
            continue
        if not facts.on_order:
            problems.append(f"line {n} is cancelled")
            continue
        if change.quantity is None and change.unit_price is None and change.need_by is None:
            problems.append(f"line {n}: name a new quantity, unit price or need-by date")
            continue
        if change.quantity is not None:
            if not change.quantity.is_finite() or change.quantity <= 0:
                problems.append(
                    f"line {n}: the quantity must be positive (cancel the line instead)"
                )
            elif change.quantity < facts.received_quantity:
                problems.append(
                    f"line {n}: {json_value(facts.received_quantity)} already received, "
                    f"cannot reduce to {json_value(change.quantity)}"
                )
        if change.unit_price is not None and (
            not change.unit_price.is_finite() or change.unit_price < 0
        ):
            problems.append(f"line {n}: the unit price cannot be negative")
        unchanged = (
            change.quantity in (None, facts.quantity)
            and change.unit_price in (None, facts.unit_price)
            and change.need_by in (None, facts.need_by)
        )
        if unchanged:
            problems.append(f"line {n}: nothing differs from the order")
    if problems:
        raise OrderChangeError("; ".join(problems))


def _by_contract(lines: Sequence[tuple[int | None, Decimal]]) -> dict[int, Decimal]:
    amounts: dict[int, Decimal] = {}
    for contract_id, total in lines:
        if contract_id is not None:
            amounts[contract_id] = amounts.get(contract_id, Decimal(0)) + total
    return amounts


def apply_line_terms(
    session: Session,
    order: PurchaseOrder,
    plan: Mapping[int, tuple[Decimal, Decimal]],
) -> list[dict[str, Any]]:
    """Give lines (by number) a new quantity and price: totals, contract drawdown, detail.

    Contract room is checked before anything changes, so a refusal leaves the order untouched.
    """
    lines = {line.line_no: line for line in order.lines}
    new_totals = {
        n: line_total(Money.of(price, order.currency), quantity).amount
        for n, (quantity, price) in plan.items()
    }
    before = _by_contract([(line.contract_id, line.line_total) for line in order.lines])
    after = _by_contract(
        [(line.contract_id, new_totals.get(line.line_no, line.line_total)) for line in order.lines]
    )
    deltas = {c: after.get(c, Decimal(0)) - before.get(c, Decimal(0)) for c in before | after}
    contracts = {c: session.get(Contract, c) for c, delta in deltas.items() if delta != 0}
    for contract_id, contract in contracts.items():
        if (
            contract is not None
            and deltas[contract_id] > 0
            and not contract.covers(deltas[contract_id])
        ):
            left = Money.of(contract.remaining or 0, contract.currency).format()
            more = Money.of(deltas[contract_id], contract.currency).format()
            raise ContractError(
                f"contract {contract.number} has {left} left, the change needs {more} more"
            )
    changes: list[dict[str, Any]] = []
    for n, (quantity, price) in sorted(plan.items()):
        line = lines[n]
        for field, old, new in (
            ("quantity", line.quantity, quantity),
            ("unit_price", line.unit_price, price),
            ("line_total", line.line_total, new_totals[n]),
        ):
            if old != new:
                changes.append(detail(n, field, old, new))
        line.quantity, line.unit_price, line.line_total = quantity, price, new_totals[n]
    order.recompute_totals()
    for contract_id, contract in contracts.items():
        if contract is not None:
            contract.draw(deltas[contract_id])
    return changes


def reapproval_reason(
    old_total: Money, new_total: Money, approver_role: Role, policy: ApprovalPolicy
) -> str | None:
    """Why a change needs approval again (base-currency totals); None when the approval holds.

    Only a raise can outgrow the approval: a change that lowers the total or keeps it within
    the limit of the role that approved the order stands on the approval it has.
    """
    if new_total.amount <= old_total.amount:
        return None
    refusal = policy.refusal(approver_role, new_total)
    if refusal is None:
        return None
    raised = f"from {old_total.format()} to {new_total.format()}"
    return f"the change raises the total {raised}: {refusal}"


def _approver_role(session: Session, order: PurchaseOrder) -> Role:
    # An approver no longer on record is held to the procurement limit, the one approval uses
    # for buyers; an administrator's approval has no limit to outgrow.
    approver = session.get(User, order.approved_by_id) if order.approved_by_id else None
    return approver.role if approver is not None else Role.PROCUREMENT


def _total_after(order: PurchaseOrder, plan: Mapping[int, tuple[Decimal, Decimal]]) -> Money:
    """The order's base-currency total once the plan is applied, computed without applying it."""
    totals = [
        line_total(Money.of(plan[line.line_no][1], order.currency), plan[line.line_no][0])
        if line.line_no in plan
        else Money.of(line.line_total, order.currency)
        for line in order.lines
    ]
    return order.applied_rate.convert(sum_money(totals, order.currency))


def back_to_approval(
    session: Session,
    order: PurchaseOrder,
    *,
    reason: str,
    actor_id: int | None,
    now: dt.datetime,
) -> None:
    """Return a changed order to draft to wait for approval, its contract spend given back.

    Approval draws the whole order from its contracts again, and a draft holds no spend (so a
    cancel from here has nothing to give back). The supplier hears of the change only once the
    order is approved again.
    """
    give_back_contract_spend(session, order)
    move_order(order, S.DRAFT, actor_id=actor_id, now=now, note=f"needs approval again: {reason}")
    order.approved_by_id = None
    order.approved_at = None


def reopen_requisition(session: Session, line: PurchaseOrderLine) -> bool:
    """Put the need behind a dropped line back on the requisition list; True if reopened."""
    if line.requisition_line_id is None:
        return False
    req = session.get(RequisitionLine, line.requisition_line_id)
    if req is None or req.status is not RequisitionLineStatus.ORDERED:
        return False
    req.status = RequisitionLineStatus.OPEN
    return True


def _try_move(
    order: PurchaseOrder, target: PoStatus, actor_id: int | None, now: dt.datetime, note: str
) -> None:
    if target is not order.status and target in PO_TRANSITIONS[order.status]:
        move_order(order, target, actor_id=actor_id, now=now, note=note)


def settle_progress(
    order: PurchaseOrder, *, actor_id: int | None, now: dt.datetime, note: str
) -> None:
    """Move the order forward when fewer goods are expected than before (never backwards).

    Lines that are cancelled or rejected expect nothing, so the rest may now be complete.
    """
    if any(line.received_quantity > 0 for line in order.lines):
        if all(line.received_quantity >= line.quantity for line in order.lines):
            _try_move(order, S.RECEIVED, actor_id, now, note)
        return
    if order.status in (S.SENT, S.ACKNOWLEDGED, S.PARTIALLY_SHIPPED) and any(
        line.shipped_quantity > 0 for line in order.lines
    ):
        done = all(line.shipped_quantity >= line.quantity for line in order.lines)
        _try_move(order, S.SHIPPED if done else S.PARTIALLY_SHIPPED, actor_id, now, note)


def _record(
    session: Session,
    order: PurchaseOrder,
    *,
    details: list[dict[str, Any]],
    actor_id: int | None,
    reason: str,
    now: dt.datetime,
    notify: bool = True,
) -> PurchaseOrderHistory:
    order.revision += 1
    note = f"revision {order.revision}" + (f": {reason}" if reason else "")
    entry = PurchaseOrderHistory(
        from_status=order.status,
        to_status=order.status,
        actor_id=actor_id,
        at=now,
        note=note,
        detail=details,
    )
    order.history.append(entry)
    settle_progress(order, actor_id=actor_id, now=now, note=f"after revision {order.revision}")
    if notify and order.sent_at is not None:
        # The supplier already has the order: the change has to reach them too.
        session.flush()
        emit(session, CHANGED_TOPIC, {"order_id": order.id, "revision": order.revision})
    return entry


def _ask_again(
    order: PurchaseOrder, line: PurchaseOrderLine, details: list[dict[str, Any]]
) -> None:
    # A supplier's acknowledgement covered the old terms; the new ones await a new answer.
    if order.sent_at is not None and line.ack_status is not LineAckStatus.PENDING:
        details.append(detail(line.line_no, "ack_status", line.ack_status, LineAckStatus.PENDING))
        line.ack_status = LineAckStatus.PENDING


def change_order(
    session: Session,
    order: PurchaseOrder,
    changes: Sequence[LineChange],
    *,
    actor_id: int | None = None,
    reason: str = "",
    policy: ApprovalPolicy = DEFAULT_POLICY,
    now: dt.datetime | None = None,
) -> PurchaseOrderHistory:
    """Change lines of an approved or sent order: a new revision, its history and event.

    A change that raises the base-currency total beyond the limit of the order's approver (see
    ``reapproval_reason``) sends the order back to draft to be approved again, and the supplier
    gets the revision only after that approval.
    """
    when = now or utcnow()
    validate_changes(order.status, facts_of(order), changes)
    lines = {line.line_no: line for line in order.lines}
    plan = {
        c.line_no: (
            c.quantity if c.quantity is not None else lines[c.line_no].quantity,
            c.unit_price if c.unit_price is not None else lines[c.line_no].unit_price,
        )
        for c in changes
        if c.quantity is not None or c.unit_price is not None
    }
    # Decided before anything changes, so a refusal leaves the order as it was.
    needs_approval = reapproval_reason(
        Money.of(order.total_base, order.base_currency),
        _total_after(order, plan),
        _approver_role(session, order),
        policy,
    )
    if needs_approval is not None and order.status not in REAPPROVABLE:
        raise PoTransitionError(
            f"{needs_approval}; an order that is {order.status} cannot go back for approval "
            "once goods are shipped or received"
        )
    details = apply_line_terms(session, order, plan)
    for change in changes:
        line = lines[change.line_no]
        if change.need_by is not None and change.need_by != line.need_by:
            details.append(detail(line.line_no, "need_by", line.need_by, change.need_by))
            line.need_by = change.need_by
        _ask_again(order, line, details)
    entry = _record(
        session,
        order,
        details=details,
        actor_id=actor_id,
        reason=reason,
        now=when,
        notify=needs_approval is None,
    )
    if needs_approval is not None:
        back_to_approval(session, order, reason=needs_approval, actor_id=actor_id, now=when)
    return entry


def cancel_line(
    session: Session,
    order: PurchaseOrder,
    line_no: int,
    *,
    actor_id: int | None = None,
    reason: str = "",
    now: dt.datetime | None = None,
) -> PurchaseOrderHistory:
    """Cancel what is still outstanding on a line; with every line cancelled, the order."""
    when = now or utcnow()
    if order.status not in CHANGEABLE:
        raise PoTransitionError(f"an order that is {order.status} cannot be changed")
    line = next((item for item in order.lines if item.line_no == line_no), None)
    if line is None:
        raise OrderChangeError(f"line {line_no} is not on the order")
    if line.quantity <= line.received_quantity:
        raise OrderChangeError(f"line {line_no} has nothing left to cancel")
    if line.shipped_quantity > line.received_quantity:
        raise OrderChangeError(
            f"line {line_no}: {json_value(line.shipped_quantity - line.received_quantity)} "
            "shipped and not "
            "yet received; receive or refuse the delivery first"
        )
    details = apply_line_terms(session, order, {line_no: (line.received_quantity, line.unit_price)})
    details.append(detail(line_no, "status", "open", "cancelled"))
    if line.received_quantity == 0 and reopen_requisition(session, line):
        details.append(detail(line_no, "requisition", "ordered", "open"))
    entry = _record(
        session,
        order,
        details=details,
        actor_id=actor_id,
        reason=reason or f"line {line_no} cancelled",
        now=when,
    )
    nothing_left = all(item.quantity == 0 for item in order.lines)
    if nothing_left and S.CANCELLED in PO_TRANSITIONS[order.status]:
        move_order(order, S.CANCELLED, actor_id=actor_id, now=when, note="every line cancelled")
    return entry
