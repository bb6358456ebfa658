"""SAP S/4HANA over OData v2: purchase orders, material documents, business partners, products.

Services (each under the configured service root, e.g. ``https://host/sap/opu/odata/sap``):

* ``API_PURCHASEORDER_PROCESS_SRV/A_PurchaseOrder``: deep insert with ``to_PurchaseOrderItem``;
  our order number travels in ``CorrespncExternalReference`` ("Your Reference", 12 characters),
  which is what the idempotency lookup filters on; status changes by ``LastChangeDateTime``.
* ``API_MATERIAL_DOCUMENT_SRV/A_MaterialDocumentHeader`` with ``to_MaterialDocumentItem``: goods
  receipts (movement type 101, reversals 102) by ``CreationDate`` + ``CreationTime``.
* ``API_BUSINESS_PARTNER/A_BusinessPartner`` with ``to_Supplier``: vendors by ``LastChangeDate``.
* ``API_PRODUCT_SRV/A_Product`` with ``to_Description``: items by ``LastChangeDateTime``.

Writes need the CSRF token flow: a GET with ``x-csrf-token: Fetch`` returns the token and the
session cookies; both go with the POST; a 403 "CSRF token validation failed" refetches once.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import httpx

from maintainpro.supply.erp.base import (
    ErpAuthError,
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
from maintainpro.supply.erp.http import Connection, ErpHttp, HttpOptions, loads
from maintainpro.supply.erp.odata import (
    decimal,
    parse_v2_date,
    parse_v2_time,
    quote,
    text,
    v2_date_value,
    v2_datetime,
    v2_datetimeoffset,
    v2_error,
)

PO_SERVICE = "API_PURCHASEORDER_PROCESS_SRV"
PURCHASE_ORDERS = f"{PO_SERVICE}/A_PurchaseOrder"
MATERIAL_DOCUMENTS = "API_MATERIAL_DOCUMENT_SRV/A_MaterialDocumentHeader"
BUSINESS_PARTNERS = "API_BUSINESS_PARTNER/A_BusinessPartner"
PRODUCTS = "API_PRODUCT_SRV/A_Product"
REFERENCE_FIELD = "CorrespncExternalReference"
REFERENCE_MAX = 12
GOODS_RECEIPT = "101"
GOODS_RECEIPT_REVERSAL = "102"
# PurchasingProcessingStatus: 01 in process, 02 active, 03 in approval, 05 released, 08 rejected.
_PROCESSING_STATUS = {
    "01": ErpOrderStatus.DRAFT,
    "02": ErpOrderStatus.OPEN,
    "03": ErpOrderStatus.IN_APPROVAL,
    "05": ErpOrderStatus.OPEN,
    "08": ErpOrderStatus.REJECTED,
}


@dataclass(frozen=True, slots=True)
class SapConfig:
    """An S/4HANA system and the organisational data new orders are created with."""

    connection: Connection
    company_code: str
    purchasing_organization: str
    purchasing_group: str
    plant: str
    purchase_order_type: str = "NB"
    sap_client: str | None = None
    language: str = "EN"
    max_pages: int = 10_000


def sap_status(header: Mapping[str, Any]) -> ErpOrderStatus:
    """Normalise an A_PurchaseOrder (with its expanded items) to one status."""
    if text(header, "PurchasingDocumentDeletionCode") == "L":
        return ErpOrderStatus.CANCELLED
    status = _PROCESSING_STATUS.get(text(header, "PurchasingProcessingStatus"))
    if status is None:
        return ErpOrderStatus.UNKNOWN
    items = [
        item
        for item in _results(header.get("to_PurchaseOrderItem"))
        if not item.get("PurchasingDocumentDeletionCode")
    ]
    if status is ErpOrderStatus.OPEN and items:
        delivered = [bool(item.get("IsCompletelyDelivered")) for item in items]
        if all(bool(item.get("IsFinallyInvoiced")) for item in items) and all(delivered):
            return ErpOrderStatus.INVOICED
        if all(delivered):
            return ErpOrderStatus.RECEIVED
        if any(delivered):
            return ErpOrderStatus.PARTIALLY_RECEIVED
    return status


def purchase_order_payload(order: ErpPurchaseOrder, config: SapConfig) -> dict[str, Any]:
    """The deep-insert body for A_PurchaseOrder (OData v2 JSON: decimals as strings)."""
    if len(order.number) > REFERENCE_MAX:
        raise ValueError(f"{order.number} is longer than SAP's {REFERENCE_MAX}-character reference")
    items = []
    for line in order.lines:
        item: dict[str, Any] = {
            # SAP numbers items in tens; our line n is item n*10, which receipts map back.
            "PurchaseOrderItem": str(line.line_no * 10),
            "Material": line.item_number,
            "PurchaseOrderItemText": line.description[:40],
            "Plant": config.plant,
            "OrderQuantity": format(line.quantity, "f"),
            "PurchaseOrderQuantityUnit": line.unit,
            "NetPriceAmount": format(line.unit_price, "f"),
            "NetPriceQuantity": "1",
            "DocumentCurrency": order.currency,
        }
        if line.need_by is not None:
            item["ScheduleLineDeliveryDate"] = v2_date_value(line.need_by)
        items.append(item)
    return {
        "CompanyCode": config.company_code,
        "PurchaseOrderType": config.purchase_order_type,
        "Supplier": order.vendor_number,
        "PurchasingOrganization": config.purchasing_organization,
        "PurchasingGroup": config.purchasing_group,
        "DocumentCurrency": order.currency,
        "PurchaseOrderDate": v2_date_value(order.order_date),
        REFERENCE_FIELD: order.number,
        "to_PurchaseOrderItem": {"results": items},
    }


def _results(value: object) -> list[dict[str, Any]]:
    if isinstance(value, Mapping):
        value = value.get("results", [])
    return [item for item in value if isinstance(item, dict)] if isinstance(value, list) else []


def _csrf_refused(response: httpx.Response) -> bool:
    """Whether a 403 is SAP's CSRF check rather than a missing authorisation."""
    if response.status_code != 403:
        return False
    return response.headers.get("x-csrf-token", "").lower() == "required" or (
        "csrf token validation failed" in response.text.lower()
    )


class SapConnector:
    """Purchase orders to S/4HANA, and changes back from it."""

    name = "sap"

    def __init__(self, config: SapConfig, *, options: HttpOptions | None = None) -> None:
        self.config = config
        self.http = ErpHttp("sap", config.connection, error_reader=v2_error, options=options)
        self._csrf: str | None = None

    def close(self) -> None:
        """Release the HTTP connections."""
        self.http.close()

    def _params(self, extra: Mapping[str, str] | None = None) -> dict[str, str]:
        params = {"$format": "json"}
        if self.config.sap_client:
            params["sap-client"] = self.config.sap_client
        return params | dict(extra or {})

    def _pages(self, path: str, query: Mapping[str, str]) -> Iterator[dict[str, Any]]:
        """Every record of a collection, following ``__next`` links."""
        url: str = path
        params: dict[str, str] | None = self._params(query)
        for _ in range(self.config.max_pages):
            body = self.http.json("GET", url, params=params)
            data = body.get("d", {}) if isinstance(body, dict) else {}
            yield from _results(data)
            link = data.get("__next") if isinstance(data, dict) else None
            if not link:
                return
            # The link carries the query and skip token; format and client are re-asserted
            # in it (httpx would replace the link's query with ``params``, not merge them).
            url = str(httpx.URL(self.http.follow(str(link))).copy_merge_params(self._params()))
            params = None
        raise RuntimeError(f"more than {self.config.max_pages} pages from {path}")

    # --- writes -------------------------------------------------------------------------

    def fetch_csrf_token(self) -> str:
        """Ask the service for a CSRF token; the session cookies come with it."""
        response = self.http.call(
            "GET", f"{PO_SERVICE}/", params=self._params(), headers={"x-csrf-token": "Fetch"}
        )
        token = str(response.headers.get("x-csrf-token", ""))
        if not token or token.lower() == "required":
            raise ErpAuthError("SAP did not issue a CSRF token", erp="sap")
        self._csrf = token
        return token

    def _post(self, path: str, body: Mapping[str, Any]) -> httpx.Response:
        token = self._csrf or self.fetch_csrf_token()
        response = self.http.send(
            "POST", path, params=self._params(), body=body, headers={"x-csrf-token": token}
        )
        if _csrf_refused(response):
            # The session (and with it the token) expired: one fresh token, one more try.
            token = self.fetch_csrf_token()
            response = self.http.send(
                "POST", path, params=self._params(), body=body, headers={"x-csrf-token": token}
            )
        return self.http.check(response, create=True)

    def find_purchase_order(self, number: str) -> str | None:
        """The SAP purchase order carrying our number, if there is one."""
        query = {"$filter": f"{REFERENCE_FIELD} eq {quote(number)}", "$select": "PurchaseOrder"}
        body = self.http.json("GET", PURCHASE_ORDERS, params=self._params(query))
        found = _results(body.get("d") if isinstance(body, dict) else None)
        return text(found[0], "PurchaseOrder") if found else None

    def push_purchase_order(self, order: ErpPurchaseOrder) -> str:
        """Create the order (deep insert) unless SAP already has one with our number."""
        payload = purchase_order_payload(order, self.config)

        def create() -> str:
            body = loads(self._post(PURCHASE_ORDERS, payload))
            return str(body["d"]["PurchaseOrder"])

        return push_once(lambda: self.find_purchase_order(order.number), create)

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

    def status_updates(self, since: dt.datetime) -> Iterator[ErpStatusUpdate]:
        """Orders whose LastChangeDateTime is after ``since``."""
        query = {
            "$filter": f"LastChangeDateTime gt {v2_datetimeoffset(since)}",
            "$expand": "to_PurchaseOrderItem",
            "$orderby": "LastChangeDateTime",
        }
        for header in self._pages(PURCHASE_ORDERS, query):
            changed = parse_v2_date(header.get("LastChangeDateTime"))
            if changed is None or changed <= since:
                continue
            yield ErpStatusUpdate(
                external_id=text(header, "PurchaseOrder"),
                po_number=text(header, REFERENCE_FIELD) or None,
                status=sap_status(header),
                erp_status=text(header, "PurchasingProcessingStatus"),
                changed_at=changed,
            )

    def receipts(self, since: dt.datetime) -> Iterator[ErpReceipt]:
        """Goods receipts against purchase orders posted after ``since``."""
        query = {
            # CreationDate is a day: ask from that day and drop what is not after ``since``.
            "$filter": f"CreationDate ge {v2_datetime(since.date())}",
            "$expand": "to_MaterialDocumentItem",
        }
        for header in self._pages(MATERIAL_DOCUMENTS, query):
            created = _date_and_time(header.get("CreationDate"), header.get("CreationTime"))
            if created is None or created <= since:
                continue
            posted = parse_v2_date(header.get("PostingDate"))
            for item in _results(header.get("to_MaterialDocumentItem")):
                movement = text(item, "GoodsMovementType")
                order = text(item, "PurchaseOrder")
                if movement not in {GOODS_RECEIPT, GOODS_RECEIPT_REVERSAL} or not order:
                    continue
                quantity = decimal(item.get("QuantityInEntryUnit", "0"))
                position = text(item, "PurchaseOrderItem")
                yield ErpReceipt(
                    receipt_id="/".join(
                        (
                            text(header, "MaterialDocumentYear"),
                            text(header, "MaterialDocument"),
                            text(item, "MaterialDocumentItem"),
                        )
                    ),
                    erp_order_number=order,
                    line_no=int(position) // 10 if position.isdigit() else None,
                    item_number=text(item, "Material"),
                    quantity=-quantity if movement == GOODS_RECEIPT_REVERSAL else quantity,
                    unit=text(item, "EntryUnit"),
                    received_on=posted.date() if posted else None,
                    changed_at=created,
                )

    def vendors(self, since: dt.datetime) -> Iterator[ErpVendor]:
        """Business partners with a supplier role changed after ``since``."""
        query = {
            "$filter": f"LastChangeDate ge {v2_datetime(since.date())}",
            "$expand": "to_Supplier",
        }
        for partner in self._pages(BUSINESS_PARTNERS, query):
            supplier = partner.get("to_Supplier")
            if not isinstance(supplier, dict) or not supplier.get("Supplier"):
                continue
            changed = _date_and_time(partner.get("LastChangeDate"), partner.get("LastChangeTime"))
            if changed is None or changed <= since:
                continue
            yield ErpVendor(
                number=text(supplier, "Supplier"),
                name=text(supplier, "SupplierName") or text(partner, "BusinessPartnerFullName"),
                currency=None,
                blocked=bool(
                    supplier.get("PurchasingIsBlocked") or partner.get("BusinessPartnerIsBlocked")
                ),
                changed_at=changed,
            )

    def items(self, since: dt.datetime) -> Iterator[ErpItem]:
        """Products changed after ``since``, described in the configured language."""
        query = {
            "$filter": f"LastChangeDateTime gt {v2_datetimeoffset(since)}",
            "$expand": "to_Description",
        }
        for product in self._pages(PRODUCTS, query):
            changed = parse_v2_date(product.get("LastChangeDateTime"))
            if changed is None or changed <= since:
                continue
            descriptions = {
                text(row, "Language"): text(row, "ProductDescription")
                for row in _results(product.get("to_Description"))
            }
            yield ErpItem(
                number=text(product, "Product"),
                description=descriptions.get(self.config.language, ""),
                unit=text(product, "BaseUnit"),
                changed_at=changed,
            )


def _date_and_time(day: object, time_of_day: object) -> dt.datetime | None:
    """An Edm.DateTime day plus an Edm.Time (the way SAP splits many change stamps), in UTC."""
    midnight = parse_v2_date(day)
    if midnight is None:
        return None
    return dt.datetime.combine(midnight.date(), parse_v2_time(time_of_day), tzinfo=dt.UTC)
