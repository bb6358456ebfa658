"""The FastAPI application: API, pages, static files and the runtime, built from settings."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from sqlalchemy.orm import Session, sessionmaker
from starlette.middleware.sessions import SessionMiddleware

from maintainpro import __version__
from maintainpro.api.limits import BodySizeLimit
from maintainpro.api.problems import install_problem_handlers
from maintainpro.api.router import api_router
from maintainpro.api.routes import health, metrics
from maintainpro.config import ConfigurationError, Settings
from maintainpro.core.audit import SYSTEM, install_audit, set_actor
from maintainpro.core.db import build_engine, build_session_factory, transaction, utcnow
from maintainpro.core.maintenance import generate_due_work_orders
from maintainpro.iot.credentials import CredentialBox, credential_box
from maintainpro.iot.hub import build_iot_hub
from maintainpro.iot.retention import maintain_timeseries
from maintainpro.runtime import Supervisor
from maintainpro.web.pages import install_web

log = logging.getLogger(__name__)


def open_due_preventive_work(factory: sessionmaker[Session]) -> int:
    """One pass of the preventive-maintenance scheduler; returns the work orders opened."""
    with transaction(factory) as session:
        set_actor(session, SYSTEM)
        created = generate_due_work_orders(session)
    if created:
        log.info("preventive work opened", extra={"work_orders": [o.id for o in created]})
    return len(created)


def _credential_box(settings: Settings) -> CredentialBox | None:
    # Without a key the hub still runs; storing device credentials is then refused with a reason.
    try:
        return credential_box(settings)
    except ConfigurationError:
        return None


def create_app(settings: Settings) -> FastAPI:
    """Build the app; refuses settings without a usable secret key."""
    settings = settings.checked_for_server()
    engine = build_engine(settings.database_url)
    install_audit()

    factory = build_session_factory(engine)
    supervisor = Supervisor()
    box = _credential_box(settings)
    iot_hub = None
    if settings.run_background_jobs:
        supervisor.every(
            "preventive-maintenance",
            settings.schedule_interval_seconds,
            lambda: open_due_preventive_work(factory),
        )
        supervisor.every(
            "timeseries-maintenance",
            settings.timeseries_maintenance_interval_s,
            lambda: log.info(
                "time-series maintenance",
                extra={"done": maintain_timeseries(engine, settings, utcnow())},
            ),
        )
        iot_hub = build_iot_hub(settings, factory, box)
        supervisor.service("iot", iot_hub.run)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        supervisor.start()
        log.info("maintainpro started", extra={"version": __version__, "demo": settings.demo})
        yield
        await supervisor.stop()
        engine.dispose()
        log.info("maintainpro stopped")

    app = FastAPI(
        title="MaintAInPro Integration Hub",
        version=__version__,
        description="CMMS core with industrial IoT, BI and supply-chain integrations.",
        lifespan=lifespan,
        openapi_url="/openapi.json",
        docs_url="/docs",
        redoc_url=None,
    )
    app.state.settings = settings
    app.state.engine = engine
    app.state.session_factory = factory
    app.state.supervisor = supervisor
    app.state.credential_box = box
    app.state.iot_hub = iot_hub
    install_problem_handlers(app)
    app.include_router(health.router)
    app.include_router(metrics.router)
    app.include_router(api_router())
    install_web(app)
    app.add_middleware(
        SessionMiddleware,
        secret_key=settings.secret(),
        session_cookie="maintainpro_session",
        max_age=settings.session_max_age_seconds,
        same_site="lax",
        https_only=settings.cookie_secure,
    )
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_body_bytes)
    return app
