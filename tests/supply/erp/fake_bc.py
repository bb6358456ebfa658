"""A local Business Central: API v2.0 purchaseOrders with purchaseOrderLines, purchaseReceipts,
vendors and items behind an OAuth2 token endpoint, with etags, If-Match and @odata.nextLink."""

from __future__ import annotations

import datetime as dt
import re
import uuid
from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from supply.erp.fakes import Knobs, TokenIssuer, now

COMPANY = "c0ffee00-0000-4000-8000-000000000001"
PAGE_SIZE = 2
_ORDER = re.compile(r"^purchaseOrders\(([0-9a-f-]{36})\)$")
_LINES = re.compile(r"^purchaseOrders\(([0-9a-f-]{36})\)/purchaseOrderLines$")
_NUMBER = re.compile(r"^number eq '((?:[^']|'')*)'$")
_CHANGED = re.compile(r"^lastModifiedDateTime gt (\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?Z)$")


def bc_error(status: int, code: str, message: str) -> JSONResponse:
    """Business Central's OData v4 error body."""
    return JSONResponse({"error": {"code": code, "message": message}}, status_code=status)


def iso(moment: dt.datetime) -> str:
    """lastModifiedDateTime as BC writes it."""
    return moment.astimezone(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass
class BcState:
    """What the fake Business Central company holds."""

    issuer: TokenIssuer = field(default_factory=TokenIssuer)
    vendors: list[dict[str, Any]] = field(
        default_factory=lambda: [
            {
                "id": str(uuid.uuid4()),
                "number": "V10000",
                "displayName": "Bearing Supply Ltd",
                "currencyCode": "",
                "blocked": " ",
                "lastModifiedDateTime": "2025-01-01T00:00:00Z",
            }
        ]
    )
    items: list[dict[str, Any]] = field(default_factory=list)
    orders: dict[str, dict[str, Any]] = field(default_factory=dict)
    lines: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    receipts: list[dict[str, Any]] = field(default_factory=list)
    knobs: Knobs = field(default_factory=Knobs)
    unauthorised: int = 0
    patches: list[str] = field(default_factory=list)
    race_patches: int = 0

    def touch(self, order_id: str, **changes: Any) -> None:
        """Change an order inside BC (a user's edit): new version, new etag, new stamp."""
        order = self.orders[order_id]
        order.update(changes)
        order["_version"] += 1
        order["lastModifiedDateTime"] = iso(now())

    def add_order(self, number: str, changed: dt.datetime, **fields: Any) -> str:
        """An order entered in BC directly."""
        order_id = str(uuid.uuid4())
        self.orders[order_id] = {
            "id": order_id,
            "number": number,
            "vendorNumber": "V10000",
            "status": "Draft",
            "fullyReceived": False,
            "lastModifiedDateTime": iso(changed),
            "_version": 1,
            **fields,
        }
        self.lines[order_id] = []
        return order_id


def _public(order: dict[str, Any]) -> dict[str, Any]:
    record = {k: v for k, v in order.items() if not k.startswith("_")}
    record["@odata.etag"] = f'W/"JzE5OzE{order["_version"]}Oyc="'
    return record


def _page(request: Request, rows: list[dict[str, Any]]) -> JSONResponse:
    skip = int(request.query_params.get("$skiptoken", "0"))
    body: dict[str, Any] = {"value": rows[skip : skip + PAGE_SIZE]}
    if skip + PAGE_SIZE < len(rows):
        body["@odata.nextLink"] = str(
            request.url.include_query_params(**{"$skiptoken": skip + PAGE_SIZE})
        )
    return JSONResponse(body)


def _changed_after(request: Request, rows: list[dict[str, Any]]) -> list[dict[str, Any]] | None:
    expression = request.query_params.get("$filter")
    if expression is None:
        return rows
    match = _CHANGED.match(expression)
    if match is None:
        return None
    after = dt.datetime.fromisoformat(match[1])
    chosen = [r for r in rows if dt.datetime.fromisoformat(r["lastModifiedDateTime"]) > after]
    return sorted(chosen, key=lambda r: r["lastModifiedDateTime"])


def build_app(state: BcState) -> Starlette:
    """The fake Business Central as a Starlette app."""

    async def company(request: Request) -> Response:
        if not state.issuer.authorised(request):
            state.unauthorised += 1
            return bc_error(401, "Unauthorized", "The credentials provided are incorrect")
        fault = state.knobs.fault(request)
        if fault is not None:
            return fault
        if request.path_params["company"] != COMPANY:
            return bc_error(404, "BadRequest_NotFound", "The company was not found.")
        path = request.path_params["rest"]
        if path == "purchaseOrders":
            return await (_create_order(request) if request.method == "POST" else _orders(request))
        if match := _ORDER.match(path):
            return await _one_order(request, match[1])
        if match := _LINES.match(path):
            return await _order_lines(request, match[1])
        simple = {
            "vendors": state.vendors,
            "items": state.items,
            "purchaseReceipts": state.receipts,
        }
        if path in simple and request.method == "GET":
            rows = _changed_after(request, simple[path])
            if rows is None:
                return bc_error(400, "BadRequest", "Invalid filter")
            if path == "purchaseReceipts" and request.query_params.get("$expand") != (
                "purchaseReceiptLines"
            ):
                rows = [{k: v for k, v in r.items() if k != "purchaseReceiptLines"} for r in rows]
            return _page(request, rows)
        return bc_error(404, "BadRequest_NotFound", "The resource was not found.")

    async def _orders(request: Request) -> Response:
        rows = list(state.orders.values())
        expression = request.query_params.get("$filter", "")
        if match := _NUMBER.match(expression):
            rows = [r for r in rows if r["number"] == match[1].replace("''", "'")]
        else:
            chosen = _changed_after(request, rows)
            if chosen is None:
                return bc_error(400, "BadRequest", "Invalid filter")
            rows = chosen
        return _page(request, [_public(r) for r in rows])

    async def _create_order(request: Request) -> Response:
        body = await request.json()
        vendor = body.get("vendorNumber")
        if vendor not in {v["number"] for v in state.vendors}:
            return bc_error(
                400,
                "Internal_RecordNotFound",
                f"The Vendor does not exist. Identification fields and values: No.='{vendor}'",
            )
        if any(o["number"] == body.get("number") for o in state.orders.values()):
            return bc_error(400, "Internal_EntityWithSameKeyExists", "The record already exists.")
        order_id = state.add_order(
            body["number"], now(), vendorNumber=vendor, orderDate=body.get("orderDate")
        )
        return JSONResponse(_public(state.orders[order_id]), status_code=201)

    async def _one_order(request: Request, order_id: str) -> Response:
        order = state.orders.get(order_id)
        if order is None:
            return bc_error(404, "BadRequest_NotFound", "The purchase order was not found.")
        if request.method == "GET":
            return JSONResponse(_public(order))
        if request.method != "PATCH":
            return bc_error(405, "BadRequest_MethodNotAllowed", "Method not allowed")
        state.patches.append(request.headers.get("if-match", ""))
        if state.race_patches:
            # Another user saves the order between the client's read and this write.
            state.race_patches -= 1
            state.touch(order_id, purchaser="ALICE")
        if request.headers.get("if-match") != _public(order)["@odata.etag"]:
            return bc_error(
                412,
                "Request_EntityChanged",
                "Could not save the changes because another user changed the record.",
            )
        body = await request.json()
        state.touch(order_id, **body)
        return JSONResponse(_public(order))

    async def _order_lines(request: Request, order_id: str) -> Response:
        if order_id not in state.orders:
            return bc_error(404, "BadRequest_NotFound", "The purchase order was not found.")
        lines = state.lines[order_id]
        if request.method == "GET":
            return _page(request, lines)
        body = await request.json()
        if not isinstance(body.get("quantity"), int | float) or body["quantity"] <= 0:
            return bc_error(400, "Application_InvalidQuantity", "Quantity must be positive.")
        lines.append({"id": str(uuid.uuid4()), "documentId": order_id, **body})
        return JSONResponse(lines[-1], status_code=201)

    return Starlette(
        routes=[
            Route("/oauth2/token", state.issuer.token, methods=["POST"]),
            Route(
                "/api/v2.0/companies({company})/{rest:path}",
                company,
                methods=["GET", "POST", "PATCH"],
            ),
        ]
    )
