"""The FastAPI application: API, pages, static files and the runtime, built from settings."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from sqlalchemy.orm import Session, sessionmaker
from starlette.middleware.sessions import SessionMiddleware

from maintainpro import __version__
from maintainpro.analytics.access import AccessLedger, access_ledger
from maintainpro.analytics.access_log import purge_access_log
from maintainpro.analytics.exports.schedules import run_due_exports
from maintainpro.analytics.feeds.routes import router as feed_router
from maintainpro.analytics.feeds.service import build_feeds
from maintainpro.analytics.ml.registry import ModelRegistry, models_dir
from maintainpro.analytics.ml.scoring import AnomalyScorer
from maintainpro.analytics.ml.training import refresh_rul, retrain, rul_forecasts
from maintainpro.analytics.odata.routes import router as odata_router
from maintainpro.analytics.refresh import scheduled_refresh
from maintainpro.analytics.reports.outputs import purge_report_outputs
from maintainpro.analytics.reports.runner import REPORT_TICK_S, ReportJobs
from maintainpro.api.limits import BodySizeLimit
from maintainpro.api.problems import install_problem_handlers
from maintainpro.api.router import api_router
from maintainpro.api.routes import health, metrics
from maintainpro.config import ConfigurationError, Settings
from maintainpro.core.audit import SYSTEM, install_audit, set_actor
from maintainpro.core.db import build_engine, build_session_factory, transaction, utcnow
from maintainpro.core.delivery import notification_handlers, send_due_deliveries
from maintainpro.core.events import Handler, deliver_pending
from maintainpro.core.live import Broadcaster
from maintainpro.core.maintenance import generate_due_work_orders
from maintainpro.iot.alert_engine import AlertEngine
from maintainpro.iot.credentials import CredentialBox, credential_box
from maintainpro.iot.edge.hub_status import build_edge_status
from maintainpro.iot.edge.publisher import ack_listener
from maintainpro.iot.hub import build_iot_hub
from maintainpro.iot.issuing import credential_housekeeping
from maintainpro.iot.live_feed import LiveFeed
from maintainpro.iot.meter_feed import MeterFeed
from maintainpro.iot.retention import maintain_timeseries
from maintainpro.iot.trends import update_predictions
from maintainpro.runtime import Supervisor
from maintainpro.supply.compliance import CONTRACT_TOPICS
from maintainpro.supply.dispatch import order_dispatch_handlers
from maintainpro.supply.edi.wiring import install_supplier_connectivity
from maintainpro.supply.erp_sync import sync_all
from maintainpro.supply.jobs import contract_watch, reorder_check
from maintainpro.supply.requisitions import part_demand_handler
from maintainpro.supply.tracking import SHIPMENT_TOPICS, shipment_check
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
    # One BI access audit writer per app: the API, the pages and the report jobs share it.
    ledger = AccessLedger(factory)
    live = Broadcaster()
    # Real-time feeds (SSE, WebSocket) serve without background jobs; their sources need them.
    feeds = build_feeds(settings, factory, supervisor)
    iot_hub = None
    alert_engine = None
    live_feed: LiveFeed | None = None
    report_jobs: ReportJobs | None = None
    # Filled with the jobs; supplier connectivity adds its EDI handlers to it below.
    outbox_handlers: dict[str, list[Handler]] = {}
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
        outbox_handlers = {
            **notification_handlers(factory, live.publish),
            # Contract warnings reach e-mail and webhook subscribers, not the live stream that
            # every signed-in user may read.
            **notification_handlers(factory, topics=CONTRACT_TOPICS),
            # Late, exception and delivered shipments: to subscribers, not the live stream.
            **notification_handlers(factory, topics=SHIPMENT_TOPICS),
            # Work-order part shortages become requisitions (idempotent per order and part).
            "part.demand": [part_demand_handler(factory)],
            # Sent and changed purchase orders go out through the supplier's channel.
            **order_dispatch_handlers(factory, settings),
        }
        supervisor.every("outbox", 1.0, lambda: deliver_pending(factory, outbox_handlers))
        supervisor.every(
            "reorder-check",
            settings.reorder_check_interval_s,
            lambda: reorder_check(factory, settings),
        )
        supervisor.every("contract-watch", 86400.0, lambda: contract_watch(factory, settings))
        # The warehouse (ETL + cubes) and the scheduled BI file exports that read it.
        if settings.warehouse_refresh_interval_s > 0:
            supervisor.every(
                "warehouse-refresh",
                settings.warehouse_refresh_interval_s,
                lambda: scheduled_refresh(engine, settings),
            )
        supervisor.every("bi-exports", 60.0, lambda: run_due_exports(settings))
        supervisor.every(
            "bi-access-retention",
            86400.0,
            lambda: purge_access_log(factory, settings.bi_access_retention_days, utcnow()),
        )
        supervisor.every(
            "report-output-retention",
            86400.0,
            lambda: purge_report_outputs(factory, settings.report_output_retention_days, utcnow()),
        )
        supervisor.every(
            "shipment-check", settings.shipment_check_interval_s, lambda: shipment_check(factory)
        )
        if settings.erp_connections:
            supervisor.every(
                "erp-sync", settings.erp_sync_interval_s, lambda: sync_all(factory, settings)
            )
        supervisor.every(
            "notifications", 2.0, lambda: send_due_deliveries(factory, settings, box=box)
        )
        iot_hub = build_iot_hub(settings, factory, box)
        supervisor.service("iot", iot_hub.run)
        # Edge agents' heartbeats (edge/+/status) update their EdgeAgent rows.
        edge_status = build_edge_status(settings, factory)
        if edge_status is not None:
            supervisor.service("edge-status", edge_status.run)
        meter_feed = MeterFeed(factory)
        iot_hub.pipeline.listeners.append(meter_feed)
        supervisor.service("meter-feed", meter_feed.run)
        # Live readings for open pages; skipped entirely while no browser is listening.
        live_feed = LiveFeed(live.publish, active=lambda: live.listeners > 0)
        iot_hub.pipeline.listeners.append(live_feed)
        # Readings, alerts and work-order events to the feeds and their push targets.
        feeds.connect(
            supervisor,
            settings,
            outbox_handlers=outbox_handlers,
            reading_listeners=iot_hub.pipeline.listeners,
        )
        supervisor.service("live-feed", live_feed.run)
        supervisor.every(
            "predictions",
            settings.prediction_interval_s,
            lambda: update_predictions(
                factory,
                settings,
                utcnow(),
                # Remaining-useful-life estimates join the trend crossings in the pull-forward.
                extra_forecasts=rul_forecasts(models_dir(settings)),
            ),
        )
        # Machine learning: live anomaly scoring, daily retraining, hourly RUL estimates.
        anomaly_scorer = AnomalyScorer(
            factory, ModelRegistry(models_dir(settings)), settings.public_url
        )
        iot_hub.pipeline.listeners.append(anomaly_scorer.on_stored)
        supervisor.service("anomaly-scoring", anomaly_scorer.run)
        supervisor.every("ml-retrain", 86400.0, lambda: retrain(factory, settings, utcnow()))
        supervisor.every(
            "ml-rul",
            settings.prediction_interval_s,
            lambda: refresh_rul(factory, settings, utcnow()),
        )
        supervisor.every("credentials", 3600.0, lambda: credential_housekeeping(factory, settings))
        alert_engine = AlertEngine(factory, public_url=settings.public_url)
        iot_hub.pipeline.listeners.append(alert_engine.on_stored)
        supervisor.service("alerts", alert_engine.run)
        supervisor.every(
            "alert-stale-check", settings.stale_check_interval_s, alert_engine.check_stale_alerts
        )
        # Edge agents acknowledge (or reject) the configuration the hub pushed to them.
        edge_acks = ack_listener(settings, factory)
        if edge_acks is not None:
            supervisor.service("edge-config-acks", edge_acks.run)
        # Scheduled reports: due runs queued and executed; retries of failed deliveries.
        report_jobs = ReportJobs(factory, settings, box, ledger=ledger)
        supervisor.every("reports", REPORT_TICK_S, report_jobs.tick)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if report_jobs is not None:
            # A report missed while the hub was down is queued once, before the jobs start.
            await asyncio.to_thread(report_jobs.catch_up)
        supervisor.start()
        log.info("maintainpro started", extra={"version": __version__, "demo": settings.demo})
        yield
        await supervisor.stop()
        # The BI access rows still queued are written before the engine goes.
        await asyncio.to_thread(access_ledger(app.state).close)
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
    app.state.analytics_access = ledger
    app.state.supervisor = supervisor
    app.state.credential_box = box
    app.state.live = live
    app.state.feeds = feeds
    app.state.iot_hub = iot_hub
    app.state.live_feed = live_feed
    app.state.alert_engine = alert_engine
    app.state.report_jobs = report_jobs
    install_problem_handlers(app)
    app.include_router(health.router)
    app.include_router(metrics.router)
    app.include_router(api_router())
    app.include_router(odata_router)
    app.include_router(feed_router)
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
    # AS2 endpoint (with its own body limit, hence after BodySizeLimit), EDI outbox handlers,
    # the overdue-997 job and the SFTP pollers.
    install_supplier_connectivity(app, supervisor, factory, settings, outbox_handlers)
    return app
