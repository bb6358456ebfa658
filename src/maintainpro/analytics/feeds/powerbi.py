"""A Power BI push-dataset client: feed events as rows of a push dataset's tables.

The REST call is Push Datasets - PostRowsInGroup:

    POST {api_url}/groups/{groupId}/datasets/{datasetId}/tables/{tableName}/rows
    Authorization: Bearer <Microsoft Entra token>
    {"rows": [{"column": value, ...}, ...]}

with the token from the OAuth2 client-credentials grant at
``{authority}/{tenant}/oauth2/v2.0/token`` (scope ``https://analysis.windows.net/powerbi/api/
.default``), cached until it expires and fetched again on a 401. The published limits are kept
on our side: at most 10,000 rows per request, 120 POST rows requests per minute and 1,000,000
rows per hour per dataset (exact sliding windows), one request in flight (the service allows
five pending), string values cut to 4,000 characters. 429 waits for Retry-After; 5xx, 408 and
network errors are retried with back-off; other answers drop the batch with the reason counted.

A POST that timed out after it was sent may have been applied: its retry can then add the rows
twice. Every row carries ``event_id`` so a report can count distinct events.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any, Final
from urllib.parse import quote

import httpx

from maintainpro.analytics.feeds.batching import Batch
from maintainpro.analytics.feeds.events import EventType, FeedEvent
from maintainpro.analytics.feeds.filters import FeedFilter
from maintainpro.analytics.feeds.pacing import RateWindow
from maintainpro.analytics.feeds.push import Delivered, Outcome, PushTarget, Rejected, Retry
from maintainpro.supply.erp.base import ErpAuthError, ErpRetryableError
from maintainpro.supply.erp.http import RetryPolicy, retry_after_seconds

API_URL: Final = "https://api.powerbi.com/v1.0/myorg"
AUTHORITY: Final = "https://login.microsoftonline.com"
SCOPE: Final = "https://analysis.windows.net/powerbi/api/.default"
MAX_ROWS_PER_REQUEST: Final = 10_000
MAX_REQUESTS_PER_MINUTE: Final = 120
MAX_ROWS_PER_HOUR: Final = 1_000_000
MAX_STRING: Final = 4_000
RETRYABLE: Final = frozenset({408, 500, 502, 503, 504})
Row = dict[str, Any]

# The columns of each event type's table (name, Power BI data type), in order: the push
# dataset is created with these (``dataset_definition``) and rows carry exactly these keys.
COLUMNS: Final[Mapping[EventType, tuple[tuple[str, str], ...]]] = {
    "reading": (
        ("event_id", "Int64"),
        ("ts", "DateTime"),
        ("site_id", "Int64"),
        ("asset_id", "Int64"),
        ("device_id", "Int64"),
        ("sensor_id", "Int64"),
        ("sensor_key", "String"),
        ("unit", "String"),
        ("value", "Double"),
        ("quality", "String"),
    ),
    "alert": (
        ("event_id", "Int64"),
        ("ts", "DateTime"),
        ("site_id", "Int64"),
        ("asset_id", "Int64"),
        ("sensor_id", "Int64"),
        ("alert_id", "Int64"),
        ("rule_id", "Int64"),
        ("event", "String"),
        ("severity", "String"),
        ("title", "String"),
        ("value", "Double"),
    ),
    "work_order": (
        ("event_id", "Int64"),
        ("ts", "DateTime"),
        ("site_id", "Int64"),
        ("asset_id", "Int64"),
        ("work_order_id", "Int64"),
        ("event", "String"),
        ("origin", "String"),
        ("from_status", "String"),
        ("to_status", "String"),
    ),
}
# Columns whose value comes from a differently named field of the event's data.
_RENAMED: Final = {"from_status": "from", "to_status": "to"}


def _cell(value: Any, data_type: str) -> Any:
    if value is None:
        return None
    if data_type == "Int64":
        return value if isinstance(value, int) and not isinstance(value, bool) else None
    if data_type == "Double":
        return (
            float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None
        )
    if data_type == "DateTime":
        return value.isoformat() if isinstance(value, dt.datetime) else str(value)
    return str(value)[:MAX_STRING]


def event_row(event: FeedEvent) -> Row:
    """The row of an event in its type's table (pure)."""
    fields: dict[str, Any] = {"event_id": event.id, "ts": event.ts, "site_id": event.site_id}
    row: Row = {}
    for column, data_type in COLUMNS[event.type]:
        source = (
            fields[column] if column in fields else event.data.get(_RENAMED.get(column, column))
        )
        row[column] = _cell(source, data_type)
    return row


def dataset_definition(name: str, tables: Mapping[EventType, str]) -> dict[str, Any]:
    """The body of ``POST .../groups/{groupId}/datasets`` creating the push dataset."""
    return {
        "name": name,
        "defaultMode": "Push",
        "tables": [
            {
                "name": table,
                "columns": [{"name": c, "dataType": t} for c, t in COLUMNS[event_type]],
            }
            for event_type, table in tables.items()
        ],
    }


def token_url(authority: str, tenant_id: str) -> str:
    """The Microsoft Entra ID v2.0 token endpoint of a tenant."""
    return f"{authority.rstrip('/')}/{quote(tenant_id, safe='')}/oauth2/v2.0/token"


class PowerBiPush(PushTarget[Row]):
    """Rows to one push dataset (one lane per table), within the published limits."""

    kind = "powerbi"

    def __init__(
        self,
        name: str,
        feed_filter: FeedFilter,
        *,
        group_id: str,
        dataset_id: str,
        tables: Mapping[EventType, str],
        client: httpx.AsyncClient,
        auth: httpx.Auth,
        api_url: str = API_URL,
        flush_interval_s: float = 1.0,
        max_rows_per_request: int = MAX_ROWS_PER_REQUEST,
        max_requests_per_minute: int = MAX_REQUESTS_PER_MINUTE,
        max_rows_per_hour: int = MAX_ROWS_PER_HOUR,
        max_buffered: int = 100_000,
        retry: RetryPolicy | None = None,
        **timing: Any,
    ) -> None:
        if not 1 <= max_rows_per_request <= MAX_ROWS_PER_REQUEST:
            raise ValueError(f"a request holds 1 to {MAX_ROWS_PER_REQUEST} rows")
        super().__init__(
            name,
            feed_filter,
            max_items=max_rows_per_request,
            max_age_s=flush_interval_s,
            max_held=max(max_buffered, max_rows_per_request),
            retry=retry or RetryPolicy(max_attempts=8, base_delay_s=1.0, max_delay_s=60.0),
            **timing,
        )
        self.tables = dict(tables)
        self.client = client
        self.auth = auth
        dataset = f"{api_url.rstrip('/')}/groups/{quote(group_id, safe='')}/datasets/"
        self._dataset_url = dataset + quote(dataset_id, safe="")
        self.requests_window = RateWindow(max_requests_per_minute, 60.0, self.clock)
        self.rows_window = RateWindow(max_rows_per_hour, 3600.0, self.clock)

    def rows_url(self, table: str) -> str:
        """The PostRowsInGroup URL of a table."""
        return f"{self._dataset_url}/tables/{quote(table, safe='')}/rows"

    def convert(self, event: FeedEvent) -> tuple[str, Row] | None:
        """The event's row in its table; None for types this dataset has no table for."""
        table = self.tables.get(event.type)
        return None if table is None else (table, event_row(event))

    async def _pace(self, rows: int) -> None:
        # One request at a time, so waiting here keeps every window's count exact.
        while True:
            wait = max(self.requests_window.wait_for(1), self.rows_window.wait_for(rows))
            if wait <= 0:
                break
            await self.sleep(wait)
        self.requests_window.take(1)
        self.rows_window.take(rows)

    async def post(self, batch: Batch[Row]) -> Outcome:
        """POST one table's rows once, after waiting for room in the rate windows."""
        await self._pace(len(batch.items))
        try:
            response = await self.client.post(
                self.rows_url(batch.lane), json={"rows": batch.items}, auth=self.auth
            )
        except ErpRetryableError as exc:  # the token endpoint is unavailable
            return Retry(f"token endpoint: {exc}", after=exc.retry_after)
        except ErpAuthError as exc:
            # Refused credentials need a person; retried in case the refusal was transient.
            return Retry(f"token request refused: {exc}")
        except httpx.HTTPError as exc:
            return Retry(f"{type(exc).__name__}: request failed")
        status = response.status_code
        if 200 <= status < 300:
            return Delivered()
        retry_after = retry_after_seconds(response.headers.get("Retry-After"))
        if status == 429:
            return Retry("HTTP 429: rate limited", after=retry_after, throttled=True)
        if status in RETRYABLE or status in {401, 403}:
            return Retry(f"HTTP {status}", after=retry_after)
        return Rejected(f"rejected_http_{status}", f"HTTP {status}")

    async def aclose(self) -> None:
        """Close the HTTP client."""
        await self.client.aclose()
