"""Who is on a feed connection, and the audit record of each one (refused ones included).

A connection authenticates with an API token in the ``Authorization: Bearer`` header, or in the
``access_token`` query parameter for browsers (``EventSource`` and ``WebSocket`` cannot set
headers), or with the signed-in session of the pages. The query form puts the token in URLs,
which proxies and browser history may keep: docs/realtime-feeds.md says when to use it.

Each connection is recorded through ``analytics.access.record_access`` when it ends: who, with
which credential, the filters, how long it stayed open and how many events it was sent. The
same record goes to the access ledger the BI connections page reads.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterable, Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Final, Literal
from urllib.parse import urlsplit

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker
from starlette.requests import HTTPConnection

from maintainpro.analytics.access import AccessEvent, access_ledger, record_access
from maintainpro.analytics.feeds.events import EVENT_TYPES, EventType
from maintainpro.analytics.feeds.filters import FeedFilter, Refused, user_filter
from maintainpro.analytics.feeds.stream import FeedStream, Subscription
from maintainpro.core.db import utcnow
from maintainpro.core.users import ApiToken, Role, User, authenticate_token, hash_token

log = logging.getLogger(__name__)

DATASET: Final = "feed"
MAX_ID_DIGITS: Final = 20
MAX_SITES: Final = 100
Via = Literal["header", "query", "session"]


@dataclass(frozen=True)
class Caller:
    """The authenticated user of a connection and the token it used (None for a session)."""

    user: User
    credential_id: int | None
    credential_name: str | None
    via: Via


def _bearer(connection: HTTPConnection) -> str | None:
    scheme, _, value = connection.headers.get("authorization", "").strip().partition(" ")
    if scheme.lower() != "bearer":
        return None
    return value.strip() or None


def _same_origin(connection: HTTPConnection) -> bool:
    # Browsers send cookies with a WebSocket handshake that another site starts; the session
    # counts only when the page that opened the connection is ours (no Origin: not a browser).
    origin = connection.headers.get("origin")
    return origin is None or urlsplit(origin).netloc == connection.headers.get("host")


def authenticate(connection: HTTPConnection) -> Caller:
    """The caller of a connection (blocking: run it in a worker thread).

    Raises Refused: 401 without a usable credential, 403 for supplier accounts (they work only
    in the supplier portal).
    """
    factory: sessionmaker[Session] = connection.app.state.session_factory
    secret = _bearer(connection)
    via: Via = "header"
    if secret is None and connection.query_params.get("access_token"):
        secret, via = connection.query_params["access_token"], "query"
    # A short session of its own: the stream may stay open for hours and must not hold one.
    with factory() as db:
        user: User | None = None
        credential: ApiToken | None = None
        if secret is not None:
            user = authenticate_token(db, secret, utcnow())
            if user is not None:
                credential = db.scalar(
                    select(ApiToken).where(ApiToken.token_hash == hash_token(secret))
                )
            db.commit()  # keeps last_used_at
        elif "session" in connection.scope and _same_origin(connection):
            uid = connection.session.get("uid")
            found = db.get(User, uid) if isinstance(uid, int) else None
            user = found if found is not None and found.active else None
            via = "session"
        if user is None:
            raise Refused(
                401,
                "a bearer token, an access_token parameter or a signed-in session is required"
                if secret is None
                else "the token is unknown, expired or revoked",
            )
        if user.role is Role.SUPPLIER:
            raise Refused(403, "supplier accounts use the supplier portal, not the feeds")
        db.expunge(user)
        return Caller(
            user,
            credential.id if credential else None,
            credential.name if credential else None,
            via,
        )


def last_event_id(value: str | None) -> int | None:
    """A Last-Event-ID (header or parameter): an event id of this stream, or None."""
    if value is None or not value.strip():
        return None
    text = value.strip()
    if not text.isdigit() or len(text) > MAX_ID_DIGITS:
        # Never echoed: the header is whatever the client sent.
        raise Refused(400, "Last-Event-ID must be an event id this stream sent")
    return int(text)


class ConnectionAudit:
    """Times one connection and records it once, when it is refused or when it ends."""

    def __init__(self, connection: HTTPConnection, channel: str) -> None:
        self.connection = connection
        self.channel = channel
        self.started = time.perf_counter()
        self.caller: Caller | None = None
        self.options: dict[str, str] = {}
        self._done = False

    def opened(self, caller: Caller, options: Mapping[str, str]) -> None:
        """Log that a connection started streaming (the record follows when it ends)."""
        self.caller = caller
        self.options = dict(options)
        log.info(
            "feed connection opened",
            extra={
                "channel": self.channel,
                "user_id": caller.user.id,
                "username": caller.user.username,
                "credential_id": caller.credential_id,
                "credential_via": caller.via,
                "options": self.options,
            },
        )

    def done(self, status: int, *, events: int = 0, error: str | None = None) -> None:
        """Record the connection: refused (status >= 400) or ended after streaming events."""
        if self._done:
            return
        self._done = True
        caller = self.caller
        user = caller.user if caller else None
        options = dict(self.options)
        if caller is not None:
            options["via"] = caller.via
        record_access(
            access_ledger(self.connection.app.state),
            AccessEvent(
                channel=self.channel,
                dataset=DATASET,
                user_id=user.id if user else None,
                username=user.username if user else None,
                credential_id=caller.credential_id if caller else None,
                credential_name=caller.credential_name if caller else None,
                options=options,
                rows=events,
                duration_ms=(time.perf_counter() - self.started) * 1000.0,
                status=status,
                error=error,
            ),
        )


@dataclass(frozen=True)
class Admitted:
    """A connection let in: its caller, its filter, where to resume, and its audit record."""

    caller: Caller
    filter: FeedFilter
    last_event_id: int | None
    audit: ConnectionAudit

    def subscribe(self, stream: FeedStream) -> AbstractContextManager[Subscription]:
        """The connection's subscription to the stream (replaying from ``last_event_id``)."""
        return stream.subscribe(
            self.filter,
            channel=self.audit.channel,
            last_event_id=self.last_event_id,
            user_id=self.caller.user.id,
            username=self.caller.user.username,
        )


def _items(values: Iterable[str] | None) -> list[str]:
    # Repeated parameters and comma-separated lists both work: ?type=alert&type=reading or
    # ?type=alert,reading.
    return [part.strip() for value in values or () for part in value.split(",") if part.strip()]


def event_types(values: Iterable[str] | None) -> list[EventType] | None:
    """The ``type`` parameter as event types (None: every type); unknown names are refused."""
    items = _items(values)
    known = [t for t in EVENT_TYPES if t in items]
    if len(set(items)) != len(known):
        raise Refused(400, f"type must be one of {', '.join(EVENT_TYPES)}")
    return known or None


def site_ids(values: Iterable[str] | None) -> list[int] | None:
    """The ``site_id`` parameter as site ids (None: every site the user may see)."""
    items = _items(values)
    if len(items) > MAX_SITES:
        raise Refused(400, f"site_id may name at most {MAX_SITES} sites")
    if not all(item.isdigit() and len(item) <= MAX_ID_DIGITS for item in items):
        raise Refused(400, "site_id must be a site's numeric id")
    return [int(item) for item in items] or None


async def admit(
    connection: HTTPConnection,
    channel: str,
    *,
    types: Iterable[str] | None,
    sites: Iterable[str] | None,
    resume_from: str | None,
) -> Admitted:
    """Authenticate, then check the request; a refusal is recorded, then raised.

    The credential is checked first, so a caller without one learns nothing about the rest.
    """
    audit = ConnectionAudit(connection, channel)
    try:
        audit.caller = await asyncio.to_thread(authenticate, connection)
        feed_filter = user_filter(audit.caller.user, event_types(types), site_ids(sites))
        resume = last_event_id(resume_from)
    except Refused as exc:
        audit.done(exc.status, error=str(exc))
        raise
    options = feed_filter.describe()
    if resume is not None:
        options["last_event_id"] = str(resume)
    audit.opened(audit.caller, options)
    return Admitted(audit.caller, feed_filter, resume, audit)
