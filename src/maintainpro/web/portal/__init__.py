"""The supplier portal under /portal: its own sign-in, pages scoped to one supplier's data."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.responses import RedirectResponse, Response

from maintainpro.api.problems import problem_response
from maintainpro.supply.portal import PortalNotFound
from maintainpro.web import supply_pages
from maintainpro.web.pages import render
from maintainpro.web.portal import catalog_pages, message_pages, order_pages
from maintainpro.web.portal.access import PortalLoginRequired, router

# The page modules add their routes to the shared router when imported; the supply pages
# register the money, unit_price and qty template filters the portal's templates use too.
PAGE_MODULES = (order_pages, catalog_pages, message_pages, supply_pages)


def install_portal(app: FastAPI) -> None:
    """Mount the portal's pages and its answers for "sign in first" and "not found"."""
    app.include_router(router)

    @app.exception_handler(PortalLoginRequired)
    async def _login(request: Request, exc: PortalLoginRequired) -> RedirectResponse:
        return RedirectResponse(f"/portal/login?next={exc.next_path}", status_code=303)

    @app.exception_handler(PortalNotFound)
    async def _not_found(request: Request, exc: PortalNotFound) -> Response:
        # The same answer for a missing object and another supplier's: nothing to probe.
        detail = f"{exc} was not found"
        if "text/html" not in request.headers.get("accept", ""):
            return problem_response(request, 404, detail)
        return render(
            request, "portal/error.html", None, status_code=404, status=404, detail=detail
        )
