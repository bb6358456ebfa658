"""The FastAPI application: API, pages, static files and the runtime, built from settings."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from starlette.middleware.sessions import SessionMiddleware

from maintainpro import __version__
from maintainpro.api.limits import BodySizeLimit
from maintainpro.api.problems import install_problem_handlers
from maintainpro.api.router import api_router
from maintainpro.api.routes import health
from maintainpro.config import Settings
from maintainpro.core.audit import install_audit
from maintainpro.core.db import build_engine, build_session_factory
from maintainpro.web.pages import install_web

log = logging.getLogger(__name__)


def create_app(settings: Settings) -> FastAPI:
    """Build the app; refuses settings without a usable secret key."""
    settings = settings.checked_for_server()
    engine = build_engine(settings.database_url)
    install_audit()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        log.info("maintainpro started", extra={"version": __version__, "demo": settings.demo})
        yield
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
    app.state.session_factory = build_session_factory(engine)
    install_problem_handlers(app)
    app.include_router(health.router)
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
