"""A local webhook receiver that checks what a feed webhook stream publishes.

Every POST must carry ``Content-Type: application/json``, ``X-MaintainPro-Event: feed.batch``,
``X-MaintainPro-Delivery`` equal to the body's ``batch_id``, and
``X-MaintainPro-Signature: sha256=<HMAC-SHA256 of the body with the shared secret>``; the body is
``{"batch_id", "target", "count", "events"}`` with 1 to ``max_events`` events of the normalised
shape. A batch id already accepted is answered 200 and counted as a duplicate, as a receiver
that deduplicates would. Armed statuses (``fail_next``) answer instead of accepting.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

EVENT_KEYS = {"id", "type", "site_id", "ts", "data"}


@dataclass
class WebhookReceiver:
    """What arrived, what was accepted, and faults a test can arm."""

    secret: str
    max_events: int = 1000
    fail_next: list[int] = field(default_factory=list)
    attempts: list[tuple[str, bytes]] = field(default_factory=list)
    accepted: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    duplicates: int = 0
    refused: list[str] = field(default_factory=list)
    took_a_batch: threading.Event = field(default_factory=threading.Event)

    def _refuse(self, status: int, why: str) -> Response:
        self.refused.append(why)
        return JSONResponse({"error": why}, status_code=status)

    async def hook(self, request: Request) -> Response:
        """POST /hooks/feed."""
        body = await request.body()
        expected = "sha256=" + hmac.new(self.secret.encode(), body, hashlib.sha256).hexdigest()
        signature = request.headers.get("x-maintainpro-signature", "")
        if not hmac.compare_digest(signature, expected):
            return self._refuse(401, "bad signature")
        if request.headers.get("content-type") != "application/json":
            return self._refuse(415, "not json")
        if request.headers.get("x-maintainpro-event") != "feed.batch":
            return self._refuse(400, "not a feed batch")
        batch = json.loads(body)
        batch_id = batch.get("batch_id")
        self.attempts.append((batch_id, body))
        if request.headers.get("x-maintainpro-delivery") != batch_id:
            return self._refuse(400, "delivery header is not the batch id")
        found = batch.get("events")
        if set(batch) != {"batch_id", "target", "count", "events"} or not isinstance(found, list):
            return self._refuse(400, "not the batch shape")
        if not 1 <= len(found) <= self.max_events or batch["count"] != len(found):
            return self._refuse(400, "wrong number of events")
        if not all(isinstance(e, dict) and set(e) == EVENT_KEYS for e in found):
            return self._refuse(400, "not the event shape")
        if self.fail_next:
            return Response(status_code=self.fail_next.pop(0))
        if batch_id in self.accepted:
            self.duplicates += 1
        else:
            self.accepted[batch_id] = found
            self.took_a_batch.set()
        return Response(status_code=200)

    def event_ids(self) -> list[int]:
        """The ids of every accepted event, in the order their batches were accepted."""
        return [e["id"] for events in self.accepted.values() for e in events]

    def app(self) -> Starlette:
        """The receiver as an ASGI app."""
        return Starlette(routes=[Route("/hooks/feed", self.hook, methods=["POST"])])
