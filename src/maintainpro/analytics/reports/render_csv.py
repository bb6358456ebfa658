"""CSV: one file per table, a header row of column titles, UTF-8 with a byte-order mark.

Numbers are plain (a dot for decimals, no thousands separator), times are local
``YYYY-MM-DD HH:MM:SS`` in the report's zone, nothing is an empty field. Text that a
spreadsheet would run as a formula (starting with = + - @ or a tab) gets a leading apostrophe.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
from decimal import Decimal
from typing import Final
from zoneinfo import ZoneInfo

from maintainpro.analytics.reports.data import Cell, ReportData, Table
from maintainpro.analytics.reports.formatting import RenderedFile, local_naive

CSV_MIME: Final = "text/csv"
_FORMULA_START: Final = re.compile(r"^[=+\-@\t\r]")


def csv_value(value: Cell, zone: ZoneInfo) -> str:
    """One field."""
    if value is None:
        return ""
    if isinstance(value, dt.datetime):
        return f"{local_naive(value, zone):%Y-%m-%d %H:%M:%S}"
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float | Decimal):
        return str(value)
    text = str(value).replace("\x00", "\ufffd")
    return "'" + text if _FORMULA_START.match(text) else text


def table_csv(table: Table, zone: ZoneInfo) -> bytes:
    """A table as CSV bytes."""
    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow([column.title for column in table.columns])
    for row in table.rows:
        writer.writerow([csv_value(value, zone) for value in row])
    return buffer.getvalue().encode("utf-8-sig")


def render_csv(data: ReportData, base: str) -> list[RenderedFile]:
    """One CSV file per table: ``{base}_{table}.csv``."""
    zone = ZoneInfo(data.timezone)
    return [
        RenderedFile(f"{base}_{table.name}.csv", CSV_MIME, table_csv(table, zone))
        for table in data.tables
    ]
