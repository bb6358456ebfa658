"""Qlik .qvd files through pyqvd.

Qlik keeps numbers as doubles and shows each value's text, so every value is written as Qlik
would hold it: integers as integers (beyond 32 bits as a dual of the double and its digits),
decimals as duals whose text is the exact decimal, timestamps as Qlik serial numbers (days since
1899-12-30) with ISO text down to the microsecond, dates as dates, booleans as 1/0 duals
"true"/"false", nulls as nulls. A QVD is written whole, so the rows are held in memory.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any, Final
from xml.etree import ElementTree as ET

import pyarrow as pa
from pyqvd import (  # type: ignore[import-untyped]
    DateValue,
    DoubleValue,
    DualDoubleValue,
    DualIntegerValue,
    IntegerValue,
    QvdTable,
    StringValue,
    TimestampValue,
)
from pyqvd.io.writer import QvdFileWriterOptions  # type: ignore[import-untyped]

QLIK_EPOCH: Final = dt.datetime(1899, 12, 30)
INT32: Final = range(-(2**31), 2**31)
US_PER_DAY: Final = 86_400_000_000
# QVD symbols are NUL-terminated: a NUL inside text would end it early.
NUL_REPLACEMENT: Final = "\ufffd"

Encoder = Callable[[Any], Any]


def _integer(value: int) -> Any:
    if value in INT32:
        return IntegerValue(value)
    return DualDoubleValue(float(value), str(value))


def _decimal(value: Decimal) -> Any:
    return DualDoubleValue(float(value), format(value, "f"))


def serial_number(moment: dt.datetime) -> float:
    """A naive UTC timestamp as a Qlik serial number (fractional days since 1899-12-30)."""
    delta = moment - QLIK_EPOCH
    return (delta.days * US_PER_DAY + delta.seconds * 1_000_000 + delta.microseconds) / US_PER_DAY


def timestamp_text(moment: dt.datetime) -> str:
    """The text Qlik shows for a timestamp: ISO, with microseconds only when there are some."""
    pattern = "%Y-%m-%d %H:%M:%S.%f" if moment.microsecond else "%Y-%m-%d %H:%M:%S"
    return moment.strftime(pattern)


def _timestamp(value: dt.datetime) -> Any:
    # pyqvd's own conversion drops the microseconds; the serial number and text keep them.
    return TimestampValue(serial_number(value), timestamp_text(value))


def _double(value: float) -> Any:
    return DoubleValue(value)


def _date(value: dt.date) -> Any:
    return DateValue.from_date(value)


def _boolean(value: bool) -> Any:
    return DualIntegerValue(1, "true") if value else DualIntegerValue(0, "false")


def _text(value: str) -> Any:
    return StringValue(value.replace("\x00", NUL_REPLACEMENT))


def encoder(arrow_type: pa.DataType) -> Encoder:
    """How the values of a column type become QVD symbols."""
    if pa.types.is_integer(arrow_type):
        return _integer
    if pa.types.is_floating(arrow_type):
        return _double
    if pa.types.is_decimal(arrow_type):
        return _decimal
    if pa.types.is_timestamp(arrow_type):
        return _timestamp
    if pa.types.is_date(arrow_type):
        return _date
    if pa.types.is_boolean(arrow_type):
        return _boolean
    if pa.types.is_string(arrow_type):
        return _text
    raise TypeError(f"no QVD encoding for {arrow_type}")


def qvd_table(rows: pa.Table) -> Any:
    """The pyqvd table holding the rows."""
    columns: list[list[Any]] = []
    for field, column in zip(rows.schema, rows.columns, strict=True):
        encode = encoder(field.type)
        columns.append([None if v is None else encode(v) for v in column.to_pylist()])
    data = [list(row) for row in zip(*columns, strict=True)] if columns else []
    return QvdTable(data, list(rows.column_names))


class ExactTimestampText:
    """A pyqvd timestamp formatter that keeps each value's own text.

    pyqvd re-formats timestamps from their serial number, which rounds the microseconds and
    does not know Qlik's optional ``[...]`` part; the text made here is exact.
    """

    QVD_FORMAT: Final = "YYYY-MM-DD hh:mm:ss[.ffffff]"

    def format(self, value: Any) -> str:
        """The value's own text."""
        return str(value.display_value)

    def get_qvd_format_string(self) -> str:
        """The field's format in the QVD header, in Qlik's notation."""
        return self.QVD_FORMAT


def empty_qvd(columns: list[str], name: str, created: dt.datetime) -> bytes:
    """A QVD file with the columns and no rows (pyqvd cannot write one).

    Every field has no symbols and no bits, the index table is empty; Qlik and pyqvd load it
    as a table with its fields and zero records, so a load script over an empty dataset runs.
    """
    header = ET.Element("QvdTableHeader")
    for tag, text in (
        ("QvBuildNo", "50668"),
        ("CreatorDoc", ""),
        ("CreateUtcTime", created.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S")),
        ("SourceCreateUtcTime", ""),
        ("SourceFileUtcTime", ""),
        ("StaleUtcTime", ""),
        ("TableName", name),
        ("SourceFileSize", "-1"),
    ):
        ET.SubElement(header, tag).text = text
    fields = ET.SubElement(header, "Fields")
    for column in columns:
        field = ET.SubElement(fields, "QvdFieldHeader")
        ET.SubElement(field, "FieldName").text = column
        for tag in ("BitOffset", "BitWidth", "Bias"):
            ET.SubElement(field, tag).text = "0"
        number = ET.SubElement(field, "NumberFormat")
        ET.SubElement(number, "Type").text = "UNKNOWN"
        ET.SubElement(number, "nDec").text = "0"
        ET.SubElement(number, "UseThou").text = "0"
        for tag in ("Fmt", "Dec", "Thou"):
            ET.SubElement(number, tag).text = ""
        for tag in ("NoOfSymbols", "Offset", "Length"):
            ET.SubElement(field, tag).text = "0"
        ET.SubElement(field, "Comment").text = ""
        ET.SubElement(field, "Tags")
    ET.SubElement(header, "Compression")
    for tag in ("RecordByteSize", "NoOfRecords", "Offset", "Length"):
        ET.SubElement(header, tag).text = "0"
    ET.SubElement(header, "Comment").text = ""
    ET.SubElement(header, "Lineage")
    document = bytes(ET.tostring(header, encoding="utf-8", xml_declaration=True))
    # The header ends with CRLF and a NUL before the (here empty) symbol and index tables.
    return document + b"\r\n\x00"


def write_qvd(reader: pa.RecordBatchReader, path: Path, name: str) -> int:
    """Write the batches as one QVD table named for the dataset; returns the rows written."""
    rows = reader.read_all()
    if rows.num_rows == 0:
        path.write_bytes(empty_qvd(list(rows.column_names), name, dt.datetime.now(dt.UTC)))
        return 0
    options = QvdFileWriterOptions()
    options.table_name = name
    options.timestamp_formatter = ExactTimestampText()
    qvd_table(rows).to_qvd(str(path), options)
    return int(rows.num_rows)
