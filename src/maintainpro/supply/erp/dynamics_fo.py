"""Microsoft Dynamics 365 Finance & Operations over OData v4 (``/data/<entity>``).

* ``PurchaseOrderHeadersV2`` and ``PurchaseOrderLinesV2`` (keyed by ``dataAreaId`` and
  ``PurchaseOrderNumber``): the header is created first, then each missing line, so a push
  interrupted half-way completes on the next try instead of duplicating anything.
* Our number goes in ``reference_field`` (``PurchaseOrderNumber`` by default, which needs a
  number sequence that allows manual numbers; ``VendorOrderReference`` is the alternative).
* Reads filter on ``modified_field`` (a modified-date field the entities must expose), use
  ``cross-company=true`` with an explicit ``dataAreaId`` filter, and follow ``@odata.nextLink``.
* Receipts come from ``ProductReceiptLines``, vendors from ``VendorsV2``, items from
  ``ReleasedProductsV2`` (entity names are configurable).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from maintainpro.supply.erp.base import (
    ErpChanges,
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

HEADERS = "PurchaseOrderHeadersV2"
LINES = "PurchaseOrderLinesV2"
_ORDER_STATUS = {
    "Received": ErpOrderStatus.RECEIVED,
    "Invoiced": ErpOrderStatus.INVOICED,
    "Canceled": ErpOrderStatus.CANCELLED,
}
_APPROVAL_STATUS = {
    "Draft": ErpOrderStatus.DRAFT,
    "InReview": ErpOrderStatus.IN_APPROVAL,
    "Rejected": ErpOrderStatus.REJECTED,
    "Approved": ErpOrderStatus.OPEN,
    "Confirmed": ErpOrderStatus.OPEN,
    "Finalized": ErpOrderStatus.CLOSED,
}


@dataclass(frozen=True, slots=True)
class FinanceOperationsConfig:
    """An F&O environment, the legal entity (``dataAreaId``) and the entity names to use."""

    connection: Connection
    data_area_id: str
    reference_field: str = "PurchaseOrderNumber"
    modified_field: str = "ModifiedDateTime"
    receiving_site_id: str | None = None
    receiving_warehouse_id: str | None = None
    receipt_entity: str = "ProductReceiptLines"
    vendor_entity: str = "VendorsV2"
    item_entity: str = "ReleasedProductsV2"


def fo_status(header: Mapping[str, Any]) -> ErpOrderStatus:
    """Normalise PurchaseOrderStatus (goods flow) and DocumentApprovalStatus (approval)."""
    flow = text(header, "PurchaseOrderStatus")
    if flow in _ORDER_STATUS:
        return _ORDER_STATUS[flow]
    return _APPROVAL_STATUS.get(text(header, "DocumentApprovalStatus"), ErpOrderStatus.UNKNOWN)


def _date(day: dt.date) -> str:
    # F&O stores dates as DateTimeOffset; noon UTC keeps the day the same in every zone.
    return f"{day.isoformat()}T12:00:00Z"


class FinanceOperationsConnector:
    """Purchase orders to Dynamics 365 Finance & Operations, and changes back from it."""

    name = "dynamics_fo"

    def __init__(
        self, config: FinanceOperationsConfig, *, options: HttpOptions | None = None
    ) -> None:
        self.config = config
        self.http = ErpHttp(
            "dynamics_fo", config.connection, error_reader=v4_error, options=options
        )

    def close(self) -> None:
        """Release the HTTP connections."""
        self.http.close()

    def _company(self) -> str:
        return f"dataAreaId eq {quote(self.config.data_area_id)}"

    def _changed(
        self, entity: str, since: dt.datetime, select: list[str]
    ) -> Iterator[dict[str, Any]]:
        field = self.config.modified_field
        params = {
            "$filter": f"{self._company()} and {field} gt {v4_timestamp(since)}",
            "$orderby": field,
            "$select": ",".join(dict.fromkeys([*select, field])),
            "cross-company": "true",
        }
        return v4_pages(self.http, f"data/{entity}", params)

    # --- writes -------------------------------------------------------------------------

    def find_header(self, number: str) -> dict[str, Any] | None:
        """The order header carrying our number, if there is one."""
        params = {
            "$filter": f"{self._company()} and {self.config.reference_field} eq {quote(number)}",
            "$select": "dataAreaId,PurchaseOrderNumber",
            "$top": "1",
            "cross-company": "true",
        }
        found = self.http.json("GET", f"data/{HEADERS}", params=params).get("value", [])
        return found[0] if found else None

    def _line_numbers(self, po_number: str) -> set[int]:
        params = {
            "$filter": f"{self._company()} and PurchaseOrderNumber eq {quote(po_number)}",
            "$select": "LineNumber",
            "cross-company": "true",
        }
        rows = v4_pages(self.http, f"data/{LINES}", params)
        return {int(decimal(row["LineNumber"])) for row in rows}

    def push_purchase_order(self, order: ErpPurchaseOrder) -> str:
        """Create the header unless it exists, then every line it does not have yet."""

        def find() -> str | None:
            header = self.find_header(order.number)
            return text(header, "PurchaseOrderNumber") if header else None

        def create() -> str:
            body: dict[str, Any] = {
                "dataAreaId": self.config.data_area_id,
                "OrderVendorAccountNumber": order.vendor_number,
                "InvoiceVendorAccountNumber": order.vendor_number,
                "CurrencyCode": order.currency,
                self.config.reference_field: order.number,
            }
            created = self.http.json("POST", f"data/{HEADERS}", body=body)
            return text(created, "PurchaseOrderNumber")

        po_number = push_once(find, create)
        present = self._line_numbers(po_number)
        for line in order.lines:
            if line.line_no in present:
                continue
            body = {
                "dataAreaId": self.config.data_area_id,
                "PurchaseOrderNumber": po_number,
                "LineNumber": line.line_no,
                "ItemNumber": line.item_number,
                "LineDescription": line.description,
                "OrderedPurchaseQuantity": line.quantity,
                "PurchaseUnitSymbol": line.unit,
                "PurchasePrice": line.unit_price,
            }
            if line.need_by is not None:
                body["RequestedDeliveryDate"] = _date(line.need_by)
            if self.config.receiving_site_id:
                body["ReceivingSiteId"] = self.config.receiving_site_id
            if self.config.receiving_warehouse_id:
                body["ReceivingWarehouseId"] = self.config.receiving_warehouse_id
            # A line that timed out may have landed: the next push sees it in ``present``.
            self.http.json("POST", f"data/{LINES}", body=body)
        return f"{self.config.data_area_id}/{po_number}"

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

    def _stamp(self, row: Mapping[str, Any], since: dt.datetime) -> dt.datetime | None:
        changed = parse_timestamp(row.get(self.config.modified_field))
        return changed if changed is not None and changed > since else None

    def status_updates(self, since: dt.datetime) -> Iterator[ErpStatusUpdate]:
        """Order headers modified after ``since``."""
        select = [
            "dataAreaId",
            "PurchaseOrderNumber",
            "PurchaseOrderStatus",
            "DocumentApprovalStatus",
            self.config.reference_field,
        ]
        for row in self._changed(HEADERS, since, select):
            changed = self._stamp(row, since)
            if changed is None:
                continue
            yield ErpStatusUpdate(
                external_id=f"{text(row, 'dataAreaId')}/{text(row, 'PurchaseOrderNumber')}",
                po_number=text(row, self.config.reference_field) or None,
                status=fo_status(row),
                erp_status="/".join(
                    filter(
                        None,
                        (text(row, "PurchaseOrderStatus"), text(row, "DocumentApprovalStatus")),
                    )
                ),
                changed_at=changed,
            )

    def receipts(self, since: dt.datetime) -> Iterator[ErpReceipt]:
        """Product receipt lines modified after ``since``."""
        select = [
            "dataAreaId",
            "ProductReceiptNumber",
            "PurchaseOrderNumber",
            "PurchaseOrderLineNumber",
            "ItemNumber",
            "ReceivedPurchaseQuantity",
            "PurchaseUnitSymbol",
            "ProductReceiptDate",
        ]
        for row in self._changed(self.config.receipt_entity, since, select):
            changed = self._stamp(row, since)
            if changed is None:
                continue
            number = text(row, "PurchaseOrderNumber")
            line = row.get("PurchaseOrderLineNumber")
            yield ErpReceipt(
                receipt_id=f"{text(row, 'dataAreaId')}/{text(row, 'ProductReceiptNumber')}/"
                f"{text(row, 'PurchaseOrderLineNumber')}",
                erp_order_number=number,
                line_no=int(decimal(line)) if line is not None else None,
                item_number=text(row, "ItemNumber"),
                quantity=decimal(row.get("ReceivedPurchaseQuantity", 0)),
                unit=text(row, "PurchaseUnitSymbol"),
                received_on=parse_day(row.get("ProductReceiptDate")),
                changed_at=changed,
                po_number=number if self.config.reference_field == "PurchaseOrderNumber" else None,
            )

    def vendors(self, since: dt.datetime) -> Iterator[ErpVendor]:
        """Vendors modified after ``since``; any hold other than "No" counts as blocked."""
        select = ["VendorAccountNumber", "VendorOrganizationName", "CurrencyCode", "OnHoldStatus"]
        for row in self._changed(self.config.vendor_entity, since, select):
            changed = self._stamp(row, since)
            if changed is None:
                continue
            yield ErpVendor(
                number=text(row, "VendorAccountNumber"),
                name=text(row, "VendorOrganizationName"),
                currency=text(row, "CurrencyCode") or None,
                blocked=text(row, "OnHoldStatus") not in {"", "No"},
                changed_at=changed,
            )

    def items(self, since: dt.datetime) -> Iterator[ErpItem]:
        """Released products modified after ``since``."""
        select = ["ItemNumber", "ProductName", "SearchName", "PurchaseUnitSymbol"]
        for row in self._changed(self.config.item_entity, since, select):
            changed = self._stamp(row, since)
            if changed is None:
                continue
            yield ErpItem(
                number=text(row, "ItemNumber"),
                description=text(row, "ProductName") or text(row, "SearchName"),
                unit=text(row, "PurchaseUnitSymbol"),
                changed_at=changed,
            )
