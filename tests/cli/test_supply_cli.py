"""`maintainpro supply scorecard/spend/orders` on a migrated SQLite file."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from maintainpro.cli.main import app
from maintainpro.core.db import build_engine, build_session_factory
from maintainpro.supply.rates import ExchangeRate
from supply.procurement_world import EUR_USD, TODAY, World
from supply.test_performance import two_deliveries_one_late
from support import plant

runner = CliRunner()
WINTER = ["--start", "2026-11-01", "--end", "2027-01-01"]


@pytest.fixture
def hub_db(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A migrated SQLite file holding the end-to-end order and an idle supplier."""
    url = f"sqlite:///{tmp_path / 'hub.db'}"
    monkeypatch.setenv("MAINTAINPRO_DATABASE_URL", url)
    monkeypatch.setenv("MAINTAINPRO_BASE_CURRENCY", "USD")
    # Wide enough that Rich never folds a figure across two lines.
    monkeypatch.setenv("COLUMNS", "220")
    upgraded = runner.invoke(app, ["db", "upgrade"])
    assert upgraded.exit_code == 0, upgraded.output
    engine = build_engine(url)
    with build_session_factory(engine)() as db, db.begin():
        world = World(db, plant(db))
        db.add(ExchangeRate(day=TODAY, currency="USD", per_eur=EUR_USD, source="ECB"))
        db.flush()
        two_deliveries_one_late(world)
        world.supplier("IDLE", "USD")
    engine.dispose()
    return url


def test_scorecards_of_every_supplier(hub_db: str) -> None:
    result = runner.invoke(app, ["supply", "scorecard", *WINTER])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    eurobear = next(line for line in lines if "EUROBEAR" in line)
    idle = next(line for line in lines if "IDLE" in line)
    assert "50.0%" in eurobear
    assert "9.00 ± 3.00 days" in eurobear
    assert "6.0 h" in eurobear
    assert idle.count("no data") == 8  # the score and all seven metrics
    assert lines.index(eurobear) < lines.index(idle)


def test_one_suppliers_scorecard_with_recommendations(hub_db: str) -> None:
    result = runner.invoke(app, ["supply", "scorecard", "--supplier", "EUROBEAR", *WINTER])
    assert result.exit_code == 0, result.output
    on_time = next(line for line in result.output.splitlines() if "on time delivery" in line)
    assert "50.0%" in on_time
    assert "lead time 9.00 ± 3.00 days" in result.output
    assert "Only 50.0% of EUROBEAR's deliveries arrived on time" in result.output
    assert "late_receipts=1" in result.output


def test_a_quiet_period_says_no_data(hub_db: str) -> None:
    quiet = ["--start", "2026-01-01", "--end", "2026-02-01"]
    result = runner.invoke(app, ["supply", "scorecard", "--supplier", "EUROBEAR", *quiet])
    assert result.exit_code == 0, result.output
    assert "EUROBEAR (EUROBEAR Ltd) 2026-01-01 to 2026-02-01 (end excluded): no data" in (
        result.output
    )
    # The heading, the table title and all seven metrics.
    assert result.output.count("no data") == 9


def test_spend_in_usd_by_supplier_and_by_asset(hub_db: str) -> None:
    result = runner.invoke(app, ["supply", "spend", "--by", "supplier", *WINTER])
    assert result.exit_code == 0, result.output
    row = next(line for line in result.output.splitlines() if "EUROBEAR" in line)
    assert "129.60 USD" in row
    assert "100.0%" in row
    assert "contract savings 25.92 USD" in result.output
    by_asset = runner.invoke(app, ["supply", "spend", "--by", "asset", *WINTER])
    assert by_asset.exit_code == 0, by_asset.output
    assert "P-1" in by_asset.output


def test_purchase_orders_table(hub_db: str) -> None:
    result = runner.invoke(app, ["supply", "orders"])
    assert result.exit_code == 0, result.output
    row = next(line for line in result.output.splitlines() if "PO-" in line)
    assert "EUROBEAR" in row
    assert "received" in row
    assert "120.00 EUR" in row
    assert "129.60 USD" in row
    assert "2026-11-27T10:00" in row
    filtered = runner.invoke(app, ["supply", "orders", "--status", "draft"])
    assert filtered.exit_code == 0, filtered.output
    assert "PO-" not in filtered.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["scorecard", "--start", "2026-12-01", "--end", "2026-11-01"], "before --end"),
        (["scorecard", "--start", "1 Dec", "--end", "2026-12-31"], "YYYY-MM-DD"),
        (["scorecard", "--supplier", "NOPE", *WINTER], "no supplier"),
        (["spend", "--start", "2026-12-01", "--end", "2026-12-01"], "before --end"),
    ],
)
def test_bad_arguments_fail_cleanly(hub_db: str, args: list[str], message: str) -> None:
    result = runner.invoke(app, ["supply", *args])
    assert result.exit_code == 1
    assert message in result.output
