"""WebSocket /api/v1/stream/ws: the same feed events as the SSE stream, one JSON text message
each, with heartbeats, resume and the same filters and row-level security.

A refused handshake gets a real HTTP answer (401/403/400 problem+json) where the server supports
the WebSocket denial response (uvicorn does); elsewhere it is closed with 1008 (policy violation).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from typing import Annotated, Any, Final

from fastapi import APIRouter, Query, WebSocket, WebSocketDisconnect

from maintainpro.analytics.feeds.connections import Admitted, admit
from maintainpro.analytics.feeds.filters import Refused
from maintainpro.analytics.feeds.stream import FeedStream, Subscription
from maintainpro.api.problems import problem_response
from maintainpro.core.db import utcnow

CHANNEL: Final = "stream.ws"
POLICY_VIOLATION: Final = 1008

router = APIRouter(tags=["feeds"])


def _message(kind: str, **fields: Any) -> str:
    return json.dumps({"type": kind, **fields}, separators=(",", ":"))


async def _refuse(websocket: WebSocket, refused: Refused) -> None:
    headers = {"WWW-Authenticate": 'Bearer realm="maintainpro"'} if refused.status == 401 else None
    try:
        await websocket.send_denial_response(
            problem_response(None, refused.status, str(refused), headers=headers)
        )
    except RuntimeError:
        await websocket.close(code=POLICY_VIOLATION, reason=str(refused)[:120])


async def _pump(
    websocket: WebSocket, stream: FeedStream, subscription: Subscription, admitted: Admitted
) -> None:
    heartbeat_s: float = websocket.app.state.settings.feed_heartbeat_s
    if subscription.gap:
        oldest, _ = stream.replay_window
        await websocket.send_text(
            _message("gap", last_event_id=admitted.last_event_id, oldest_id=oldest)
        )
    reported = 0
    while True:
        event = await subscription.next(heartbeat_s)
        if subscription.dropped != reported:
            reported = subscription.dropped
            await websocket.send_text(_message("dropped", dropped=reported))
        if event is None:
            await websocket.send_text(_message("heartbeat", ts=utcnow().isoformat()))
            continue
        await websocket.send_text(event.body)
        subscription.sent += 1


async def _until_closed(websocket: WebSocket) -> None:
    # The feed is one-way; whatever the client sends is read and ignored, so that a close
    # from its side is noticed at once.
    while True:
        message = await websocket.receive()
        if message["type"] == "websocket.disconnect":
            return


@router.websocket("/stream/ws")
async def feed_socket(
    websocket: WebSocket,
    event_type: Annotated[list[str] | None, Query(alias="type")] = None,
    site_id: Annotated[list[str] | None, Query()] = None,
    last_event_id: str | None = None,
) -> None:
    """Feed events as JSON text messages; authenticate with a bearer header, ``access_token`` or
    the page session; filter with ``type`` and ``site_id``; resume with ``last_event_id``."""
    stream: FeedStream = websocket.app.state.feeds.stream
    try:
        admitted = await admit(
            websocket, CHANNEL, types=event_type, sites=site_id, resume_from=last_event_id
        )
    except Refused as exc:
        await _refuse(websocket, exc)
        return
    subscription: Subscription | None = None
    try:
        await websocket.accept()
        with admitted.subscribe(stream) as subscription:
            pump = asyncio.create_task(_pump(websocket, stream, subscription, admitted))
            closed = asyncio.create_task(_until_closed(websocket))
            try:
                done, _ = await asyncio.wait({pump, closed}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for task in (pump, closed):
                    task.cancel()
                await asyncio.gather(pump, closed, return_exceptions=True)
            for task in done:
                # A send to a client that just left ends the connection like a close does.
                with contextlib.suppress(WebSocketDisconnect, RuntimeError, OSError):
                    task.result()
    finally:
        admitted.audit.done(200, events=subscription.sent if subscription else 0)
