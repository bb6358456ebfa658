"""Supplier acknowledgements: each line accepted, changed (quantity, price, date) or rejected."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from sqlalchemy.orm import Session

from maintainpro.core.db import utcnow
from maintainpro.supply.order_changes import (
    LineFacts,
    apply_line_terms,
    detail,
    facts_of,
    json_value,
    reopen_requisition,
    settle_progress,
)
from maintainpro.supply.purchasing import (
    LineAckStatus,
    PoStatus,
    PoTransitionError,
    PurchaseOrder,
    PurchaseOrderHistory,
    move_order,
)
from maintainpro.supply.shipments import DocumentSource

S = PoStatus
# A supplier may answer (or answer again) from the moment the order is sent until it is all here.
ACKNOWLEDGEABLE = frozenset(
    {S.SENT, S.ACKNOWLEDGED, S.PARTIALLY_SHIPPED, S.SHIPPED, S.PARTIALLY_RECEIVED}
)


class AcknowledgementError(ValueError):
    """An acknowledgement that does not fit the order."""


@dataclass(frozen=True)
class LineAck:
    """The supplier's answer for one line; quantity, price and date only where it says so."""

    line_no: int
    status: LineAckStatus
    quantity: Decimal | None = None
    unit_price: Decimal | None = None
    promised_date: dt.date | None = None
    note: str = ""


def _check_line(ack: LineAck, facts: LineFacts, current: LineAckStatus) -> list[str]:
    n = ack.line_no
    problems: list[str] = []
    if ack.quantity is not None and (not ack.quantity.is_finite() or ack.quantity <= 0):
        problems.append(f"line {n}: the quantity must be positive (reject the line instead)")
    if ack.unit_price is not None and (not ack.unit_price.is_finite() or ack.unit_price < 0):
        problems.append(f"line {n}: the unit price cannot be negative")
    if problems:
        return problems
    if not facts.on_order:
        if ack.status is LineAckStatus.REJECTED and current is LineAckStatus.REJECTED:
            return []  # the same rejection sent again
        return [f"line {n} is no longer on order"]
    if ack.status is LineAckStatus.ACCEPTED:
        if ack.quantity not in (None, facts.quantity) or ack.unit_price not in (
            None,
            facts.unit_price,
        ):
            problems.append(f"line {n}: accepted with another quantity or price; send 'changed'")
    elif ack.status is LineAckStatus.CHANGED:
        if ack.quantity is None and ack.unit_price is None and ack.promised_date is None:
            problems.append(f"line {n}: 'changed' needs a quantity, unit price or promised date")
        elif ack.quantity is not None and ack.quantity < facts.received_quantity:
            problems.append(
                f"line {n}: {json_value(facts.received_quantity)} already received, "
                f"more than {json_value(ack.quantity)}"
            )
    elif ack.status is LineAckStatus.REJECTED:
        if not ack.note.strip():
            problems.append(f"line {n}: a rejection needs a reason")
        if ack.quantity is not None or ack.unit_price is not None or ack.promised_date:
            problems.append(f"line {n}: a rejection carries no quantity, price or date")
        if facts.received_quantity > 0 or facts.shipped_quantity > 0:
            problems.append(f"line {n}: goods are already shipped or received")
    else:
        problems.append(f"line {n}: answer accepted, changed or rejected")
    return problems


def validate_acknowledgement(
    status: PoStatus,
    lines: Mapping[int, LineFacts],
    acks: Sequence[LineAck],
    *,
    current: Mapping[int, LineAckStatus] | None = None,
) -> None:
    """Raise PoTransitionError for an order not out with the supplier, else list bad lines."""
    if status in (S.DRAFT, S.APPROVED):
        raise PoTransitionError(f"the order is {status}: it was not sent, nothing to acknowledge")
    if status not in ACKNOWLEDGEABLE:
        raise PoTransitionError(f"the order is {status}: it can no longer be acknowledged")
    if not acks:
        raise AcknowledgementError("an acknowledgement needs at least one line")
    problems: list[str] = []
    seen: set[int] = set()
    for ack in acks:
        if ack.line_no in seen:
            problems.append(f"line {ack.line_no} is answered twice")
            continue
        seen.add(ack.line_no)
        facts = lines.get(ack.line_no)
        if facts is None:
            problems.append(f"line {ack.line_no} is not on the order")
            continue
        state = (current or {}).get(ack.line_no, LineAckStatus.PENDING)
        problems += _check_line(ack, facts, state)
    if problems:
        raise AcknowledgementError("; ".join(problems))


def acknowledge_order(
    session: Session,
    order: PurchaseOrder,
    acks: Sequence[LineAck],
    *,
    actor_id: int | None = None,
    source: DocumentSource = DocumentSource.MANUAL,
    note: str = "",
    now: dt.datetime | None = None,
) -> PurchaseOrderHistory:
    """Apply the supplier's answer per line and record what it changed in the order history."""
    when = now or utcnow()
    current = {line.line_no: line.ack_status for line in order.lines}
    validate_acknowledgement(order.status, facts_of(order), acks, current=current)
    lines = {line.line_no: line for line in order.lines}
    details: list[dict[str, Any]] = []
    plan: dict[int, tuple[Decimal, Decimal]] = {}
    dropped = []
    for ack in sorted(acks, key=lambda a: a.line_no):
        line = lines[ack.line_no]
        if ack.status is LineAckStatus.REJECTED and line.quantity == 0:
            continue  # already rejected: nothing new
        if line.ack_status is not ack.status:
            details.append(detail(line.line_no, "ack_status", line.ack_status, ack.status))
        line.ack_status = ack.status
        line.ack_note = ack.note
        if ack.status is LineAckStatus.REJECTED:
            # Nothing more is expected on the line; what was ordered stays in the detail.
            plan[line.line_no] = (line.received_quantity, line.unit_price)
            line.ack_quantity, line.ack_unit_price = Decimal(0), None
            dropped.append(line)
            continue
        quantity = ack.quantity if ack.quantity is not None else line.quantity
        price = ack.unit_price if ack.unit_price is not None else line.unit_price
        if (quantity, price) != (line.quantity, line.unit_price):
            plan[line.line_no] = (quantity, price)
        line.ack_quantity, line.ack_unit_price = quantity, price
        if ack.promised_date is not None and ack.promised_date != line.promised_date:
            details.append(
                detail(line.line_no, "promised_date", line.promised_date, ack.promised_date)
            )
            line.promised_date = ack.promised_date
    details += apply_line_terms(session, order, plan)
    for line in dropped:
        if reopen_requisition(session, line):
            details.append(detail(line.line_no, "requisition", "ordered", "open"))
    if order.acknowledged_at is None:
        order.acknowledged_at = when
    summary = _summary(acks, source, note)
    if order.status is S.SENT:
        move_order(order, S.ACKNOWLEDGED, actor_id=actor_id, now=when, note=summary)
        entry = order.history[-1]
        entry.detail = details
    else:
        entry = PurchaseOrderHistory(
            from_status=order.status,
            to_status=order.status,
            actor_id=actor_id,
            at=when,
            note=summary,
            detail=details,
        )
        order.history.append(entry)
    settle_progress(order, actor_id=actor_id, now=when, note="rejected lines expect nothing")
    return entry


def _summary(acks: Sequence[LineAck], source: DocumentSource, note: str) -> str:
    counts = {s: sum(1 for a in acks if a.status is s) for s in LineAckStatus}
    parts = [f"{counts[s]} {s.value}" for s in LineAckStatus if counts[s]]
    text = f"acknowledged ({source.value}): " + ", ".join(parts)
    return text + (f"; {note}" if note else "")
