"""The state of the real-time feeds for the BI connections page: open connections, past ones
(from the BI access audit table, so they outlive restarts), push targets and the stream itself."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any, Final

from maintainpro.analytics.access import ConnectionStats, access_ledger
from maintainpro.analytics.feeds import sse, ws
from maintainpro.analytics.feeds.push import TargetStatus
from maintainpro.analytics.feeds.service import Feeds

CHANNELS: Final = (sse.CHANNEL, ws.CHANNEL)


@dataclass(frozen=True)
class OpenConnection:
    """A connection streaming right now."""

    channel: str
    user_id: int | None
    username: str | None
    connected_at: dt.datetime
    filters: dict[str, str]
    events_sent: int
    queued: int
    dropped: int


@dataclass(frozen=True)
class StreamState:
    """The stream as a whole."""

    received: int
    published: int
    sampled_out: int
    dropped: dict[str, int]
    site_lookups_failed: int
    last_published_at: dt.datetime | None
    replay_oldest_id: int | None
    replay_newest_id: int | None


@dataclass(frozen=True)
class FeedStatus:
    """Everything the BI connections page shows about real-time feeds."""

    stream: StreamState
    connections: list[OpenConnection]
    history: list[ConnectionStats]
    targets: list[TargetStatus]


def feed_status(state: Any, connections: list[ConnectionStats] | None = None) -> FeedStatus:
    """The feeds' status from an app's state (``app.state``).

    ``connections``: the ledger's connections when the caller has read them already (each read
    groups the whole audit table).
    """
    feeds: Feeds = state.feeds
    stream = feeds.stream
    stats = stream.stats
    oldest, newest = stream.replay_window
    # Most recently used first, as the ledger orders them.
    if connections is None:
        connections = access_ledger(state).connections()
    history = [c for c in connections if c.channel in CHANNELS]
    return FeedStatus(
        stream=StreamState(
            received=stats.received,
            published=stats.published,
            sampled_out=stats.sampled_out,
            dropped=dict(stats.dropped),
            site_lookups_failed=stats.site_lookups_failed,
            last_published_at=stats.last_published_at,
            replay_oldest_id=oldest,
            replay_newest_id=newest,
        ),
        connections=[
            OpenConnection(
                channel=s.channel,
                user_id=s.user_id,
                username=s.username,
                connected_at=s.connected_at,
                filters=s.filter.describe(),
                events_sent=s.sent,
                queued=s.queued,
                dropped=s.dropped,
            )
            for s in stream.subscriptions()
        ],
        history=history,
        targets=[target.status() for target in feeds.targets],
    )
