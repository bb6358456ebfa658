"""The supplier portal's data layer: every read and write a supplier makes, scoped to its company.

A :class:`PortalScope` holds one supplier id, and each of its methods filters by it. Portal
routes reach orders, lines, shipments, invoices, catalogue items, messages and the scorecard
only through a scope, so tenant isolation lives here and nowhere else. An object of another
supplier is answered exactly like a missing one (:class:`PortalNotFound`), so ids cannot be
probed for existence. Order messages (shared with the buyers' API) and the attachment rules
live here too.
"""

from __future__ import annotations

import datetime as dt
import re
import unicodedata
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Final

from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session

from maintainpro.core.db import utcnow
from maintainpro.supply.acknowledgements import ACKNOWLEDGEABLE, LineAck, acknowledge_order
from maintainpro.supply.catalog_import import ImportReport, import_catalog
from maintainpro.supply.catalogs import CatalogItem, PriceChange, replace_price_breaks
from maintainpro.supply.invoices import InvoiceStatus, SupplierInvoice
from maintainpro.supply.invoicing import InvoiceIn, record_invoice
from maintainpro.supply.matching import Tolerances
from maintainpro.supply.performance import Period, Scorecard, ScorecardRules, scorecards
from maintainpro.supply.portal_records import OrderMessage, SupplierUser
from maintainpro.supply.purchasing import (
    OPEN_PO_STATUSES,
    LineAckStatus,
    PurchaseOrder,
    PurchaseOrderHistory,
    PurchaseOrderLine,
)
from maintainpro.supply.shipments import DocumentSource, Shipment
from maintainpro.supply.shipping import ShipmentOutcome, ShipNotice, record_shipment
from maintainpro.supply.suppliers import Supplier

LIST_LIMIT: Final = 500
MAX_MESSAGE_CHARS: Final = 5000
MAX_ATTACHMENT_BYTES: Final = 1024 * 1024
MAX_FILENAME_CHARS: Final = 100


class PortalNotFound(LookupError):
    """Missing or another supplier's: both are answered alike, revealing nothing."""


class MessageError(ValueError):
    """A message or attachment that is refused; the text says why without echoing the input."""


# --- attachments ------------------------------------------------------------------------------


@dataclass(frozen=True)
class FileKind:
    """An attachment type we accept: its extensions and how its content must begin."""

    content_type: str
    extensions: tuple[str, ...]
    magic: tuple[bytes, ...] = ()
    text: bool = False


_OOXML = b"PK\x03\x04"
ALLOWED_KINDS: Final[tuple[FileKind, ...]] = (
    FileKind("application/pdf", (".pdf",), (b"%PDF-",)),
    FileKind("image/png", (".png",), (b"\x89PNG\r\n\x1a\n",)),
    FileKind("image/jpeg", (".jpg", ".jpeg"), (b"\xff\xd8\xff",)),
    FileKind("text/plain", (".txt",), text=True),
    FileKind("text/csv", (".csv",), text=True),
    FileKind(
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", (".xlsx",), (_OOXML,)
    ),
    FileKind(
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        (".docx",),
        (_OOXML,),
    ),
)
_BY_EXTENSION: Final = {ext: kind for kind in ALLOWED_KINDS for ext in kind.extensions}
# What browsers and mail clients declare for the allowed files besides the canonical type.
_GENERIC_TYPES: Final = frozenset({"", "application/octet-stream", "application/vnd.ms-excel"})
_UNSAFE_NAME_CHARS = re.compile(r"[^A-Za-z0-9._()\- ]+")


@dataclass(frozen=True)
class Attachment:
    """A checked attachment: safe file name, canonical content type, the bytes."""

    name: str
    content_type: str
    data: bytes


def safe_filename(name: str) -> str:
    """A file name safe in a path and a header: the last path part, ASCII, no leading dots."""
    base = re.split(r"[\\/]", name)[-1]
    base = unicodedata.normalize("NFKD", base).encode("ascii", "ignore").decode()
    base = _UNSAFE_NAME_CHARS.sub("_", base).strip(" ._")
    base = re.sub(r"_{2,}", "_", base)
    stem, dot, ext = base.rpartition(".")
    if not dot:
        stem, ext = base, ""
    ext = ext.lower()[:10]
    stem = stem.strip(" ._")[: MAX_FILENAME_CHARS - len(ext) - 1] or "attachment"
    return f"{stem}.{ext}" if ext else stem


def check_attachment(
    filename: str,
    declared_type: str,
    data: bytes,
    *,
    max_bytes: int = MAX_ATTACHMENT_BYTES,
) -> Attachment:
    """Accept a file only if its extension is allowed, its content fits it and it is small.

    The stored type is the canonical one for the extension, never what the client declared,
    so a download can never be served as HTML or script.
    """
    if not data:
        raise MessageError("the attached file is empty")
    if len(data) > max_bytes:
        raise MessageError(f"attachments may be at most {max_bytes // 1024} KiB")
    name = safe_filename(filename)
    _, _, ext = name.rpartition(".")
    kind = _BY_EXTENSION.get(f".{ext}") if "." in name else None
    if kind is None:
        allowed = ", ".join(sorted(_BY_EXTENSION))
        raise MessageError(f"this type of file cannot be attached; allowed: {allowed}")
    declared = declared_type.split(";", 1)[0].strip().lower()
    if declared not in _GENERIC_TYPES and declared != kind.content_type:
        raise MessageError("the file's declared type does not match its extension")
    if kind.magic and not any(data.startswith(m) for m in kind.magic):
        raise MessageError(f"the file's content is not a {ext.upper()} file")
    if kind.text:
        try:
            text = data.decode("utf-8-sig")
        except UnicodeDecodeError:
            raise MessageError("text attachments must be UTF-8") from None
        if "\x00" in text:
            raise MessageError("text attachments cannot contain NUL characters")
    return Attachment(name, kind.content_type, data)


def download_headers(name: str) -> dict[str, str]:
    """Headers that make a browser save an attachment, never render or sniff it."""
    safe = safe_filename(name)
    return {
        "Content-Disposition": f'attachment; filename="{safe}"',
        "X-Content-Type-Options": "nosniff",
        # Even if a browser ignored the disposition, the document could run nothing.
        "Content-Security-Policy": "default-src 'none'; sandbox",
        "Cache-Control": "private, no-store",
    }


def _control_free(text: str) -> bool:
    return not any(unicodedata.category(ch) == "Cc" and ch not in "\n\r\t" for ch in text)


# --- messages (buyers and suppliers) ------------------------------------------------------------


def order_messages(session: Session, order_id: int) -> list[OrderMessage]:
    """The messages on an order, oldest first (callers check who may read the order)."""
    return list(
        session.scalars(
            select(OrderMessage)
            .where(OrderMessage.purchase_order_id == order_id)
            .order_by(OrderMessage.created_at, OrderMessage.id)
        )
    )


def post_order_message(
    session: Session,
    order: PurchaseOrder,
    *,
    body: str,
    author_id: int | None,
    from_supplier: bool,
    attachment: Attachment | None = None,
    now: dt.datetime | None = None,
) -> OrderMessage:
    """Add a message (text, an attachment, or both) to an order; the caller commits."""
    text = body.strip()
    if not text and attachment is None:
        raise MessageError("write a message or attach a file")
    if len(text) > MAX_MESSAGE_CHARS:
        raise MessageError(f"a message may have at most {MAX_MESSAGE_CHARS} characters")
    if not _control_free(text):
        raise MessageError("remove control characters from the message")
    message = OrderMessage(
        purchase_order_id=order.id,
        author_id=author_id,
        from_supplier=from_supplier,
        body=text,
        attachment_name=attachment.name if attachment else None,
        attachment_type=attachment.content_type if attachment else None,
        attachment=attachment.data if attachment else None,
        created_at=now or utcnow(),
    )
    session.add(message)
    session.flush()
    return message


def order_message(session: Session, order_id: int, message_id: int) -> OrderMessage | None:
    """One message of an order, or None (a message id of another order is None too)."""
    return session.scalar(
        select(OrderMessage).where(
            OrderMessage.id == message_id, OrderMessage.purchase_order_id == order_id
        )
    )


# --- portal users -------------------------------------------------------------------------------


def supplier_of_user(session: Session, user_id: int) -> int | None:
    """The supplier a portal user belongs to, or None for users without a link."""
    link = session.get(SupplierUser, user_id)
    return None if link is None else link.supplier_id


# --- the scope ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class PortalScope:
    """Everything one supplier may see and do, each query filtered by its supplier id."""

    session: Session
    supplier_id: int

    # Orders: only those sent to the supplier (drafts and approved orders are internal).

    def _orders(self) -> Select[PurchaseOrder]:
        return select(PurchaseOrder).where(
            PurchaseOrder.supplier_id == self.supplier_id, PurchaseOrder.sent_at.is_not(None)
        )

    def supplier(self) -> Supplier:
        """The supplier company itself."""
        found = self.session.get(Supplier, self.supplier_id)
        if found is None:
            raise PortalNotFound("supplier")
        return found

    def orders(self, *, open_only: bool = False, limit: int = LIST_LIMIT) -> list[PurchaseOrder]:
        """The supplier's orders, newest first; open_only keeps those still in progress."""
        stmt = self._orders().order_by(PurchaseOrder.id.desc()).limit(limit)
        if open_only:
            stmt = stmt.where(PurchaseOrder.status.in_(OPEN_PO_STATUSES))
        return list(self.session.scalars(stmt))

    def orders_awaiting_answer(self) -> list[PurchaseOrder]:
        """Orders with at least one line the supplier has not answered yet."""
        pending = (
            select(PurchaseOrderLine.purchase_order_id)
            .where(PurchaseOrderLine.ack_status == LineAckStatus.PENDING)
            .where(PurchaseOrderLine.quantity > 0)
        )
        stmt = (
            self._orders()
            .where(PurchaseOrder.status.in_(ACKNOWLEDGEABLE), PurchaseOrder.id.in_(pending))
            .order_by(PurchaseOrder.sent_at, PurchaseOrder.id)
            .limit(LIST_LIMIT)
        )
        return list(self.session.scalars(stmt))

    def order(self, order_id: int, *, lock: bool = False) -> PurchaseOrder:
        """One of the supplier's orders; lock=True takes the row lock a write needs."""
        stmt = self._orders().where(PurchaseOrder.id == order_id)
        if lock:
            # Writes on one order take turns (PostgreSQL), as in the buyers' API.
            stmt = stmt.with_for_update().execution_options(populate_existing=True)
        found = self.session.scalar(stmt)
        if found is None:
            raise PortalNotFound(f"purchase order {order_id}")
        return found

    def line_numbers(self, order: PurchaseOrder, line_ids: Iterable[int]) -> dict[int, int]:
        """Line id -> line number for ids on this order; any other id is not found."""
        own = {line.id: line.line_no for line in self.order(order.id).lines}
        wanted = list(line_ids)
        if any(line_id not in own for line_id in wanted):
            raise PortalNotFound("order line")
        return {line_id: own[line_id] for line_id in wanted}

    # Shipments and invoices.

    def shipments(self, order_id: int | None = None) -> list[Shipment]:
        """The supplier's ship notices (of one order), newest first."""
        stmt = select(Shipment).where(Shipment.supplier_id == self.supplier_id)
        if order_id is not None:
            stmt = stmt.where(Shipment.purchase_order_id == self.order(order_id).id)
        stmt = stmt.order_by(Shipment.id.desc()).limit(LIST_LIMIT)
        return list(self.session.scalars(stmt))

    def shipment(self, shipment_id: int) -> Shipment:
        """One of the supplier's ship notices."""
        found = self.session.scalar(
            select(Shipment).where(
                Shipment.id == shipment_id, Shipment.supplier_id == self.supplier_id
            )
        )
        if found is None:
            raise PortalNotFound(f"shipment {shipment_id}")
        return found

    def invoices(
        self, order_id: int | None = None, *, exceptions_only: bool = False
    ) -> list[SupplierInvoice]:
        """The supplier's invoices (of one order, or only those with exceptions), newest first."""
        stmt = select(SupplierInvoice).where(SupplierInvoice.supplier_id == self.supplier_id)
        if order_id is not None:
            stmt = stmt.where(SupplierInvoice.purchase_order_id == self.order(order_id).id)
        if exceptions_only:
            stmt = stmt.where(SupplierInvoice.status == InvoiceStatus.EXCEPTION)
        stmt = stmt.order_by(SupplierInvoice.id.desc()).limit(LIST_LIMIT)
        return list(self.session.scalars(stmt))

    def invoice(self, invoice_id: int) -> SupplierInvoice:
        """One of the supplier's invoices."""
        found = self.session.scalar(
            select(SupplierInvoice).where(
                SupplierInvoice.id == invoice_id, SupplierInvoice.supplier_id == self.supplier_id
            )
        )
        if found is None:
            raise PortalNotFound(f"invoice {invoice_id}")
        return found

    # Catalogue.

    def catalog_items(self) -> list[CatalogItem]:
        """The supplier's catalogue, by its part number."""
        return list(
            self.session.scalars(
                select(CatalogItem)
                .where(CatalogItem.supplier_id == self.supplier_id)
                .order_by(CatalogItem.supplier_part_number)
            )
        )

    def catalog_item(self, item_id: int) -> CatalogItem:
        """One of the supplier's catalogue items."""
        found = self.session.scalar(
            select(CatalogItem).where(
                CatalogItem.id == item_id, CatalogItem.supplier_id == self.supplier_id
            )
        )
        if found is None:
            raise PortalNotFound(f"catalogue item {item_id}")
        return found

    def price_changes(self, item_id: int, *, limit: int = 50) -> list[PriceChange]:
        """The price history of one of the supplier's items, newest first."""
        item = self.catalog_item(item_id)
        return list(
            self.session.scalars(
                select(PriceChange)
                .where(PriceChange.catalog_item_id == item.id)
                .order_by(PriceChange.changed_at.desc(), PriceChange.id.desc())
                .limit(limit)
            )
        )

    # Messages.

    def messages(self, order_id: int) -> list[OrderMessage]:
        """The messages on one of the supplier's orders."""
        return order_messages(self.session, self.order(order_id).id)

    def message(self, order_id: int, message_id: int) -> OrderMessage:
        """One message on one of the supplier's orders."""
        found = order_message(self.session, self.order(order_id).id, message_id)
        if found is None:
            raise PortalNotFound(f"message {message_id}")
        return found

    def message_counts(self, order_ids: Collection[int]) -> dict[int, int]:
        """How many messages each of the supplier's orders has."""
        own = select(PurchaseOrder.id).where(PurchaseOrder.supplier_id == self.supplier_id)
        rows = self.session.execute(
            select(OrderMessage.purchase_order_id, func.count())
            .where(
                OrderMessage.purchase_order_id.in_(list(order_ids)),
                OrderMessage.purchase_order_id.in_(own),
            )
            .group_by(OrderMessage.purchase_order_id)
        )
        return {order_id: count for order_id, count in rows}

    # Scorecard.

    def scorecard(
        self, period: Period, *, rules: ScorecardRules, as_of: dt.datetime | None = None
    ) -> Scorecard:
        """The supplier's own scorecard for a period."""
        (card,) = scorecards(
            self.session, period, supplier_ids=[self.supplier_id], rules=rules, as_of=as_of
        )
        return card

    # Writes: each resolves its target through the scope first, then calls the domain.

    def acknowledge(
        self, order_id: int, acks: Sequence[LineAck], *, actor_id: int, note: str = ""
    ) -> PurchaseOrderHistory:
        """Answer lines of one of the supplier's orders (the caller commits)."""
        order = self.order(order_id, lock=True)
        return acknowledge_order(
            self.session, order, acks, actor_id=actor_id, source=DocumentSource.PORTAL, note=note
        )

    def ship(
        self, order_id: int, notice: ShipNotice, *, tolerance_pct: Decimal, actor_id: int
    ) -> ShipmentOutcome:
        """Record a ship notice on one of the supplier's orders (the caller commits)."""
        order = self.order(order_id, lock=True)
        return record_shipment(
            self.session, order, notice, tolerance_pct=tolerance_pct, actor_id=actor_id
        )

    def invoice_order(
        self, order_id: int, data: InvoiceIn, *, tolerances: Tolerances, actor_id: int
    ) -> SupplierInvoice:
        """Record and match an invoice for one of the supplier's orders (the caller commits)."""
        order = self.order(order_id, lock=True)
        return record_invoice(self.session, order, data, tolerances=tolerances, actor_id=actor_id)

    def set_price_breaks(
        self, item_id: int, breaks: Sequence[tuple[Decimal, Decimal]], *, actor_id: int
    ) -> list[PriceChange]:
        """Replace the price breaks of one of the supplier's items (the caller commits)."""
        item = self.catalog_item(item_id)
        return replace_price_breaks(
            self.session, item, breaks, currency=item.currency, changed_by_id=actor_id
        )

    def import_catalog(self, data: bytes, *, file_format: str, actor_id: int) -> ImportReport:
        """Validate a CSV/XLSX catalogue for this supplier and apply it only if every line is
        valid (the caller commits when the report says applied)."""
        return import_catalog(
            self.session, self.supplier(), data, file_format=file_format, changed_by_id=actor_id
        )

    def post_message(
        self, order_id: int, body: str, *, author_id: int, attachment: Attachment | None = None
    ) -> OrderMessage:
        """Write a message on one of the supplier's orders (the caller commits)."""
        order = self.order(order_id)
        return post_order_message(
            self.session,
            order,
            body=body,
            author_id=author_id,
            from_supplier=True,
            attachment=attachment,
        )
