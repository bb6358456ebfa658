"""`maintainpro cubes refresh | query | meta | export` on the synthetic warehouse."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from maintainpro.cli.cubes import cubes_app

runner = CliRunner()
QUERY = {"measures": ["WorkOrders.count"], "dimensions": ["Assets.site"]}


@pytest.fixture
def hub(cube_path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Settings pointing at this test's copy of the synthetic warehouse."""
    monkeypatch.setenv("MAINTAINPRO_DATABASE_URL", f"sqlite:///{tmp_path / 'hub.db'}")
    monkeypatch.setenv("MAINTAINPRO_WAREHOUSE_PATH", str(cube_path))
    monkeypatch.setenv("MAINTAINPRO_LINEAGE_FILE", str(tmp_path / "lineage.jsonl"))
    monkeypatch.delenv("MAINTAINPRO_LINEAGE_URL", raising=False)
    monkeypatch.setenv("COLUMNS", "200")
    return tmp_path


def test_refresh_query_meta_and_export(hub: Path) -> None:
    refreshed = runner.invoke(cubes_app, ["refresh"])
    assert refreshed.exit_code == 0, refreshed.output
    assert "WorkOrders.daily: unchanged, 0 of 5 partition(s) recomputed" in refreshed.output
    rebuilt = runner.invoke(cubes_app, ["refresh", "--full", "--cube", "Spend"])
    assert rebuilt.exit_code == 0, rebuilt.output
    assert "Spend.daily: full, 5 of 5" in rebuilt.output
    assert "WorkOrders" not in rebuilt.output

    table = runner.invoke(cubes_app, ["query", json.dumps(QUERY)])
    assert table.exit_code == 0, table.output
    assert "S1" in table.output
    assert "WorkOrders.monthlyStatus" in table.output  # the smallest covering table
    answered = runner.invoke(cubes_app, ["query", "--json", json.dumps({"query": QUERY})])
    assert answered.exit_code == 0, answered.output
    body = json.loads(answered.output)
    assert {r["Assets.site"] for r in body["data"]} == {"S1", "S2"}
    query_file = hub / "query.json"
    query_file.write_text(json.dumps(QUERY), encoding="utf-8")
    base = runner.invoke(cubes_app, ["query", "--base", "--json", "--file", str(query_file)])
    assert json.loads(base.output)["data"] == body["data"]
    assert json.loads(base.output)["answeredFrom"]["source"] == "base"

    described = runner.invoke(cubes_app, ["meta"])
    assert described.exit_code == 0, described.output
    assert "hierarchy WorkOrders.location: Assets.site > Assets.line > Assets.asset" in (
        described.output
    )
    as_json = json.loads(runner.invoke(cubes_app, ["meta", "--json"]).output)
    assert "WorkOrders" in {c["name"] for c in as_json["cubes"]}

    out = hub / "files"
    exported = runner.invoke(
        cubes_app, ["export", "--out", str(out), "--format", "parquet", "--cube", "Alerts"]
    )
    assert exported.exit_code == 0, exported.output
    assert pq.read_table(out / "preagg_alerts_daily.parquet").num_rows > 0
    events = [json.loads(x) for x in (hub / "lineage.jsonl").read_text().splitlines()]
    assert {e["job"]["name"] for e in events} >= {
        "cube.preagg_spend_daily",
        "cube_export.preagg_alerts_daily.parquet",
    }


def test_bad_input_fails_cleanly(hub: Path) -> None:
    unknown = runner.invoke(cubes_app, ["query", json.dumps({"measures": ["WorkOrders.nope"]})])
    assert unknown.exit_code == 1
    assert "unknown measure WorkOrders.nope" in unknown.output
    assert runner.invoke(cubes_app, ["query", "{not json"]).exit_code == 1
    model = hub / "model.yaml"
    model.write_text("cubes:\n  - name: X\n    table: nowhere\n    permissions: [assets:read]\n")
    refused = runner.invoke(cubes_app, ["meta", "--model", str(model)])
    assert refused.exit_code == 1
    assert "the warehouse has no table nowhere" in refused.output
    wrong = runner.invoke(cubes_app, ["export", "--out", str(hub), "--format", "csv"])
    assert wrong.exit_code == 1
    assert runner.invoke(cubes_app, ["refresh", "--cube", "Nothing"]).exit_code == 1
