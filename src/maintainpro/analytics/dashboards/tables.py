"""A semantic answer as a table: its columns in query order, then CSV or XLSX bytes."""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass
from typing import Any, Final

from openpyxl import Workbook
from openpyxl.styles import Font

_FORMULA_START: Final = re.compile(r"^[=+\-@\t\r]")
XLSX_MIME: Final = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
MAX_SHEET_TITLE: Final = 31


@dataclass(frozen=True)
class Column:
    """A key of the answer's rows and its title."""

    key: str
    title: str


def columns(body: dict[str, Any]) -> list[Column]:
    """Time dimensions, then dimensions, then measures, as the annotation lists them."""
    annotation = body.get("annotation", {})
    found: list[Column] = []
    for group in ("timeDimensions", "dimensions", "measures"):
        entries = annotation.get(group, {})
        for key, info in entries.items():
            # Cube lists a bucketed time dimension twice (createdAt and createdAt.month), the
            # same values under both keys: the bucketed one is the column.
            if any(other.startswith(key + ".") for other in entries):
                continue
            found.append(Column(key, str(info.get("title") or key)))
    return found


def _text(value: Any) -> str:
    # A spreadsheet runs text starting with = + - @ as a formula: an apostrophe stops that.
    text = str(value).replace("\x00", "\ufffd")
    return "'" + text if _FORMULA_START.match(text) else text


def _field(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    return _text(value)


def csv_bytes(body: dict[str, Any]) -> bytes:
    """UTF-8 CSV with a byte-order mark (spreadsheets then read it as UTF-8), titles on top."""
    cols = columns(body)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow([_text(c.title) for c in cols])
    for row in body.get("data", []):
        writer.writerow([_field(row.get(c.key)) for c in cols])
    return ("\ufeff" + out.getvalue()).encode("utf-8")


def xlsx_bytes(body: dict[str, Any], title: str) -> bytes:
    """One sheet: a bold header row of titles, numbers as numbers, text as text."""
    book = Workbook()
    sheet = book.active
    assert sheet is not None  # a new workbook always has one sheet
    sheet.title = re.sub(r"[\[\]:*?/\\]", " ", title)[:MAX_SHEET_TITLE] or "Question"
    cols = columns(body)
    sheet.append([_text(c.title) for c in cols])
    for cell in sheet[1]:
        cell.font = Font(bold=True)
    for row in body.get("data", []):
        values: list[Any] = []
        for c in cols:
            value = row.get(c.key)
            if isinstance(value, bool) or value is None or isinstance(value, int | float):
                values.append(value)
            else:
                values.append(_text(value))
        sheet.append(values)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()
