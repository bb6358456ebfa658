"""What every ERP connector offers: the documents it exchanges, its errors and its protocol.

The documents are plain frozen dataclasses, independent of the ORM, so the connectors can be
tested against local servers without a database and the domain can change without touching
the wire formats. Money and quantities are Decimals; timestamps are aware UTC datetimes.
"""

from __future__ import annotations

import datetime as dt
import enum
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Protocol, runtime_checkable


class ErpOrderStatus(enum.StrEnum):
    """An ERP's purchase-order status, normalised across the ERPs."""

    DRAFT = "draft"
    IN_APPROVAL = "in_approval"
    REJECTED = "rejected"
    OPEN = "open"
    PARTIALLY_RECEIVED = "partially_received"
    RECEIVED = "received"
    INVOICED = "invoiced"
    CLOSED = "closed"
    CANCELLED = "cancelled"
    UNKNOWN = "unknown"


@dataclass(frozen=True, slots=True)
class ErpPurchaseOrderLine:
    """One line of an order as sent to an ERP."""

    line_no: int
    item_number: str
    description: str
    quantity: Decimal
    unit: str
    unit_price: Decimal
    need_by: dt.date | None = None


@dataclass(frozen=True, slots=True)
class ErpPurchaseOrder:
    """An order as sent to an ERP; ``number`` is our number, the key for idempotency."""

    number: str
    vendor_number: str
    currency: str
    order_date: dt.date
    lines: tuple[ErpPurchaseOrderLine, ...]
    note: str = ""
    revision: int = 0


@dataclass(frozen=True, slots=True)
class ErpStatusUpdate:
    """An order's status as the ERP reports it, with our number when the ERP carries it."""

    external_id: str
    po_number: str | None
    status: ErpOrderStatus
    erp_status: str
    changed_at: dt.datetime


@dataclass(frozen=True, slots=True)
class ErpReceipt:
    """One received (or, with a negative quantity, reversed) order line."""

    receipt_id: str
    erp_order_number: str
    line_no: int | None
    item_number: str
    quantity: Decimal
    unit: str
    received_on: dt.date | None
    changed_at: dt.datetime
    po_number: str | None = None


@dataclass(frozen=True, slots=True)
class ErpVendor:
    """A vendor (supplier) record from the ERP."""

    number: str
    name: str
    currency: str | None
    blocked: bool
    changed_at: dt.datetime


@dataclass(frozen=True, slots=True)
class ErpItem:
    """An item (material, product) record from the ERP."""

    number: str
    description: str
    unit: str
    changed_at: dt.datetime


@dataclass(frozen=True, slots=True)
class ErpChanges:
    """Everything changed after a watermark, and the watermark to use next time."""

    watermark: dt.datetime
    statuses: tuple[ErpStatusUpdate, ...] = ()
    receipts: tuple[ErpReceipt, ...] = ()
    vendors: tuple[ErpVendor, ...] = ()
    items: tuple[ErpItem, ...] = ()

    @property
    def empty(self) -> bool:
        """Whether nothing changed."""
        return not (self.statuses or self.receipts or self.vendors or self.items)


def next_watermark(
    since: dt.datetime, *groups: tuple[ErpStatusUpdate | ErpReceipt | ErpVendor | ErpItem, ...]
) -> dt.datetime:
    """The latest change timestamp seen, never earlier than ``since``."""
    stamps = [record.changed_at for group in groups for record in group]
    return max([since, *stamps])


@runtime_checkable
class ErpConnector(Protocol):
    """The two things the rest of the application asks of an ERP."""

    name: str

    def push_purchase_order(self, order: ErpPurchaseOrder) -> str:
        """Create the order in the ERP, or find the one created earlier; return the ERP's id."""
        ...

    def pull_changes(self, since: dt.datetime) -> ErpChanges:
        """Status updates, receipts, vendors and items changed after ``since``."""
        ...

    def close(self) -> None:
        """Release the HTTP connections."""
        ...


class ErpError(Exception):
    """A failed exchange with an ERP; ``message`` is the ERP's own text where it sent one."""

    retryable = False

    def __init__(
        self,
        message: str,
        *,
        erp: str = "",
        status: int | None = None,
        code: str | None = None,
    ) -> None:
        self.message = message
        self.erp = erp
        self.status = status
        self.code = code
        parts = [f"{erp}:" if erp else "", f"HTTP {status}" if status else "", message]
        if code:
            parts.append(f"[{code}]")
        super().__init__(" ".join(part for part in parts if part))


class ErpPermanentError(ErpError):
    """The ERP refused the request as it is: retrying the same request cannot succeed."""


class ErpValidationError(ErpPermanentError):
    """The ERP rejected the document's content (HTTP 400/422); its message says why."""


class ErpAuthError(ErpPermanentError):
    """The credentials or permissions were refused (401 after a fresh token, or 403)."""


class ErpConflictError(ErpPermanentError):
    """The record changed under us (HTTP 409/412) and a re-read did not settle it."""


class ErpRetryableError(ErpError):
    """A transient failure: rate limit, unavailability, timeout. Try again later.

    ``ambiguous`` says the request may have been carried out anyway (a timeout after the body
    was sent, a 5xx on a create), so a create must look the record up before trying again.
    ``retry_after`` is the server's requested wait in seconds, when it named one.
    """

    retryable = True

    def __init__(
        self,
        message: str,
        *,
        erp: str = "",
        status: int | None = None,
        code: str | None = None,
        ambiguous: bool = False,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message, erp=erp, status=status, code=code)
        self.ambiguous = ambiguous
        self.retry_after = retry_after


def push_once(find: Callable[[], str | None], create: Callable[[], str]) -> str:
    """Return the existing record's id, or create it; after an ambiguous failure look again.

    This is what makes a push idempotent: the ERP is asked for an order carrying our number
    before every create, including the retry after a timeout whose create may have landed.
    """
    existing = find()
    if existing is not None:
        return existing
    try:
        return create()
    except ErpRetryableError as exc:
        if not exc.ambiguous:
            raise
        landed = find()
        if landed is not None:
            return landed
        raise
