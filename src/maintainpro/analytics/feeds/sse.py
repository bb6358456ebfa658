"""GET /api/v1/stream: the feed as Server-Sent Events, resumable with ``Last-Event-ID``."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Annotated, Final

from fastapi import APIRouter, Header, Query, Request
from fastapi.responses import StreamingResponse

from maintainpro.analytics.feeds.connections import Admitted, admit
from maintainpro.analytics.feeds.events import FeedEvent
from maintainpro.analytics.feeds.filters import Refused
from maintainpro.analytics.feeds.stream import FeedStream, Subscription
from maintainpro.api.problems import Problem

CHANNEL: Final = "stream.sse"
RETRY_MS: Final = 5000

router = APIRouter(tags=["feeds"])


def problem_of(refused: Refused) -> Problem:
    """The problem document answering a refused connection."""
    headers = {"WWW-Authenticate": 'Bearer realm="maintainpro"'} if refused.status == 401 else None
    return Problem(refused.status, str(refused), headers=headers)


def sse_frame(event: FeedEvent) -> str:
    """One event in text/event-stream framing; ``data`` is the normalised event's JSON."""
    return f"id: {event.id}\nevent: {event.type}\ndata: {event.body}\n\n"


def _notice(name: str, data: dict[str, int | None]) -> str:
    return f"event: {name}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n"


def gap_notice(stream: FeedStream, subscription: Subscription, asked: int | None) -> str | None:
    """The ``gap`` event for a resume that cannot be complete, or None."""
    if not subscription.gap:
        return None
    oldest, _ = stream.replay_window
    return _notice("gap", {"last_event_id": asked, "oldest_id": oldest})


async def _frames(stream: FeedStream, admitted: Admitted, heartbeat_s: float) -> AsyncIterator[str]:
    sent = 0
    try:
        with admitted.subscribe(stream) as subscription:
            yield f"retry: {RETRY_MS}\n: connected\n\n"
            gap = gap_notice(stream, subscription, admitted.last_event_id)
            if gap is not None:
                yield gap
            reported = 0
            while True:
                event = await subscription.next(heartbeat_s)
                if subscription.dropped != reported:
                    # The client fell behind and lost events: it should reload what it shows.
                    reported = subscription.dropped
                    yield _notice("dropped", {"dropped": reported})
                if event is None:
                    yield ": heartbeat\n\n"
                    continue
                yield sse_frame(event)
                sent += 1
                subscription.sent = sent
    finally:
        admitted.audit.done(200, events=sent)


@router.get(
    "/stream",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/event-stream": {}}}},
)
async def feed_stream(
    request: Request,
    event_type: Annotated[list[str] | None, Query(alias="type")] = None,
    site_id: Annotated[list[str] | None, Query()] = None,
    last_event_id: str | None = None,
    last_event_id_header: Annotated[str | None, Header(alias="Last-Event-ID")] = None,
) -> StreamingResponse:
    """Readings, alerts and work-order events as SSE, filtered by type and site, RLS applied.

    ``type``: reading, alert, work_order (repeated or comma-separated; default: every type the
    role opens). ``site_id``: sites to follow (default: every site the user may see).

    Authenticate with ``Authorization: Bearer``, an ``access_token`` parameter or the page
    session. Resume with the ``Last-Event-ID`` header (browsers send it on reconnect) or the
    ``last_event_id`` parameter; a ``gap`` event says when the events in between are gone.
    """
    stream: FeedStream = request.app.state.feeds.stream
    try:
        admitted = await admit(
            request,
            CHANNEL,
            types=event_type,
            sites=site_id,
            resume_from=last_event_id_header or last_event_id,
        )
    except Refused as exc:
        raise problem_of(exc) from None
    heartbeat_s: float = request.app.state.settings.feed_heartbeat_s
    return StreamingResponse(
        _frames(stream, admitted, heartbeat_s),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )
