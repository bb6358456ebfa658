"""Microsoft Dynamics 365 Business Central over API v2.0 (``.../api/v2.0/companies({id})``).

* ``purchaseOrders`` then ``purchaseOrders({id})/purchaseOrderLines``: the header first, then
  each missing line (``sequence`` = our line number x 10000, BC's own spacing), so a push cut
  short completes on the next try. Our number goes in ``reference_field`` (``number`` by
  default, which needs a number series that allows manual numbers).
* Changes are read by ``lastModifiedDateTime`` from ``purchaseOrders``, ``purchaseReceipts``
  (with ``purchaseReceiptLines``), ``vendors`` and ``items``, following ``@odata.nextLink``.
* Updates use PATCH with ``If-Match`` and the record's ``@odata.etag``; a 412 (someone else
  changed it first) re-reads the record and tries once more.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from maintainpro.supply.erp.base import (
    ErpChanges,
    ErpConflictError,
    ErpItem,
    ErpOrderStatus,
    ErpPurchaseOrder,
    ErpReceipt,
    ErpStatusUpdate,
    ErpVendor,
    next_watermark,
    push_once,
)
from maintainpro.supply.erp.http import Connection, ErpHttp, HttpOptions
from maintainpro.supply.erp.odata import (
    decimal,
    parse_day,
    parse_timestamp,
    quote,
    text,
    v4_error,
    v4_pages,
    v4_timestamp,
)

LINE_SPACING = 10_000
_STATUS = {
    "Draft": ErpOrderStatus.DRAFT,
    "Open": ErpOrderStatus.DRAFT,
    "In Review": ErpOrderStatus.IN_APPROVAL,
    "Pending Approval": ErpOrderStatus.IN_APPROVAL,
    "Released": ErpOrderStatus.OPEN,
    "Pending Prepayment": ErpOrderStatus.OPEN,
}


@dataclass(frozen=True, slots=True)
class BusinessCentralConfig:
    """A Business Central environment and company.

    ``connection.base_url`` is the API root, for example
    ``https://api.businesscentral.dynamics.com/v2.0/<tenant>/<environment>/api/v2.0``.
    ``local_currency`` is left out of orders (BC writes the local currency as empty).
    """

    connection: Connection
    company_id: str
    reference_field: str = "number"
    local_currency: str | None = None


def bc_status(order: Mapping[str, Any]) -> ErpOrderStatus:
    """Normalise a purchaseOrder's status and fullyReceived flag."""
    if order.get("fullyReceived") is True:
        return ErpOrderStatus.RECEIVED
    return _STATUS.get(text(order, "status"), ErpOrderStatus.UNKNOWN)


class BusinessCentralConnector:
    """Purchase orders to Business Central, and changes back from it."""

    name = "business_central"

    def __init__(
        self, config: BusinessCentralConfig, *, options: HttpOptions | None = None
    ) -> None:
        self.config = config
        self.http = ErpHttp(
            "business_central", config.connection, error_reader=v4_error, options=options
        )

    def close(self) -> None:
        """Release the HTTP connections."""
        self.http.close()

    def _path(self, resource: str) -> str:
        return f"companies({self.config.company_id})/{resource}"

    def _changed(
        self, resource: str, since: dt.datetime, extra: Mapping[str, str] | None = None
    ) -> Iterator[dict[str, Any]]:
        params = {
            "$filter": f"lastModifiedDateTime gt {v4_timestamp(since)}",
            "$orderby": "lastModifiedDateTime",
            **(extra or {}),
        }
        return v4_pages(self.http, self._path(resource), params)

    # --- writes -------------------------------------------------------------------------

    def find_purchase_order(self, number: str) -> str | None:
        """The id of the purchase order carrying our number, if there is one."""
        params = {
            "$filter": f"{self.config.reference_field} eq {quote(number)}",
            "$select": "id",
            "$top": "1",
        }
        found = self.http.json("GET", self._path("purchaseOrders"), params=params)
        rows = found.get("value", [])
        return text(rows[0], "id") if rows else None

    def push_purchase_order(self, order: ErpPurchaseOrder) -> str:
        """Create the header unless it exists, then every line it does not have yet."""

        def create() -> str:
            body: dict[str, Any] = {
                self.config.reference_field: order.number,
                "vendorNumber": order.vendor_number,
                "orderDate": order.order_date.isoformat(),
            }
            if order.currency != self.config.local_currency:
                body["currencyCode"] = order.currency
            dates = [line.need_by for line in order.lines if line.need_by is not None]
            if dates:
                body["requestedReceiptDate"] = min(dates).isoformat()
            created = self.http.json("POST", self._path("purchaseOrders"), body=body)
            return text(created, "id")

        order_id = push_once(lambda: self.find_purchase_order(order.number), create)
        lines_path = self._path(f"purchaseOrders({order_id})/purchaseOrderLines")
        present = {
            int(decimal(row.get("sequence", 0)))
            for row in v4_pages(self.http, lines_path, {"$select": "sequence"})
        }
        for line in order.lines:
            sequence = line.line_no * LINE_SPACING
            if sequence in present:
                continue
            body: dict[str, Any] = {
                "sequence": sequence,
                "lineType": "Item",
                "lineObjectNumber": line.item_number,
                "description": line.description[:100],
                "quantity": line.quantity,
                "directUnitCost": line.unit_price,
                "unitOfMeasureCode": line.unit,
            }
            if line.need_by is not None:
                body["expectedReceiptDate"] = line.need_by.isoformat()
            self.http.json("POST", lines_path, body=body)
        return order_id

    def update_purchase_order(self, order_id: str, changes: Mapping[str, Any]) -> dict[str, Any]:
        """PATCH fields of an order with If-Match on its etag; re-read once after a 412."""
        path = self._path(f"purchaseOrders({order_id})")
        for attempt in (1, 2):
            current = self.http.json("GET", path)
            etag = text(current, "@odata.etag")
            try:
                updated: dict[str, Any] = self.http.json(
                    "PATCH", path, body=dict(changes), headers={"If-Match": etag or "*"}
                )
            except ErpConflictError:
                if attempt == 2:
                    raise
                continue
            return updated
        raise AssertionError("unreachable")  # pragma: no cover - the loop returns or raises

    # --- reads --------------------------------------------------------------------------

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

    @staticmethod
    def _stamp(row: Mapping[str, Any], since: dt.datetime) -> dt.datetime | None:
        changed = parse_timestamp(row.get("lastModifiedDateTime"))
        return changed if changed is not None and changed > since else None

    def status_updates(self, since: dt.datetime) -> Iterator[ErpStatusUpdate]:
        """purchaseOrders modified after ``since``."""
        reference = self.config.reference_field
        select = ",".join(
            dict.fromkeys(
                ["id", "number", "status", "fullyReceived", "lastModifiedDateTime", reference]
            )
        )
        for row in self._changed("purchaseOrders", since, {"$select": select}):
            changed = self._stamp(row, since)
            if changed is None:
                continue
            yield ErpStatusUpdate(
                external_id=text(row, "id"),
                po_number=text(row, reference) or None,
                status=bc_status(row),
                erp_status=text(row, "status"),
                changed_at=changed,
            )

    def receipts(self, since: dt.datetime) -> Iterator[ErpReceipt]:
        """Posted purchase receipts modified after ``since``, line by line."""
        for header in self._changed("purchaseReceipts", since, {"$expand": "purchaseReceiptLines"}):
            changed = self._stamp(header, since)
            if changed is None:
                continue
            order_number = text(header, "orderNumber")
            for line in header.get("purchaseReceiptLines", []):
                if not isinstance(line, dict) or text(line, "lineType") not in {"", "Item"}:
                    continue
                sequence = int(decimal(line.get("sequence", 0)))
                yield ErpReceipt(
                    receipt_id=f"{text(header, 'number')}/{sequence}",
                    erp_order_number=order_number,
                    line_no=sequence // LINE_SPACING if sequence % LINE_SPACING == 0 else None,
                    item_number=text(line, "lineObjectNumber"),
                    quantity=decimal(line.get("quantity", 0)),
                    unit=text(line, "unitOfMeasureCode"),
                    received_on=parse_day(header.get("postingDate")),
                    changed_at=changed,
                    po_number=order_number if self.config.reference_field == "number" else None,
                )

    def vendors(self, since: dt.datetime) -> Iterator[ErpVendor]:
        """vendors modified after ``since``; any ``blocked`` value but blank means blocked."""
        for row in self._changed("vendors", since):
            changed = self._stamp(row, since)
            if changed is None:
                continue
            yield ErpVendor(
                number=text(row, "number"),
                name=text(row, "displayName"),
                currency=text(row, "currencyCode") or self.config.local_currency,
                blocked=text(row, "blocked").strip() != "",
                changed_at=changed,
            )

    def items(self, since: dt.datetime) -> Iterator[ErpItem]:
        """items modified after ``since``."""
        for row in self._changed("items", since):
            changed = self._stamp(row, since)
            if changed is None:
                continue
            yield ErpItem(
                number=text(row, "number"),
                description=text(row, "displayName"),
                unit=text(row, "baseUnitOfMeasureCode"),
                changed_at=changed,
            )
