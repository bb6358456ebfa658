"""`maintainpro warehouse build | runs | kpis` on a real SQLite file."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from analytics.analytics_world import seed
from maintainpro.analytics.semantic.refresh_lineage import JOB_PREFIX
from maintainpro.cli.main import app
from maintainpro.core.db import build_engine, build_session_factory
from maintainpro.migrate import upgrade

runner = CliRunner()


@pytest.fixture
def hub(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A migrated, seeded SQLite hub; the warehouse and lineage go beside it by default."""
    url = f"sqlite:///{tmp_path / 'hub.db'}"
    monkeypatch.setenv("MAINTAINPRO_DATABASE_URL", url)
    for name in ("WAREHOUSE_PATH", "LINEAGE_FILE", "LINEAGE_URL"):
        monkeypatch.delenv(f"MAINTAINPRO_{name}", raising=False)
    monkeypatch.setenv("COLUMNS", "200")
    upgrade(url)
    engine = build_engine(url)
    with build_session_factory(engine)() as session:
        seed(session)
    engine.dispose()
    return tmp_path


def test_build_then_runs_then_kpis(hub: Path) -> None:
    built = runner.invoke(app, ["warehouse", "build"])
    assert built.exit_code == 0, built.output
    assert "fact_work_order" in built.output
    assert "14 job(s) completed" in built.output
    assert (hub / "warehouse.duckdb").exists()
    events = [json.loads(line) for line in (hub / "lineage.jsonl").read_text().splitlines()]
    etl = [e for e in events if e["job"]["name"].startswith("warehouse.")]
    assert len(etl) == 28  # START and COMPLETE for each of the 14 jobs
    # The build then refreshes the cube pre-aggregations, each with its own START/COMPLETE.
    cubes = [e for e in events if e["job"]["name"].startswith(JOB_PREFIX)]
    assert cubes
    assert {e["eventType"] for e in cubes} == {"START", "COMPLETE"}
    assert len(etl) + len(cubes) == len(events)
    assert "cube pre-aggregations" in built.output

    again = runner.invoke(app, ["warehouse", "build", "--full", "--job", "dim_asset"])
    assert again.exit_code == 0, again.output
    assert "1 job(s) completed" in again.output

    runs = runner.invoke(app, ["warehouse", "runs", "--limit", "3"])
    assert runs.exit_code == 0, runs.output
    assert "dim_asset" in runs.output
    assert "full" in runs.output
    assert runs.output.count("completed") == 3

    kpis = runner.invoke(app, ["warehouse", "kpis", "--asset", "P-1"])
    assert kpis.exit_code == 0, kpis.output
    assert "P-1" in kpis.output
    assert "M-1" not in kpis.output
    assert "128.00" in kpis.output

    everyone = runner.invoke(app, ["warehouse", "kpis"])
    assert "M-1" in everyone.output


def test_refusals_are_clear(hub: Path) -> None:
    missing = runner.invoke(app, ["warehouse", "runs"])
    assert missing.exit_code == 1
    assert "warehouse build" in missing.output
    unknown = runner.invoke(app, ["warehouse", "build", "--job", "nope"])
    assert unknown.exit_code == 1
    assert "unknown job" in unknown.output
    assert runner.invoke(app, ["warehouse", "build", "--job", "dim_site"]).exit_code == 0
    no_asset = runner.invoke(app, ["warehouse", "kpis", "--asset", "X-9"])
    assert no_asset.exit_code == 1
    assert "X-9" in no_asset.output
