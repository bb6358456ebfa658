"""Feed fixtures: the two-site world and the whole app served by uvicorn on a free port."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from analytics.feeds.feed_world import FeedServer, FeedWorld, seed
from maintainpro.app import create_app
from maintainpro.config import Settings
from supply.erp.fakes import serve

HEARTBEAT_S = 0.2


@pytest.fixture
def world(session_factory: sessionmaker[Session]) -> FeedWorld:
    """Sites A and B with an asset, device and sensor each."""
    return seed(session_factory)


@pytest.fixture
def feed_server(
    settings: Settings, engine: Engine, session_factory: sessionmaker[Session]
) -> Iterator[FeedServer]:
    """The app on uvicorn (background jobs off; the feed stream runs), heartbeats every 0.2 s.

    Readings are not sampled, so a test may hand stored rows to the stream from its own thread
    (sampling state belongs to the event loop; the unsampled path only queues, under a lock).
    """
    update = {"feed_heartbeat_s": HEARTBEAT_S, "feed_reading_interval_s": 0.0}
    app = create_app(settings.model_copy(update=update))
    with serve(app) as url:
        yield FeedServer(app, url, session_factory)
