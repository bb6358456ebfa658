"""Errors as RFC 9457 problem details (application/problem+json)."""

from __future__ import annotations

import logging
import re
import sqlite3
from http import HTTPStatus
from typing import Any
from urllib.parse import quote

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DataError, IntegrityError, OperationalError
from starlette.exceptions import HTTPException as StarletteHTTPException

from maintainpro.core.inventory import StockError
from maintainpro.core.maintenance import NotFound
from maintainpro.core.schedules import MeterReadingRejected
from maintainpro.core.users import WeakPassword
from maintainpro.core.work_orders import IllegalTransition

PROBLEM_JSON = "application/problem+json"
log = logging.getLogger(__name__)


class Problem(Exception):
    """An error to be answered as a problem document."""

    def __init__(
        self,
        status: int,
        detail: str,
        *,
        title: str | None = None,
        type_: str = "about:blank",
        headers: dict[str, str] | None = None,
        **extensions: Any,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.title = title or HTTPStatus(status).phrase
        self.type = type_
        self.headers = headers
        self.extensions = extensions


def problem_response(
    request: Request | None,
    status: int,
    detail: str,
    *,
    title: str | None = None,
    type_: str = "about:blank",
    headers: dict[str, str] | None = None,
    **extensions: Any,
) -> JSONResponse:
    """A problem+json response."""
    body: dict[str, Any] = {
        "type": type_,
        "title": title or HTTPStatus(status).phrase,
        "status": status,
        "detail": detail,
    }
    if request is not None:
        # The path arrives decoded; encoded it is a proper URI and reflects no markup.
        body["instance"] = quote(request.url.path)
    body.update(extensions)
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON, headers=headers)


_PLAIN_LOC = re.compile(r"^[A-Za-z0-9_.\-]{1,64}$")


def _loc_part(part: Any) -> str:
    # An unexpected key in a body is the client's own text: name it only if it is plain.
    text = str(part)
    return text if _PLAIN_LOC.match(text) else "(not shown)"


def _validation_errors(exc: RequestValidationError) -> list[dict[str, Any]]:
    # Echoing the rejected input back could reflect hostile strings; location and message suffice.
    return [
        {"loc": [_loc_part(part) for part in err.get("loc", ())], "msg": err.get("msg", "")}
        for err in exc.errors()
    ]


def _database_busy(exc: BaseException) -> bool:
    """Whether an error is SQLite refusing a lock another connection still holds."""
    orig = exc.orig if isinstance(exc, OperationalError) else exc
    return isinstance(orig, sqlite3.OperationalError) and "database is locked" in str(orig)


def _internal_error(request: Request) -> JSONResponse:
    log.exception("unhandled error", extra={"path": request.url.path})
    return problem_response(request, 500, "an internal error occurred; it has been logged")


def install_problem_handlers(app: FastAPI) -> None:
    """Answer every error the API raises as problem+json."""

    @app.exception_handler(Problem)
    async def _problem(request: Request, exc: Problem) -> JSONResponse:
        return problem_response(
            request,
            exc.status,
            exc.detail,
            title=exc.title,
            type_=exc.type,
            headers=exc.headers,
            **exc.extensions,
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        headers = dict(exc.headers) if exc.headers else None
        return problem_response(request, exc.status_code, str(exc.detail), headers=headers)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        return problem_response(
            request,
            422,
            "the request does not match the expected shape",
            title="Invalid request",
            errors=_validation_errors(exc),
        )

    @app.exception_handler(NotFound)
    async def _not_found(request: Request, exc: NotFound) -> JSONResponse:
        return problem_response(request, 404, str(exc))

    @app.exception_handler(IllegalTransition)
    async def _transition(request: Request, exc: IllegalTransition) -> JSONResponse:
        return problem_response(request, 409, str(exc), title="Illegal status change")

    @app.exception_handler(StockError)
    async def _stock(request: Request, exc: StockError) -> JSONResponse:
        return problem_response(request, 409, str(exc), title="Stock conflict")

    @app.exception_handler(MeterReadingRejected)
    async def _meter(request: Request, exc: MeterReadingRejected) -> JSONResponse:
        return problem_response(request, 422, str(exc), title="Meter reading rejected")

    @app.exception_handler(WeakPassword)
    async def _weak(request: Request, exc: WeakPassword) -> JSONResponse:
        return problem_response(request, 422, str(exc), title="Weak password")

    @app.exception_handler(IntegrityError)
    async def _integrity(request: Request, exc: IntegrityError) -> JSONResponse:
        # The database message can hold row values; log it, answer in general terms.
        log.info("integrity error", extra={"path": request.url.path, "error": str(exc.orig)})
        return problem_response(
            request,
            409,
            "the change conflicts with existing data (a duplicate code or a missing reference)",
            title="Conflict",
        )

    @app.exception_handler(DataError)
    @app.exception_handler(OverflowError)
    async def _data(request: Request, exc: Exception) -> JSONResponse:
        # A number beyond the column's range or a NUL in text: the database refuses the value.
        log.info("value refused by the database", extra={"path": request.url.path})
        return problem_response(
            request,
            422,
            "a value is out of range or holds characters that cannot be stored",
            title="Invalid value",
        )

    @app.exception_handler(OperationalError)
    @app.exception_handler(sqlite3.OperationalError)
    async def _operational(request: Request, exc: Exception) -> JSONResponse:
        if not _database_busy(exc):
            return _internal_error(request)
        # Another writer held SQLite's one write lock past the busy timeout (or a transaction
        # begun as a reader could not become the writer). The request's transaction is rolled
        # back; the same request a moment later will most likely go through.
        log.warning("database busy", extra={"path": request.url.path})
        return problem_response(
            request,
            503,
            "the database is busy; retry",
            title="Database busy",
            headers={"Retry-After": "1"},
        )

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        return _internal_error(request)
