"""Report fixtures: the two-site world, a real SMTP server, a synthetic warehouse, a clock the
tests move."""

from __future__ import annotations

import datetime as dt
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller
from sqlalchemy.orm import Session

from analytics.reports.report_world import World, build
from maintainpro.analytics.semantic.synthetic import SyntheticPlant, populate
from maintainpro.analytics.warehouse import DuckDbWarehouse
from maintainpro.config import Settings
from peers import Inbox

PLANT = SyntheticPlant(start=dt.date(2026, 1, 1), days=90, work_orders_per_day=6)


@pytest.fixture
def warehouse_settings(settings: Settings, warehouse_path: Path) -> Settings:
    """Settings pointing at a synthetic warehouse of January to March 2026."""
    with DuckDbWarehouse(warehouse_path) as target:
        target.ensure_schema()
        populate(target.connection, PLANT)
    return settings.model_copy(update={"warehouse_path": warehouse_path})


@pytest.fixture
def world(db: Session) -> World:
    """Two sites with February's work, alerts, backlog and spend, committed."""
    return build(db)


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture
def smtp(settings: Settings) -> Iterator[tuple[Inbox, Settings]]:
    """A local SMTP server (aiosmtpd) and settings pointing at it."""
    inbox, port = Inbox(), free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    yield (
        inbox,
        settings.model_copy(
            update={
                "smtp_host": "127.0.0.1",
                "smtp_port": port,
                "smtp_starttls": False,
                "smtp_from": "reports@plant.example",
            }
        ),
    )
    controller.stop()


@dataclass
class Clock:
    """A clock that stands still until a test moves it."""

    now: dt.datetime

    def __call__(self) -> dt.datetime:
        """The current test time."""
        return self.now

    def advance(self, **delta: float) -> dt.datetime:
        """Move on; returns the new time."""
        self.now += dt.timedelta(**delta)
        return self.now
