"""Answering a query for a user: open the warehouse, answer within their sites, audit the access.

``answer_query`` is what every per-user channel of the semantic layer calls: ``/semantic/load``,
saved questions, dashboards. It opens the warehouse read-only, answers as the user (their
permissions and ``site_scope``: a site-bound user sees only their site's rows), and writes
every request, answered or refused, to the BI access audit (channel ``cube``). It knows nothing
of HTTP: a refusal is ``Unanswered`` with a status, a message safe to show and, when the
warehouse is busy, how long to wait; the routes turn it into problem details.
"""

from __future__ import annotations

import datetime as dt
import json
import time
from dataclasses import dataclass
from typing import Any, Final

import duckdb

from maintainpro.analytics.access import AccessEvent, AccessLedger, record_access, site_scope
from maintainpro.analytics.semantic.load import answer
from maintainpro.analytics.semantic.model import SemanticModel
from maintainpro.analytics.semantic.plan import Access
from maintainpro.analytics.semantic.query import QueryError
from maintainpro.analytics.warehouse import WarehouseError, open_read_only, warehouse_file
from maintainpro.config import Settings
from maintainpro.core.users import User

CHANNEL: Final = "cube"
RETRY_AFTER_S: Final = 30
MAX_LOGGED_QUERY: Final = 2_000


class Unanswered(Exception):
    """A query that was not answered; ``detail`` never repeats what was sent."""

    def __init__(
        self, status: int, detail: str, *, title: str, retry_after_s: int | None = None
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.title = title
        self.retry_after_s = retry_after_s


@dataclass(frozen=True)
class _Audit:
    """One request's audit line, written once whatever happens."""

    ledger: AccessLedger
    user: User
    query: str
    began: float

    def write(
        self,
        *,
        status: int,
        dataset: str = "-",
        rows: int = 0,
        error: str | None = None,
        source: str | None = None,
    ) -> None:
        """Record the outcome on the ledger and in the log."""
        options = {"query": self.query}
        if source is not None:
            options["source"] = source
        record_access(
            self.ledger,
            AccessEvent(
                channel=CHANNEL,
                dataset=dataset,
                user_id=self.user.id,
                username=self.user.username,
                credential_id=None,
                credential_name=None,
                options=options,
                rows=rows,
                duration_ms=(time.perf_counter() - self.began) * 1000,
                status=status,
                error=error,
            ),
        )


def access_of(user: User) -> Access:
    """The semantic layer's view of a user: the permissions of their role and their sites."""
    return Access(user.permissions, site_scope(user))


def record_refusal(ledger: AccessLedger, user: User, query: str, status: int, error: str) -> None:
    """Audit a request refused before it reached ``answer_query`` (a query that is not JSON)."""
    _Audit(ledger, user, query[:MAX_LOGGED_QUERY], time.perf_counter()).write(
        status=status, error=error
    )


def open_warehouse(settings: Settings) -> duckdb.DuckDBPyConnection:
    """The warehouse open read-only; ``Unanswered`` (503) when it is missing or being written."""
    try:
        return open_read_only(settings)
    except WarehouseError as exc:
        if not warehouse_file(settings).exists():
            raise Unanswered(
                503, "the warehouse has not been built yet", title="Service Unavailable"
            ) from exc
        raise Unanswered(
            503,
            "the warehouse is being written; try again",
            title="Service Unavailable",
            retry_after_s=RETRY_AFTER_S,
        ) from exc
    except duckdb.Error as exc:
        raise Unanswered(
            503,
            "the warehouse cannot be opened now; try again",
            title="Service Unavailable",
            retry_after_s=RETRY_AFTER_S,
        ) from exc


def answer_query(
    settings: Settings,
    model: SemanticModel,
    user: User,
    raw: Any,
    *,
    ledger: AccessLedger,
    today: dt.date | None = None,
) -> dict[str, Any]:
    """Cube's answer to a query for this user (their sites' rows only), audited on ``ledger``.

    Raises ``Unanswered``: 400 for a query the model refuses, 403 for a cube closed to the user,
    503 when the warehouse cannot be read. Any other error is audited (500) and raised as is.
    """
    audit = _Audit(
        ledger, user, json.dumps(raw, default=str)[:MAX_LOGGED_QUERY], time.perf_counter()
    )
    day = today if today is not None else dt.datetime.now(dt.UTC).date()
    try:
        connection = open_warehouse(settings)
        try:
            result = answer(connection, model, raw, access_of(user), today=day)
        finally:
            connection.close()
    except QueryError as exc:
        audit.write(status=exc.status, error=str(exc))
        title = "Forbidden" if exc.status == 403 else "Invalid query"
        raise Unanswered(exc.status, str(exc), title=title) from exc
    except Unanswered as exc:
        audit.write(status=exc.status, error=exc.detail)
        raise
    except Exception as exc:
        audit.write(status=500, error=type(exc).__name__)
        raise
    audit.write(status=200, dataset=result.cube, rows=result.rows, source=result.source)
    return result.body
