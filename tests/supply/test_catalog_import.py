"""Catalogue import: valid files apply in full, invalid ones report lines and apply nothing."""

from __future__ import annotations

import io
from decimal import Decimal

from openpyxl import Workbook
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from maintainpro.supply.catalog_import import import_catalog
from maintainpro.supply.catalogs import CatalogItem, PriceChange
from supply.procurement_world import World

GOOD = (
    "supplier_part_number,part_number,min_quantity,unit_price,pack_size,lead_time_days\n"
    "SKF-6204,BRG-1,1,12.50,2,4\n"
    "SKF-6204,BRG-1,10,11.00,2,4\n"
    "SKF-6204,BRG-1,50,9.75,2,4\n"
)


def _count(db: Session, model: type) -> int:
    return db.scalar(select(func.count()).select_from(model)) or 0


def test_a_good_csv_creates_items_with_price_breaks(world: World) -> None:
    supplier = world.supplier("SKF", "EUR")
    report = import_catalog(
        world.db, supplier, GOOD.encode(), file_format="csv", changed_by_id=None
    )
    assert report.ok
    assert report.applied
    assert (report.rows, report.items_created, report.price_changes) == (3, 1, 3)
    item = world.db.scalars(select(CatalogItem)).one()
    assert item.currency == "EUR"  # the supplier's when the file names none
    assert item.pack_size == 2
    assert item.lead_time_days == 4
    assert [(b.min_quantity, b.unit_price) for b in item.price_breaks] == [
        (Decimal(1), Decimal("12.5")),
        (Decimal(10), Decimal(11)),
        (Decimal(50), Decimal("9.75")),
    ]


def test_reimport_replaces_breaks_and_records_price_changes(world: World) -> None:
    supplier = world.supplier("SKF", "EUR")
    import_catalog(world.db, supplier, GOOD.encode(), file_format="csv")
    changed = GOOD.replace("10,11.00", "10,10.50").replace("SKF-6204,BRG-1,50,9.75,2,4\n", "")
    report = import_catalog(world.db, supplier, changed.encode(), file_format="csv")
    assert report.ok
    assert report.items_updated == 1
    changes = world.db.scalars(select(PriceChange).order_by(PriceChange.id)).all()[3:]
    assert [(c.min_quantity, c.old_price, c.new_price) for c in changes] == [
        (Decimal(10), Decimal(11), Decimal("10.5")),
        (Decimal(50), Decimal("9.75"), None),
    ]
    assert changes[0].changed_at.tzinfo is not None


def test_a_bad_csv_names_every_bad_line_and_applies_nothing(world: World) -> None:
    supplier = world.supplier("SKF", "EUR")
    bad = (
        "supplier_part_number,part_number,min_quantity,unit_price,currency,lead_time_days\n"
        "OK-1,BRG-1,1,12.50,EUR,3\n"
        "X-2,NOPE,1,3.00,EUR,3\n"
        "X-3,BRG-1,1,-4,EUR,3\n"
        "X-4,BRG-1,1,4.00,EUX,3\n"
        "OK-1,BRG-1,1,13.00,EUR,3\n"
        "X-5,BRG-1,1,NaN,EUR,soon\n"
    )
    report = import_catalog(world.db, supplier, bad.encode(), file_format="csv")
    assert not report.ok
    assert not report.applied
    lines = sorted({e.line for e in report.errors})
    assert lines == [3, 4, 5, 6, 7]
    by_line = {e.line: e for e in report.errors}
    assert by_line[3].column == "part_number"
    assert by_line[5].column == "currency"
    assert "line 2" in by_line[6].message  # the duplicate break names the first line
    assert _count(world.db, CatalogItem) == 0
    assert _count(world.db, PriceChange) == 0


def test_missing_columns_and_unreadable_files_are_reported(world: World) -> None:
    supplier = world.supplier("SKF", "EUR")
    report = import_catalog(world.db, supplier, b"part_number\nBRG-1\n", file_format="csv")
    assert report.errors[0].line == 1
    assert "unit_price" in report.errors[0].message
    report = import_catalog(world.db, supplier, b"\xff\xfe\x00", file_format="csv")
    assert not report.ok
    report = import_catalog(world.db, supplier, b"not a workbook", file_format="xlsx")
    assert not report.ok


def test_an_xlsx_workbook_imports_like_csv(world: World) -> None:
    supplier = world.supplier("SKF", "EUR")
    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.append(["Supplier_Part_Number", "Part_Number", "Min_Quantity", "Unit_Price", "Valid_To"])
    sheet.append(["SKF-6204", "BRG-1", 1, 12.5, "2027-12-31"])
    sheet.append(["SKF-6204", "BRG-1", 25, 10, "2027-12-31"])
    buffer = io.BytesIO()
    book.save(buffer)
    report = import_catalog(world.db, supplier, buffer.getvalue(), file_format="xlsx")
    assert report.ok, report.errors
    item = world.db.scalars(select(CatalogItem)).one()
    assert [b.unit_price for b in item.price_breaks] == [Decimal("12.5"), Decimal(10)]
    assert str(item.valid_to) == "2027-12-31"


def test_an_xlsx_with_a_bad_row_reports_its_row_number(world: World) -> None:
    supplier = world.supplier("SKF", "EUR")
    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.append(["supplier_part_number", "part_number", "unit_price"])
    sheet.append(["A", "BRG-1", 1])
    sheet.append(["B", "BRG-1", "cheap"])
    buffer = io.BytesIO()
    book.save(buffer)
    report = import_catalog(world.db, supplier, buffer.getvalue(), file_format="xlsx")
    assert [(e.line, e.column) for e in report.errors] == [(3, "unit_price")]
    assert _count(world.db, CatalogItem) == 0
