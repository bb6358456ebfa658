"""CSV (RFC 4180, UTF-8) and XLSX files for people who open exports in a spreadsheet.

Text that a spreadsheet would run as a formula (starting with ``=``, ``+``, ``-``, ``@``, tab or
carriage return) is written inert: in CSV it gets a leading apostrophe, as OWASP recommends
against CSV injection; in XLSX every text cell is typed as text, so nothing is changed. XLSX
holds at most 1,048,575 data rows; a larger export is refused rather than cut short.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any, Final

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell
from openpyxl.styles import Font

FORMULA_START: Final = r"^([=+\-@\t\r])"
XLSX_MAX_ROWS: Final = 1_048_576 - 1  # one row is the header
XLSX_MAX_TEXT: Final = 32_767
# Characters XML 1.0 cannot hold; openpyxl refuses them, so they become U+FFFD.
_ILLEGAL_XML: Final = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f]")
REPLACEMENT: Final = "\ufffd"


class ExportTooLarge(ValueError):
    """The rows do not fit the file format."""


# --------------------------------------------------------------------------- CSV


def inert_text(column: pa.Array) -> pa.Array:
    """Text that would start a spreadsheet formula, prefixed with an apostrophe; NUL replaced."""
    guarded = pc.replace_substring_regex(column, pattern=FORMULA_START, replacement=r"'\1")
    return pc.replace_substring(guarded, pattern="\x00", replacement=REPLACEMENT)


def _guarded(batch: pa.RecordBatch) -> pa.RecordBatch:
    columns = [
        inert_text(column) if pa.types.is_string(column.type) else column
        for column in batch.columns
    ]
    return pa.RecordBatch.from_arrays(columns, schema=batch.schema)


def write_csv(reader: pa.RecordBatchReader, path: Path, name: str) -> int:
    """Write the batches as CSV with a header row; returns the rows written.

    Nulls are empty fields, empty text is ``""``, timestamps are ``YYYY-MM-DD hh:mm:ss.ffffff``
    (UTC), decimals keep their scale.
    """
    del name  # a CSV file has no place for the dataset's name
    rows = 0
    with pacsv.CSVWriter(path, reader.schema) as writer:
        for batch in reader:
            writer.write_batch(_guarded(batch))
            rows += batch.num_rows
    return rows


# --------------------------------------------------------------------------- XLSX


def _number_format(arrow_type: pa.DataType) -> str | None:
    if pa.types.is_timestamp(arrow_type):
        return "yyyy-mm-dd hh:mm:ss"
    if pa.types.is_date(arrow_type):
        return "yyyy-mm-dd"
    if pa.types.is_decimal(arrow_type):
        scale = arrow_type.scale
        return "0." + "0" * scale if scale > 0 else "0"
    return None


def _text(value: str) -> str:
    if len(value) > XLSX_MAX_TEXT:
        raise ExportTooLarge(f"a text value is longer than XLSX's {XLSX_MAX_TEXT} characters")
    return _ILLEGAL_XML.sub(REPLACEMENT, value)


def _cell(sheet: Any, value: Any, number_format: str | None) -> Any:
    if value is None:
        return None
    cell = WriteOnlyCell(sheet)
    if isinstance(value, str):
        # Set after the value: openpyxl would otherwise read "=..." as a formula.
        cell.value = _text(value)
        cell.data_type = "s"
        return cell
    if isinstance(value, Decimal):
        # Excel numbers are doubles; the format keeps the scale visible.
        cell.value = float(value)
    elif isinstance(value, dt.datetime | dt.date | bool | int | float):
        cell.value = value
    else:
        cell.value = str(value)
    if number_format is not None:
        cell.number_format = number_format
    return cell


def _rows(reader: pa.RecordBatchReader) -> Iterator[list[Any]]:
    for batch in reader:
        columns = [column.to_pylist() for column in batch.columns]
        yield from (list(row) for row in zip(*columns, strict=True))


def write_xlsx(reader: pa.RecordBatchReader, path: Path, name: str) -> int:
    """Write the batches to one worksheet named for the dataset; returns the rows written."""
    workbook = Workbook(write_only=True)
    sheet = workbook.create_sheet(title=name[:31])
    schema = reader.schema
    formats = [_number_format(f.type) for f in schema]
    bold = Font(bold=True)
    header = []
    for f in schema:
        cell = WriteOnlyCell(sheet, value=f.name)
        cell.font = bold
        header.append(cell)
    sheet.append(header)
    sheet.freeze_panes = "A2"
    rows = 0
    try:
        for row in _rows(reader):
            rows += 1
            if rows > XLSX_MAX_ROWS:
                raise ExportTooLarge(
                    f"more than {XLSX_MAX_ROWS:,} rows do not fit a worksheet: use CSV or Parquet"
                )
            sheet.append([_cell(sheet, v, f) for v, f in zip(row, formats, strict=True)])
    except BaseException:
        # A write-only sheet streams into a temporary file; close it before giving up.
        sheet.close()
        raise
    workbook.save(path)
    return rows
