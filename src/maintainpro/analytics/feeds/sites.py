"""Where feed events belong: sensor -> device -> asset -> site, asset -> site and work order ->
asset -> site, looked up in batches and cached for a while.

Row-level security rests on these answers, so they are not kept for ever: an entry is reloaded
after ``ttl_s`` (a device moved to another asset, or an asset to another site, is seen within that
time), and ``forget()`` drops everything at once.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Final, Generic, TypeVar

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from maintainpro.analytics.feeds.events import Lookup
from maintainpro.core.assets import Asset
from maintainpro.core.work_orders import WorkOrder
from maintainpro.iot.devices import Device, Sensor

DEFAULT_TTL_S: Final = 60.0
MAX_ENTRIES: Final = 200_000
# Ids per IN (...) list: far below SQLite's and PostgreSQL's parameter limits.
CHUNK: Final = 500


@dataclass(frozen=True, slots=True)
class Place:
    """Where an event belongs; unknown or unattached things have no asset and no site."""

    site_id: int | None
    asset_id: int | None = None
    device_id: int | None = None
    sensor_key: str | None = None
    unit: str | None = None


NOWHERE: Final = Place(site_id=None)
K = TypeVar("K")


class _Cache(Generic[K]):
    """Entries that expire ``ttl_s`` after they were loaded; bounded, oldest evicted first."""

    def __init__(self, ttl_s: float, clock: Callable[[], float], max_entries: int) -> None:
        self._ttl_s = ttl_s
        self._clock = clock
        self._max = max_entries
        self._entries: dict[K, tuple[Place, float]] = {}

    def get(self, key: K) -> Place | None:
        found = self._entries.get(key)
        if found is None or self._clock() - found[1] >= self._ttl_s:
            return None
        return found[0]

    def put(self, key: K, place: Place) -> None:
        entries = self._entries
        entries.pop(key, None)
        if len(entries) >= self._max:
            # dicts keep insertion order, and put() re-inserts: the first key is the oldest.
            del entries[next(iter(entries))]
        entries[key] = (place, self._clock())

    def clear(self) -> None:
        self._entries.clear()


def _chunks(ids: Iterable[int]) -> Iterable[list[int]]:
    ordered = sorted(set(ids))
    for start in range(0, len(ordered), CHUNK):
        yield ordered[start : start + CHUNK]


class SitePlaces:
    """The cached answers to "which site does this sensor / asset / work order belong to"."""

    def __init__(
        self,
        factory: sessionmaker[Session],
        *,
        ttl_s: float = DEFAULT_TTL_S,
        clock: Callable[[], float] = time.monotonic,
        max_entries: int = MAX_ENTRIES,
    ) -> None:
        self.factory = factory
        self._lock = threading.Lock()
        self._sensors: _Cache[int] = _Cache(ttl_s, clock, max_entries)
        self._assets: _Cache[int] = _Cache(ttl_s, clock, max_entries)
        self._orders: _Cache[int] = _Cache(ttl_s, clock, max_entries)
        self.lookups = 0

    def _cache(self, kind: str) -> _Cache[int]:
        return {"sensor": self._sensors, "asset": self._assets, "work_order": self._orders}[kind]

    def cached(self, lookup: Lookup) -> Place | None:
        """The cached place, or None when it must be loaded first."""
        kind, key = lookup
        with self._lock:
            return self._cache(kind).get(key)

    def missing(self, lookups: Iterable[Lookup]) -> set[Lookup]:
        """Those of the lookups that are not cached (or have expired)."""
        return {lookup for lookup in lookups if self.cached(lookup) is None}

    def load(self, lookups: Iterable[Lookup]) -> dict[Lookup, Place]:
        """Load places from the database (blocking: call from a worker thread) and return them."""
        lookups_list = list(lookups)
        wanted: dict[str, set[int]] = {"sensor": set(), "asset": set(), "work_order": set()}
        for kind, key in lookups_list:
            wanted[kind].add(key)
        found: dict[tuple[str, int], Place] = {}
        with self.factory() as session:
            for ids in _chunks(wanted["sensor"]):
                rows = session.execute(
                    select(Sensor.id, Sensor.key, Sensor.unit, Device.id, Asset.id, Asset.site_id)
                    .join(Device, Sensor.device_id == Device.id)
                    .outerjoin(Asset, Device.asset_id == Asset.id)
                    .where(Sensor.id.in_(ids))
                )
                for sensor_id, sensor_key, unit, device_id, asset_id, site_id in rows:
                    found["sensor", sensor_id] = Place(
                        site_id, asset_id, device_id, sensor_key, unit
                    )
            for ids in _chunks(wanted["asset"]):
                for asset_id, site_id in session.execute(
                    select(Asset.id, Asset.site_id).where(Asset.id.in_(ids))
                ):
                    found["asset", asset_id] = Place(site_id, asset_id)
            for ids in _chunks(wanted["work_order"]):
                for order_id, asset_id, site_id in session.execute(
                    select(WorkOrder.id, Asset.id, Asset.site_id)
                    .join(Asset, WorkOrder.asset_id == Asset.id)
                    .where(WorkOrder.id.in_(ids))
                ):
                    found["work_order", order_id] = Place(site_id, asset_id)
        loaded: dict[Lookup, Place] = {}
        with self._lock:
            self.lookups += 1
            for lookup in set(lookups_list):
                # Unknown ids (deleted since) are cached as nowhere: only unrestricted users
                # see such events, and the database is not asked again and again.
                place = found.get(lookup, NOWHERE)
                self._cache(lookup[0]).put(lookup[1], place)
                loaded[lookup] = place
        return loaded

    def forget(self) -> None:
        """Drop every cached answer (after a change that moves things between sites)."""
        with self._lock:
            for cache in (self._sensors, self._assets, self._orders):
                cache.clear()
