"""Pulling ERP changes into the hub: order status, goods receipts, vendors and items.

One run per connection: read the stored watermark, ``pull_changes`` from it (less a small
overlap), apply everything in one transaction, and only then store the new watermark. A pull
or apply that fails leaves the watermark where it was (the next run asks again) and records
the error. Applying is idempotent: a receipt is booked once per ERP receipt id, whatever the
watermark says.

What the ERP says is applied where our rules allow it; anything else is skipped, logged and
counted with its reason in the connection's sync state:

* statuses: cancelled, invoiced and closed move the order when the status machine allows it;
  receipt statuses (partially received, received) come from the goods receipts themselves, so
  stock and the three-way match never see an order received without quantities;
* receipts: booked with ``receive`` into the order line's storeroom; reversals (negative
  quantities) and receipts beyond the tolerance are skipped for a person to book;
* vendors: matched by supplier code (through ``vendor_numbers``): name, currency, blocked;
* items: matched by our part number: the description of the served suppliers' catalogue items.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from maintainpro.config import Settings
from maintainpro.core.audit import SYSTEM, set_actor
from maintainpro.core.db import utcnow
from maintainpro.core.inventory import Part
from maintainpro.supply.catalogs import CatalogError, CatalogItem, update_catalog_item
from maintainpro.supply.erp.base import (
    ErpChanges,
    ErpError,
    ErpItem,
    ErpOrderStatus,
    ErpReceipt,
    ErpStatusUpdate,
    ErpVendor,
)
from maintainpro.supply.erp_config import (
    Connect,
    ErpConnectionSpec,
    build_connector,
    erp_connections,
)
from maintainpro.supply.erp_records import (
    ErpLink,
    ErpReceiptRecord,
    ErpReceiptStatus,
    ErpSyncState,
)
from maintainpro.supply.purchasing import (
    PoStatus,
    PoTransitionError,
    PurchaseOrder,
    PurchaseOrderLine,
    cancel_order,
    check_po_transition,
    move_order,
)
from maintainpro.supply.receiving import ReceiptError, receive
from maintainpro.supply.suppliers import Supplier, SupplierStatus

log = logging.getLogger(__name__)

_OUR_NUMBER = re.compile(r"^PO-(\d{1,12})$")
MAX_REASONS = 50
# Each pull starts this far before the watermark. The connectors compare change stamps
# strictly and some ERPs stamp to the second while others stamp to the millisecond, so a record
# stamped in the watermark's own second could otherwise be missed; applying is idempotent, so
# what comes again changes nothing.
OVERLAP = dt.timedelta(minutes=2)
MAX_ERROR = 1000
# ERP statuses that move our order; the receipt statuses are left to the receipts (see above).
_STATUS_MOVES = {
    ErpOrderStatus.CANCELLED: PoStatus.CANCELLED,
    ErpOrderStatus.INVOICED: PoStatus.INVOICED,
    ErpOrderStatus.CLOSED: PoStatus.CLOSED,
}
_RECEIPT_STATUSES = {
    ErpOrderStatus.PARTIALLY_RECEIVED: PoStatus.PARTIALLY_RECEIVED,
    ErpOrderStatus.RECEIVED: PoStatus.RECEIVED,
}


@dataclass
class ApplyReport:
    """What one run did: counts per kind and outcome, and why records were skipped."""

    counts: Counter[str] = field(default_factory=Counter)
    reasons: list[str] = field(default_factory=list)

    def applied(self, kind: str) -> None:
        """Count a record that changed our data."""
        self.counts[f"{kind}.applied"] += 1

    def unchanged(self, kind: str) -> None:
        """Count a record that was already reflected."""
        self.counts[f"{kind}.unchanged"] += 1

    def skipped(self, kind: str, reason: str) -> None:
        """Count and log a record our rules refused."""
        self.counts[f"{kind}.skipped"] += 1
        log.info("ERP record skipped", extra={"kind": kind, "reason": reason})
        if len(self.reasons) < MAX_REASONS:
            self.reasons.append(f"{kind}: {reason}")

    @property
    def rows(self) -> int:
        """Records that changed our data."""
        return sum(n for key, n in self.counts.items() if key.endswith(".applied"))

    def as_json(self) -> dict[str, Any]:
        """The report for ErpSyncState.detail."""
        return {"counts": dict(sorted(self.counts.items())), "skipped": list(self.reasons)}


@dataclass(frozen=True)
class SyncOutcome:
    """One connection's run."""

    connector: str
    ok: bool
    rows: int
    watermark: dt.datetime | None
    error: str | None = None
    detail: dict[str, Any] = field(default_factory=dict)


# --- finding our records ------------------------------------------------------------------


def our_order_id(number: str | None) -> int | None:
    """The id inside one of our order numbers ("PO-000042" -> 42), None for anything else."""
    match = _OUR_NUMBER.match((number or "").strip())
    return int(match[1]) if match else None


def find_order(
    session: Session, connector: str, po_number: str | None, external_id: str | None
) -> PurchaseOrder | None:
    """Our order by the number the ERP carries, else by the link stored when it was pushed."""
    order_id = our_order_id(po_number)
    if order_id is None and external_id:
        order_id = session.scalar(
            select(ErpLink.order_id).where(
                ErpLink.system == connector, ErpLink.external_id == external_id
            )
        )
    if order_id is None:
        return None
    return session.get(PurchaseOrder, order_id, with_for_update=True)


def _served(spec: ErpConnectionSpec, supplier_code: str) -> bool:
    # A connection without a supplier list maintains every supplier it knows by code.
    return not spec.suppliers or supplier_code in spec.suppliers


# --- applying -----------------------------------------------------------------------------


def apply_status(
    session: Session,
    spec: ErpConnectionSpec,
    update: ErpStatusUpdate,
    report: ApplyReport,
    now: dt.datetime,
) -> None:
    """Move the order where the ERP's status and our status machine agree."""
    kind = "status"
    order = find_order(session, spec.name, update.po_number, update.external_id)
    if order is None:
        report.skipped(kind, f"{update.external_id}: no order of ours")
        return
    if update.status in _RECEIPT_STATUSES:
        wanted = _RECEIPT_STATUSES[update.status]
        if order.status is wanted:
            report.unchanged(kind)
        else:
            report.skipped(
                kind,
                f"{order.number}: {update.status} in {spec.name} while it is {order.status} "
                "here; receipt statuses follow the booked receipts",
            )
        return
    target = _STATUS_MOVES.get(update.status)
    if target is None:
        report.unchanged(kind)  # draft, approval and open states are the ERP's own business
        return
    if order.status is target:
        report.unchanged(kind)
        return
    note = f"{update.status} in {spec.name} ({update.erp_status or 'no code'})"
    try:
        check_po_transition(order.status, target)
        if target is PoStatus.CANCELLED:
            cancel_order(session, order, reason=note, now=now)
        else:
            move_order(order, target, note=note, now=now)
    except PoTransitionError as exc:
        report.skipped(kind, f"{order.number}: {exc}")
        return
    report.applied(kind)


def _order_line(order: PurchaseOrder, receipt: ErpReceipt) -> PurchaseOrderLine | str:
    if receipt.line_no is not None:
        for line in order.lines:
            if line.line_no == receipt.line_no:
                return line
        return f"{order.number} has no line {receipt.line_no}"
    matches = [line for line in order.lines if line.part.number == receipt.item_number]
    if len(matches) != 1:
        return f"{order.number}: item {receipt.item_number} is on {len(matches)} lines"
    return matches[0]


def _skip_receipt(
    session: Session,
    record: ErpReceiptRecord | None,
    spec: ErpConnectionSpec,
    receipt: ErpReceipt,
    order: PurchaseOrder | None,
    reason: str,
    report: ApplyReport,
) -> None:
    try:
        # A concurrent run may write the same record first; theirs then stands.
        with session.begin_nested():
            if record is None:
                record = ErpReceiptRecord(connector=spec.name, receipt_id=receipt.receipt_id[:120])
                session.add(record)
            record.purchase_order_id = order.id if order is not None else None
            record.quantity = receipt.quantity
            record.status = ErpReceiptStatus.SKIPPED
            record.reason = reason[:1000]
    except IntegrityError:
        pass
    report.skipped("receipt", f"{receipt.receipt_id}: {reason}")


def apply_receipt(
    session: Session,
    spec: ErpConnectionSpec,
    receipt: ErpReceipt,
    report: ApplyReport,
    tolerance_pct: Decimal,
) -> None:
    """Book an ERP receipt line once; a skipped one is tried again if it comes back."""
    kind = "receipt"
    record = session.scalar(
        select(ErpReceiptRecord).where(
            ErpReceiptRecord.connector == spec.name,
            ErpReceiptRecord.receipt_id == receipt.receipt_id[:120],
        )
    )
    if record is not None and record.status is ErpReceiptStatus.BOOKED:
        report.unchanged(kind)
        return
    order = find_order(session, spec.name, receipt.po_number, receipt.erp_order_number)
    if order is None:
        reason = f"order {receipt.po_number or receipt.erp_order_number} is not one of ours"
        _skip_receipt(session, record, spec, receipt, None, reason, report)
        return
    if receipt.quantity <= 0:
        reason = "a reversal: correct the receipt here by hand"
        _skip_receipt(session, record, spec, receipt, order, reason, report)
        return
    line = _order_line(order, receipt)
    if isinstance(line, str):
        _skip_receipt(session, record, spec, receipt, order, line, report)
        return
    try:
        # The claim (the unique row) and the booking commit together or not at all; a second
        # run booking the same receipt meanwhile makes this one's claim fail, undoing its
        # booking with the savepoint.
        with session.begin_nested():
            if record is None:
                record = ErpReceiptRecord(connector=spec.name, receipt_id=receipt.receipt_id[:120])
                session.add(record)
            record.purchase_order_id = order.id
            record.quantity = receipt.quantity
            record.status = ErpReceiptStatus.BOOKED
            record.reason = ""
            session.flush()
            outcome = receive(
                session,
                line,
                quantity=receipt.quantity,
                received_at=receipt.changed_at,
                tolerance_pct=tolerance_pct,
            )
            record.goods_receipt_id = outcome.receipt.id
            session.flush()
    except IntegrityError:
        report.unchanged(kind)
        return
    except (ReceiptError, PoTransitionError) as exc:
        existing = session.scalar(
            select(ErpReceiptRecord).where(
                ErpReceiptRecord.connector == spec.name,
                ErpReceiptRecord.receipt_id == receipt.receipt_id[:120],
            )
        )
        _skip_receipt(session, existing, spec, receipt, order, str(exc), report)
        return
    report.applied(kind)


def apply_vendor(
    session: Session, spec: ErpConnectionSpec, vendor: ErpVendor, report: ApplyReport
) -> None:
    """Bring a supplier's name, currency and blocked state in line with the ERP's vendor."""
    kind = "vendor"
    code = spec.our_code(vendor.number)
    if not _served(spec, code):
        report.unchanged(kind)
        return
    supplier = session.scalar(select(Supplier).where(Supplier.code == code))
    if supplier is None:
        report.skipped(kind, f"{vendor.number}: no supplier with code {code}")
        return
    changed = False
    name = vendor.name.strip()[:200]
    if name and supplier.legal_name != name:
        supplier.legal_name = name
        changed = True
    currency = (vendor.currency or "").strip().upper()
    if re.fullmatch(r"[A-Z]{3}", currency) and supplier.currency != currency:
        supplier.currency = currency
        changed = True
    if vendor.blocked and supplier.status is not SupplierStatus.BLOCKED:
        supplier.status = SupplierStatus.BLOCKED
        changed = True
    elif not vendor.blocked and supplier.status is SupplierStatus.BLOCKED:
        supplier.status = SupplierStatus.ACTIVE
        changed = True
    if changed:
        session.flush()
        report.applied(kind)
    else:
        report.unchanged(kind)


def apply_item(
    session: Session, spec: ErpConnectionSpec, item: ErpItem, report: ApplyReport
) -> None:
    """Update the description of the served suppliers' catalogue items for the ERP's item.

    The connectors' items carry no price, so prices stay with catalogue imports and EDI 832.
    """
    kind = "item"
    description = item.description.strip()
    part_id = session.scalar(select(Part.id).where(Part.number == item.number))
    if part_id is None or not description:
        report.unchanged(kind)
        return
    catalog = session.scalars(
        select(CatalogItem)
        .join(Supplier, Supplier.id == CatalogItem.supplier_id)
        .where(CatalogItem.part_id == part_id)
        .order_by(CatalogItem.id)
    ).all()
    changed = 0
    for entry in catalog:
        if not _served(spec, entry.supplier.code) or entry.description == description:
            continue
        try:
            update_catalog_item(session, entry, {"description": description})
        except CatalogError as exc:
            report.skipped(kind, f"{item.number}: {exc}")
            continue
        changed += 1
    if changed:
        report.applied(kind)
    else:
        report.unchanged(kind)


def apply_changes(
    session: Session,
    spec: ErpConnectionSpec,
    changes: ErpChanges,
    *,
    tolerance_pct: Decimal = Decimal(0),
    now: dt.datetime | None = None,
) -> ApplyReport:
    """Apply one pull: vendors, items, receipts, then statuses (receipts first, so a received
    status finds its quantities already booked). The caller commits."""
    when = now or utcnow()
    report = ApplyReport()
    for vendor in changes.vendors:
        apply_vendor(session, spec, vendor, report)
    for item in changes.items:
        apply_item(session, spec, item, report)
    for receipt in _in_order(changes.receipts):
        apply_receipt(session, spec, receipt, report, tolerance_pct)
    for update in sorted(changes.statuses, key=lambda u: u.changed_at):
        apply_status(session, spec, update, report, when)
    return report


def _in_order(receipts: Iterable[ErpReceipt]) -> list[ErpReceipt]:
    return sorted(receipts, key=lambda r: (r.changed_at, r.receipt_id))


# --- the job ------------------------------------------------------------------------------


def _state(session: Session, spec: ErpConnectionSpec, *, lock: bool = False) -> ErpSyncState:
    state = session.get(ErpSyncState, spec.name, with_for_update=lock)
    if state is None:
        state = ErpSyncState(connector=spec.name, system=spec.system, rows=0, detail={})
        session.add(state)
        session.flush()
    return state


def _fail(
    factory: sessionmaker[Session], spec: ErpConnectionSpec, error: str, now: dt.datetime
) -> SyncOutcome:
    log.warning("ERP sync failed", extra={"erp": spec.name, "error": error})
    with factory() as session, session.begin():
        state = _state(session, spec, lock=True)
        state.last_run_at = now
        state.last_error = error[:MAX_ERROR]
        watermark = state.watermark
    return SyncOutcome(spec.name, ok=False, rows=0, watermark=watermark, error=error[:MAX_ERROR])


def sync_connection(
    factory: sessionmaker[Session],
    spec: ErpConnectionSpec,
    *,
    tolerance_pct: Decimal = Decimal(0),
    connect: Connect = build_connector,
    now: dt.datetime | None = None,
) -> SyncOutcome:
    """Pull one connection's changes from its watermark and apply them; never raises."""
    when = now or utcnow()
    with factory() as session, session.begin():
        stored = _state(session, spec).watermark
    since = stored - OVERLAP if stored is not None else spec.start_at
    try:
        connector = connect(spec)
    except Exception as exc:  # noqa: BLE001 - a broken connection is reported, never fatal
        return _fail(factory, spec, f"{type(exc).__name__}: {exc}", when)
    try:
        changes = connector.pull_changes(since)
    except ErpError as exc:
        return _fail(factory, spec, str(exc), when)
    except Exception as exc:  # noqa: BLE001 - same: the job must go on with other connections
        return _fail(factory, spec, f"{type(exc).__name__}: {exc}", when)
    finally:
        connector.close()
    try:
        with factory() as session, session.begin():
            set_actor(session, SYSTEM)
            # Locked, so a manual run and the job apply one after the other.
            state = _state(session, spec, lock=True)
            report = apply_changes(session, spec, changes, tolerance_pct=tolerance_pct, now=when)
            # Never backwards: a slower run that pulled earlier must not undo a faster one.
            state.watermark = max(filter(None, (state.watermark, changes.watermark)))
            state.last_run_at = when
            state.last_success_at = when
            state.last_error = None
            state.rows = report.rows
            state.detail = report.as_json()
            watermark = state.watermark
    except Exception as exc:  # noqa: BLE001 - rolled back; the watermark stays for the retry
        return _fail(factory, spec, f"applying failed: {type(exc).__name__}: {exc}", when)
    log.info("ERP sync", extra={"erp": spec.name, "rows": report.rows})
    return SyncOutcome(spec.name, True, report.rows, watermark, None, report.as_json())


def sync_all(
    factory: sessionmaker[Session],
    settings: Settings,
    *,
    only: str | None = None,
    connect: Connect = build_connector,
    now: dt.datetime | None = None,
) -> list[SyncOutcome]:
    """Run every pulling connection (or the one named); a failing one does not stop others."""
    outcomes = []
    for spec in erp_connections(settings):
        if not spec.pull or (only is not None and spec.name != only):
            continue
        outcomes.append(
            sync_connection(
                factory,
                spec,
                tolerance_pct=settings.receipt_tolerance_pct,
                connect=connect,
                now=now,
            )
        )
    return outcomes


def sync_states(session: Session, specs: Iterable[ErpConnectionSpec]) -> list[dict[str, Any]]:
    """Every configured connection with its stored state (never run: empty state)."""
    rows = {s.connector: s for s in session.scalars(select(ErpSyncState))}
    result = []
    for spec in specs:
        state = rows.get(spec.name)
        result.append(
            {
                "connector": spec.name,
                "system": spec.system,
                "pull": spec.pull,
                "suppliers": list(spec.suppliers),
                "watermark": state.watermark if state else None,
                "last_run_at": state.last_run_at if state else None,
                "last_success_at": state.last_success_at if state else None,
                "last_error": state.last_error if state else None,
                "rows": state.rows if state else 0,
                "detail": state.detail if state else {},
            }
        )
    return result
