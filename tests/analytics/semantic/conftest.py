"""Cube fixtures: a synthetic warehouse built once and copied per test, and an ETL-built one."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from openlineage.client import OpenLineageClient
from openlineage.client.transport.file import FileConfig, FileTransport
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from analytics.exports.exports_world import add_site_b
from analytics.semantic.cube_world import PLANT, Built, quiet_lineage
from maintainpro.analytics.lineage import Lineage
from maintainpro.analytics.runs import BuildOptions, build
from maintainpro.analytics.semantic.materialise import refresh
from maintainpro.analytics.semantic.model import default_model
from maintainpro.analytics.semantic.synthetic import populate
from maintainpro.analytics.warehouse import DuckDbWarehouse
from maintainpro.config import Settings


@pytest.fixture(scope="session")
def cube_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The synthetic plant with every pre-aggregation built (once per session)."""
    path = tmp_path_factory.mktemp("cubes") / "template.duckdb"
    with DuckDbWarehouse(path) as target:
        target.ensure_schema()
        populate(target.connection, PLANT)
        results = refresh(target.connection, default_model(), quiet_lineage(path))
    assert [r.error for r in results if r.status != "completed"] == []
    return path


@pytest.fixture
def cube_path(cube_template: Path, tmp_path: Path) -> Path:
    """This test's own copy of the synthetic warehouse."""
    path = tmp_path / "warehouse.duckdb"
    shutil.copyfile(cube_template, path)
    return path


@pytest.fixture
def file_lineage(cube_path: Path, tmp_path: Path) -> Lineage:
    """Lineage of the synthetic warehouse to a JSON-lines file (``tmp_path/lineage.jsonl``)."""
    path = tmp_path / "lineage.jsonl"
    transport = FileTransport(FileConfig(log_file_path=str(path), append=True))
    return Lineage(
        OpenLineageClient(transport=transport),
        namespace="test",
        source=("sqlite:///hub.db", "main."),
        warehouse_path=cube_path,
    )


@pytest.fixture
def cubes(cube_path: Path) -> Iterator[DuckDbWarehouse]:
    """The copy, open for writing (tests add facts and refresh)."""
    with DuckDbWarehouse(cube_path) as target:
        yield target


# ------------------------------------------------------------------ the ETL-built warehouse


@pytest.fixture
def settings(settings: Settings, warehouse_path: Path, lineage_path: Path) -> Settings:
    """The test settings with the warehouse and the lineage file in the test's folder."""
    return settings.model_copy(
        update={"warehouse_path": warehouse_path, "lineage_file": lineage_path}
    )


@pytest.fixture
def built(
    engine: Engine,
    db: Session,
    seeded: dict[str, int],
    warehouse_path: Path,
    lineage: Lineage,
) -> Built:
    """Sites A (the analytics world) and B loaded by the real ETL, then the cubes refreshed."""
    ids = dict(seeded)
    ids.update(add_site_b(db))
    with DuckDbWarehouse(warehouse_path) as target:
        records = build(engine, target, lineage, BuildOptions(base_currency="USD"))
        assert [(r.job, r.error) for r in records if r.status != "completed"] == []
        results = refresh(target.connection, default_model(), lineage)
    assert [r.error for r in results if r.status != "completed"] == []
    return Built(warehouse_path, ids)
