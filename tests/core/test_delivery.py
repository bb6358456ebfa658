"""Delivery against real peers: aiosmtpd (STARTTLS, implicit TLS, AUTH) and an HTTP receiver."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import ipaddress
import json
import socket
import ssl
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from cryptography import x509
from cryptography.fernet import Fernet
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from pydantic import SecretStr
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from maintainpro.config import Settings
from maintainpro.core.delivery import (
    MAX_ATTEMPTS,
    notification_handlers,
    send_due_deliveries,
)
from maintainpro.core.events import OutboxEvent, deliver_pending, emit
from maintainpro.core.notifications import (
    Channel,
    Delivery,
    DeliveryStatus,
    Subscription,
    WebhookEndpoint,
)
from maintainpro.core.users import Role, User
from maintainpro.iot.credentials import CredentialBox
from peers import Hook, Inbox

# Tomorrow noon: after the outbox rows' real creation time, at a fixed time of day.
NOW = (dt.datetime.now(dt.UTC) + dt.timedelta(days=1)).replace(
    hour=12, minute=0, second=0, microsecond=0
)
ALERT = {
    "alert_id": 1,
    "rule_id": 2,
    "sensor_id": 3,
    "asset_id": None,
    "site_id": None,
    "severity": "critical",
    "title": "P-101 vibration above 11 mm/s",
    "reason": "vibration 11.4 mm/s above 11 mm/s for 60 s",
    "value": 11.4,
    "reading_at": "2026-03-02T11:59:30+00:00",
    "url": "/alerts/1",
}
USER, PASSWORD = "mailer", "mail-password-123"
# The implicit-TLS server cannot demand TLS for AUTH (see the smtp fixture); aiosmtpd warns.
pytestmark = pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 (also its own CA file)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    folder = tmp_path_factory.mktemp("tls")
    cert_file, key_file = folder / "cert.pem", folder / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_file, key_file


def authenticate(server: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> Any:
    ok = isinstance(data, LoginPassword) and (data.login, data.password) == (
        USER.encode(),
        PASSWORD.encode(),
    )
    return AuthResult(success=ok)


def _server_context(certificate: tuple[Path, Path]) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(*map(str, certificate))
    return context


@pytest.fixture(params=["starttls", "implicit"])
def smtp(
    request: pytest.FixtureRequest, certificate: tuple[Path, Path], settings: Settings
) -> Iterator[tuple[Inbox, Settings]]:
    """An SMTP server requiring TLS and AUTH, with settings pointing at it."""
    inbox, port = Inbox(), free_port()
    context = _server_context(certificate)
    common: dict[str, Any] = {
        "authenticator": authenticate,
        "auth_required": True,
        # aiosmtpd cannot tell that an implicit-TLS transport is encrypted, so it would hide
        # AUTH there; the STARTTLS server proves that AUTH is offered only after the upgrade.
        "auth_require_tls": request.param == "starttls",
    }
    if request.param == "starttls":
        controller = Controller(
            inbox,
            hostname="127.0.0.1",
            port=port,
            tls_context=context,
            require_starttls=True,
            **common,
        )
    else:
        controller = Controller(
            inbox,
            hostname="127.0.0.1",
            port=port,
            ssl_context=context,
            server_hostname="127.0.0.1",
            **common,
        )
    controller.start()
    yield (
        inbox,
        settings.model_copy(
            update={
                "smtp_host": "127.0.0.1",
                "smtp_port": port,
                "smtp_starttls": request.param == "starttls",
                "smtp_ssl": request.param == "implicit",
                "smtp_ca_file": certificate[0],
                "smtp_username": USER,
                "smtp_password": SecretStr(PASSWORD),
                "public_url": "https://cmms.example.com/",
            }
        ),
    )
    controller.stop()


@pytest.fixture
def box() -> CredentialBox:
    return CredentialBox(Fernet.generate_key())


def add_user(factory: sessionmaker[Session], name: str, role: Role, email: str | None) -> int:
    with factory() as session, session.begin():
        user = User(username=name, role=role, email=email, password_hash="x")
        session.add(user)
        session.flush()
        return user.id


def add(factory: sessionmaker[Session], row: Any) -> int:
    with factory() as session, session.begin():
        session.add(row)
        session.flush()
        ident: int = row.id
        return ident


def raise_alert(factory: sessionmaker[Session], topic: str = "alert.raised", **changes: Any) -> int:
    with factory() as session, session.begin():
        event = emit(session, topic, {**ALERT, **changes})
        session.flush()
        return event.id


def deliveries(factory: sessionmaker[Session]) -> list[Delivery]:
    with factory() as session:
        return list(session.scalars(select(Delivery).order_by(Delivery.id)))


def test_email_over_tls_with_auth_once_per_delivery(
    session_factory: sessionmaker[Session], smtp: tuple[Inbox, Settings]
) -> None:
    inbox, settings = smtp
    alice = add_user(session_factory, "alice", Role.TECHNICIAN, "alice@example.com")
    add_user(session_factory, "bob", Role.TECHNICIAN, "bob@example.com")
    add(session_factory, Subscription(channel=Channel.EMAIL, user_id=alice))
    add(session_factory, Subscription(channel=Channel.EMAIL, role=Role.TECHNICIAN))
    event_id = raise_alert(session_factory)

    handlers = notification_handlers(session_factory, clock=lambda: NOW)
    assert deliver_pending(session_factory, handlers, now=NOW) == 1
    assert send_due_deliveries(session_factory, settings, NOW) == 2
    assert send_due_deliveries(session_factory, settings, NOW) == 0

    assert sorted(to for to, _ in inbox.messages) == [["alice@example.com"], ["bob@example.com"]]
    message = inbox.messages[0][1]
    assert message["Subject"] == "[CRITICAL] P-101 vibration above 11 mm/s"
    assert message["From"] == settings.smtp_from
    body = message.get_payload(decode=True).decode()  # type: ignore[union-attr]
    assert "Reason: vibration 11.4 mm/s above 11 mm/s for 60 s" in body
    assert "Value: 11.4" in body
    assert "Time: 2026-03-02T11:59:30+00:00" in body
    assert "https://cmms.example.com/alerts/1" in body
    rows = deliveries(session_factory)
    assert [(r.event_id, r.status, r.attempts, r.sent_at) for r in rows] == [
        (event_id, DeliveryStatus.SENT, 1, NOW)
    ] * 2


def test_smtp_down_is_retried_with_backoff(
    session_factory: sessionmaker[Session], settings: Settings
) -> None:
    settings = settings.model_copy(
        update={"smtp_host": "127.0.0.1", "smtp_port": free_port(), "smtp_starttls": False}
    )
    alice = add_user(session_factory, "alice", Role.TECHNICIAN, "alice@example.com")
    add(session_factory, Subscription(channel=Channel.EMAIL, user_id=alice))
    raise_alert(session_factory)
    deliver_pending(session_factory, notification_handlers(session_factory), now=NOW)
    assert send_due_deliveries(session_factory, settings, NOW) == 0
    [row] = deliveries(session_factory)
    assert (row.status, row.attempts) == (DeliveryStatus.PENDING, 1)
    assert (row.last_error or "").startswith("ConnectionRefusedError")
    assert row.next_attempt_at == NOW + dt.timedelta(seconds=30)


def test_without_smtp_settings_email_waits(
    session_factory: sessionmaker[Session], settings: Settings
) -> None:
    alice = add_user(session_factory, "alice", Role.TECHNICIAN, "alice@example.com")
    add(session_factory, Subscription(channel=Channel.EMAIL, user_id=alice))
    raise_alert(session_factory)
    deliver_pending(session_factory, notification_handlers(session_factory), now=NOW)
    assert send_due_deliveries(session_factory, settings, NOW) == 0
    [row] = deliveries(session_factory)
    assert row.last_error == "SMTP is not configured (MAINTAINPRO_SMTP_HOST)"


def test_at_least_once_redelivery_does_not_double_send(
    session_factory: sessionmaker[Session], smtp: tuple[Inbox, Settings]
) -> None:
    inbox, settings = smtp
    alice = add_user(session_factory, "alice", Role.TECHNICIAN, "alice@example.com")
    add(session_factory, Subscription(channel=Channel.EMAIL, user_id=alice))
    raise_alert(session_factory)
    published: list[str] = []
    handlers = notification_handlers(session_factory, lambda t, d: published.append(t))
    [handle] = handlers["alert.raised"]
    # A crash after the handler but before the outbox commit hands the same event over again.
    with session_factory() as session:
        [event] = session.scalars(select(OutboxEvent)).all()
        payload = dict(event.payload)
    handle("alert.raised", payload)
    handle("alert.raised", payload)
    assert deliver_pending(session_factory, handlers, now=NOW) == 1
    assert len(deliveries(session_factory)) == 1
    assert published == ["alert.raised"]
    assert send_due_deliveries(session_factory, settings, NOW) == 1
    assert len(inbox.messages) == 1


def test_quiet_hours_are_logged_as_suppressed(session_factory: sessionmaker[Session]) -> None:
    alice = add_user(session_factory, "alice", Role.TECHNICIAN, "alice@example.com")
    add(
        session_factory,
        Subscription(
            channel=Channel.EMAIL,
            user_id=alice,
            quiet_start="12:00",
            quiet_end="08:00",
            timezone="Europe/Berlin",
        ),
    )
    raise_alert(session_factory, severity="major")
    deliver_pending(session_factory, notification_handlers(session_factory, clock=lambda: NOW))
    [row] = deliveries(session_factory)
    assert row.status is DeliveryStatus.SUPPRESSED
    assert row.last_error == "quiet hours 12:00-08:00 Europe/Berlin"
    assert row.next_attempt_at is None


@pytest.fixture
def hook() -> Iterator[Hook]:
    server = Hook([])
    yield server
    server.close()


def add_webhook(factory: sessionmaker[Session], box: CredentialBox, url: str, secret: str) -> int:
    hook_id = add(
        factory, WebhookEndpoint(name="ops", url=url, secret=box.seal({"secret": secret}))
    )
    add(factory, Subscription(channel=Channel.WEBHOOK, webhook_id=hook_id, topics="alert.*"))
    return hook_id


def test_signed_webhook_over_the_exact_body(
    session_factory: sessionmaker[Session], settings: Settings, box: CredentialBox, hook: Hook
) -> None:
    add_webhook(session_factory, box, hook.url, "s3cret-signing-key")
    event_id = raise_alert(session_factory, "alert.escalated")
    deliver_pending(session_factory, notification_handlers(session_factory), now=NOW)
    assert send_due_deliveries(session_factory, settings, NOW, box=box) == 1

    [(headers, body)] = hook.calls
    [row] = deliveries(session_factory)
    expected = hmac.new(b"s3cret-signing-key", body, hashlib.sha256).hexdigest()
    assert headers["x-maintainpro-signature"] == f"sha256={expected}"
    assert headers["x-maintainpro-event"] == "alert.escalated"
    assert headers["x-maintainpro-delivery"] == str(row.id)
    assert headers["content-type"] == "application/json"
    assert json.loads(body) == {"event": "alert.escalated", "data": ALERT}
    assert (row.event_id, row.status, row.response_code) == (event_id, DeliveryStatus.SENT, 200)


def test_failing_webhook_is_retried_with_backoff_and_logged(
    session_factory: sessionmaker[Session], settings: Settings, box: CredentialBox, hook: Hook
) -> None:
    hook.codes = [500, 200]
    add_webhook(session_factory, box, hook.url, "another-signing-key")
    raise_alert(session_factory)
    deliver_pending(session_factory, notification_handlers(session_factory), now=NOW)

    assert send_due_deliveries(session_factory, settings, NOW, box=box) == 0
    [row] = deliveries(session_factory)
    assert (row.status, row.attempts, row.response_code) == (DeliveryStatus.PENDING, 1, 500)
    assert row.last_error == "HTTP 500"
    assert row.next_attempt_at == NOW + dt.timedelta(seconds=30)

    assert (
        send_due_deliveries(session_factory, settings, NOW + dt.timedelta(seconds=10), box=box) == 0
    )
    assert len(hook.calls) == 1, "not due yet"
    later = NOW + dt.timedelta(seconds=31)
    assert send_due_deliveries(session_factory, settings, later, box=box) == 1
    [row] = deliveries(session_factory)
    assert (row.status, row.attempts, row.response_code) == (DeliveryStatus.SENT, 2, 200)
    assert row.sent_at == later
    assert row.last_error is None
    # Both attempts carried the same delivery id and signature: receivers can de-duplicate.
    assert hook.calls[0][0]["x-maintainpro-delivery"] == hook.calls[1][0]["x-maintainpro-delivery"]
    assert hook.calls[0][1] == hook.calls[1][1]


def test_gives_up_after_max_attempts(
    session_factory: sessionmaker[Session], settings: Settings, box: CredentialBox, hook: Hook
) -> None:
    hook.codes = [503]
    add_webhook(session_factory, box, hook.url, "yet-another-signing-key")
    raise_alert(session_factory)
    deliver_pending(session_factory, notification_handlers(session_factory), now=NOW)
    with session_factory() as session, session.begin():
        row = session.scalars(select(Delivery)).one()
        row.attempts = MAX_ATTEMPTS - 1
    assert send_due_deliveries(session_factory, settings, NOW, box=box) == 0
    [row] = deliveries(session_factory)
    assert (row.status, row.attempts, row.response_code) == (DeliveryStatus.FAILED, 8, 503)
    assert row.next_attempt_at is None


def test_unreachable_webhook_and_disabled_endpoint(
    session_factory: sessionmaker[Session], settings: Settings, box: CredentialBox
) -> None:
    down = add_webhook(session_factory, box, f"http://127.0.0.1:{free_port()}/x", "k" * 20)
    raise_alert(session_factory)
    deliver_pending(session_factory, notification_handlers(session_factory), now=NOW)
    assert send_due_deliveries(session_factory, settings, NOW, box=box) == 0
    [row] = deliveries(session_factory)
    assert row.status is DeliveryStatus.PENDING
    assert row.last_error == "ConnectError: request failed"
    with session_factory() as session, session.begin():
        endpoint = session.get(WebhookEndpoint, down)
        assert endpoint is not None
        endpoint.active = False
    assert send_due_deliveries(session_factory, settings, NOW + dt.timedelta(hours=1), box=box) == 0
    [row] = deliveries(session_factory)
    assert (row.status, row.last_error) == (
        DeliveryStatus.FAILED,
        "the webhook endpoint is disabled",
    )
