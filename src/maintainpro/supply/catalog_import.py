"""Catalogue import from CSV or XLSX: validate every line first, then apply all or nothing.

One row per price break; rows sharing a supplier part number describe one catalogue item and
must agree on its fields. Columns: supplier_part_number, part_number, unit_price (required);
min_quantity (1), description, unit (EA), pack_size (1), currency (the supplier's), valid_from,
valid_to, lead_time_days (0), landed_cost_pct (0).
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from maintainpro.core.db import utcnow
from maintainpro.core.inventory import Part
from maintainpro.supply.catalogs import CatalogItem, PriceBreak, PriceChange
from maintainpro.supply.money import MoneyError, validate_currency
from maintainpro.supply.suppliers import Supplier

REQUIRED = ("supplier_part_number", "part_number", "unit_price")
OPTIONAL = (
    "min_quantity",
    "description",
    "unit",
    "pack_size",
    "currency",
    "valid_from",
    "valid_to",
    "lead_time_days",
    "landed_cost_pct",
)
ITEM_FIELDS = (
    "part_id",
    "description",
    "unit",
    "pack_size",
    "currency",
    "valid_from",
    "valid_to",
    "lead_time_days",
    "landed_cost_pct",
)
MAX_ROWS = 50_000
MAX_PRICE = Decimal("1e12")


@dataclass(frozen=True)
class LineError:
    """A problem on one line of the file (line 1 is the header)."""

    line: int
    column: str | None
    message: str


@dataclass
class ImportReport:
    """Validation result and, when valid, what the import changed."""

    rows: int = 0
    errors: list[LineError] = field(default_factory=list)
    items_created: int = 0
    items_updated: int = 0
    price_changes: int = 0
    applied: bool = False

    @property
    def ok(self) -> bool:
        """Whether the file passed validation."""
        return not self.errors


@dataclass(frozen=True)
class ParsedRow:
    """A validated row: item fields and one price break."""

    line: int
    supplier_part_number: str
    item: dict[str, Any]
    min_quantity: Decimal
    unit_price: Decimal


class CatalogFileError(ValueError):
    """A file that cannot be read as a table at all."""


def rows_from_csv(data: bytes) -> Iterator[tuple[int, dict[str, str]]]:
    """(line number, row by lower-case header) from UTF-8 CSV bytes."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise CatalogFileError(f"the file is not UTF-8 text: {exc.reason}") from None
    reader = csv.reader(io.StringIO(text))
    try:
        header = [h.strip().lower() for h in next(reader)]
    except StopIteration:
        raise CatalogFileError("the file is empty") from None
    except csv.Error as exc:
        raise CatalogFileError(f"not a valid CSV file: {exc}") from None
    try:
        for row in reader:
            if any(cell.strip() for cell in row):
                yield reader.line_num, _by_header(header, row)
    except csv.Error as exc:
        raise CatalogFileError(f"line {reader.line_num}: not valid CSV: {exc}") from None


def rows_from_xlsx(data: bytes) -> Iterator[tuple[int, dict[str, str]]]:
    """(row number, row by lower-case header) from the first sheet of an XLSX workbook."""
    from openpyxl import load_workbook  # imported on use: only XLSX imports need it

    try:
        book = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except Exception as exc:  # noqa: BLE001 - any unreadable workbook is the caller's file error
        raise CatalogFileError(f"not a readable XLSX workbook: {type(exc).__name__}") from None
    try:
        sheet = book.worksheets[0]
        rows = sheet.iter_rows(values_only=True)
        try:
            header = [_cell_text(h).lower() for h in next(rows)]
        except StopIteration:
            raise CatalogFileError("the workbook's first sheet is empty") from None
        for number, values in enumerate(rows, start=2):
            cells = [_cell_text(v) for v in values]
            if any(cells):
                yield number, _by_header(header, cells)
    finally:
        book.close()


def _cell_text(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, dt.datetime):
        return value.date().isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, float):
        # Spreadsheets store numbers as binary floats; repr gives the shortest exact-looking text.
        return repr(value).removesuffix(".0") if value.is_integer() else repr(value)
    return str(value).strip()


def _by_header(header: Sequence[str], row: Sequence[str]) -> dict[str, str]:
    values = {name: (row[i].strip() if i < len(row) else "") for i, name in enumerate(header)}
    if len(row) > len(header) and any(cell.strip() for cell in row[len(header) :]):
        values["__extra__"] = "1"
    return values


def _decimal(text: str, column: str, errors: list[str], *, minimum: Decimal) -> Decimal | None:
    try:
        value = Decimal(text)
    except InvalidOperation:
        errors.append(f"{column}: {text[:40]!r} is not a number")
        return None
    if not value.is_finite() or value < minimum or value > MAX_PRICE:
        errors.append(f"{column}: must be a number from {minimum} up to {MAX_PRICE}")
        return None
    if -int(value.as_tuple().exponent) > 6:
        errors.append(f"{column}: at most 6 decimal places")
        return None
    return value


def _date(text: str, column: str, errors: list[str]) -> dt.date | None:
    if not text:
        return None
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        errors.append(f"{column}: {text[:40]!r} is not a date (YYYY-MM-DD)")
        return None


def validate_rows(
    rows: Iterable[tuple[int, dict[str, str]]],
    *,
    supplier_currency: str,
    part_ids: dict[str, int],
) -> tuple[list[ParsedRow], list[LineError]]:
    """Check every row (pure: parts are looked up in the mapping given)."""
    parsed: list[ParsedRow] = []
    errors: list[LineError] = []
    seen: dict[tuple[str, Decimal], int] = {}
    items: dict[str, tuple[int, dict[str, Any]]] = {}
    header_checked = False
    for line, row in rows:
        if not header_checked:
            header_checked = True
            missing = [c for c in REQUIRED if c not in row]
            if missing:
                errors.append(LineError(1, None, f"missing column(s): {', '.join(missing)}"))
                return [], errors
        if len(parsed) + len(errors) >= MAX_ROWS:
            errors.append(LineError(line, None, f"more than {MAX_ROWS} rows"))
            break
        problems: list[str] = []
        if "__extra__" in row:
            problems.append("more cells than header columns")
        spn = row.get("supplier_part_number", "")
        if not spn or len(spn) > 64:
            problems.append("supplier_part_number: required, at most 64 characters")
        part_number = row.get("part_number", "")
        part_id = part_ids.get(part_number)
        if part_id is None:
            problems.append(f"part_number: no part {part_number[:64]!r}")
        price = _decimal(row.get("unit_price", ""), "unit_price", problems, minimum=Decimal(0))
        min_qty = _decimal(
            row.get("min_quantity") or "1", "min_quantity", problems, minimum=Decimal("0.001")
        )
        pack = _decimal(
            row.get("pack_size") or "1", "pack_size", problems, minimum=Decimal("0.001")
        )
        pct = _decimal(
            row.get("landed_cost_pct") or "0", "landed_cost_pct", problems, minimum=Decimal(0)
        )
        currency = row.get("currency") or supplier_currency
        try:
            validate_currency(currency)
        except MoneyError as exc:
            problems.append(f"currency: {exc}")
        lead_text = row.get("lead_time_days") or "0"
        lead = int(lead_text) if lead_text.isdigit() and int(lead_text) <= 3650 else None
        if lead is None:
            problems.append("lead_time_days: a whole number of days from 0 to 3650")
        valid_from = _date(row.get("valid_from", ""), "valid_from", problems)
        valid_to = _date(row.get("valid_to", ""), "valid_to", problems)
        if valid_from and valid_to and valid_to < valid_from:
            problems.append("valid_to: before valid_from")
        unit = row.get("unit") or "EA"
        if len(unit) > 16:
            problems.append("unit: at most 16 characters")
        description = row.get("description", "")
        if len(description) > 2000:
            problems.append("description: at most 2000 characters")
        if not problems and min_qty is not None:
            key = (spn, min_qty)
            if key in seen:
                problems.append(f"min_quantity: break {min_qty} already given on line {seen[key]}")
            seen[key] = line
        item = {
            "part_id": part_id,
            "description": description,
            "unit": unit,
            "pack_size": pack,
            "currency": currency,
            "valid_from": valid_from,
            "valid_to": valid_to,
            "lead_time_days": lead,
            "landed_cost_pct": pct,
        }
        if not problems and spn in items:
            first_line, first = items[spn]
            differing = [k for k in ITEM_FIELDS if first[k] != item[k]]
            if differing:
                problems.append(
                    f"{', '.join(differing)}: differs from line {first_line} for the same item"
                )
        if problems:
            errors.extend(
                LineError(line, p.split(":", 1)[0] if ":" in p else None, p) for p in problems
            )
            continue
        items.setdefault(spn, (line, item))
        if min_qty is None or price is None:  # pragma: no cover - each adds a problem above
            continue
        parsed.append(ParsedRow(line, spn, item, min_qty, price))
    if not header_checked:
        errors.append(LineError(1, None, "the file has no data rows"))
    return parsed, errors


def import_catalog(
    session: Session,
    supplier: Supplier,
    data: bytes,
    *,
    file_format: str,
    changed_by_id: int | None = None,
    now: dt.datetime | None = None,
) -> ImportReport:
    """Validate a CSV or XLSX catalogue and, only if every line is valid, apply it.

    Items in the file are created or updated and their price breaks replaced; changed prices
    are recorded with who and when. The caller commits.
    """
    report = ImportReport()
    try:
        rows = list(rows_from_xlsx(data) if file_format == "xlsx" else rows_from_csv(data))
    except CatalogFileError as exc:
        report.errors.append(LineError(1, None, str(exc)))
        return report
    report.rows = len(rows)
    numbers = {row.get("part_number", "") for _, row in rows}
    part_ids = {
        number: part_id
        for number, part_id in session.execute(
            select(Part.number, Part.id).where(Part.number.in_(numbers))
        )
    }
    parsed, errors = validate_rows(rows, supplier_currency=supplier.currency, part_ids=part_ids)
    report.errors = errors
    if errors:
        return report
    _apply(session, supplier, parsed, report, changed_by_id, now or utcnow())
    report.applied = True
    return report


def _apply(
    session: Session,
    supplier: Supplier,
    parsed: list[ParsedRow],
    report: ImportReport,
    changed_by_id: int | None,
    when: dt.datetime,
) -> None:
    by_item: dict[str, list[ParsedRow]] = {}
    for row in parsed:
        by_item.setdefault(row.supplier_part_number, []).append(row)
    existing = {
        item.supplier_part_number: item
        for item in session.scalars(
            select(CatalogItem).where(
                CatalogItem.supplier_id == supplier.id,
                CatalogItem.supplier_part_number.in_(list(by_item)),
            )
        )
    }
    for spn, rows in by_item.items():
        fields = rows[0].item
        item = existing.get(spn)
        old_prices: dict[Decimal, Decimal] = {}
        if item is None:
            item = CatalogItem(supplier_id=supplier.id, supplier_part_number=spn, **fields)
            session.add(item)
            report.items_created += 1
        else:
            old_prices = {b.min_quantity: b.unit_price for b in item.price_breaks}
            for key, value in fields.items():
                setattr(item, key, value)
            item.price_breaks.clear()
            report.items_updated += 1
        session.flush()  # replaced breaks must be gone before their (item, quantity) reappears
        new_prices = {row.min_quantity: row.unit_price for row in rows}
        for minimum, price in sorted(new_prices.items()):
            item.price_breaks.append(PriceBreak(min_quantity=minimum, unit_price=price))
        for minimum in sorted(set(old_prices) | set(new_prices)):
            old, new = old_prices.get(minimum), new_prices.get(minimum)
            if old != new:
                session.add(
                    PriceChange(
                        catalog_item_id=item.id,
                        min_quantity=minimum,
                        currency=item.currency,
                        old_price=old,
                        new_price=new,
                        changed_by_id=changed_by_id,
                        changed_at=when,
                    )
                )
                report.price_changes += 1
    session.flush()
