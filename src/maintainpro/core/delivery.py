"""Notification delivery: the outbox handler planning deliveries; the e-mail and webhook sender."""

from __future__ import annotations

import collections
import contextlib
import datetime as dt
import hashlib
import hmac
import json
import logging
import re
import smtplib
import ssl
from collections.abc import Callable, Iterable, Mapping, Sequence
from email.message import EmailMessage
from typing import Any, Protocol

import httpx
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from maintainpro.config import Settings
from maintainpro.core.db import utcnow
from maintainpro.core.events import Handler, OutboxEvent
from maintainpro.core.notifications import (
    Channel,
    Delivery,
    DeliveryStatus,
    Subscription,
    WebhookEndpoint,
)
from maintainpro.core.subscriptions import EventFacts, Person, Rule, recipients, webhook_id_of
from maintainpro.core.users import User

log = logging.getLogger(__name__)

ALERT_TOPICS = ("alert.raised", "alert.escalated", "alert.cleared")
MAX_ATTEMPTS = 8
FIRST_RETRY = dt.timedelta(seconds=30)
MAX_RETRY = dt.timedelta(hours=1)
WEBHOOK_TIMEOUT_S = 10.0
SMTP_TIMEOUT_S = 30.0
USER_AGENT = "MaintAInPro-Webhooks/1"
_CONTROL = re.compile(r"[\x00-\x1f\x7f]+")

Publish = Callable[[str, dict[str, Any]], None]


class SecretBox(Protocol):
    """Opens sealed webhook secrets (the IoT CredentialBox fits; core does not import iot)."""

    def open(self, token: bytes | None) -> dict[str, str]:
        """Decrypt a sealed mapping."""
        ...


class DeliveryError(Exception):
    """One attempt failed; retried unless permanent."""

    def __init__(self, message: str, *, code: int | None = None, permanent: bool = False) -> None:
        super().__init__(message)
        self.code = code
        self.permanent = permanent


def retry_delay(attempts: int) -> dt.timedelta:
    """Wait after the n-th failed attempt: 30 s doubling, capped at an hour."""
    delay: dt.timedelta = FIRST_RETRY * 2 ** max(attempts - 1, 0)
    return min(delay, MAX_RETRY)


def sign(secret: str, body: bytes) -> str:
    """The X-MaintainPro-Signature value: sha256=<hex HMAC-SHA256 of the exact body bytes>."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


# --- planning deliveries (outbox handler) -------------------------------------------------


def _outbox_id(session: Session, topic: str, payload: Mapping[str, Any]) -> int | None:
    # Handlers receive (topic, payload) only; the undelivered outbox row with that exact payload
    # is the event being handled, and its id keys idempotency across at-least-once redelivery.
    rows = session.execute(
        select(OutboxEvent.id, OutboxEvent.payload)
        .where(OutboxEvent.topic == topic, OutboxEvent.delivered_at.is_(None))
        .order_by(OutboxEvent.id)
        .limit(1000)
    ).all()
    wanted = dict(payload)
    return next((row.id for row in rows if row.payload == wanted), None)


def plan_deliveries(
    session: Session, topic: str, payload: Mapping[str, Any], now: dt.datetime
) -> list[Delivery]:
    """Write the deliveries an event calls for, skipping any already written for that event."""
    event_id = _outbox_id(session, topic, payload)
    facts = EventFacts.of(topic, payload)
    rules = [Rule.of(s) for s in session.scalars(select(Subscription).where(Subscription.active))]
    people = [
        Person.of(u)
        for u in session.scalars(select(User).where(User.active, User.email.is_not(None)))
    ]
    hooks = session.scalars(select(WebhookEndpoint.id).where(WebhookEndpoint.active)).all()
    planned = recipients(facts, rules, people, hooks, now)
    done: set[tuple[str, str]] = set()
    if event_id is not None:
        done = {
            (str(c), t)
            for c, t in session.execute(
                select(Delivery.channel, Delivery.target).where(Delivery.event_id == event_id)
            )
        }
    created = []
    for item in planned:
        if (str(item.channel), item.target) in done:
            continue
        delivery = Delivery(
            event_id=event_id,
            topic=topic,
            channel=item.channel,
            target=item.target,
            subscription_id=item.subscription_id,
            status=DeliveryStatus.SUPPRESSED if item.suppressed else DeliveryStatus.PENDING,
            attempts=0,
            last_error=item.suppressed,
            created_at=now,
            next_attempt_at=None if item.suppressed else now,
        )
        session.add(delivery)
        created.append(delivery)
    session.flush()
    return created


def notification_handlers(
    factory: sessionmaker[Session],
    publish: Publish | None = None,
    *,
    clock: Callable[[], dt.datetime] = utcnow,
    topics: Iterable[str] = ALERT_TOPICS,
) -> dict[str, list[Handler]]:
    """Outbox handlers for alert topics (or those given): plan deliveries, push to live streams."""
    # Redelivery would push the same event to browsers twice; remembering recent payloads
    # avoids that without touching the database.
    seen: collections.deque[str] = collections.deque(maxlen=1000)

    def handle(topic: str, payload: Mapping[str, Any]) -> None:
        with factory() as session, session.begin():
            created = plan_deliveries(session, topic, payload, clock())
        if created:
            log.info("notifications planned", extra={"topic": topic, "deliveries": len(created)})
        if publish is not None:
            key = topic + json.dumps(dict(payload), sort_keys=True, default=str)
            if key not in seen:
                seen.append(key)
                publish(topic, dict(payload))

    return {topic: [handle] for topic in topics}


# --- sending -------------------------------------------------------------------------------


def _clean(text: Any) -> str:
    # Header injection and garbled subjects both come from control characters in titles.
    return _CONTROL.sub(" ", str(text)).strip()


def _link(settings: Settings, url: Any) -> str | None:
    if not isinstance(url, str) or not url:
        return None
    if url.startswith(("http://", "https://")):
        return url
    return settings.public_url.rstrip("/") + "/" + url.lstrip("/")


def email_subject(topic: str, payload: Mapping[str, Any]) -> str:
    """Subject line such as "[CRITICAL] P-101 vibration above 11 mm/s"."""
    title = _clean(payload.get("title") or topic)
    severity = _clean(payload.get("severity") or "info").upper()
    if topic == "alert.cleared":
        return f"[CLEARED] {title}"
    if topic == "alert.escalated":
        return f"[{severity}] Escalated: {title}"
    if topic == "notification.test":
        return f"[TEST] {title}"
    return f"[{severity}] {title}"


def email_body(settings: Settings, topic: str, payload: Mapping[str, Any]) -> str:
    """Plain-text body: what happened, the value, when, and a link."""
    lines = [str(payload.get("title") or topic), ""]
    labels = (
        ("reason", "Reason"),
        ("severity", "Severity"),
        ("value", "Value"),
        ("reading_at", "Time"),
    )
    for key, label in labels:
        if payload.get(key) is not None:
            lines.append(f"{label}: {payload[key]}")
    lines.append(f"Event: {topic}")
    link = _link(settings, payload.get("url"))
    if link:
        lines += ["", f"Open: {link}"]
    lines += ["", "-- ", "MaintAInPro: manage your notifications in your profile."]
    return "\n".join(lines) + "\n"


class Mailer:
    """One SMTP connection per sending pass, opened on first use."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._smtp: smtplib.SMTP | None = None

    def _connect(self) -> smtplib.SMTP:
        s = self._settings
        if not s.smtp_host:
            raise DeliveryError("SMTP is not configured (MAINTAINPRO_SMTP_HOST)")
        context = ssl.create_default_context(cafile=str(s.smtp_ca_file) if s.smtp_ca_file else None)
        smtp: smtplib.SMTP
        if s.smtp_ssl:
            smtp = smtplib.SMTP_SSL(
                s.smtp_host, s.smtp_port, timeout=SMTP_TIMEOUT_S, context=context
            )
        else:
            smtp = smtplib.SMTP(s.smtp_host, s.smtp_port, timeout=SMTP_TIMEOUT_S)
            if s.smtp_starttls:
                smtp.starttls(context=context)
        if s.smtp_username:
            password = s.smtp_password.get_secret_value() if s.smtp_password else ""
            smtp.login(s.smtp_username, password)
        return smtp

    def send(
        self,
        to: str,
        subject: str,
        body: str,
        *,
        attachments: Sequence[tuple[str, str, bytes]] = (),
        html: str | None = None,
    ) -> None:
        """Send one plain-text message (with an HTML alternative when given) and optional
        (filename, mime type, bytes) attachments; raises DeliveryError on failure."""
        message = EmailMessage()
        message["From"] = self._settings.smtp_from
        message["To"] = to
        message["Subject"] = subject
        message.set_content(body)
        if html is not None:
            message.add_alternative(html, subtype="html")
        for filename, mime, data in attachments:
            maintype, _, subtype = mime.partition("/")
            message.add_attachment(
                data,
                maintype=maintype,
                subtype=subtype or "octet-stream",
                filename=_clean(filename),
            )
        try:
            if self._smtp is None:
                self._smtp = self._connect()
            self._smtp.send_message(message)
        except smtplib.SMTPRecipientsRefused as exc:
            self.close()
            codes = [c for c, _ in exc.recipients.values()]
            raise DeliveryError(
                f"recipient refused: {codes}", code=codes[0] if codes else None
            ) from exc
        except (smtplib.SMTPException, OSError, ValueError) as exc:
            self.close()
            code = getattr(exc, "smtp_code", None)
            raise DeliveryError(f"{type(exc).__name__}: {exc}", code=code) from exc

    def close(self) -> None:
        """Close the connection if one is open."""
        if self._smtp is not None:
            with contextlib.suppress(smtplib.SMTPException, OSError):
                self._smtp.quit()
            self._smtp = None


def webhook_body(topic: str, payload: Mapping[str, Any]) -> bytes:
    """The exact JSON bytes posted (and signed)."""
    return json.dumps(
        {"event": topic, "data": dict(payload)}, separators=(",", ":"), default=str
    ).encode()


def _post_webhook(
    client: httpx.Client,
    endpoint: WebhookEndpoint,
    box: SecretBox | None,
    delivery_id: int,
    topic: str,
    payload: Mapping[str, Any],
) -> int:
    body = webhook_body(topic, payload)
    headers = {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        "X-MaintainPro-Event": topic,
        "X-MaintainPro-Delivery": str(delivery_id),
    }
    if endpoint.secret is not None:
        if box is None:
            raise DeliveryError("the webhook secret cannot be opened: no credentials key")
        try:
            secret = box.open(endpoint.secret).get("secret", "")
        except ValueError as exc:
            raise DeliveryError(str(exc)) from exc
        headers["X-MaintainPro-Signature"] = sign(secret, body)
    try:
        response = client.post(endpoint.url, content=body, headers=headers)
    except httpx.HTTPError as exc:
        # The URL is left out: webhook URLs often carry tokens in their path.
        raise DeliveryError(f"{type(exc).__name__}: request failed") from exc
    if not 200 <= response.status_code < 300:
        raise DeliveryError(f"HTTP {response.status_code}", code=response.status_code)
    return response.status_code


def send_due_deliveries(
    factory: sessionmaker[Session],
    settings: Settings,
    now: dt.datetime | None = None,
    *,
    box: SecretBox | None = None,
    limit: int = 100,
    http: httpx.Client | None = None,
) -> int:
    """Send pending deliveries that are due; returns how many went out in this pass."""
    when = now or utcnow()
    with factory() as session:
        due = session.scalars(
            select(Delivery.id)
            .where(
                Delivery.status == DeliveryStatus.PENDING,
                (Delivery.next_attempt_at.is_(None)) | (Delivery.next_attempt_at <= when),
            )
            .order_by(Delivery.id)
            .limit(limit)
        ).all()
    if not due:
        return 0
    mailer = Mailer(settings)
    client = http or httpx.Client(timeout=WEBHOOK_TIMEOUT_S, follow_redirects=False)
    sent = 0
    try:
        for delivery_id in due:
            sent += _attempt(factory, settings, box, mailer, client, delivery_id, when)
    finally:
        mailer.close()
        if http is None:
            client.close()
    return sent


def _attempt(
    factory: sessionmaker[Session],
    settings: Settings,
    box: SecretBox | None,
    mailer: Mailer,
    client: httpx.Client,
    delivery_id: int,
    now: dt.datetime,
) -> int:
    with factory() as session, session.begin():
        # The row lock (PostgreSQL) keeps two workers from sending the same delivery; a row
        # another worker holds is skipped, and one it already sent is no longer pending.
        delivery = session.scalar(
            select(Delivery)
            .where(Delivery.id == delivery_id, Delivery.status == DeliveryStatus.PENDING)
            .with_for_update(skip_locked=True)
        )
        if delivery is None:
            return 0
        delivery.attempts += 1
        try:
            delivery.response_code = _send_one(session, settings, box, mailer, client, delivery)
        except DeliveryError as exc:
            delivery.last_error = str(exc)[:2000]
            delivery.response_code = exc.code
            if exc.permanent or delivery.attempts >= MAX_ATTEMPTS:
                delivery.status = DeliveryStatus.FAILED
                delivery.next_attempt_at = None
            else:
                delivery.next_attempt_at = now + retry_delay(delivery.attempts)
            log.warning(
                "notification delivery failed",
                extra={
                    "delivery_id": delivery.id,
                    "channel": str(delivery.channel),
                    "attempts": delivery.attempts,
                    "error": delivery.last_error,
                    "gave_up": delivery.status is DeliveryStatus.FAILED,
                },
            )
            return 0
        delivery.status = DeliveryStatus.SENT
        delivery.sent_at = now
        delivery.next_attempt_at = None
        delivery.last_error = None
        return 1


def _send_one(
    session: Session,
    settings: Settings,
    box: SecretBox | None,
    mailer: Mailer,
    client: httpx.Client,
    delivery: Delivery,
) -> int | None:
    event = session.get(OutboxEvent, delivery.event_id) if delivery.event_id else None
    if event is None:
        raise DeliveryError("the event is no longer stored", permanent=True)
    payload = event.payload or {}
    if delivery.channel == Channel.EMAIL:
        mailer.send(
            delivery.target,
            email_subject(delivery.topic, payload),
            email_body(settings, delivery.topic, payload),
        )
        return 250
    hook_id = webhook_id_of(delivery.target)
    endpoint = session.get(WebhookEndpoint, hook_id) if hook_id is not None else None
    if endpoint is None:
        raise DeliveryError("the webhook endpoint was deleted", permanent=True)
    if not endpoint.active:
        raise DeliveryError("the webhook endpoint is disabled", permanent=True)
    return _post_webhook(client, endpoint, box, delivery.id, delivery.topic, payload)
