"""A local S/4HANA: the OData v2 shapes of the purchase order, material document, business
partner and product APIs, with basic auth, the CSRF token flow, __next paging and SAP errors."""

from __future__ import annotations

import datetime as dt
import re
import secrets
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

import anyio
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from supply.erp.fakes import Knobs, basic_ok

ROOT = "/sap/opu/odata/sap/"
COOKIE = "SAP_SESSIONID_S4H_100"
PAGE_SIZE = 2
_REFERENCE = re.compile(r"^CorrespncExternalReference eq '((?:[^']|'')*)'$")
_CHANGED = re.compile(r"^LastChangeDateTime gt datetimeoffset'(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)Z'$")
_DAY = re.compile(r"^(CreationDate|LastChangeDate) ge datetime'(\d{4}-\d\d-\d\d)T00:00:00'$")
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


def v2_offset(moment: dt.datetime) -> str:
    """Edm.DateTimeOffset in OData v2 JSON."""
    return f"/Date({int((moment - _EPOCH).total_seconds() * 1000)}+0000)/"


def v2_day(day: dt.date) -> str:
    """Edm.DateTime (a day) in OData v2 JSON."""
    midnight = dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC)
    return f"/Date({int((midnight - _EPOCH).total_seconds() * 1000)})/"


def v2_time(moment: dt.datetime) -> str:
    """Edm.Time in OData v2 JSON."""
    return f"PT{moment.hour:02d}H{moment.minute:02d}M{moment.second:02d}S"


def sap_error(status: int, code: str, message: str) -> JSONResponse:
    """SAP Gateway's error body."""
    body = {
        "error": {
            "code": code,
            "message": {"lang": "en", "value": message},
            "innererror": {"transactionid": secrets.token_hex(8), "errordetails": []},
        }
    }
    return JSONResponse(body, status_code=status)


@dataclass
class SapState:
    """What the fake S/4HANA holds, and counters the tests read."""

    suppliers: dict[str, str] = field(default_factory=lambda: {"17300001": "Bearing Supply Ltd"})
    orders: dict[str, dict[str, Any]] = field(default_factory=dict)
    material_documents: list[dict[str, Any]] = field(default_factory=list)
    partners: list[dict[str, Any]] = field(default_factory=list)
    products: list[dict[str, Any]] = field(default_factory=list)
    sessions: dict[str, str] = field(default_factory=dict)
    knobs: Knobs = field(default_factory=Knobs)
    next_number: int = 4500000001
    csrf_fetches: int = 0
    csrf_rejections: int = 0
    posts: list[dict[str, Any]] = field(default_factory=list)

    def expire_sessions(self) -> None:
        """End every session: their CSRF tokens stop validating."""
        self.sessions.clear()

    def add_order(self, reference: str, changed: dt.datetime, **fields: Any) -> str:
        """An order created in SAP directly (not through the API)."""
        number = str(self.next_number)
        self.next_number += 1
        self.orders[number] = {
            "PurchaseOrder": number,
            "CompanyCode": "1710",
            "PurchaseOrderType": "NB",
            "PurchasingDocumentDeletionCode": "",
            "PurchasingProcessingStatus": "02",
            "LastChangeDateTime": changed,
            "Supplier": "17300001",
            "PurchasingOrganization": "1710",
            "PurchasingGroup": "001",
            "DocumentCurrency": "EUR",
            "PurchaseOrderDate": changed.date(),
            "CorrespncExternalReference": reference,
            "items": [],
            **fields,
        }
        return number


def _header_json(
    order: dict[str, Any], *, expand: bool, select: list[str] | None
) -> dict[str, Any]:
    number = order["PurchaseOrder"]
    record: dict[str, Any] = {
        "__metadata": {"type": "API_PURCHASEORDER_PROCESS_SRV.A_PurchaseOrderType"},
        **{k: v for k, v in order.items() if k != "items"},
        "LastChangeDateTime": v2_offset(order["LastChangeDateTime"]),
        "PurchaseOrderDate": v2_day(order["PurchaseOrderDate"]),
    }
    if expand:
        record["to_PurchaseOrderItem"] = {"results": order["items"]}
    else:
        record["to_PurchaseOrderItem"] = {
            "__deferred": {"uri": f"A_PurchaseOrder('{number}')/to_PurchaseOrderItem"}
        }
    if select:
        record = {k: v for k, v in record.items() if k in select or k == "__metadata"}
    return record


def _page(request: Request, rows: list[dict[str, Any]]) -> JSONResponse:
    skip = int(request.query_params.get("$skiptoken", "0"))
    chunk = rows[skip : skip + PAGE_SIZE]
    body: dict[str, Any] = {"results": chunk}
    if skip + PAGE_SIZE < len(rows):
        body["__next"] = str(request.url.include_query_params(**{"$skiptoken": skip + PAGE_SIZE}))
    return JSONResponse({"d": body})


def _decimal(value: object) -> Decimal | None:
    if not isinstance(value, str):
        return None  # OData v2 JSON sends Edm.Decimal as a string
    try:
        return Decimal(value)
    except InvalidOperation:
        return None


def build_app(state: SapState) -> Starlette:
    """The fake S/4HANA as a Starlette app."""

    async def dispatch(request: Request) -> Response:
        if not basic_ok(request):
            return Response(status_code=401, headers={"WWW-Authenticate": 'Basic realm="SAP"'})
        fault = state.knobs.fault(request)
        if fault is not None:
            return fault
        path = request.url.path.removeprefix(ROOT)
        if request.method == "GET" and request.headers.get("x-csrf-token", "").lower() == "fetch":
            return _fetch_token(request)
        if path == "API_PURCHASEORDER_PROCESS_SRV/A_PurchaseOrder":
            if request.method == "POST":
                return await _create_order(request)
            return _list_orders(request)
        if path == "API_MATERIAL_DOCUMENT_SRV/A_MaterialDocumentHeader":
            return _by_day(request, state.material_documents, "CreationDate")
        if path == "API_BUSINESS_PARTNER/A_BusinessPartner":
            return _by_day(request, state.partners, "LastChangeDate")
        if path == "API_PRODUCT_SRV/A_Product":
            return _products(request)
        return sap_error(404, "/IWFND/CM_MGW/020", "Resource not found for segment")

    def _fetch_token(request: Request) -> Response:
        state.csrf_fetches += 1
        session = request.cookies.get(COOKIE)
        if session not in state.sessions:
            session = secrets.token_hex(8)
        token = secrets.token_urlsafe(12)
        state.sessions[session] = token
        response = JSONResponse({"d": {"EntitySets": ["A_PurchaseOrder"]}})
        response.headers["x-csrf-token"] = token
        response.set_cookie(COOKIE, session, httponly=True)
        return response

    async def _create_order(request: Request) -> Response:
        session = request.cookies.get(COOKIE)
        token = request.headers.get("x-csrf-token")
        if session is None or state.sessions.get(session) != token or token is None:
            state.csrf_rejections += 1
            return Response(
                "CSRF token validation failed",
                status_code=403,
                headers={"x-csrf-token": "Required"},
                media_type="text/plain",
            )
        body = await request.json()
        state.posts.append(body)
        supplier = body.get("Supplier")
        if supplier not in state.suppliers:
            return sap_error(400, "ME/083", f"Supplier {supplier} does not exist")
        items = body.get("to_PurchaseOrderItem", {}).get("results", [])
        if not items:
            return sap_error(400, "ME/036", "Enter at least one item")
        for item in items:
            quantity = _decimal(item.get("OrderQuantity"))
            if quantity is None or quantity <= 0:
                return sap_error(400, "ME/040", "Enter a positive order quantity")
            if _decimal(item.get("NetPriceAmount")) is None:
                return sap_error(400, "ME/041", "Net price is not a valid amount")
        reference = body.get("CorrespncExternalReference", "")
        number = state.add_order(
            reference,
            dt.datetime.now(dt.UTC),
            Supplier=supplier,
            DocumentCurrency=body.get("DocumentCurrency"),
            items=[
                {**item, "PurchaseOrder": str(state.next_number), "IsCompletelyDelivered": False}
                for item in items
            ],
        )
        if state.knobs.hold_next_create:
            # Created, but the answer is held back until the test releases it: the client
            # times out not knowing the order landed.
            state.knobs.hold_next_create = False
            await anyio.to_thread.run_sync(state.knobs.release.wait, 10)
        order = state.orders[number]
        return JSONResponse({"d": _header_json(order, expand=True, select=None)}, status_code=201)

    def _list_orders(request: Request) -> Response:
        query = request.query_params.get("$filter", "")
        select = request.query_params.get("$select")
        expand = request.query_params.get("$expand") == "to_PurchaseOrderItem"
        rows = sorted(state.orders.values(), key=lambda o: o["LastChangeDateTime"])
        if match := _REFERENCE.match(query):
            rows = [
                o for o in rows if o["CorrespncExternalReference"] == match[1].replace("''", "'")
            ]
        elif match := _CHANGED.match(query):
            since = dt.datetime.fromisoformat(match[1]).replace(tzinfo=dt.UTC)
            rows = [o for o in rows if o["LastChangeDateTime"] > since]
        elif query:
            return sap_error(400, "/IWBEP/CM_MGW_RT/004", "Invalid filter expression")
        chosen = select.split(",") if select else None
        return _page(request, [_header_json(o, expand=expand, select=chosen) for o in rows])

    def _by_day(request: Request, rows: list[dict[str, Any]], field_name: str) -> Response:
        match = _DAY.match(request.query_params.get("$filter", ""))
        if match is None or match[1] != field_name:
            return sap_error(400, "/IWBEP/CM_MGW_RT/004", "Invalid filter expression")
        day = dt.date.fromisoformat(match[2])
        chosen = [r for r in rows if r["_changed"].date() >= day]
        return _page(request, [_dated(r) for r in chosen])

    def _products(request: Request) -> Response:
        match = _CHANGED.match(request.query_params.get("$filter", ""))
        if match is None:
            return sap_error(400, "/IWBEP/CM_MGW_RT/004", "Invalid filter expression")
        since = dt.datetime.fromisoformat(match[1]).replace(tzinfo=dt.UTC)
        rows = [
            {**_dated(p), "LastChangeDateTime": v2_offset(p["_changed"])}
            for p in state.products
            if p["_changed"] > since
        ]
        return _page(request, rows)

    return Starlette(routes=[Route(ROOT + "{path:path}", dispatch, methods=["GET", "POST"])])


def _dated(row: dict[str, Any]) -> dict[str, Any]:
    """A stored row as JSON: its change moment split into an Edm.DateTime and an Edm.Time."""
    changed: dt.datetime = row["_changed"]
    record = {k: v for k, v in row.items() if k != "_changed"}
    if "MaterialDocument" in record:
        record |= {"CreationDate": v2_day(changed.date()), "CreationTime": v2_time(changed)}
    elif "BusinessPartner" in record:
        record |= {"LastChangeDate": v2_day(changed.date()), "LastChangeTime": v2_time(changed)}
    return record


def material_document(
    number: str, changed: dt.datetime, items: list[tuple[str, str, str, str]]
) -> dict[str, Any]:
    """A material document: items are (purchase order, item, quantity, movement type)."""
    return {
        "_changed": changed,
        "MaterialDocumentYear": str(changed.year),
        "MaterialDocument": number,
        "PostingDate": v2_day(changed.date()),
        "to_MaterialDocumentItem": {
            "results": [
                {
                    "MaterialDocumentYear": str(changed.year),
                    "MaterialDocument": number,
                    "MaterialDocumentItem": str(index),
                    "Material": "BRG-1",
                    "GoodsMovementType": movement,
                    "PurchaseOrder": order,
                    "PurchaseOrderItem": item,
                    "QuantityInEntryUnit": quantity,
                    "EntryUnit": "EA",
                }
                for index, (order, item, quantity, movement) in enumerate(items, start=1)
            ]
        },
    }
