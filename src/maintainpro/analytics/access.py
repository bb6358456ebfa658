"""Who may see which warehouse rows (row-level security by site), and the record of who saw what.

Every BI channel (the OData feed, file exports, real-time feeds, cubes) asks the same questions:
``site_scope(user)`` gives the sites a user may see (None: every site) and ``scope_predicate``
turns a table's ``SiteRule`` and that scope into a parameterised SQL predicate. The rule of a
table follows from its columns:

- a table with a ``site_key`` column shows a site-bound user the rows of that site only
  (rows without a site stay with unrestricted users);
- a table without one that joins to a table that has one is scoped through that join
  (``fact_work_order_status`` through ``fact_work_order``);
- the calendar, the time of day and the currency list hold no operational data of any site and
  are shared with everyone;
- every other table (parts, suppliers and the procurement facts, which the warehouse keeps
  without a site) is visible to unrestricted users only: a site-bound user gets no rows.

Each access is recorded by ``record_access``: one JSON line on the ``maintainpro.analytics.access``
logger (kept wherever the logs go, independent of the warehouse) and one row in the
``bi_access_log`` table (``analytics.access_log``), written by the app's ``AccessLedger`` off the
request path; the BI connections page reads its per-connection figures from that table.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
from dataclasses import dataclass
from typing import Any, Final

from sqlalchemy.orm import Session, sessionmaker

from maintainpro.analytics import schema
from maintainpro.analytics.access_connections import (
    AnonymousRefusals,
    anonymous_refusals,
    connection_stats,
)

# The event is defined with the table and the connection figures with the connections view; the
# BI channels import them from here, with the rest of the access rules.
from maintainpro.analytics.access_connections import ConnectionStats as ConnectionStats
from maintainpro.analytics.access_log import (
    MAX_ERROR_TEXT,
    AccessLogWriter,
    clipped,
    clipped_options,
)
from maintainpro.analytics.access_log import AccessEvent as AccessEvent
from maintainpro.analytics.schema import WarehouseTable
from maintainpro.core.users import User

log = logging.getLogger(__name__)

SITE_COLUMN: Final = "site_key"


def site_scope(user: User) -> frozenset[int] | None:
    """The sites a user may see in the warehouse: None for every site, else the user's site."""
    if user.site_id is None:
        return None
    return frozenset({user.site_id})


@dataclass(frozen=True)
class SiteRule:
    """How a table's rows are tied to a site.

    ``column``: the table's site column. ``via``: (local column, other table, its column) for a
    table scoped through another one. ``shared``: no site data at all, visible to everyone.
    With none of these the table is visible to unrestricted users only.
    """

    column: str | None = None
    via: tuple[str, str, str] | None = None
    shared: bool = False

    @property
    def unrestricted_only(self) -> bool:
        """Whether only users not tied to a site may read the table."""
        return self.column is None and self.via is None and not self.shared


SHARED: Final = SiteRule(shared=True)
ALL_SITES_ONLY: Final = SiteRule()
BY_SITE_KEY: Final = SiteRule(column=SITE_COLUMN)

# Tables whose rule does not follow from a site_key column.
_RULES: Final[dict[str, SiteRule]] = {
    schema.DIM_DATE.name: SHARED,
    schema.DIM_TIME_OF_DAY.name: SHARED,
    schema.DIM_CURRENCY.name: SHARED,
    schema.FACT_WORK_ORDER_STATUS.name: SiteRule(
        via=("work_order_key", schema.FACT_WORK_ORDER.name, "work_order_key")
    ),
}


def rule_for(table: WarehouseTable) -> SiteRule:
    """The site rule of a warehouse table (a table unknown to the rules is never shared)."""
    explicit = _RULES.get(table.name)
    if explicit is not None:
        return explicit
    return BY_SITE_KEY if SITE_COLUMN in table.column_names else ALL_SITES_ONLY


def can_read(rule: SiteRule, scope: frozenset[int] | None) -> bool:
    """Whether a user with this scope may read any row of a table with this rule."""
    return scope is None or not rule.unrestricted_only


def _quoted(name: str) -> str:
    if not name.replace("_", "").isalnum() or not name.isascii():
        raise ValueError(f"not a plain identifier: {name!r}")
    return f'"{name}"'


def scope_predicate(
    rule: SiteRule, scope: frozenset[int] | None, alias: str = "t"
) -> tuple[str, list[Any]]:
    """A SQL predicate (with ``?`` parameters) keeping the rows the scope may see.

    ``alias`` is the name the query gives the table; identifiers come from the schema, never
    from a request, and site ids are bound as parameters.
    """
    if scope is None or rule.shared:
        return "TRUE", []
    if not scope or rule.unrestricted_only:
        return "FALSE", []
    sites = sorted(scope)
    marks = ", ".join("?" * len(sites))
    if rule.column is not None:
        return f"{_quoted(alias)}.{_quoted(rule.column)} IN ({marks})", list(sites)
    assert rule.via is not None
    local, other, other_column = (_quoted(n) for n in rule.via)
    return (
        f"{_quoted(alias)}.{local} IN (SELECT {other_column} FROM {other} "  # noqa: S608 - schema names
        f"WHERE {SITE_COLUMN} IN ({marks}))",
        list(sites),
    )


# --------------------------------------------------------------------------- audit


class AccessLedger:
    """An app's BI access audit: rows written to ``bi_access_log``, connections read from it."""

    def __init__(self, factory: sessionmaker[Session]) -> None:
        """A ledger on the app's session factory (its writer thread starts with the first event)."""
        self._factory = factory
        self.writer = AccessLogWriter(factory)

    def record(self, event: AccessEvent) -> None:
        """Queue the event's audit row; never blocks on the database, never raises."""
        self.writer.submit(event)

    def connections(self, channel: str | None = None) -> list[ConnectionStats]:
        """Every connection (optionally of one channel), most recently used first.

        Events recorded before the call are written first, so a caller reads its own accesses.
        """
        self.writer.flush()
        with self._factory() as session:
            return connection_stats(session, channel)

    def refusals_since(self, since: dt.datetime) -> AnonymousRefusals:
        """Requests refused before a user was known, since ``since`` (written ones first)."""
        self.writer.flush()
        with self._factory() as session:
            return anonymous_refusals(session, since)

    def flush(self) -> bool:
        """Wait until the events recorded so far are in the table; False on timeout."""
        return self.writer.flush()

    def close(self) -> None:
        """Write what is queued and stop the writer (at app shutdown)."""
        self.writer.close()


def record_access(ledger: AccessLedger, event: AccessEvent) -> None:
    """Write the audit line for an access and queue its ``bi_access_log`` row."""
    # The row goes through a queue: a failing or slow database never fails or slows the request.
    try:
        ledger.record(event)
    except Exception:  # auditing must not fail the request
        log.exception("bi access audit row not queued")
    # Field names avoid "token" and "key": the log formatter would redact their values.
    log.info(
        "bi feed access",
        extra={
            "channel": event.channel,
            "dataset": event.dataset,
            "user_id": event.user_id,
            "username": event.username,
            "credential_id": event.credential_id,
            "credential_name": event.credential_name,
            "options": clipped_options(event.options),
            "rows": event.rows,
            "duration_ms": round(event.duration_ms, 1),
            "status": event.status,
            "outcome": event.outcome,
            "error": None if event.error is None else clipped(event.error, MAX_ERROR_TEXT),
        },
    )


_LEDGER_LOCK: Final = threading.Lock()


def access_ledger(state: Any) -> AccessLedger:
    """The ledger of an app (on ``app.state``, using its ``session_factory``), made on first use."""
    with _LEDGER_LOCK:
        ledger = getattr(state, "analytics_access", None)
        if not isinstance(ledger, AccessLedger):
            ledger = AccessLedger(state.session_factory)
            state.analytics_access = ledger
        return ledger
