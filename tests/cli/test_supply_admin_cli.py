"""`maintainpro supply suppliers/import-rates/import-catalog/contracts/reorder` on a SQLite file."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import func, select
from typer.testing import CliRunner

from maintainpro.cli.main import app
from maintainpro.core.db import build_engine, build_session_factory
from maintainpro.core.inventory import StockLevel
from maintainpro.supply.catalogs import CatalogItem, PriceChange
from maintainpro.supply.contracts import Contract, ContractKind
from maintainpro.supply.purchasing import PurchaseOrder
from maintainpro.supply.rates import ExchangeRate
from maintainpro.supply.suppliers import Supplier, SupplierStatus
from support import plant

runner = CliRunner()
ECB_XML = """<?xml version="1.0" encoding="UTF-8"?>
<gesmes:Envelope xmlns:gesmes="http://www.gesmes.org/xml/2002-08-01"
 xmlns="http://www.ecb.int/vocabulary/2002-08-01/eurofxref">
 <gesmes:subject>Reference rates</gesmes:subject>
 <Cube>
  <Cube time="2026-11-27">
   <Cube currency="USD" rate="1.0812"/><Cube currency="GBP" rate="0.8411"/>
  </Cube>
  <Cube time="2026-11-26">
   <Cube currency="USD" rate="1.0790"/><Cube currency="GBP" rate="0.8402"/>
  </Cube>
 </Cube>
</gesmes:Envelope>
"""
GOOD = (
    "supplier_part_number,part_number,min_quantity,unit_price,pack_size,lead_time_days\n"
    "SKF-6204,BRG-1,1,12.50,1,4\n"
    "SKF-6204,BRG-1,10,11.00,1,4\n"
)


@pytest.fixture
def hub(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A migrated SQLite file with the test plant, an active EUR supplier and a contract."""
    url = f"sqlite:///{tmp_path / 'hub.db'}"
    monkeypatch.setenv("MAINTAINPRO_DATABASE_URL", url)
    monkeypatch.setenv("COLUMNS", "220")
    upgraded = runner.invoke(app, ["db", "upgrade"])
    assert upgraded.exit_code == 0, upgraded.output
    engine = build_engine(url)
    with build_session_factory(engine)() as db, db.begin():
        plant(db)
        supplier = Supplier(
            code="EUROBEAR",
            legal_name="Eurobear GmbH",
            country="DE",
            currency="EUR",
            status=SupplierStatus.ACTIVE,
            capabilities=["catalog", "ordering"],
        )
        db.add(supplier)
        db.flush()
        db.add(
            Contract(
                number="BLANKET-26",
                supplier_id=supplier.id,
                kind=ContractKind.BLANKET,
                currency="EUR",
                valid_from=dt.date(2026, 1, 1),
                valid_to=dt.date(2026, 12, 31),
                spend_cap=Decimal(1000),
                drawn=Decimal(250),
            )
        )
    engine.dispose()
    return url


def _count(url: str, model: type) -> int:
    engine = build_engine(url)
    try:
        with build_session_factory(engine)() as db:
            return int(db.scalar(select(func.count()).select_from(model)) or 0)
    finally:
        engine.dispose()


def test_suppliers_and_contract_utilisation(hub: str) -> None:
    listed = runner.invoke(app, ["supply", "suppliers"])
    assert listed.exit_code == 0, listed.output
    line = next(x for x in listed.output.splitlines() if "EUROBEAR" in x)
    assert "active" in line
    assert "catalog, ordering" in line
    used = runner.invoke(app, ["supply", "contracts", "--on", "2026-12-01"])
    assert used.exit_code == 0, used.output
    row = next(x for x in used.output.splitlines() if "BLANKET-26" in x)
    assert "25.0 %" in row
    assert "30" in row  # days to 31 December
    bad = runner.invoke(app, ["supply", "contracts", "--on", "yesterday"])
    assert bad.exit_code != 0


def test_ecb_files_are_stored_once(hub: str, tmp_path: Path) -> None:
    rates = tmp_path / "eurofxref.xml"
    rates.write_text(ECB_XML)
    first = runner.invoke(app, ["supply", "import-rates", str(rates)])
    assert first.exit_code == 0, first.output
    assert "4 rate(s) stored, 0 already there" in first.output
    assert "from 2026-11-26 to 2026-11-27" in first.output
    again = runner.invoke(app, ["supply", "import-rates", str(rates)])
    assert "0 rate(s) stored, 4 already there" in again.output
    assert _count(hub, ExchangeRate) == 4
    broken = tmp_path / "broken.xml"
    broken.write_text("<not-ecb/>")
    refused = runner.invoke(app, ["supply", "import-rates", str(broken)])
    assert refused.exit_code != 0
    assert _count(hub, ExchangeRate) == 4


def test_a_catalogue_applies_whole_or_not_at_all(hub: str, tmp_path: Path) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text(GOOD + "SKF-6204,NO-SUCH-PART,1,-3,1,4\n")
    refused = runner.invoke(app, ["supply", "import-catalog", "--supplier", "EUROBEAR", str(bad)])
    assert refused.exit_code != 0
    assert "nothing applied" in refused.output
    assert _count(hub, CatalogItem) == 0
    good = tmp_path / "good.csv"
    good.write_text(GOOD)
    applied = runner.invoke(app, ["supply", "import-catalog", "--supplier", "EUROBEAR", str(good)])
    assert applied.exit_code == 0, applied.output
    assert "1 item(s) created" in applied.output
    assert _count(hub, CatalogItem) == 1
    assert _count(hub, PriceChange) >= 1
    unknown = runner.invoke(app, ["supply", "import-catalog", "--supplier", "NOPE", str(good)])
    assert unknown.exit_code != 0
    assert "no supplier" in unknown.output


def test_reorder_raises_requisitions_and_drafts_orders(hub: str, tmp_path: Path) -> None:
    good = tmp_path / "good.csv"
    good.write_text(GOOD)
    assert runner.invoke(app, ["supply", "import-catalog", "--supplier", "EUROBEAR", str(good)])
    rates = tmp_path / "eurofxref.xml"
    rates.write_text(ECB_XML)
    assert runner.invoke(app, ["supply", "import-rates", str(rates)]).exit_code == 0
    engine = build_engine(hub)
    with build_session_factory(engine)() as db, db.begin():
        stock = db.scalars(select(StockLevel)).first()
        assert stock is not None
        stock.on_hand = Decimal(0)
        stock.reorder_point = Decimal(2)
        stock.max_level = Decimal(10)
    engine.dispose()
    result = runner.invoke(app, ["supply", "reorder"])
    assert result.exit_code == 0, result.output
    assert "1 requisition line(s) raised" in result.output
    assert _count(hub, PurchaseOrder) == 1
    engine = build_engine(hub)
    with build_session_factory(engine)() as db:
        order = db.scalars(select(PurchaseOrder)).one()
        # Up to the maximum of 10 from nothing on hand, at the 10+ price break, in EUR.
        assert (order.currency, order.lines[0].quantity) == ("EUR", Decimal(10))
        assert order.lines[0].unit_price == Decimal("11.00")
    engine.dispose()
