"""Oracle Fusion Cloud Procurement over its REST API (``/fscmRestApi/resources/<version>``).

* ``draftPurchaseOrders`` (POST, header with a ``lines`` child, each line with ``schedules``)
  creates the order. Our number goes in ``reference_attribute`` (``OrderNumber`` by default,
  which needs manual PO numbering in the procurement business unit); the idempotency lookup
  asks ``draftPurchaseOrders`` and ``purchaseOrders`` for it with ``q=``.
* ``purchaseOrders`` gives status changes, queried by ``LastUpdateDate`` and paged with
  ``offset``/``limit`` until ``hasMore`` is false; records come in the ``items`` array.
* ``receivingReceiptRequests`` (header with a ``lines`` child) gives the receipts that went
  through Oracle's receipt interface; the deprecated ``receipts`` resource has no GET.
* ``suppliers`` and ``itemsV2`` give vendors and items by ``LastUpdateDate``.

Requests carry ``REST-Framework-Version`` (4 by default) so ``q`` takes expressions and errors
come as JSON; plain-text error bodies of older framework versions are read as well.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import httpx

from maintainpro.supply.erp.base import (
    ErpChanges,
    ErpItem,
    ErpOrderStatus,
    ErpPurchaseOrder,
    ErpReceipt,
    ErpStatusUpdate,
    ErpValidationError,
    ErpVendor,
    next_watermark,
    push_once,
)
from maintainpro.supply.erp.http import Connection, ErpHttp, HttpOptions, generic_error, loads
from maintainpro.supply.erp.odata import decimal, parse_day, parse_timestamp, text, utc

_STATUS = {
    "INCOMPLETE": ErpOrderStatus.DRAFT,
    "PENDING APPROVAL": ErpOrderStatus.IN_APPROVAL,
    "REJECTED": ErpOrderStatus.REJECTED,
    "OPEN": ErpOrderStatus.OPEN,
    "ON HOLD": ErpOrderStatus.OPEN,
    "CLOSED FOR RECEIVING": ErpOrderStatus.RECEIVED,
    "CLOSED FOR INVOICING": ErpOrderStatus.INVOICED,
    "CLOSED": ErpOrderStatus.CLOSED,
    "FINALLY CLOSED": ErpOrderStatus.CLOSED,
    "CANCELED": ErpOrderStatus.CANCELLED,
    "CANCELLED": ErpOrderStatus.CANCELLED,
}
# Receipt request lines that Oracle has turned into receipts.
_PROCESSED = frozenset({"COMPLETED", "SUCCESS", "PROCESSED"})


@dataclass(frozen=True, slots=True)
class OracleConfig:
    """An Oracle Fusion pod and the business units new orders are created in."""

    connection: Connection
    procurement_bu: str
    requisitioning_bu: str | None = None
    buyer: str | None = None
    supplier_site: str | None = None
    ship_to_location: str | None = None
    line_type: str = "Goods"
    reference_attribute: str = "OrderNumber"
    version: str = "11.13.18.05"
    framework_version: str = "4"
    page_size: int = 100
    max_pages: int = 10_000


def oracle_status(code: str) -> ErpOrderStatus:
    """Normalise a purchaseOrders StatusCode."""
    return _STATUS.get(code.strip().upper(), ErpOrderStatus.UNKNOWN)


def oracle_error(response: httpx.Response) -> tuple[str | None, str]:
    """Oracle's error: JSON with ``o:errorDetails`` (framework 4+) or a plain-text message."""
    if "json" not in response.headers.get("content-type", ""):
        return generic_error(response)
    try:
        body = loads(response)
    except ValueError:
        return generic_error(response)
    if not isinstance(body, dict):
        return generic_error(response)
    details = [d for d in body.get("o:errorDetails", []) if isinstance(d, dict)]
    messages = [text(d, "detail") for d in details if d.get("detail")]
    code = text(details[0], "o:errorCode") if details else text(body, "o:errorCode")
    message = "; ".join(messages) or text(body, "detail") or text(body, "title")
    return code or None, message or f"HTTP {response.status_code}"


def _q_literal(value: str) -> str:
    """A quoted value for ``q``; quotes cannot be escaped there, so they are refused."""
    if "'" in value or '"' in value:
        raise ValueError("a quote cannot be used in an Oracle query value")
    return f"'{value}'"


def _q_timestamp(moment: dt.datetime) -> str:
    return "'" + utc(moment).isoformat(timespec="milliseconds") + "'"


def draft_purchase_order_payload(
    order: ErpPurchaseOrder, config: OracleConfig, supplier_id: int | str
) -> dict[str, Any]:
    """The draftPurchaseOrders POST body, lines and schedules included."""
    lines = []
    for line in order.lines:
        entry: dict[str, Any] = {
            "LineNumber": line.line_no,
            "LineType": config.line_type,
            "Item": line.item_number,
            "Description": line.description,
            "Quantity": line.quantity,
            "UOMCode": line.unit,
            "Price": line.unit_price,
        }
        schedule: dict[str, Any] = {"ScheduleNumber": 1, "Quantity": line.quantity}
        if line.need_by is not None:
            schedule["RequestedDeliveryDate"] = line.need_by.isoformat()
        if config.ship_to_location:
            schedule["ShipToLocation"] = config.ship_to_location
        entry["schedules"] = [schedule]
        lines.append(entry)
    header: dict[str, Any] = {
        "ProcurementBU": config.procurement_bu,
        "RequisitioningBU": config.requisitioning_bu or config.procurement_bu,
        "SupplierId": supplier_id,
        "CurrencyCode": order.currency,
        "Description": f"{order.number} {order.note}".strip()[:240],
        config.reference_attribute: order.number,
        "lines": lines,
    }
    if config.buyer:
        header["Buyer"] = config.buyer
    if config.supplier_site:
        header["SupplierSite"] = config.supplier_site
    return header


class OracleConnector:
    """Purchase orders to Oracle Fusion, and changes back from it."""

    name = "oracle"

    def __init__(self, config: OracleConfig, *, options: HttpOptions | None = None) -> None:
        self.config = config
        self.http = ErpHttp(
            "oracle",
            config.connection,
            error_reader=oracle_error,
            headers={"REST-Framework-Version": config.framework_version},
            options=options,
        )
        self._supplier_ids: dict[str, int | str] = {}

    def close(self) -> None:
        """Release the HTTP connections."""
        self.http.close()

    def _path(self, resource: str) -> str:
        return f"fscmRestApi/resources/{self.config.version}/{resource}"

    def _query(self, resource: str, params: Mapping[str, str]) -> list[dict[str, Any]]:
        """One page of a collection (no paging: for lookups by key)."""
        body = self.http.json("GET", self._path(resource), params={"onlyData": "true", **params})
        return [item for item in body.get("items", []) if isinstance(item, dict)]

    def _pages(self, resource: str, params: Mapping[str, str]) -> Iterator[dict[str, Any]]:
        """Every record of a collection, ``offset`` by ``limit`` until ``hasMore`` is false."""
        offset = 0
        for _ in range(self.config.max_pages):
            page = {
                "onlyData": "true",
                "limit": str(self.config.page_size),
                "offset": str(offset),
                **params,
            }
            body = self.http.json("GET", self._path(resource), params=page)
            items = [item for item in body.get("items", []) if isinstance(item, dict)]
            yield from items
            if not body.get("hasMore") or not items:
                return
            offset += len(items)
        raise RuntimeError(f"more than {self.config.max_pages} pages from {resource}")

    # --- writes -------------------------------------------------------------------------

    def find_purchase_order(self, number: str) -> str | None:
        """The POHeaderId of the draft or purchase order carrying our number."""
        query = {
            "q": f"{self.config.reference_attribute}={_q_literal(number)}",
            "fields": "POHeaderId",
            "limit": "1",
        }
        for resource in ("draftPurchaseOrders", "purchaseOrders"):
            found = self._query(resource, query)
            if found:
                return text(found[0], "POHeaderId")
        return None

    def supplier_id(self, number: str) -> int | str:
        """The SupplierId of a supplier number (cached)."""
        if number not in self._supplier_ids:
            query = {"q": f"SupplierNumber={_q_literal(number)}", "fields": "SupplierId"}
            found = self._query("suppliers", query)
            if not found:
                raise ErpValidationError(f"supplier {number} is not in Oracle", erp=self.name)
            self._supplier_ids[number] = found[0]["SupplierId"]
        return self._supplier_ids[number]

    def push_purchase_order(self, order: ErpPurchaseOrder) -> str:
        """Create a draft order unless Oracle already has one with our number."""

        def create() -> str:
            payload = draft_purchase_order_payload(
                order, self.config, self.supplier_id(order.vendor_number)
            )
            body = self.http.json("POST", self._path("draftPurchaseOrders"), body=payload)
            return text(body, "POHeaderId")

        return push_once(lambda: self.find_purchase_order(order.number), create)

    # --- reads --------------------------------------------------------------------------

    def _changed(self, since: dt.datetime) -> dict[str, str]:
        return {"q": f"LastUpdateDate > {_q_timestamp(since)}", "orderBy": "LastUpdateDate:asc"}

    def pull_changes(self, since: dt.datetime) -> ErpChanges:
        """Order statuses, receipts, vendors and items changed after ``since``."""
        statuses = tuple(self.status_updates(since))
        receipts = tuple(self.receipts(since))
        vendors = tuple(self.vendors(since))
        items = tuple(self.items(since))
        return ErpChanges(
            watermark=next_watermark(since, statuses, receipts, vendors, items),
            statuses=statuses,
            receipts=receipts,
            vendors=vendors,
            items=items,
        )

    def status_updates(self, since: dt.datetime) -> Iterator[ErpStatusUpdate]:
        """purchaseOrders whose LastUpdateDate is after ``since``."""
        reference = self.config.reference_attribute
        fields = ",".join(dict.fromkeys(["POHeaderId", "StatusCode", "LastUpdateDate", reference]))
        for row in self._pages("purchaseOrders", {**self._changed(since), "fields": fields}):
            changed = parse_timestamp(row.get("LastUpdateDate"))
            if changed is None or changed <= since:
                continue
            code = text(row, "StatusCode")
            yield ErpStatusUpdate(
                external_id=text(row, "POHeaderId"),
                po_number=text(row, reference) or None,
                status=oracle_status(code),
                erp_status=code,
                changed_at=changed,
            )

    def receipts(self, since: dt.datetime) -> Iterator[ErpReceipt]:
        """Processed receipt request lines against purchase orders, changed after ``since``."""
        params = {**self._changed(since), "expand": "lines"}
        for header in self._pages("receivingReceiptRequests", params):
            changed = parse_timestamp(header.get("LastUpdateDate"))
            if changed is None or changed <= since:
                continue
            for line in header.get("lines", []):
                if not isinstance(line, dict) or text(line, "SourceDocumentCode") != "PO":
                    continue
                if text(line, "ProcessingStatusCode").upper() not in _PROCESSED:
                    continue
                number = text(line, "DocumentNumber")
                line_no = text(line, "DocumentLineNumber")
                yield ErpReceipt(
                    receipt_id=f"{text(header, 'HeaderInterfaceId')}/"
                    f"{text(line, 'InterfaceTransactionId')}",
                    erp_order_number=number,
                    line_no=int(line_no) if line_no.isdigit() else None,
                    item_number=text(line, "ItemNumber"),
                    quantity=decimal(line.get("Quantity", 0)),
                    unit=text(line, "UnitOfMeasure"),
                    received_on=parse_day(line.get("TransactionDate")),
                    changed_at=changed,
                    po_number=number if self.config.reference_attribute == "OrderNumber" else None,
                )

    def vendors(self, since: dt.datetime) -> Iterator[ErpVendor]:
        """suppliers changed after ``since``; an inactive date in the past means blocked."""
        today = dt.datetime.now(dt.UTC).date()
        for row in self._pages("suppliers", self._changed(since)):
            changed = parse_timestamp(row.get("LastUpdateDate"))
            if changed is None or changed <= since:
                continue
            inactive = parse_day(row.get("InactiveDate"))
            yield ErpVendor(
                number=text(row, "SupplierNumber"),
                name=text(row, "Supplier"),
                currency=None,
                blocked=inactive is not None and inactive <= today,
                changed_at=changed,
            )

    def items(self, since: dt.datetime) -> Iterator[ErpItem]:
        """itemsV2 changed after ``since``."""
        for row in self._pages("itemsV2", self._changed(since)):
            changed = parse_timestamp(row.get("LastUpdateDate"))
            if changed is None or changed <= since:
                continue
            yield ErpItem(
                number=text(row, "ItemNumber"),
                description=text(row, "ItemDescription"),
                unit=text(row, "PrimaryUOMValue"),
                changed_at=changed,
            )
