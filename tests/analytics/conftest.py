"""Warehouse fixtures: the seeded plant, a fresh DuckDB file and a lineage file per test."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy.orm import Session

from analytics.analytics_world import seed
from maintainpro.analytics.lineage import Lineage, lineage_for
from maintainpro.analytics.warehouse import DuckDbWarehouse
from maintainpro.config import Settings


@pytest.fixture
def seeded(db: Session) -> dict[str, int]:
    """The analytics world, committed; returns its ids."""
    return seed(db)


@pytest.fixture
def warehouse_path(tmp_path: Path) -> Path:
    """Where this test's warehouse lives."""
    return tmp_path / "warehouse.duckdb"


@pytest.fixture
def warehouse(warehouse_path: Path) -> Iterator[DuckDbWarehouse]:
    """A fresh DuckDB warehouse, closed after the test."""
    with DuckDbWarehouse(warehouse_path) as target:
        yield target


@pytest.fixture
def lineage_path(tmp_path: Path) -> Path:
    """The JSON-lines file this test's lineage events go to."""
    return tmp_path / "lineage.jsonl"


@pytest.fixture
def lineage(settings: Settings, warehouse_path: Path, lineage_path: Path) -> Lineage:
    """Lineage through the file transport."""
    configured = settings.model_copy(update={"lineage_file": lineage_path})
    return lineage_for(configured, warehouse_path)
