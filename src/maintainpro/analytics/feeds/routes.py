"""The feed routes under /api/v1: GET /stream (SSE) and the WebSocket /stream/ws."""

from __future__ import annotations

from fastapi import APIRouter

from maintainpro.analytics.feeds import sse, ws

router = APIRouter(prefix="/api/v1")
router.include_router(sse.router)
router.include_router(ws.router)
