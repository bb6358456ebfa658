"""The REST API under /api/v1."""

from __future__ import annotations

from fastapi import APIRouter

from maintainpro.analytics.semantic.routes import router as semantic_router
from maintainpro.api.routes import alerts as alert_routes
from maintainpro.api.routes import (
    assets,
    auth,
    dashboards,
    datasets,
    devices,
    edge,
    edi,
    exports,
    inventory,
    notifications,
    portal_users,
    readings,
    reports,
    schedules,
    supply,
    supply_analytics,
    supply_catalog,
    supply_orders,
    tracking,
    users,
    work_orders,
)
from maintainpro.api.routes import ml as ml_routes
from maintainpro.api.routes import security as security_routes


def api_router() -> APIRouter:
    """All API routes, mounted by the app under /api/v1."""
    router = APIRouter(prefix="/api/v1")
    for module in (auth, assets, work_orders, schedules, inventory, users, devices, readings):
        router.include_router(module.router)
    router.include_router(notifications.router)
    router.include_router(alert_routes.router)
    # Catalogue first: GET /contracts/compliance must match before /contracts/{contract_id}.
    router.include_router(supply_catalog.router)
    router.include_router(tracking.router)  # /shipments/late before /shipments/{id}
    router.include_router(supply.router)
    router.include_router(supply_orders.router)
    router.include_router(supply_analytics.router)
    router.include_router(security_routes.router)
    router.include_router(edge.router)
    router.include_router(edi.router)
    router.include_router(portal_users.router)
    router.include_router(exports.router)
    router.include_router(datasets.router)
    router.include_router(reports.router)
    router.include_router(semantic_router)
    router.include_router(ml_routes.router)
    router.include_router(dashboards.router)
    return router
