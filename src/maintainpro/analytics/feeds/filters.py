"""Which feed events a connection or push target gets: event types, sites, and row-level security.

The one rule every channel applies (SSE, WebSocket, webhook streams, Power BI): a scope of None
sees every event; a site-bound scope sees the events of its sites only; an event without a site
(a sensor on no asset, an alert without an asset) stays with unrestricted scopes, as rows without
a site do in the warehouse (``analytics.access``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Final

from maintainpro.analytics.access import site_scope
from maintainpro.analytics.feeds.events import EVENT_TYPES, EventType, FeedEvent
from maintainpro.core.users import Permission, User

# The permission that opens each event type: the same as its REST API (readings and alerts
# are device data; work orders their own).
PERMISSIONS: Final[Mapping[EventType, Permission]] = {
    "reading": Permission.DEVICES_READ,
    "alert": Permission.DEVICES_READ,
    "work_order": Permission.WORK_ORDERS_READ,
}


class Refused(ValueError):
    """A connection refused: no credential (401), events it may not have (403), bad input (400)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def visible(scope: frozenset[int] | None, site_id: int | None) -> bool:
    """Row-level security for one event: may a holder of this scope see an event of this site?"""
    if scope is None:
        return True
    return site_id is not None and site_id in scope


@dataclass(frozen=True, slots=True)
class FeedFilter:
    """The events one connection or target receives; ``scope`` is its row-level security."""

    types: frozenset[EventType]
    sites: frozenset[int] | None
    scope: frozenset[int] | None

    def accepts(self, event: FeedEvent) -> bool:
        """Whether the event passes the type filter, the site filter and row-level security."""
        if event.type not in self.types or not visible(self.scope, event.site_id):
            return False
        return self.sites is None or event.site_id in self.sites

    def describe(self) -> dict[str, str]:
        """The filter as audit options (sorted, comma-separated)."""
        described = {"type": ",".join(t for t in EVENT_TYPES if t in self.types)}
        if self.sites is not None:
            described["site_id"] = ",".join(str(s) for s in sorted(self.sites))
        if self.scope is not None:
            described["scope"] = ",".join(str(s) for s in sorted(self.scope))
        return described


def permitted_types(user: User) -> frozenset[EventType]:
    """The event types a user's role opens."""
    granted = user.permissions
    return frozenset(t for t in EVENT_TYPES if PERMISSIONS[t] in granted)


def user_filter(
    user: User, types: Iterable[EventType] | None, sites: Iterable[int] | None
) -> FeedFilter:
    """The filter of a user's connection; refuses types or sites the user may not see.

    No ``types`` means every type the role opens; no ``sites`` every site the scope allows.
    """
    allowed = permitted_types(user)
    wanted = frozenset(types) if types else allowed
    if not allowed:
        raise Refused(403, f"the role {user.role.value} may not follow real-time feeds")
    refused = sorted(wanted - allowed)
    if refused:
        raise Refused(
            403, f"the role {user.role.value} may not receive {', '.join(refused)} events"
        )
    scope = site_scope(user)
    asked = frozenset(sites) if sites else None
    if asked is not None and scope is not None and not asked <= scope:
        # Said plainly rather than silently narrowed: a dashboard showing nothing for a site
        # would look like a quiet plant.
        raise Refused(403, "the stream may only name sites this user may see")
    return FeedFilter(types=wanted, sites=asked, scope=scope)
