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
logger (kept wherever the logs go, independent of the warehouse) and per-connection counters in an
``AccessLedger`` that the BI connections page reads.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Final, Literal

from maintainpro.analytics import schema
from maintainpro.analytics.schema import WarehouseTable
from maintainpro.core.users import User

log = logging.getLogger(__name__)

SITE_COLUMN: Final = "site_key"
# Option values are logged for the audit trail, but a hostile client must not fill the log.
MAX_LOGGED_VALUE: Final = 500
MAX_ERROR_TEXT: Final = 300


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


Outcome = Literal["ok", "error"]


@dataclass(frozen=True)
class AccessEvent:
    """One read through a BI channel: who, what, how it was asked, what it gave."""

    channel: str
    dataset: str
    user_id: int | None
    username: str | None
    credential_id: int | None
    credential_name: str | None
    options: Mapping[str, str]
    rows: int
    duration_ms: float
    status: int
    error: str | None = None
    at: dt.datetime = field(default_factory=lambda: dt.datetime.now(dt.UTC))

    @property
    def outcome(self) -> Outcome:
        """Whether the request was served ("ok") or refused ("error")."""
        return "ok" if self.status < 400 else "error"


@dataclass(frozen=True)
class ConnectionStats:
    """What one connection (a user through one API token, on one channel) has done so far."""

    channel: str
    user_id: int
    username: str
    credential_id: int | None
    credential_name: str | None
    first_access: dt.datetime
    last_access: dt.datetime
    requests: int
    rows_served: int
    errors: int
    last_dataset: str
    last_status: int
    last_error: str | None
    last_error_at: dt.datetime | None


class AccessLedger:
    """Per-connection counters of BI reads in this process (the log keeps the full history)."""

    def __init__(self) -> None:
        """Start empty."""
        self._lock = threading.Lock()
        self._stats: dict[tuple[str, int, int | None], ConnectionStats] = {}

    def record(self, event: AccessEvent) -> None:
        """Count an access; anonymous ones (refused before a user was known) are not counted."""
        if event.user_id is None:
            return
        key = (event.channel, event.user_id, event.credential_id)
        failed = event.outcome == "error"
        with self._lock:
            previous = self._stats.get(key)
            if previous is None:
                previous = ConnectionStats(
                    channel=event.channel,
                    user_id=event.user_id,
                    username=event.username or "",
                    credential_id=event.credential_id,
                    credential_name=event.credential_name,
                    first_access=event.at,
                    last_access=event.at,
                    requests=0,
                    rows_served=0,
                    errors=0,
                    last_dataset=event.dataset,
                    last_status=event.status,
                    last_error=None,
                    last_error_at=None,
                )
            self._stats[key] = replace(
                previous,
                last_access=max(previous.last_access, event.at),
                requests=previous.requests + 1,
                rows_served=previous.rows_served + event.rows,
                errors=previous.errors + (1 if failed else 0),
                last_dataset=event.dataset,
                last_status=event.status,
                last_error=event.error if failed else previous.last_error,
                last_error_at=event.at if failed else previous.last_error_at,
            )

    def connections(self, channel: str | None = None) -> list[ConnectionStats]:
        """Every connection seen (optionally of one channel), most recently used first."""
        with self._lock:
            stats = list(self._stats.values())
        if channel is not None:
            stats = [s for s in stats if s.channel == channel]
        return sorted(stats, key=lambda s: s.last_access, reverse=True)


def _clipped(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[:limit] + "…"


def record_access(ledger: AccessLedger, event: AccessEvent) -> None:
    """Write the audit line for an access and count it on the ledger."""
    ledger.record(event)
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
            "options": {k: _clipped(v, MAX_LOGGED_VALUE) for k, v in event.options.items()},
            "rows": event.rows,
            "duration_ms": round(event.duration_ms, 1),
            "status": event.status,
            "outcome": event.outcome,
            "error": None if event.error is None else _clipped(event.error, MAX_ERROR_TEXT),
        },
    )


_LEDGER_LOCK: Final = threading.Lock()


def access_ledger(state: Any) -> AccessLedger:
    """The ledger kept on an app's state (``app.state``), created on first use."""
    with _LEDGER_LOCK:
        ledger = getattr(state, "analytics_access", None)
        if not isinstance(ledger, AccessLedger):
            ledger = AccessLedger()
            state.analytics_access = ledger
        return ledger
