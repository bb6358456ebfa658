"""Shipment tracking: carrier reports applied, lateness, ETAs for waiting work, deliveries.

* Carrier reports (the webhook; EDI 214 and manual events go through shipping directly) are
  recorded with ``record_carrier_event``: the latest occurrence sets the status, so reports
  that arrive out of order never move a shipment back. A report for a tracking number we do
  not know goes to the dead-letter list with the reason.
* Follow-ups happen once, whatever path the status came by, because a unique ShipmentAlert
  row is claimed first: ``shipment.late`` when the expected delivery passes without a delivery,
  ``shipment.exception`` for each exception scan, ``shipment.delivered`` when the carrier
  confirms the delivery, and a note on every open work order waiting for the shipment's parts
  whenever its ETA is new to that work order.
* A delivery confirmation does not book stock. The carrier saw the goods reach the dock, not
  what is in the boxes: quantities, damage and rejections are for the person at receiving.
  ``shipment.delivered`` tells them, and ``pending_receipts`` lists what waits to be booked.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from sqlalchemy import exists, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from maintainpro.core.audit import SYSTEM, set_actor
from maintainpro.core.db import utcnow
from maintainpro.core.events import OutboxEvent, emit
from maintainpro.core.inventory import Part
from maintainpro.core.work_orders import WorkOrder, WorkOrderNote
from maintainpro.supply.carrier_webhooks import CarrierReport
from maintainpro.supply.purchasing import RECEIVING_STATUSES, PurchaseOrder, PurchaseOrderLine
from maintainpro.supply.requisitions import RequisitionLine
from maintainpro.supply.shipments import (
    DocumentSource,
    Shipment,
    ShipmentEvent,
    ShipmentLine,
    ShipmentStatus,
)
from maintainpro.supply.shipping import ShipmentError, record_carrier_event
from maintainpro.supply.sourcing import qty_text
from maintainpro.supply.tracking_records import AlertKind, CarrierDeadLetter, ShipmentAlert

log = logging.getLogger(__name__)

LATE_TOPIC = "shipment.late"
EXCEPTION_TOPIC = "shipment.exception"
DELIVERED_TOPIC = "shipment.delivered"
SHIPMENT_TOPICS = (LATE_TOPIC, EXCEPTION_TOPIC, DELIVERED_TOPIC)
# Follow-ups look this far back, so switching tracking on does not announce years of history.
LOOKBACK = dt.timedelta(days=30)
MAX_DEAD_LETTER_CHARS = 65_536


# --- pure rules -------------------------------------------------------------------------


def is_late(shipment: Shipment, now: dt.datetime) -> bool:
    """Whether the expected delivery has passed without a delivery."""
    return (
        shipment.status is not ShipmentStatus.DELIVERED
        and shipment.expected_delivery is not None
        and shipment.expected_delivery < now
    )


def delivery_variance(shipment: Shipment) -> dt.timedelta | None:
    """Actual minus expected delivery (positive: late), when both are known."""
    if shipment.delivered_at is None or shipment.expected_delivery is None:
        return None
    return shipment.delivered_at - shipment.expected_delivery


def _when(moment: dt.datetime | None) -> str:
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M UTC") if moment else "unknown"


# --- claims -------------------------------------------------------------------------------


def _claimed(session: Session, shipment_id: int, kind: AlertKind, key: str) -> bool:
    return (
        session.scalar(
            select(ShipmentAlert.id).where(
                ShipmentAlert.shipment_id == shipment_id,
                ShipmentAlert.kind == kind,
                ShipmentAlert.key == key,
            )
        )
        is not None
    )


def claim(session: Session, shipment_id: int, kind: AlertKind, key: str, now: dt.datetime) -> bool:
    """Claim a follow-up; False when it was done before (by this or a concurrent run)."""
    if _claimed(session, shipment_id, kind, key):
        return False
    try:
        with session.begin_nested():
            session.add(ShipmentAlert(shipment_id=shipment_id, kind=kind, key=key, created_at=now))
    except IntegrityError:
        return False
    return True


# --- who waits for a shipment ---------------------------------------------------------------


@dataclass(frozen=True)
class Waiting:
    """An open work order waiting for an order line that is in a shipment."""

    work_order_id: int
    line: PurchaseOrderLine
    quantity: Decimal


def waiting_work_orders(session: Session, shipment: Shipment) -> list[Waiting]:
    """Open work orders whose requisitions the shipment's order lines fill."""
    rows = session.execute(
        select(WorkOrder, PurchaseOrderLine, ShipmentLine.quantity)
        .join(RequisitionLine, RequisitionLine.work_order_id == WorkOrder.id)
        .join(PurchaseOrderLine, PurchaseOrderLine.requisition_line_id == RequisitionLine.id)
        .join(ShipmentLine, ShipmentLine.purchase_order_line_id == PurchaseOrderLine.id)
        .where(ShipmentLine.shipment_id == shipment.id)
        .order_by(WorkOrder.id, PurchaseOrderLine.line_no)
    ).all()
    return [Waiting(wo.id, line, qty) for wo, line, qty in rows if wo.is_open]


def _carrier(shipment: Shipment) -> str:
    name = shipment.carrier_name or shipment.carrier_scac or "carrier unknown"
    return f"{name} {shipment.tracking_number}" if shipment.tracking_number else name


def _part_label(session: Session, line: PurchaseOrderLine) -> str:
    part = session.get(Part, line.part_id)
    return part.number if part is not None else str(line.part_id)


def _note_work_orders(
    session: Session, shipment: Shipment, now: dt.datetime, *, delivered: bool
) -> list[int]:
    """Tell each waiting work order the shipment's ETA (once per ETA) or its delivery."""
    noted: list[int] = []
    by_order: dict[int, list[Waiting]] = {}
    for item in waiting_work_orders(session, shipment):
        by_order.setdefault(item.work_order_id, []).append(item)
    order = shipment.order
    for wo_id, items in by_order.items():
        moment = shipment.delivered_at if delivered else shipment.expected_delivery
        if moment is None:
            continue
        kind = AlertKind.DELIVERED if delivered else AlertKind.ETA_NOTE
        key = f"wo{wo_id}" if delivered else f"wo{wo_id}@{moment.isoformat()}"
        if not claim(session, shipment.id, kind, key, now):
            continue
        parts = ", ".join(
            f"{qty_text(item.quantity)} x {_part_label(session, item.line)} "
            f"({order.number} line {item.line.line_no})"
            for item in items
        )
        body = (
            f"Parts delivered {_when(moment)}: {parts}, shipment {shipment.shipment_number} "
            f"({_carrier(shipment)}); waiting to be booked at receiving."
            if delivered
            else f"Parts on the way: {parts}, shipment {shipment.shipment_number} "
            f"({_carrier(shipment)}); expected {_when(moment)}."
        )
        session.add(WorkOrderNote(work_order_id=wo_id, body=body, created_at=now))
        noted.append(wo_id)
    if noted:
        session.flush()
    return noted


# --- events ---------------------------------------------------------------------------------


def _payload(
    shipment: Shipment, severity: str, title: str, reason: str, work_orders: Sequence[int]
) -> dict[str, Any]:
    order = shipment.order
    return {
        "shipment_id": shipment.id,
        "shipment_number": shipment.shipment_number,
        "purchase_order_id": order.id,
        "purchase_order_number": order.number,
        "supplier_id": shipment.supplier_id,
        "tracking_number": shipment.tracking_number,
        "carrier": shipment.carrier_name or shipment.carrier_scac,
        "status": shipment.status.value,
        "expected_delivery": _iso(shipment.expected_delivery),
        "delivered_at": _iso(shipment.delivered_at),
        "work_order_ids": list(work_orders),
        "severity": severity,
        "title": title,
        "reason": reason,
        "url": f"/api/v1/shipments/{shipment.id}",
    }


def _iso(moment: dt.datetime | None) -> str | None:
    return moment.isoformat() if moment is not None else None


def _waiting_ids(session: Session, shipment: Shipment) -> list[int]:
    return sorted({w.work_order_id for w in waiting_work_orders(session, shipment)})


@dataclass
class FollowUp:
    """What follow-ups did: events emitted and work orders noted."""

    events: list[OutboxEvent] = field(default_factory=list)
    noted_work_orders: list[int] = field(default_factory=list)

    def add(self, other: FollowUp) -> None:
        """Merge another follow-up into this one."""
        self.events.extend(other.events)
        self.noted_work_orders.extend(other.noted_work_orders)


def follow_up(session: Session, shipment: Shipment, now: dt.datetime) -> FollowUp:
    """Delivered, exception and ETA follow-ups for one shipment, each done once."""
    result = FollowUp()
    receiving = shipment.order.status in RECEIVING_STATUSES
    if shipment.status is ShipmentStatus.DELIVERED:
        if claim(session, shipment.id, AlertKind.DELIVERED, "", now) and receiving:
            waiting = _waiting_ids(session, shipment)
            title = (
                f"Shipment {shipment.shipment_number} for {shipment.order.number} delivered "
                f"{_when(shipment.delivered_at)}"
            )
            result.events.append(
                emit(
                    session,
                    DELIVERED_TOPIC,
                    _payload(
                        shipment,
                        "info",
                        title,
                        "the carrier confirmed the delivery: check the goods and book the receipt",
                        waiting,
                    ),
                )
            )
            result.noted_work_orders.extend(
                _note_work_orders(session, shipment, now, delivered=True)
            )
        return result
    if not receiving:
        return result
    for event in shipment.events:
        if event.status is not ShipmentStatus.EXCEPTION or event.recorded_at < now - LOOKBACK:
            continue
        if not claim(session, shipment.id, AlertKind.EXCEPTION, str(event.id), now):
            continue
        detail = f" ({event.raw_code})" if event.raw_code else ""
        where = f" at {event.location}" if event.location else ""
        title = (
            f"Shipment {shipment.shipment_number} for {shipment.order.number}: carrier exception"
        )
        result.events.append(
            emit(
                session,
                EXCEPTION_TOPIC,
                _payload(
                    shipment,
                    "major",
                    title,
                    f"the carrier reported a problem{detail}{where} {_when(event.occurred_at)}"
                    + (f": {event.note}" if event.note else ""),
                    _waiting_ids(session, shipment),
                ),
            )
        )
    result.noted_work_orders.extend(_note_work_orders(session, shipment, now, delivered=False))
    return result


def check_late(session: Session, now: dt.datetime) -> list[OutboxEvent]:
    """Emit ``shipment.late`` once per shipment whose expected delivery has passed."""
    candidates = session.scalars(
        select(Shipment)
        .join(PurchaseOrder, PurchaseOrder.id == Shipment.purchase_order_id)
        .where(
            Shipment.status != ShipmentStatus.DELIVERED,
            Shipment.expected_delivery.is_not(None),
            Shipment.expected_delivery < now,
            Shipment.expected_delivery >= now - LOOKBACK,
            PurchaseOrder.status.in_(RECEIVING_STATUSES),
            ~exists().where(
                ShipmentAlert.shipment_id == Shipment.id, ShipmentAlert.kind == AlertKind.LATE
            ),
        )
        .order_by(Shipment.id)
    ).all()
    events = []
    for shipment in candidates:
        if not is_late(shipment, now) or not claim(session, shipment.id, AlertKind.LATE, "", now):
            continue
        expected = shipment.expected_delivery
        if expected is None:
            continue
        hours = int((now - expected).total_seconds() // 3600)
        waiting = _waiting_ids(session, shipment)
        title = (
            f"Shipment {shipment.shipment_number} for {shipment.order.number} is late "
            f"(expected {_when(expected)})"
        )
        reason = f"no delivery {hours} h after the expected delivery" + (
            f"; {len(waiting)} work order(s) wait for its parts" if waiting else ""
        )
        severity = "major" if waiting else "warning"
        events.append(
            emit(session, LATE_TOPIC, _payload(shipment, severity, title, reason, waiting))
        )
    return events


@dataclass(frozen=True)
class CheckResult:
    """One pass of the shipment check."""

    late: list[int]
    events: int
    noted_work_orders: list[int]


def check_shipments(session: Session, now: dt.datetime | None = None) -> CheckResult:
    """Follow up recently changed shipments (any source), then look for late ones.

    The caller commits. Shipments from EDI 856/214, the portal, the ERP and manual entry are
    covered here; the webhook also follows up at once.
    """
    when = now or utcnow()
    since = when - LOOKBACK
    recent = session.scalars(
        select(Shipment)
        .join(PurchaseOrder, PurchaseOrder.id == Shipment.purchase_order_id)
        .where(
            or_(
                Shipment.updated_at >= since,
                exists().where(
                    ShipmentEvent.shipment_id == Shipment.id, ShipmentEvent.recorded_at >= since
                ),
            ),
            or_(
                PurchaseOrder.status.in_(RECEIVING_STATUSES),
                Shipment.status == ShipmentStatus.DELIVERED,
            ),
        )
        .order_by(Shipment.id)
    ).all()
    done = FollowUp()
    for shipment in recent:
        done.add(follow_up(session, shipment, when))
    late = check_late(session, when)
    return CheckResult(
        late=[int(e.payload["shipment_id"]) for e in late],
        events=len(done.events) + len(late),
        noted_work_orders=done.noted_work_orders,
    )


def shipment_check(factory: sessionmaker[Session], now: dt.datetime | None = None) -> CheckResult:
    """The periodic job: one transaction per pass."""
    with factory() as session, session.begin():
        set_actor(session, SYSTEM)
        result = check_shipments(session, now)
    if result.events or result.noted_work_orders:
        log.info(
            "shipment check",
            extra={"late": result.late, "events": result.events},
        )
    return result


# --- the carrier webhook --------------------------------------------------------------------


@dataclass(frozen=True)
class CarrierOutcome:
    """What a carrier report did."""

    shipment_ids: list[int]
    recorded: int
    duplicates: int
    dead_letter_id: int | None = None
    reason: str | None = None


def dead_letter(
    session: Session,
    *,
    fmt: str,
    reason: str,
    payload: str,
    tracking_number: str | None = None,
    now: dt.datetime | None = None,
) -> CarrierDeadLetter:
    """Keep a report (or part of one) that could not be applied, with the reason."""
    letter = CarrierDeadLetter(
        received_at=now or utcnow(),
        format=fmt,
        tracking_number=tracking_number[:64] if tracking_number else None,
        reason=reason[:500],
        payload=payload[:MAX_DEAD_LETTER_CHARS],
    )
    session.add(letter)
    session.flush()
    return letter


def apply_carrier_report(
    session: Session, report: CarrierReport, payload: str, now: dt.datetime | None = None
) -> CarrierOutcome:
    """Record a report's scans on every shipment with its tracking number; the caller commits.

    Unknown tracking numbers and unusable events end in the dead-letter list. An estimated
    delivery from the carrier replaces the expected one while the goods are on their way.
    """
    when = now or utcnow()
    shipments = session.scalars(
        select(Shipment)
        .where(Shipment.tracking_number == report.tracking_number)
        .order_by(Shipment.id)
        .with_for_update()
    ).all()
    if not shipments:
        reason = "unknown tracking number"
        letter = dead_letter(
            session,
            fmt=report.format,
            reason=reason,
            payload=payload,
            tracking_number=report.tracking_number,
            now=when,
        )
        return CarrierOutcome([], 0, 0, letter.id, reason)
    recorded = duplicates = 0
    problems = list(report.problems)
    for shipment in shipments:
        for scan in report.scans:
            before = len(shipment.events)
            try:
                record_carrier_event(
                    session,
                    shipment,
                    scan.status,
                    scan.occurred_at,
                    location=scan.location,
                    source=DocumentSource.CARRIER,
                    raw_code=scan.raw_code,
                    note=scan.message,
                    now=when,
                )
            except ShipmentError as exc:
                problems.append(str(exc))
                continue
            if len(shipment.events) > before:
                recorded += 1
            else:
                duplicates += 1
        estimate = report.estimated_delivery
        if (
            estimate is not None
            and shipment.status is not ShipmentStatus.DELIVERED
            and estimate >= shipment.shipped_at
            and estimate != shipment.expected_delivery
        ):
            shipment.expected_delivery = estimate
        session.flush()
        follow_up(session, shipment, when)
    letter_id = None
    if problems:
        letter_id = dead_letter(
            session,
            fmt=report.format,
            reason="; ".join(problems),
            payload=payload,
            tracking_number=report.tracking_number,
            now=when,
        ).id
    return CarrierOutcome(
        [s.id for s in shipments],
        recorded,
        duplicates,
        letter_id,
        "; ".join(problems) if problems else None,
    )


# --- what pages and the API show -------------------------------------------------------------


@dataclass(frozen=True)
class PartEta:
    """When one ordered part for a work order is expected, and from where that comes."""

    part_id: int
    part_number: str
    purchase_order_id: int
    purchase_order_number: str
    line_no: int
    outstanding: Decimal
    eta: dt.datetime | None
    # carrier (a shipment's expected delivery), delivered (waiting at receiving), promised
    # (the supplier's acknowledged date) or need_by (what we asked for; nothing better known).
    eta_source: str | None
    shipment_id: int | None = None
    shipment_number: str | None = None
    tracking_number: str | None = None
    carrier: str | None = None
    shipment_status: ShipmentStatus | None = None
    late: bool = False


@dataclass(frozen=True)
class PartsEta:
    """A work order's parts on order; ``eta`` is when the last of them is expected."""

    work_order_id: int
    eta: dt.datetime | None
    lines: list[PartEta]


def _day(day: dt.date | None) -> dt.datetime | None:
    return dt.datetime.combine(day, dt.time(0, 0), tzinfo=dt.UTC) if day is not None else None


def _line_eta(
    session: Session, line: PurchaseOrderLine, order: PurchaseOrder, now: dt.datetime
) -> PartEta:
    shipments = session.scalars(
        select(Shipment)
        .join(ShipmentLine, ShipmentLine.shipment_id == Shipment.id)
        .where(ShipmentLine.purchase_order_line_id == line.id)
        .order_by(Shipment.id)
    ).all()
    common: dict[str, Any] = {
        "part_id": line.part_id,
        "part_number": _part_label(session, line),
        "purchase_order_id": order.id,
        "purchase_order_number": order.number,
        "line_no": line.line_no,
        "outstanding": line.outstanding,
    }
    moving = [s for s in shipments if s.status is not ShipmentStatus.DELIVERED]
    chosen = max(
        (s for s in moving if s.expected_delivery is not None),
        key=lambda s: s.expected_delivery or now,
        default=None,
    )
    if chosen is None and not moving:
        delivered = [s for s in shipments if s.delivered_at is not None]
        if delivered:
            last = max(delivered, key=lambda s: s.delivered_at or now)
            return PartEta(
                **common,
                eta=last.delivered_at,
                eta_source="delivered",
                **_shipment_fields(last),
            )
    if chosen is not None:
        return PartEta(
            **common,
            eta=chosen.expected_delivery,
            eta_source="carrier",
            late=is_late(chosen, now),
            **_shipment_fields(chosen),
        )
    extra = _shipment_fields(moving[-1]) if moving else {}
    if line.promised_date is not None:
        return PartEta(**common, eta=_day(line.promised_date), eta_source="promised", **extra)
    if line.need_by is not None:
        return PartEta(**common, eta=_day(line.need_by), eta_source="need_by", **extra)
    return PartEta(**common, eta=None, eta_source=None, **extra)


def _shipment_fields(shipment: Shipment) -> dict[str, Any]:
    return {
        "shipment_id": shipment.id,
        "shipment_number": shipment.shipment_number,
        "tracking_number": shipment.tracking_number,
        "carrier": shipment.carrier_name or shipment.carrier_scac,
        "shipment_status": shipment.status,
    }


def eta_for_work_order(
    session: Session, wo_id: int, now: dt.datetime | None = None
) -> PartsEta | None:
    """The ETA of every part a work order waits for on open orders; None: no such work order.

    The work order's ETA is the latest of its lines', and None while any line has none.
    """
    if session.get(WorkOrder, wo_id) is None:
        return None
    when = now or utcnow()
    rows = session.execute(
        select(PurchaseOrderLine, PurchaseOrder)
        .join(PurchaseOrder, PurchaseOrder.id == PurchaseOrderLine.purchase_order_id)
        .join(RequisitionLine, RequisitionLine.id == PurchaseOrderLine.requisition_line_id)
        .where(
            RequisitionLine.work_order_id == wo_id,
            PurchaseOrder.status.in_(RECEIVING_STATUSES),
        )
        .order_by(PurchaseOrder.id, PurchaseOrderLine.line_no)
    ).all()
    lines = [_line_eta(session, line, order, when) for line, order in rows if line.outstanding > 0]
    known = [item.eta for item in lines if item.eta is not None]
    overall = max(known) if lines and len(known) == len(lines) else None
    return PartsEta(wo_id, overall, lines)


@dataclass(frozen=True)
class SuggestedLine:
    """One order line of a delivered shipment, and what receiving would book."""

    purchase_order_line_id: int
    line_no: int
    part_number: str
    shipped: Decimal
    outstanding: Decimal
    suggested: Decimal


@dataclass(frozen=True)
class ReceiptSuggestion:
    """A delivered shipment whose goods are not booked yet."""

    shipment_id: int
    shipment_number: str
    purchase_order_id: int
    purchase_order_number: str
    supplier_id: int
    delivered_at: dt.datetime | None
    lines: list[SuggestedLine]


def pending_receipts(session: Session) -> list[ReceiptSuggestion]:
    """Delivered shipments of orders still receiving, with the quantities left to book."""
    shipments = session.scalars(
        select(Shipment)
        .join(PurchaseOrder, PurchaseOrder.id == Shipment.purchase_order_id)
        .where(
            Shipment.status == ShipmentStatus.DELIVERED,
            PurchaseOrder.status.in_(RECEIVING_STATUSES),
        )
        .order_by(Shipment.delivered_at, Shipment.id)
    ).all()
    result = []
    for shipment in shipments:
        lines = [
            SuggestedLine(
                purchase_order_line_id=item.purchase_order_line_id,
                line_no=item.line.line_no,
                part_number=_part_label(session, item.line),
                shipped=item.quantity,
                outstanding=item.line.outstanding,
                suggested=min(item.quantity, item.line.outstanding),
            )
            for item in shipment.lines
        ]
        if any(line.suggested > 0 for line in lines):
            result.append(
                ReceiptSuggestion(
                    shipment_id=shipment.id,
                    shipment_number=shipment.shipment_number,
                    purchase_order_id=shipment.purchase_order_id,
                    purchase_order_number=shipment.order.number,
                    supplier_id=shipment.supplier_id,
                    delivered_at=shipment.delivered_at,
                    lines=lines,
                )
            )
    return result


def late_shipments(session: Session, now: dt.datetime | None = None) -> list[Shipment]:
    """Shipments of orders still receiving whose expected delivery has passed."""
    when = now or utcnow()
    return list(
        session.scalars(
            select(Shipment)
            .join(PurchaseOrder, PurchaseOrder.id == Shipment.purchase_order_id)
            .where(
                Shipment.status != ShipmentStatus.DELIVERED,
                Shipment.expected_delivery < when,
                PurchaseOrder.status.in_(RECEIVING_STATUSES),
            )
            .order_by(Shipment.expected_delivery, Shipment.id)
        )
    )
