"""A local Oracle Fusion: the REST shapes of draftPurchaseOrders, purchaseOrders, suppliers,
itemsV2 and receivingReceiptRequests, with q= queries, offset/limit/hasMore paging and the
framework-4 error body."""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from supply.erp.fakes import Knobs, basic_ok, now

ROOT = "/fscmRestApi/resources/11.13.18.05/"
_EQUALS = re.compile(r"^(OrderNumber|SupplierNumber)='([^']*)'$")
_AFTER = re.compile(r"^LastUpdateDate > '([^']+)'$")
ERROR_TYPE = "application/vnd.oracle.adf.error+json"


def stamp(moment: dt.datetime) -> str:
    """Oracle's timestamp format."""
    return moment.astimezone(dt.UTC).isoformat(timespec="milliseconds")


def oracle_error(detail: str, code: str) -> Response:
    """A framework-4 error response."""
    body = {
        "type": "http://www.w3.org/Protocols/rfc2616/rfc2616-sec10.html#sec10.4.1",
        "title": "Bad Request",
        "status": "400",
        "o:errorDetails": [{"detail": detail, "o:errorCode": code}],
    }
    return JSONResponse(body, status_code=400, media_type=ERROR_TYPE)


@dataclass
class OracleState:
    """What the fake Oracle pod holds."""

    suppliers: list[dict[str, Any]] = field(
        default_factory=lambda: [
            {
                "SupplierId": 300000047,
                "Supplier": "Bearing Supply Ltd",
                "SupplierNumber": "1252",
                "InactiveDate": None,
                "LastUpdateDate": "2025-01-10T09:00:00.000+00:00",
            }
        ]
    )
    drafts: dict[int, dict[str, Any]] = field(default_factory=dict)
    orders: dict[int, dict[str, Any]] = field(default_factory=dict)
    receipt_requests: list[dict[str, Any]] = field(default_factory=list)
    items: list[dict[str, Any]] = field(default_factory=list)
    knobs: Knobs = field(default_factory=Knobs)
    posts: list[dict[str, Any]] = field(default_factory=list)
    next_id: int = 100000001

    def submit(self, header_id: int, status: str = "OPEN", at: dt.datetime | None = None) -> None:
        """Approve a draft: it becomes a purchase order."""
        order = self.drafts.pop(header_id)
        order |= {
            "StatusCode": status,
            "Status": status.title(),
            "LastUpdateDate": stamp(at or now()),
        }
        self.orders[header_id] = order

    def add_order(self, number: str, status: str, changed: dt.datetime) -> int:
        """A purchase order entered in Oracle directly."""
        header_id = self.next_id
        self.next_id += 1
        self.orders[header_id] = {
            "POHeaderId": header_id,
            "OrderNumber": number,
            "StatusCode": status,
            "Status": status.title(),
            "SupplierId": 300000047,
            "LastUpdateDate": stamp(changed),
        }
        return header_id


def build_app(state: OracleState) -> Starlette:
    """The fake Oracle pod as a Starlette app."""

    async def dispatch(request: Request) -> Response:
        if not basic_ok(request):
            return Response("Unauthorized", status_code=401, media_type="text/plain")
        fault = state.knobs.fault(request)
        if fault is not None:
            return fault
        if request.headers.get("REST-Framework-Version") != "4":
            return Response("Invalid framework version", status_code=400, media_type="text/plain")
        resource = request.url.path.removeprefix(ROOT)
        if resource == "draftPurchaseOrders" and request.method == "POST":
            return await _create(request)
        rows = {
            "draftPurchaseOrders": list(state.drafts.values()),
            "purchaseOrders": list(state.orders.values()),
            "suppliers": state.suppliers,
            "itemsV2": state.items,
            "receivingReceiptRequests": state.receipt_requests,
        }.get(resource)
        if rows is None:
            return Response(status_code=404)
        return _collection(request, rows)

    async def _create(request: Request) -> Response:
        body = await request.json()
        state.posts.append(body)
        supplier = next(
            (s for s in state.suppliers if s["SupplierId"] == body.get("SupplierId")), None
        )
        if supplier is None:
            return oracle_error("The value of the attribute SupplierId isn't valid.", "PO-2055010")
        if body.get("ProcurementBU") != "Vision Operations":
            return oracle_error(
                f"The procurement business unit {body.get('ProcurementBU')} isn't valid.",
                "PO-2055023",
            )
        lines = body.get("lines") or []
        if not lines or any(not isinstance(line.get("Quantity"), int | float) for line in lines):
            return oracle_error("Each line needs a numeric quantity.", "PO-2055040")
        header_id = state.next_id
        state.next_id += 1
        draft = {
            "POHeaderId": header_id,
            "OrderNumber": body.get("OrderNumber") or str(header_id),
            "StatusCode": "INCOMPLETE",
            "Status": "Incomplete",
            "SupplierId": supplier["SupplierId"],
            "Supplier": supplier["Supplier"],
            "ProcurementBU": body["ProcurementBU"],
            "CurrencyCode": body.get("CurrencyCode"),
            "LastUpdateDate": stamp(now()),
            "lines": lines,
        }
        state.drafts[header_id] = draft
        return JSONResponse(draft, status_code=201)

    def _collection(request: Request, rows: list[dict[str, Any]]) -> Response:
        params = request.query_params
        query = params.get("q", "")
        if match := _EQUALS.match(query):
            rows = [r for r in rows if r.get(match[1]) == match[2]]
        elif match := _AFTER.match(query):
            after = dt.datetime.fromisoformat(match[1])
            rows = [r for r in rows if dt.datetime.fromisoformat(r["LastUpdateDate"]) > after]
        elif query:
            return oracle_error("The query parameter q isn't valid.", "oracle.adf.query")
        if params.get("orderBy") == "LastUpdateDate:asc":
            rows = sorted(rows, key=lambda r: dt.datetime.fromisoformat(r["LastUpdateDate"]))
        if params.get("expand") != "lines":
            rows = [{k: v for k, v in r.items() if k != "lines"} for r in rows]
        if fields := params.get("fields"):
            wanted = fields.split(",")
            rows = [{k: v for k, v in r.items() if k in wanted} for r in rows]
        limit = int(params.get("limit", "25"))
        offset = int(params.get("offset", "0"))
        page = rows[offset : offset + limit]
        return JSONResponse(
            {
                "items": page,
                "count": len(page),
                "hasMore": offset + limit < len(rows),
                "limit": limit,
                "offset": offset,
                "links": [{"rel": "self", "href": str(request.url)}],
            }
        )

    return Starlette(routes=[Route(ROOT + "{path:path}", dispatch, methods=["GET", "POST"])])
