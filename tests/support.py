"""Helpers shared by test modules: headers and small factories of plant data."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

from sqlalchemy.orm import Session

from maintainpro.core.assets import Asset, Location, LocationKind, Site
from maintainpro.core.inventory import Part, StockLevel

SHARED = Path(__file__).resolve().parents[2] / "shared"


def bearer(token: str) -> dict[str, str]:
    """An Authorization header for a token."""
    return {"Authorization": f"Bearer {token}"}


def plant(session: Session) -> dict[str, int]:
    """A site with a line, a storeroom, two assets and a part with stock; returns their ids."""
    site = Site(code="S1", name="Test plant")
    session.add(site)
    session.flush()
    line = Location(site_id=site.id, code="L1", name="Line 1", kind=LocationKind.LINE)
    store = Location(site_id=site.id, code="ST", name="Store", kind=LocationKind.STOREROOM)
    session.add_all([line, store])
    session.flush()
    pump = Asset(tag="P-1", name="Pump", site_id=site.id, location_id=line.id, asset_class="pump")
    session.add(pump)
    session.flush()
    motor = Asset(tag="M-1", name="Motor", site_id=site.id, location_id=line.id, parent_id=pump.id)
    part = Part(number="BRG-1", name="Bearing", unit_cost=Decimal("10.00"))
    session.add_all([motor, part])
    session.flush()
    stock = StockLevel(
        part_id=part.id, location_id=store.id, on_hand=Decimal(5), reorder_point=Decimal(2)
    )
    session.add(stock)
    session.flush()
    return {
        "site": site.id,
        "line": line.id,
        "store": store.id,
        "pump": pump.id,
        "motor": motor.id,
        "part": part.id,
        "stock": stock.id,
    }
