"""Notifications: subscriptions, webhook endpoints, the delivery log, test sends, live events."""

from __future__ import annotations

import asyncio
import datetime as dt
import secrets
from collections.abc import AsyncIterator, Callable
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request, Response, status
from fastapi.responses import StreamingResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, ConfigDict, Field, HttpUrl, field_validator, model_validator
from sqlalchemy import ColumnElement, or_, select
from sqlalchemy.orm import Session, sessionmaker

from maintainpro.api.deps import CurrentUser, SessionDep, require
from maintainpro.api.fields import Name
from maintainpro.api.pagination import Page, WindowDep, list_page
from maintainpro.api.problems import Problem
from maintainpro.core.assets import Asset, Site
from maintainpro.core.db import utcnow
from maintainpro.core.events import OutboxEvent
from maintainpro.core.live import Broadcaster, LiveEvent
from maintainpro.core.notifications import (
    Channel,
    Delivery,
    DeliveryStatus,
    Subscription,
    WebhookEndpoint,
)
from maintainpro.core.subscriptions import (
    parse_hhmm,
    split_topics,
    valid_topic_pattern,
    webhook_target,
    zone,
)
from maintainpro.core.users import Permission, Role, User, authenticate_token
from maintainpro.iot.credentials import CredentialBox
from maintainpro.iot.devices import Device, Sensor

router = APIRouter(tags=["notifications"])
Admin = Depends(require(Permission.USERS_ADMIN))
KEEPALIVE_S = 15.0
_bearer = HTTPBearer(auto_error=False, description="A personal API token (mpt_...)")
MIN_SECRET_CHARS = 16

Severity = Literal["info", "warning", "major", "critical"]
HhMm = Annotated[str, Field(pattern=r"^([01]\d|2[0-3]):[0-5]\d$")]


def _is_admin(user: User) -> bool:
    return Permission.USERS_ADMIN in user.permissions


def _reader(user: CurrentUser) -> User:
    # Alerts describe the plant; roles that cannot see assets (suppliers) get none.
    if Permission.ASSETS_READ not in user.permissions:
        raise Problem(403, f"the role {user.role.value} may not receive plant notifications")
    return user


Subscriber = Annotated[User, Depends(_reader)]


# --- subscriptions ---------------------------------------------------------------------------


class SubscriptionFields(BaseModel):
    """Fields shared by creating and changing a subscription."""

    model_config = ConfigDict(extra="forbid")
    topics: Annotated[str, Field(min_length=1, max_length=500)] | None = None
    site_id: int | None = None
    asset_id: int | None = None
    min_severity: Severity | None = None
    quiet_start: HhMm | None = None
    quiet_end: HhMm | None = None
    timezone: Annotated[str, Field(max_length=64)] | None = None
    quiet_blocks_critical: bool | None = None
    active: bool | None = None

    @field_validator("topics")
    @classmethod
    def _topics(cls, value: str | None) -> str | None:
        if value is None:
            return None
        patterns = split_topics(value)
        if not patterns or not all(valid_topic_pattern(p) for p in patterns):
            raise ValueError("topics are comma-separated patterns like alert.* or alert.raised")
        return ",".join(patterns)

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str | None) -> str | None:
        if value is not None:
            zone(value)
        return value


class SubscriptionIn(SubscriptionFields):
    """A new subscription: for a user (default: yourself), a role, or a webhook endpoint."""

    channel: Channel = Channel.EMAIL
    user_id: int | None = None
    role: Role | None = None
    webhook_id: int | None = None

    @model_validator(mode="after")
    def _target(self) -> SubscriptionIn:
        if self.channel == Channel.WEBHOOK:
            if self.webhook_id is None or self.user_id is not None or self.role is not None:
                raise ValueError("a webhook subscription names webhook_id and no user or role")
        elif self.webhook_id is not None or (self.user_id is not None and self.role is not None):
            raise ValueError("an e-mail subscription names a user or a role, not both")
        return self


class SubscriptionOut(BaseModel):
    """A subscription."""

    model_config = ConfigDict(from_attributes=True)
    id: int
    user_id: int | None
    role: Role | None
    channel: Channel
    webhook_id: int | None
    topics: str
    site_id: int | None
    asset_id: int | None
    min_severity: str
    quiet_start: str | None
    quiet_end: str | None
    timezone: str
    quiet_blocks_critical: bool
    active: bool
    created_at: dt.datetime
    updated_at: dt.datetime


def _check_scope(db: Session, sub: Subscription) -> None:
    if (sub.quiet_start is None) != (sub.quiet_end is None):
        raise Problem(422, "quiet hours need both quiet_start and quiet_end")
    if sub.quiet_start is not None and sub.quiet_start == sub.quiet_end:
        raise Problem(422, "quiet_start and quiet_end must differ")
    if sub.quiet_start is not None:
        parse_hhmm(sub.quiet_start)
    if sub.site_id is not None and db.get(Site, sub.site_id) is None:
        raise Problem(422, f"site {sub.site_id} does not exist")
    if sub.asset_id is not None and db.get(Asset, sub.asset_id) is None:
        raise Problem(422, f"asset {sub.asset_id} does not exist")
    if sub.webhook_id is not None and db.get(WebhookEndpoint, sub.webhook_id) is None:
        raise Problem(422, f"webhook endpoint {sub.webhook_id} does not exist")
    if sub.user_id is not None and db.get(User, sub.user_id) is None:
        raise Problem(422, f"user {sub.user_id} does not exist")


def _own_subscription(db: Session, user: User, sub_id: int) -> Subscription:
    sub = db.get(Subscription, sub_id)
    # Someone else's subscription is reported as missing, not forbidden: ids reveal nothing.
    if sub is None or (not _is_admin(user) and sub.user_id != user.id):
        raise Problem(404, f"subscription {sub_id} does not exist")
    return sub


@router.get("/notifications/subscriptions")
def list_subscriptions(
    db: SessionDep,
    user: Subscriber,
    page: WindowDep,
    user_id: int | None = None,
    role: Role | None = None,
    channel: Channel | None = None,
) -> Page[SubscriptionOut]:
    """Your subscriptions; administrators see everyone's and can filter by user or role."""
    stmt = select(Subscription).order_by(Subscription.id)
    if not _is_admin(user):
        stmt = stmt.where(Subscription.user_id == user.id)
    if user_id is not None:
        stmt = stmt.where(Subscription.user_id == user_id)
    if role is not None:
        stmt = stmt.where(Subscription.role == role)
    if channel is not None:
        stmt = stmt.where(Subscription.channel == channel)
    return list_page(db, stmt, page, SubscriptionOut)


@router.post("/notifications/subscriptions", status_code=status.HTTP_201_CREATED)
def create_subscription(db: SessionDep, user: Subscriber, body: SubscriptionIn) -> SubscriptionOut:
    """Subscribe yourself; administrators may subscribe any user, a role or a webhook."""
    fields = body.model_dump(exclude_none=True)
    if body.channel == Channel.EMAIL and body.role is None and body.user_id is None:
        fields["user_id"] = user.id
    if not _is_admin(user) and (
        body.role is not None
        or body.channel == Channel.WEBHOOK
        or fields.get("user_id") not in (None, user.id)
    ):
        raise Problem(403, "only administrators manage other users', role or webhook subscriptions")
    sub = Subscription(**fields)
    _check_scope(db, sub)
    db.add(sub)
    db.commit()
    return SubscriptionOut.model_validate(sub)


@router.get("/notifications/subscriptions/{sub_id}")
def get_subscription(db: SessionDep, user: Subscriber, sub_id: int) -> SubscriptionOut:
    """One subscription."""
    return SubscriptionOut.model_validate(_own_subscription(db, user, sub_id))


@router.patch("/notifications/subscriptions/{sub_id}")
def update_subscription(
    db: SessionDep, user: Subscriber, sub_id: int, body: SubscriptionFields
) -> SubscriptionOut:
    """Change scope, severity, quiet hours or pause a subscription (null clears quiet hours)."""
    sub = _own_subscription(db, user, sub_id)
    for name, value in body.model_dump(exclude_unset=True).items():
        if value is None and name in {"topics", "min_severity", "timezone"}:
            continue  # these always have a value
        if value is None and name in {"quiet_blocks_critical", "active"}:
            continue
        setattr(sub, name, value)
    _check_scope(db, sub)
    db.commit()
    return SubscriptionOut.model_validate(sub)


@router.delete("/notifications/subscriptions/{sub_id}", status_code=status.HTTP_204_NO_CONTENT)
def delete_subscription(db: SessionDep, user: Subscriber, sub_id: int) -> Response:
    """Remove a subscription (its delivery log stays)."""
    db.delete(_own_subscription(db, user, sub_id))
    db.commit()
    return Response(status_code=status.HTTP_204_NO_CONTENT)


# --- webhook endpoints -----------------------------------------------------------------------


class WebhookIn(BaseModel):
    """A new endpoint; without a secret one is generated. The secret is shown only once."""

    model_config = ConfigDict(extra="forbid")
    name: Name
    url: HttpUrl
    secret: Annotated[str, Field(min_length=MIN_SECRET_CHARS, max_length=200)] | None = None
    active: bool = True


class WebhookPatch(BaseModel):
    """Changes to an endpoint; rotate_secret issues a new secret (shown once)."""

    model_config = ConfigDict(extra="forbid")
    name: Name | None = None
    url: HttpUrl | None = None
    active: bool | None = None
    rotate_secret: bool = False


class WebhookOut(BaseModel):
    """An endpoint; the secret is never returned, only whether one is set."""

    id: int
    name: str
    url: str
    active: bool
    has_secret: bool
    created_at: dt.datetime
    updated_at: dt.datetime


class WebhookCreated(WebhookOut):
    """The response that carries the secret, once."""

    secret: str


def _webhook_out(hook: WebhookEndpoint) -> dict[str, Any]:
    return {
        "id": hook.id,
        "name": hook.name,
        "url": hook.url,
        "active": hook.active,
        "has_secret": hook.secret is not None,
        "created_at": hook.created_at,
        "updated_at": hook.updated_at,
    }


def _box(request: Request) -> CredentialBox:
    box: CredentialBox | None = request.app.state.credential_box
    if box is None:
        raise Problem(409, "webhook secrets need a credentials key (MAINTAINPRO_CREDENTIALS_KEY)")
    return box


def _webhook(db: Session, hook_id: int) -> WebhookEndpoint:
    hook = db.get(WebhookEndpoint, hook_id)
    if hook is None:
        raise Problem(404, f"webhook endpoint {hook_id} does not exist")
    return hook


@router.get("/notifications/webhooks", dependencies=[Admin])
def list_webhooks(db: SessionDep, page: WindowDep) -> Page[WebhookOut]:
    """Every webhook endpoint (without secrets)."""
    rows = db.scalars(
        select(WebhookEndpoint).order_by(WebhookEndpoint.id).limit(page.limit).offset(page.offset)
    ).all()
    total = len(db.scalars(select(WebhookEndpoint.id)).all())
    return Page[WebhookOut](
        items=[WebhookOut(**_webhook_out(h)) for h in rows],
        total=total,
        limit=page.limit,
        offset=page.offset,
    )


@router.post("/notifications/webhooks", status_code=status.HTTP_201_CREATED, dependencies=[Admin])
def create_webhook(request: Request, db: SessionDep, body: WebhookIn) -> WebhookCreated:
    """Register an endpoint; the response holds the signing secret, which is never shown again."""
    secret = body.secret or secrets.token_urlsafe(32)
    hook = WebhookEndpoint(
        name=body.name,
        url=str(body.url),
        secret=_box(request).seal({"secret": secret}),
        active=body.active,
    )
    db.add(hook)
    db.commit()
    return WebhookCreated(**_webhook_out(hook), secret=secret)


@router.get("/notifications/webhooks/{hook_id}", dependencies=[Admin])
def get_webhook(db: SessionDep, hook_id: int) -> WebhookOut:
    """One endpoint (without its secret)."""
    return WebhookOut(**_webhook_out(_webhook(db, hook_id)))


@router.patch("/notifications/webhooks/{hook_id}", dependencies=[Admin], response_model=None)
def update_webhook(
    request: Request, db: SessionDep, hook_id: int, body: WebhookPatch
) -> WebhookOut | WebhookCreated:
    """Rename, move, pause or re-key an endpoint; a new secret is returned once."""
    hook = _webhook(db, hook_id)
    if body.name is not None:
        hook.name = body.name
    if body.url is not None:
        hook.url = str(body.url)
    if body.active is not None:
        hook.active = body.active
    secret = None
    if body.rotate_secret:
        secret = secrets.token_urlsafe(32)
        hook.secret = _box(request).seal({"secret": secret})
    db.commit()
    if secret is not None:
        return WebhookCreated(**_webhook_out(hook), secret=secret)
    return WebhookOut(**_webhook_out(hook))


@router.delete(
    "/notifications/webhooks/{hook_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    dependencies=[Admin],
)
def delete_webhook(db: SessionDep, hook_id: int) -> Response:
    """Remove an endpoint and its subscriptions; pending deliveries to it fail."""
    db.delete(_webhook(db, hook_id))
    db.commit()
    return Response(status_code=status.HTTP_204_NO_CONTENT)


# --- delivery log ----------------------------------------------------------------------------


class DeliveryOut(BaseModel):
    """One delivery with its latest outcome."""

    model_config = ConfigDict(from_attributes=True)
    id: int
    event_id: int | None
    topic: str
    channel: Channel
    target: str
    subscription_id: int | None
    status: DeliveryStatus
    attempts: int
    last_error: str | None
    response_code: int | None
    created_at: dt.datetime
    next_attempt_at: dt.datetime | None
    sent_at: dt.datetime | None


@router.get("/notifications/deliveries")
def list_deliveries(
    db: SessionDep,
    user: Subscriber,
    page: WindowDep,
    status: DeliveryStatus | None = None,
    channel: Channel | None = None,
    topic: Annotated[str | None, Query(max_length=100)] = None,
    event_id: int | None = None,
    subscription_id: int | None = None,
    since: dt.datetime | None = None,
) -> Page[DeliveryOut]:
    """The delivery log, newest first; non-administrators see deliveries to themselves only."""
    stmt = select(Delivery).order_by(Delivery.id.desc())
    if not _is_admin(user):
        own = select(Subscription.id).where(Subscription.user_id == user.id)
        mine: list[ColumnElement[bool]] = [Delivery.subscription_id.in_(own)]
        if user.email:
            mine.append(Delivery.target == user.email)
        stmt = stmt.where(Delivery.channel == Channel.EMAIL, or_(*mine))
    if status is not None:
        stmt = stmt.where(Delivery.status == status)
    if channel is not None:
        stmt = stmt.where(Delivery.channel == channel)
    if topic is not None:
        stmt = stmt.where(Delivery.topic == topic)
    if event_id is not None:
        stmt = stmt.where(Delivery.event_id == event_id)
    if subscription_id is not None:
        stmt = stmt.where(Delivery.subscription_id == subscription_id)
    if since is not None:
        if since.tzinfo is None:
            raise Problem(422, "since needs a time zone (e.g. 2026-01-01T00:00:00Z)")
        stmt = stmt.where(Delivery.created_at >= since)
    return list_page(db, stmt, page, DeliveryOut)


# --- test send -------------------------------------------------------------------------------


class TestIn(BaseModel):
    """Where to send a test: your own e-mail (admins: any user's) or a webhook endpoint."""

    model_config = ConfigDict(extra="forbid")
    channel: Channel = Channel.EMAIL
    user_id: int | None = None
    webhook_id: int | None = None


@router.post("/notifications/test", status_code=status.HTTP_202_ACCEPTED)
def send_test(db: SessionDep, user: Subscriber, body: TestIn) -> DeliveryOut:
    """Queue a test notification; the delivery worker sends it within seconds (see the log)."""
    if body.channel == Channel.WEBHOOK:
        if not _is_admin(user):
            raise Problem(403, "only administrators test webhooks")
        if body.webhook_id is None:
            raise Problem(422, "webhook_id is required for a webhook test")
        target = webhook_target(_webhook(db, body.webhook_id).id)
    else:
        recipient = user
        if body.user_id is not None and body.user_id != user.id:
            if not _is_admin(user):
                raise Problem(403, "only administrators send tests to other users")
            found = db.get(User, body.user_id)
            if found is None:
                raise Problem(404, f"user {body.user_id} does not exist")
            recipient = found
        if not recipient.email:
            raise Problem(422, f"user {recipient.username} has no e-mail address")
        target = recipient.email
    now = utcnow()
    payload = {
        "title": "Test notification from MaintAInPro",
        "severity": "info",
        "reason": f"requested by {user.username}",
        "reading_at": now.isoformat(),
        "url": "/",
    }
    # Stored as an already-delivered event: it carries the payload for the sender without
    # being fanned out to every subscriber.
    event = OutboxEvent(
        topic="notification.test",
        payload=payload,
        created_at=now,
        available_at=now,
        delivered_at=now,
        attempts=0,
    )
    db.add(event)
    db.flush()
    delivery = Delivery(
        event_id=event.id,
        topic="notification.test",
        channel=body.channel,
        target=target,
        status=DeliveryStatus.PENDING,
        attempts=0,
        created_at=now,
        next_attempt_at=now,
    )
    db.add(delivery)
    db.commit()
    return DeliveryOut.model_validate(delivery)


# --- live events -----------------------------------------------------------------------------


def stream_user(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> User:
    """The user of a live stream: bearer token (API) or the signed-in session (pages)."""
    factory: sessionmaker[Session] = request.app.state.session_factory
    # A short session of its own: the stream may stay open for hours and must not hold one.
    with factory() as db:
        user: User | None = None
        if credentials is not None and credentials.scheme.lower() == "bearer":
            user = authenticate_token(db, credentials.credentials, utcnow())
            db.commit()
        elif "session" in request.scope:
            uid = request.session.get("uid")
            found = db.get(User, uid) if isinstance(uid, int) else None
            user = found if found is not None and found.active else None
        if user is None:
            raise Problem(
                401,
                "a bearer token or a signed-in session is required",
                headers={"WWW-Authenticate": 'Bearer realm="maintainpro"'},
            )
        db.expunge(user)
    if Permission.ASSETS_READ not in user.permissions:
        raise Problem(403, f"the role {user.role.value} may not follow live plant events")
    return user


def _asset_sensor_ids(request: Request, asset_id: int) -> set[int]:
    factory: sessionmaker[Session] = request.app.state.session_factory
    with factory() as db:
        rows = db.scalars(
            select(Sensor.id)
            .join(Device, Sensor.device_id == Device.id)
            .where(Device.asset_id == asset_id)
        ).all()
    return set(rows)


def event_filter(sensor_ids: set[int], asset_id: int | None) -> Callable[[LiveEvent], bool]:
    """Which events a stream gets: those of its sensors or asset, or all but `reading`."""
    if not sensor_ids and asset_id is None:
        # Live readings are many; only a page that names its sensors or asset wants them.
        return lambda event: event.type != "reading"

    def accept(event: LiveEvent) -> bool:
        if event.data.get("sensor_id") in sensor_ids:
            return True
        return asset_id is not None and event.data.get("asset_id") == asset_id

    return accept


@router.get("/events/stream", response_class=StreamingResponse)
async def event_stream(
    request: Request,
    _user: Annotated[User, Depends(stream_user)],
    sensor_id: Annotated[list[int] | None, Query(max_length=500)] = None,
    asset_id: int | None = None,
) -> StreamingResponse:
    """Live events (alert.*, and `reading` for streams filtered by sensor_id or asset_id) as SSE."""
    live: Broadcaster = request.app.state.live
    keepalive: float = getattr(request.app.state, "live_keepalive_s", KEEPALIVE_S)
    sensors = set(sensor_id or ())
    if asset_id is not None:
        # Resolved once at connect time: a page reloads when its asset's devices change.
        sensors |= await asyncio.to_thread(_asset_sensor_ids, request, asset_id)
    accept = event_filter(sensors, asset_id)

    async def frames() -> AsyncIterator[str]:
        async with live.listen(accept) as listener:
            yield "retry: 5000\n: connected\n\n"
            reported = 0
            while True:
                event = await listener.next(keepalive)
                if listener.dropped != reported:
                    # The browser fell behind; it should reload what it shows.
                    yield f'event: dropped\ndata: {{"dropped": {listener.dropped}}}\n\n'
                    reported = listener.dropped
                if event is None:
                    yield ": keep-alive\n\n"
                    continue
                yield event.sse()

    return StreamingResponse(
        frames(),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )
