"""Feed fixtures: two sites built into a DuckDB warehouse by the real ETL, users bound to each
site or to none, and settings that point the app at that warehouse."""

from __future__ import annotations

import base64
import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pytest
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from analytics.analytics_world import at
from analytics.odata.odata_world import two_sites
from maintainpro.analytics.lineage import lineage_for
from maintainpro.analytics.runs import BuildOptions, build
from maintainpro.analytics.schema import FACT_PREDICTION
from maintainpro.analytics.warehouse import DuckDbWarehouse, naive_utc
from maintainpro.config import Settings
from maintainpro.core.users import Role, User


@pytest.fixture
def settings(settings: Settings, warehouse_path: Path, lineage_path: Path) -> Settings:
    """The test settings with this test's warehouse and lineage file."""
    return settings.model_copy(
        update={"warehouse_path": warehouse_path, "lineage_file": lineage_path}
    )


@pytest.fixture
def world(db: Session) -> dict[str, int]:
    """Sites A and B in the operational database."""
    return two_sites(db)


@pytest.fixture
def built(engine: Engine, world: dict[str, int], settings: Settings, warehouse_path: Path) -> Path:
    """The warehouse built from both sites by the ETL (closed again, so readers can open it)."""
    with DuckDbWarehouse(warehouse_path) as target:
        records = build(
            engine,
            target,
            lineage_for(settings, warehouse_path),
            BuildOptions(base_currency="USD", full=True),
        )
        # The ML jobs' output (written beside the ETL, not by it): three RUL runs per site's
        # sensor, so fact_prediction has rows of both sites and several pages too.
        predictions = [
            {
                "predicted_at": naive_utc(at(hour)),
                "date_key": int(at(hour).strftime("%Y%m%d")),
                "kind": "rul",
                "model_id": 1,
                "model_version": 1,
                "sensor_key": sensor,
                "asset_key": asset,
                "site_key": site,
                "value": 20.0 - hour,
                "low": 15.0 - hour,
                "high": 30.0 - hour,
                "threshold": 90.0,
                "threshold_source": "alert rule",
                "failure_at": naive_utc(at(hour) + dt.timedelta(days=20 - hour)),
            }
            for hour in (1, 2, 3)
            for sensor, asset, site in (
                (world["temp"], world["pump"], world["site_a"]),
                (world["sensor_b"], world["pump_b"], world["site_b"]),
            )
        ]
        target.insert(
            FACT_PREDICTION, pa.Table.from_pylist(predictions, FACT_PREDICTION.arrow_schema)
        )
    failed = [r for r in records if r.status != "completed"]
    assert not failed, failed
    return warehouse_path


def basic(token: str, username: str = "powerbi") -> dict[str, str]:
    """An HTTP Basic header carrying an API token as the password."""
    raw = base64.b64encode(f"{username}:{token}".encode()).decode()
    return {"Authorization": f"Basic {raw}"}


@dataclass(frozen=True)
class Reader:
    """A user of the feed and the header that signs in as them."""

    user: User
    token: str

    @property
    def headers(self) -> dict[str, str]:
        """HTTP Basic with the token, as BI tools send it."""
        return basic(self.token)


@pytest.fixture
def readers(world: dict[str, int], make_user: Callable[..., tuple[User, str]]) -> dict[str, Reader]:
    """Analysts of site A, of site B and of no site; a technician of A; a supplier user."""
    made = {
        "a": make_user(Role.ANALYST, "analyst-a", site_id=world["site_a"]),
        "b": make_user(Role.ANALYST, "analyst-b", site_id=world["site_b"]),
        "all": make_user(Role.ANALYST, "analyst-all"),
        "tech_a": make_user(Role.TECHNICIAN, "tech-a", site_id=world["site_a"]),
        "supplier": make_user(Role.SUPPLIER, "supplier-user"),
    }
    return {name: Reader(user, token) for name, (user, token) in made.items()}
