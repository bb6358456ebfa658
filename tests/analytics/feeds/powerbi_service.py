"""A local Power BI REST service for push datasets that enforces the published request shape.

``POST /{tenant}/oauth2/v2.0/token`` is the Microsoft Entra ID v2.0 client-credentials
endpoint (scope ``https://analysis.windows.net/powerbi/api/.default``).
``POST /v1.0/myorg/groups/{groupId}/datasets/{datasetId}/tables/{tableName}/rows`` (Push
Datasets - PostRowsInGroup) insists on a live bearer token, ``Content-Type: application/json``,
a body ``{"rows": [...]}`` of 1 to 10,000 rows whose keys are columns of the table with values
of the column's type (strings at most 4,000 characters), and at most ``limit_per_minute``
accepted requests per dataset in any 60 seconds, answering 429 with Retry-After past that.
Time is a virtual clock the client under test shares, so a minute passes without waiting.
"""

from __future__ import annotations

import datetime as dt
import json
import math
from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from maintainpro.analytics.feeds.events import EventType
from maintainpro.analytics.feeds.powerbi import SCOPE, dataset_definition
from supply.erp.fakes import TokenIssuer

GROUP = "f089354e-8366-4e18-aea3-4cb4a3a50b48"
DATASET = "cfafbeb1-8037-4d0c-896e-a46fb27ff229"
TENANT = "contoso.onmicrosoft.com"
TABLES: dict[EventType, str] = {
    "reading": "Readings",
    "alert": "Alerts",
    "work_order": "WorkOrders",
}
MAX_ROWS = 10_000
MAX_STRING = 4_000


class VirtualClock:
    """Seconds that pass only when a test (or the client's sleep) says so."""

    def __init__(self, start: float = 1_000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        """The current virtual time."""
        return self.now

    def advance(self, seconds: float) -> None:
        """Let time pass."""
        self.now += seconds


def _fits(value: Any, data_type: str) -> bool:
    if value is None:
        return True
    if data_type == "Int64":
        return isinstance(value, int) and not isinstance(value, bool)
    if data_type == "Double":
        return isinstance(value, int | float) and not isinstance(value, bool)
    if data_type == "DateTime":
        try:
            return dt.datetime.fromisoformat(value).tzinfo is not None
        except (TypeError, ValueError):
            return False
    return isinstance(value, str) and len(value) <= MAX_STRING


def _error(status: int, code: str, headers: dict[str, str] | None = None) -> Response:
    return JSONResponse({"error": {"code": code}}, status_code=status, headers=headers)


@dataclass
class PowerBiService:
    """The dataset, what the service accepted, and faults a test can arm."""

    clock: VirtualClock
    limit_per_minute: int = 120
    fail_next: list[int] = field(default_factory=list)
    issuer: TokenIssuer = field(default_factory=lambda: TokenIssuer(scope=SCOPE))
    token_forms: list[dict[str, str]] = field(default_factory=list)
    accepted_at: list[float] = field(default_factory=list)
    batches: list[tuple[str, int]] = field(default_factory=list)
    rows: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    throttled: int = 0
    columns: dict[str, dict[str, str]] = field(init=False)

    def __post_init__(self) -> None:
        definition = dataset_definition("MaintAInPro live", TABLES)
        self.columns = {
            table["name"]: {c["name"]: c["dataType"] for c in table["columns"]}
            for table in definition["tables"]
        }

    async def token(self, request: Request) -> Response:
        """The tenant's token endpoint."""
        if request.path_params["tenant"] != TENANT:
            return JSONResponse({"error": "invalid_tenant"}, status_code=400)
        form = await request.form()
        self.token_forms.append({k: str(v) for k, v in form.items()})
        return await self.issuer.token(request)

    def _throttle(self) -> Response | None:
        now = self.clock()
        recent = [t for t in self.accepted_at if t > now - 60.0]
        if len(recent) < self.limit_per_minute:
            return None
        self.throttled += 1
        wait = math.ceil(recent[-self.limit_per_minute] + 60.0 - now)
        return _error(429, "TooManyRequests", {"Retry-After": str(max(wait, 1))})

    async def post_rows(self, request: Request) -> Response:
        """PostRowsInGroup."""
        path = request.path_params
        if not self.issuer.authorised(request):
            return _error(401, "TokenExpired")
        if (path["group"], path["dataset"]) != (GROUP, DATASET):
            return _error(404, "ItemNotFound")
        columns = self.columns.get(path["table"])
        if columns is None:
            return _error(404, "TableNotFound")
        if self.fail_next:
            return _error(self.fail_next.pop(0), "Injected")
        if request.headers.get("content-type", "").split(";")[0] != "application/json":
            return _error(415, "UnsupportedMediaType")
        try:
            body = json.loads(await request.body())
        except ValueError:
            return _error(400, "InvalidRequest")
        if (
            not isinstance(body, dict)
            or set(body) != {"rows"}
            or not isinstance(body["rows"], list)
        ):
            return _error(400, "InvalidRequest")
        rows = body["rows"]
        if not 1 <= len(rows) <= MAX_ROWS:
            return _error(400, "TooManyRowsInRequest")
        for row in rows:
            if not isinstance(row, dict) or not set(row) <= set(columns):
                return _error(400, "UnknownColumn")
            if not all(_fits(value, columns[name]) for name, value in row.items()):
                return _error(400, "InvalidValue")
        throttled = self._throttle()
        if throttled is not None:
            return throttled
        self.accepted_at.append(self.clock())
        self.batches.append((path["table"], len(rows)))
        self.rows.setdefault(path["table"], []).extend(rows)
        return Response(status_code=200)

    def app(self) -> Starlette:
        """The service as an ASGI app."""
        return Starlette(
            routes=[
                Route("/{tenant}/oauth2/v2.0/token", self.token, methods=["POST"]),
                Route(
                    "/v1.0/myorg/groups/{group}/datasets/{dataset}/tables/{table}/rows",
                    self.post_rows,
                    methods=["POST"],
                ),
            ]
        )
