"""`maintainpro exports ...` on a real SQLite hub whose warehouse the CLI built."""

from __future__ import annotations

from pathlib import Path

import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from analytics.analytics_world import seed
from analytics.exports.exports_world import add_site_b
from maintainpro.cli.exports import exports_app
from maintainpro.cli.main import app
from maintainpro.core.db import build_engine, build_session_factory
from maintainpro.migrate import upgrade

runner = CliRunner()


@pytest.fixture
def hub(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, int]:
    """A migrated SQLite hub with two sites and its warehouse built by `warehouse build`."""
    url = f"sqlite:///{tmp_path / 'hub.db'}"
    monkeypatch.setenv("MAINTAINPRO_DATABASE_URL", url)
    for name in ("WAREHOUSE_PATH", "LINEAGE_FILE", "LINEAGE_URL", "PUBLIC_URL"):
        monkeypatch.delenv(f"MAINTAINPRO_{name}", raising=False)
    monkeypatch.setenv("COLUMNS", "200")
    monkeypatch.chdir(tmp_path)
    upgrade(url)
    engine = build_engine(url)
    with build_session_factory(engine)() as session:
        ids = seed(session)
        ids.update(add_site_b(session))
    engine.dispose()
    built = runner.invoke(app, ["warehouse", "build"])
    assert built.exit_code == 0, built.output
    return ids


def test_files_on_demand(hub: dict[str, int], tmp_path: Path) -> None:
    listed = runner.invoke(exports_app, ["datasets"])
    assert listed.exit_code == 0, listed.output
    assert "rollup_sensor_day" in listed.output

    out = tmp_path / "orders.parquet"
    made = runner.invoke(
        exports_app,
        ["file", "fact_work_order", "parquet", "--out", str(out), "--site", str(hub["site_b"])],
    )
    assert made.exit_code == 0, made.output
    assert "wrote 1 rows" in made.output
    assert pq.read_table(out).column("work_order_key").to_pylist() == [hub["wo_b"]]

    hyper = runner.invoke(
        exports_app, ["file", "fact_alert", "hyper", "--out", str(tmp_path / "a.hyper")]
    )
    assert hyper.exit_code == 0, hyper.output
    assert (tmp_path / "a.hyper").stat().st_size > 0

    unknown = runner.invoke(exports_app, ["file", "no_such", "csv", "--out", "x.csv"])
    assert unknown.exit_code == 1
    assert "no exportable dataset" in unknown.output
    bad_format = runner.invoke(exports_app, ["file", "fact_alert", "pdf", "--out", "x.pdf"])
    assert bad_format.exit_code == 1
    assert "unknown format" in bad_format.output


def test_lake_and_delta_history(hub: dict[str, int], tmp_path: Path) -> None:
    lake = runner.invoke(exports_app, ["lake", "fact_work_order"])
    assert lake.exit_code == 0, lake.output
    assert "day(s) replaced" in lake.output
    assert any((tmp_path / "exports" / "lake" / "parquet" / "fact_work_order").glob("dt=*"))
    for _ in range(2):
        delta = runner.invoke(exports_app, ["lake", "fact_work_order", "--delta"])
        assert delta.exit_code == 0, delta.output
    assert "Delta version 1" in delta.output
    history = runner.invoke(exports_app, ["delta-history", "fact_work_order"])
    assert history.exit_code == 0, history.output
    assert "WRITE" in history.output
    missing = runner.invoke(exports_app, ["delta-history", "fact_alert"])
    assert missing.exit_code == 1
    window = runner.invoke(exports_app, ["lake", "dim_asset", "--since", "2026-01-01"])
    assert window.exit_code == 1
    assert "no days" in window.output


def test_schedules_listed_and_run(hub: dict[str, int], tmp_path: Path) -> None:
    empty = runner.invoke(exports_app, ["list"])
    assert empty.exit_code == 0
    assert "no scheduled exports" in empty.output
    (tmp_path / "exports.yaml").write_text(
        "exports:\n"
        "  - {name: alerts, dataset: fact_alert, format: csv, cron: '0 * * * *'}\n"
        "  - {name: spend, dataset: fact_spend, format: qvd, cron: '0 2 * * *'}\n"
    )
    listed = runner.invoke(exports_app, ["list"])
    assert listed.exit_code == 0, listed.output
    assert "alerts" in listed.output
    assert "never" in listed.output

    ran = runner.invoke(exports_app, ["run"])
    assert ran.exit_code == 0, ran.output
    assert "alerts: 1 rows" in ran.output
    assert (tmp_path / "exports" / "alerts" / "fact_alert.csv").exists()
    assert "nothing was due" in runner.invoke(exports_app, ["run"]).output
    named = runner.invoke(exports_app, ["run", "spend"])
    assert named.exit_code == 0, named.output
    assert "spend: 1 rows" in named.output
    unknown = runner.invoke(exports_app, ["run", "nope"])
    assert unknown.exit_code == 1

    (tmp_path / "exports.yaml").write_text("exports: [{name: x}]")
    broken = runner.invoke(exports_app, ["list"])
    assert broken.exit_code == 1
    assert "invalid schedule" in broken.output


def test_connection_files(hub: dict[str, int], tmp_path: Path) -> None:
    printed = runner.invoke(exports_app, ["connection-file", "tableau", "--table", "fact_alert"])
    assert printed.exit_code == 0, printed.output
    assert "http://127.0.0.1:8000/odata/fact_alert" in printed.output
    written = runner.invoke(
        exports_app, ["connection-file", "qlik", "--out", str(tmp_path / "bi.qvs")]
    )
    assert written.exit_code == 0, written.output
    assert "LIB CONNECT TO" in (tmp_path / "bi.qvs").read_text()
    assert runner.invoke(exports_app, ["connection-file", "excel"]).exit_code == 1
    assert runner.invoke(exports_app, ["connection-file", "qlik", "--table", "x"]).exit_code == 1
