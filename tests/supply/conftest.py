"""Procurement fixtures: a plant with a stored EUR/USD rate."""

from __future__ import annotations

import pytest
from sqlalchemy.orm import Session

from maintainpro.supply.rates import ExchangeRate
from supply.procurement_world import EUR_USD, TODAY, World
from support import plant


@pytest.fixture
def world(db: Session) -> World:
    """A plant (bearing BRG-1, 5 on hand) and a stored EUR/USD rate for TODAY."""
    ids = plant(db)
    db.add(ExchangeRate(day=TODAY, currency="USD", per_eur=EUR_USD, source="ECB"))
    db.flush()
    return World(db, ids)
