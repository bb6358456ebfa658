"""A generic webhook stream: feed events POSTed as signed JSON batches.

As the product spec's StreamingPipeline describes it (bufferSize 1000, flushInterval 5000 ms):
a batch leaves when it holds 1,000 events or its first event is 5 seconds old, whichever comes
first. Each batch is one POST of

    {"batch_id": "<32 hex>", "target": "<name>", "count": n, "events": [<feed event>, ...]}

with ``X-MaintainPro-Signature: sha256=<hex HMAC-SHA256 of the exact body>`` (the same scheme
as the notification webhooks), ``X-MaintainPro-Event: feed.batch`` and
``X-MaintainPro-Delivery: <batch_id>``. A retry sends the very same bytes, so a receiver that
remembers batch ids never takes an event twice. 2xx is success; 408, 425, 429 and 5xx and
network errors are retried with back-off (a Retry-After is honoured); other answers drop the
batch with the reason counted.
"""

from __future__ import annotations

from typing import Any, Final

import httpx

from maintainpro.analytics.feeds.batching import Batch
from maintainpro.analytics.feeds.events import FeedEvent
from maintainpro.analytics.feeds.filters import FeedFilter
from maintainpro.analytics.feeds.push import Delivered, Outcome, PushTarget, Rejected, Retry
from maintainpro.core.delivery import USER_AGENT, sign
from maintainpro.supply.erp.http import RetryPolicy, retry_after_seconds

LANE: Final = "events"
BATCH_SIZE: Final = 1000
FLUSH_INTERVAL_S: Final = 5.0
EVENT_HEADER: Final = "feed.batch"
RETRYABLE: Final = frozenset({408, 425, 429, 500, 502, 503, 504})


def batch_body(batch_id: str, target: str, events: list[FeedEvent]) -> bytes:
    """The exact bytes of a batch (events are already JSON; they are joined, not re-encoded)."""
    head = f'{{"batch_id":"{batch_id}","target":"{target}","count":{len(events)},"events":['
    return (head + ",".join(e.body for e in events) + "]}").encode()


class WebhookStream(PushTarget[FeedEvent]):
    """Feed events to one URL in signed batches (see the module docstring)."""

    kind = "webhook"

    def __init__(
        self,
        name: str,
        url: str,
        feed_filter: FeedFilter,
        *,
        secret: str,
        client: httpx.AsyncClient,
        batch_size: int = BATCH_SIZE,
        flush_interval_s: float = FLUSH_INTERVAL_S,
        max_buffered: int = 10 * BATCH_SIZE,
        retry: RetryPolicy | None = None,
        **timing: Any,
    ) -> None:
        super().__init__(
            name,
            feed_filter,
            max_items=batch_size,
            max_age_s=flush_interval_s,
            max_held=max_buffered,
            retry=retry or RetryPolicy(max_attempts=8, base_delay_s=1.0, max_delay_s=60.0),
            **timing,
        )
        self.url = url
        self.secret = secret
        self.client = client
        # Bodies of batches being retried: built once, so every attempt sends the same bytes.
        self._bodies: dict[str, bytes] = {}

    def convert(self, event: FeedEvent) -> tuple[str, FeedEvent]:
        """Every event that passed the filter goes into the one lane."""
        return LANE, event

    async def post(self, batch: Batch[FeedEvent]) -> Outcome:
        """POST the batch once."""
        body = self._bodies.get(batch.id)
        if body is None:
            body = self._bodies[batch.id] = batch_body(batch.id, self.name, batch.items)
        headers = {
            "Content-Type": "application/json",
            "User-Agent": USER_AGENT,
            "X-MaintainPro-Event": EVENT_HEADER,
            "X-MaintainPro-Delivery": batch.id,
            "X-MaintainPro-Signature": sign(self.secret, body),
        }
        try:
            response = await self.client.post(self.url, content=body, headers=headers)
        except httpx.HTTPError as exc:
            # The URL is left out: webhook URLs often carry tokens in their path.
            return Retry(f"{type(exc).__name__}: request failed")
        status = response.status_code
        if 200 <= status < 300:
            return Delivered()
        if status in RETRYABLE:
            return Retry(
                f"HTTP {status}",
                after=retry_after_seconds(response.headers.get("Retry-After")),
                throttled=status == 429,
            )
        return Rejected(f"rejected_http_{status}", f"HTTP {status}")

    async def deliver(self, batch: Batch[FeedEvent]) -> bool:
        """Send one batch until settled; its body is forgotten either way."""
        try:
            return await super().deliver(batch)
        finally:
            self._bodies.pop(batch.id, None)

    async def aclose(self) -> None:
        """Close the HTTP client."""
        await self.client.aclose()
