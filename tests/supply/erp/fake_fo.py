"""A local Dynamics 365 Finance & Operations: OData v4 data entities behind an OAuth2 token
endpoint, with dataAreaId and cross-company, @odata.nextLink paging and v4 error bodies."""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from supply.erp.fakes import Knobs, TokenIssuer, now

PAGE_SIZE = 2
DEFAULT_COMPANY = "dat"  # the API user's default legal entity
_EQ = re.compile(r"^(\w+) eq '((?:[^']|'')*)'$")
_GT = re.compile(r"^(\w+) gt (\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?Z)$")


def v4_error(status: int, code: str, message: str) -> JSONResponse:
    """The OData v4 error body."""
    return JSONResponse({"error": {"code": code, "message": message}}, status_code=status)


def iso(moment: dt.datetime) -> str:
    """DateTimeOffset as F&O writes it."""
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class FoState:
    """What the fake F&O environment holds."""

    issuer: TokenIssuer = field(default_factory=TokenIssuer)
    entities: dict[str, list[dict[str, Any]]] = field(
        default_factory=lambda: {
            "PurchaseOrderHeadersV2": [],
            "PurchaseOrderLinesV2": [],
            "ProductReceiptLines": [],
            "VendorsV2": [
                {
                    "dataAreaId": "usmf",
                    "VendorAccountNumber": "US-101",
                    "VendorOrganizationName": "Bearing Supply Inc",
                    "CurrencyCode": "USD",
                    "OnHoldStatus": "No",
                    "ModifiedDateTime": "2025-01-01T00:00:00Z",
                }
            ],
            "ReleasedProductsV2": [],
        }
    )
    knobs: Knobs = field(default_factory=Knobs)
    fail_line_number: int | None = None
    unauthorised: int = 0
    posts: list[tuple[str, dict[str, Any]]] = field(default_factory=list)

    def rows(self, entity: str) -> list[dict[str, Any]]:
        """The stored rows of an entity."""
        return self.entities[entity]


def _matches(row: dict[str, Any], condition: str) -> bool:
    if match := _EQ.match(condition):
        return str(row.get(match[1], "")) == match[2].replace("''", "'")
    match = _GT.match(condition)
    assert match is not None
    value = row.get(match[1])
    return value is not None and dt.datetime.fromisoformat(value) > dt.datetime.fromisoformat(
        match[2]
    )


def build_app(state: FoState) -> Starlette:
    """The fake F&O environment as a Starlette app."""

    async def data(request: Request) -> Response:
        if not state.issuer.authorised(request):
            state.unauthorised += 1
            return Response(status_code=401, headers={"WWW-Authenticate": "Bearer"})
        fault = state.knobs.fault(request)
        if fault is not None:
            return fault
        entity = request.path_params["entity"]
        if entity not in state.entities:
            return v4_error(404, "", f"Resource not found for the segment '{entity}'.")
        if request.method == "POST":
            return await _create(request, entity)
        return _query(request, entity)

    def _query(request: Request, entity: str) -> Response:
        params = request.query_params
        rows = state.rows(entity)
        if params.get("cross-company") != "true":
            rows = [r for r in rows if r.get("dataAreaId", DEFAULT_COMPANY) == DEFAULT_COMPANY]
        if expression := params.get("$filter"):
            for condition in expression.split(" and "):
                if _EQ.match(condition) is None and _GT.match(condition) is None:
                    return v4_error(400, "", "The query specified in the URI is not valid.")
                rows = [r for r in rows if _matches(r, condition)]
        if order := params.get("$orderby"):
            rows = sorted(rows, key=lambda r: str(r.get(order, "")))
        if top := params.get("$top"):
            rows = rows[: int(top)]
        if select := params.get("$select"):
            wanted = select.split(",")
            rows = [{k: v for k, v in r.items() if k in wanted} for r in rows]
        skip = int(params.get("$skiptoken", "0"))
        body: dict[str, Any] = {"@odata.context": f"{request.base_url}data/$metadata#{entity}"}
        body["value"] = rows[skip : skip + PAGE_SIZE]
        if skip + PAGE_SIZE < len(rows):
            body["@odata.nextLink"] = str(
                request.url.include_query_params(**{"$skiptoken": skip + PAGE_SIZE})
            )
        return JSONResponse(body)

    async def _create(request: Request, entity: str) -> Response:
        body = await request.json()
        state.posts.append((entity, body))
        company = body.get("dataAreaId")
        if entity == "PurchaseOrderHeadersV2":
            vendor = body.get("OrderVendorAccountNumber")
            known = {(v["dataAreaId"], v["VendorAccountNumber"]) for v in state.rows("VendorsV2")}
            if (company, vendor) not in known:
                return v4_error(
                    400,
                    "",
                    "Write failed for table row of type 'PurchPurchaseOrderHeaderV2Entity'. "
                    f"Infolog: Vendor account {vendor} does not exist.",
                )
            record = {**body, "PurchaseOrderStatus": "Backorder", "DocumentApprovalStatus": "Draft"}
        elif entity == "PurchaseOrderLinesV2":
            headers = state.rows("PurchaseOrderHeadersV2")
            if not any(
                (h["dataAreaId"], h["PurchaseOrderNumber"])
                == (company, body.get("PurchaseOrderNumber"))
                for h in headers
            ):
                return v4_error(400, "", "Purchase order does not exist.")
            if body.get("LineNumber") == state.fail_line_number:
                state.fail_line_number = None
                return v4_error(500, "", "An error has occurred.")
            record = dict(body)
        else:
            return v4_error(405, "", "The entity does not support insert.")
        record["ModifiedDateTime"] = iso(now())
        state.rows(entity).append(record)
        return JSONResponse(record, status_code=201)

    return Starlette(
        routes=[
            Route("/oauth2/token", state.issuer.token, methods=["POST"]),
            Route("/data/{entity}", data, methods=["GET", "POST"]),
        ]
    )
