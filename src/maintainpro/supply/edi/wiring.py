"""Supplier connectivity in the running hub: the AS2 endpoint, the EDI outbox handlers and
alerts, the overdue-997 job and the SFTP pollers, installed by create_app in one call."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass

from fastapi import FastAPI
from sqlalchemy.orm import Session, sessionmaker
from starlette.middleware import Middleware
from starlette.types import ASGIApp, Receive, Scope, Send

from maintainpro.api.limits import BodySizeLimit
from maintainpro.api.routes.edi import apply_options
from maintainpro.config import Settings
from maintainpro.core.delivery import notification_handlers
from maintainpro.core.events import Handler
from maintainpro.iot.credentials import CredentialBox
from maintainpro.runtime import Supervisor
from maintainpro.supply.as2.endpoint import RECEIVE_PATH, build_as2_router
from maintainpro.supply.edi.acks import EDI_ALERT_TOPICS, overdue_acks_job
from maintainpro.supply.edi.outbound import TransportSender, outbound_handlers
from maintainpro.supply.edi.partners import EdiTransport
from maintainpro.supply.edi.transports import (
    As2Gateway,
    SftpInbound,
    as2_sender,
    load_as2_identity,
    sftp_sender,
)

log = logging.getLogger(__name__)

OVERDUE_ACK_INTERVAL_S = 300.0


@dataclass(frozen=True)
class SupplierConnectivity:
    """What install_supplier_connectivity set up, kept on app.state for pages and tests."""

    as2: As2Gateway | None
    sftp: SftpInbound
    senders: Mapping[EdiTransport, TransportSender]
    outbox_handlers: dict[str, list[Handler]]
    jobs_running: bool


class PathBodyLimits:
    """BodySizeLimit with its own limit on some paths (ASGI middleware).

    It replaces the app-wide BodySizeLimit entry rather than sitting beside it, because the
    app-wide one would cut an AS2 message off at the API's limit before any path could differ.
    """

    def __init__(self, app: ASGIApp, max_bytes: int, paths: Mapping[str, int]) -> None:
        self._default = BodySizeLimit(app, max_bytes)
        self._paths = {path: BodySizeLimit(app, limit) for path, limit in paths.items()}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Apply the path's limit, else the default one."""
        chosen = self._paths.get(scope.get("path", "")) if scope["type"] == "http" else None
        await (chosen or self._default)(scope, receive, send)


def allow_larger_bodies(app: FastAPI, default: int, paths: Mapping[str, int]) -> None:
    """Give `paths` their own body-size limit: the app's BodySizeLimit entry becomes a
    PathBodyLimits with the same default. Call after it was added, before the first request."""
    for index, middleware in enumerate(app.user_middleware):
        factory: object = middleware.cls
        if factory is BodySizeLimit:
            configured = middleware.kwargs.get("max_bytes")
            limit = configured if isinstance(configured, int) else default
            app.user_middleware[index] = Middleware(
                PathBodyLimits, max_bytes=limit, paths=dict(paths)
            )
            return
    app.add_middleware(PathBodyLimits, max_bytes=default, paths=dict(paths))


def _add(handlers: dict[str, list[Handler]], extra: Mapping[str, list[Handler]]) -> None:
    # Ours go first: deliver_pending stops at a failing handler, and a transport failure must
    # not make the handlers behind it (feeds, notifications) see the event twice.
    for topic, own in extra.items():
        handlers[topic] = [*own, *handlers.get(topic, [])]


def install_supplier_connectivity(
    app: FastAPI,
    supervisor: Supervisor,
    factory: sessionmaker[Session],
    settings: Settings,
    outbox_handlers: dict[str, list[Handler]],
) -> SupplierConnectivity:
    """Mount POST /as2/receive and, with background jobs, the EDI outbox handlers, alerts,
    the overdue-997 job and the SFTP pollers. ConfigurationError for unusable AS2 files."""
    box: CredentialBox | None = getattr(app.state, "credential_box", None)
    options = apply_options(settings)
    identity = load_as2_identity(settings)
    receipt_url = settings.public_url.rstrip("/") + RECEIVE_PATH
    gateway = None
    if identity is None:
        log.info("AS2 is off: as2_key_file and as2_cert_file are not set")
    else:
        gateway = As2Gateway(
            factory,
            identity,
            options=options,
            async_mdn_url=receipt_url,
            max_payload_bytes=settings.as2_max_body_bytes,
        )
        app.include_router(build_as2_router(gateway.receiver()))
        allow_larger_bodies(
            app, settings.max_body_bytes, {RECEIVE_PATH: settings.as2_max_body_bytes}
        )
    # Without AS2 files the AS2 sender still exists: it fails with that reason, noted on the
    # interchange, and the outbox sends the file once the settings are fixed.
    senders: dict[EdiTransport, TransportSender] = {
        EdiTransport.AS2: as2_sender(identity, async_mdn_url=receipt_url),
        EdiTransport.SFTP: sftp_sender(box),
    }
    sftp = SftpInbound(factory, box, options)
    running = settings.run_background_jobs
    if running:
        _add(outbox_handlers, outbound_handlers(factory, senders))
        _add(outbox_handlers, notification_handlers(factory, topics=EDI_ALERT_TOPICS))
        supervisor.every(
            "edi-overdue-acks", OVERDUE_ACK_INTERVAL_S, lambda: overdue_acks_job(factory)
        )
        supervisor.service("sftp-inbound", sftp.run)
    connectivity = SupplierConnectivity(gateway, sftp, senders, outbox_handlers, running)
    app.state.supplier_connectivity = connectivity
    return connectivity
