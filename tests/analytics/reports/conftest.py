"""Report fixtures: the two-site world, a real SMTP server, a synthetic warehouse, a clock the
tests move."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy.orm import Session

from analytics.reports.report_world import World, build
from maintainpro.analytics.semantic.synthetic import SyntheticPlant, populate
from maintainpro.analytics.warehouse import DuckDbWarehouse
from maintainpro.config import Settings
from peers import Inbox, smtp_peer

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


@pytest.fixture
def smtp(settings: Settings) -> Iterator[tuple[Inbox, Settings]]:
    """A local SMTP server (aiosmtpd) and settings pointing at it."""
    with smtp_peer() as (inbox, port):
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
