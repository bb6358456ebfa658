"""XLSX: a summary sheet, then one sheet per table with typed cells.

Each table sheet has a bold header row and frozen panes under it; numbers are numbers
(integers as integers, decimals with their places as the number format), times are Excel dates
in the report's zone, and text is always text: a value starting with "=" is never a formula.
"""

from __future__ import annotations

import datetime as dt
import io
import re
from decimal import Decimal
from typing import Final
from zoneinfo import ZoneInfo

from openpyxl import Workbook
from openpyxl.styles import Font
from openpyxl.utils import get_column_letter
from openpyxl.worksheet.worksheet import Worksheet

from maintainpro.analytics.reports.data import Cell, ColumnKind, ReportData, Table
from maintainpro.analytics.reports.formatting import (
    RenderedFile,
    local_naive,
    period_text,
)

XLSX_MIME: Final = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
MAX_TEXT: Final = 32_767
_ILLEGAL_XML: Final = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f]")
_SHEET_DROP: Final = re.compile(r"[\[\]:*?/\\]")
MAX_WIDTH: Final = 60
BOLD: Final = Font(bold=True)


def number_format(kind: ColumnKind, places: int) -> str | None:
    """The Excel number format of a column kind."""
    if kind is ColumnKind.DATE:
        return "yyyy-mm-dd"
    if kind is ColumnKind.DATETIME:
        return "yyyy-mm-dd hh:mm"
    if kind is ColumnKind.INTEGER:
        return "#,##0"
    if kind in (ColumnKind.DECIMAL, ColumnKind.PERCENT):
        return "#,##0." + "0" * places if places > 0 else "#,##0"
    return None


def _text(value: str) -> str:
    return _ILLEGAL_XML.sub("\ufffd", value)[:MAX_TEXT]


def write_cell(
    sheet: Worksheet,
    row: int,
    column: int,
    value: Cell,
    kind: ColumnKind,
    places: int,
    zone: ZoneInfo,
) -> None:
    """Put one typed value in a cell."""
    if value is None:
        return
    cell = sheet.cell(row=row, column=column)
    if isinstance(value, str):
        cell.value = _text(value)
        # Set after the value: openpyxl would otherwise store "=..." as a formula.
        cell.data_type = "s"
        return
    if isinstance(value, dt.datetime):
        cell.value = local_naive(value, zone)
    elif isinstance(value, Decimal):
        # Excel numbers are doubles; the number format keeps the places visible.
        cell.value = float(value)
    else:
        cell.value = value
    fmt = number_format(kind, places)
    if fmt is not None:
        cell.number_format = fmt
    elif isinstance(value, dt.datetime):
        cell.number_format = "yyyy-mm-dd hh:mm"
    elif isinstance(value, dt.date):
        cell.number_format = "yyyy-mm-dd"


def sheet_title(name: str, used: set[str]) -> str:
    """A sheet name Excel accepts (31 characters, no []:*?/\\), unique in the workbook."""
    base = _SHEET_DROP.sub("_", name)[:31] or "Sheet"
    title, counter = base, 2
    while title.lower() in used:
        suffix = f" ({counter})"
        title = base[: 31 - len(suffix)] + suffix
        counter += 1
    used.add(title.lower())
    return title


def _widths(sheet: Worksheet, table: Table) -> None:
    for index, column in enumerate(table.columns, start=1):
        longest = max([len(column.title)] + [len(str(row[index - 1])) for row in table.rows[:200]])
        sheet.column_dimensions[get_column_letter(index)].width = min(longest + 2, MAX_WIDTH)


def write_table(sheet: Worksheet, table: Table, zone: ZoneInfo) -> None:
    """A table on its own sheet: header, typed rows, frozen header."""
    for index, column in enumerate(table.columns, start=1):
        cell = sheet.cell(row=1, column=index, value=_text(column.title))
        cell.font = BOLD
    for row_index, row in enumerate(table.rows, start=2):
        for index, (column, value) in enumerate(zip(table.columns, row, strict=True), start=1):
            write_cell(sheet, row_index, index, value, column.kind, column.places, zone)
    sheet.freeze_panes = "A2"
    _widths(sheet, table)


def write_summary(sheet: Worksheet, data: ReportData, zone: ZoneInfo) -> None:
    """Title, period, when it was made, the headline figures and the notes."""
    sheet.cell(row=1, column=1, value=_text(data.title)).font = Font(bold=True, size=14)
    sheet.cell(row=2, column=1, value="Period")
    sheet.cell(row=2, column=2, value=period_text(data))
    sheet.cell(row=3, column=1, value="Generated")
    write_cell(sheet, 3, 2, data.generated_at, ColumnKind.DATETIME, 0, zone)
    row = 4
    if data.sites:
        sheet.cell(row=row, column=1, value="Sites")
        sheet.cell(row=row, column=2, value=_text(", ".join(data.sites))).data_type = "s"
        row += 1
    row += 1
    for figure in data.summary:
        label = sheet.cell(row=row, column=1, value=_text(figure.label))
        label.font = BOLD
        write_cell(sheet, row, 2, figure.value, figure.kind, figure.places, zone)
        if figure.unit:
            sheet.cell(row=row, column=3, value=_text(figure.unit)).data_type = "s"
        row += 1
    for note in data.notes:
        row += 1
        sheet.cell(row=row, column=1, value=_text(note)).data_type = "s"
    sheet.column_dimensions["A"].width = 32
    sheet.column_dimensions["B"].width = 40


def render_xlsx(data: ReportData, base: str) -> RenderedFile:
    """The workbook as one file: ``{base}.xlsx``."""
    zone = ZoneInfo(data.timezone)
    workbook = Workbook()
    summary = workbook.active
    assert summary is not None
    used: set[str] = set()
    summary.title = sheet_title("Summary", used)
    write_summary(summary, data, zone)
    for table in data.tables:
        write_table(workbook.create_sheet(sheet_title(table.title, used)), table, zone)
    buffer = io.BytesIO()
    workbook.save(buffer)
    return RenderedFile(f"{base}.xlsx", XLSX_MIME, buffer.getvalue())
