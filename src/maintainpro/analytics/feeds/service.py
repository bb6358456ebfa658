"""The feeds of one app: the stream, its push targets, and how they are wired into the runtime."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from maintainpro.analytics.feeds.push import PushTarget
from maintainpro.analytics.feeds.sites import SitePlaces
from maintainpro.analytics.feeds.stream import FeedStream
from maintainpro.analytics.feeds.targets import build_targets
from maintainpro.config import Settings
from maintainpro.core.events import Handler
from maintainpro.iot.timeseries import ReadingRow
from maintainpro.runtime import Supervisor

StoredListener = Callable[[Sequence[ReadingRow]], None]


@dataclass
class Feeds:
    """The stream every channel reads and the push targets it feeds."""

    stream: FeedStream
    targets: list[PushTarget[Any]] = field(default_factory=list)

    def connect(
        self,
        supervisor: Supervisor,
        settings: Settings,
        *,
        outbox_handlers: dict[str, list[Handler]],
        reading_listeners: list[StoredListener] | None,
    ) -> None:
        """Feed the stream from the outbox and ingest, and start the configured push targets.

        The feed's handlers go last in each topic's list: ``deliver_pending`` stops at the first
        handler that fails and retries the event later, so a handler at the end runs once per
        delivered event and never sees a retry caused by another one.
        """
        for topic, handlers in self.stream.outbox_handlers().items():
            outbox_handlers.setdefault(topic, []).extend(handlers)
        if reading_listeners is not None:
            reading_listeners.append(self.stream.on_stored)
        for target in build_targets(settings):
            self.add_target(supervisor, target)

    def add_target(self, supervisor: Supervisor, target: PushTarget[Any]) -> None:
        """Send the stream's events to a push target, run by the supervisor."""
        self.targets.append(target)
        self.stream.sinks.append(target)
        supervisor.service(f"feed-target-{target.name}", target.run)


def build_feeds(
    settings: Settings, factory: sessionmaker[Session], supervisor: Supervisor
) -> Feeds:
    """The app's feed stream, run by the supervisor (SSE and WebSocket work without jobs)."""
    places = SitePlaces(factory, ttl_s=settings.feed_site_cache_s)
    stream = FeedStream(
        places,
        replay=settings.feed_replay_events,
        reading_interval_s=settings.feed_reading_interval_s,
    )
    supervisor.service("feeds", stream.run)
    return Feeds(stream)
