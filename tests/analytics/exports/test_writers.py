"""Each file writer on rows with every warehouse type and the awkward values: nulls, decimals
beyond double precision, microsecond timestamps, 64-bit keys, Unicode, formula-like and
control-character text. Each file is read back by the tool's own library."""

from __future__ import annotations

import csv
import datetime as dt
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import openpyxl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from pyqvd import QvdTable
from tableauhyperapi import Connection, HyperProcess, Telemetry

from maintainpro.analytics.exports.hyper import database_version, write_hyper
from maintainpro.analytics.exports.parquet import write_parquet
from maintainpro.analytics.exports.qvd import serial_number, write_qvd
from maintainpro.analytics.exports.tabular import ExportTooLarge, write_csv, write_xlsx

SCHEMA = pa.schema(
    [
        ("key", pa.int64()),
        ("small", pa.int32()),
        ("money", pa.decimal128(18, 4)),
        ("rate", pa.decimal128(28, 12)),
        ("at", pa.timestamp("us")),
        ("day", pa.date32()),
        ("flag", pa.bool_()),
        ("text", pa.string()),
        ("ratio", pa.float64()),
    ]
)
ROWS: list[dict[str, Any]] = [
    {
        "key": 1,
        "small": -7,
        "money": Decimal("27.0000"),
        "rate": Decimal("1.080000000000"),
        "at": dt.datetime(2026, 1, 5, 10, 12, 0, 123456),
        "day": dt.date(2026, 1, 6),
        "flag": True,
        "text": "Pumpe S\u00fcd \u2013 20 \u00b0C",
        "ratio": 0.5,
    },
    {k: None for k in SCHEMA.names} | {"key": 2},
    {
        "key": 2**40,
        "small": 2**31 - 1,
        "money": Decimal("-12345678901234.5678"),
        "rate": Decimal("1234567890123456.123456789012"),
        "at": dt.datetime(1999, 12, 31, 23, 59, 59),
        "day": dt.date(1970, 1, 1),
        "flag": False,
        "text": '=HYPERLINK("http://x")',
        "ratio": -1.25e-9,
    },
    {
        "key": 4,
        "small": 0,
        "money": Decimal("0.0001"),
        "rate": Decimal("0.000000000001"),
        "at": dt.datetime(2026, 6, 30, 0, 0, 0, 1),
        "day": dt.date(2024, 2, 29),
        "flag": True,
        "text": "",
        "ratio": 0.0,
    },
]


def rows_reader(rows: list[dict[str, Any]] = ROWS) -> pa.RecordBatchReader:
    """The rows as the exporters receive them: a batch reader in the dataset's schema."""
    table = pa.Table.from_pylist(rows, schema=SCHEMA)
    return pa.RecordBatchReader.from_batches(SCHEMA, table.to_batches(max_chunksize=2))


@pytest.fixture
def hyper() -> Iterator[HyperProcess]:
    """A Hyper process for reading extracts back, without usage data sent to Tableau."""
    with HyperProcess(
        Telemetry.DO_NOT_SEND_USAGE_DATA_TO_TABLEAU, parameters={"log_config": ""}
    ) as process:
        yield process


def test_parquet_keeps_every_value_and_type(tmp_path: Path) -> None:
    path = tmp_path / "x.parquet"
    assert write_parquet(rows_reader(), path, "fact_x") == len(ROWS)
    back = pq.read_table(path)
    assert back.schema.equals(SCHEMA)
    assert back.to_pylist() == ROWS
    assert back.schema.metadata[b"maintainpro.dataset"] == b"fact_x"


def test_hyper_extract_opens_with_the_hyper_api_and_holds_the_rows(
    tmp_path: Path, hyper: HyperProcess
) -> None:
    path = tmp_path / "x.hyper"
    assert write_hyper(rows_reader(), path, "fact_x") == len(ROWS)
    with Connection(hyper.endpoint, str(path)) as db:
        tables = db.catalog.get_table_names("Extract")
        assert [t.name.unescaped for t in tables] == ["fact_x"]
        definition = db.catalog.get_table_definition(tables[0])
        assert [c.name.unescaped for c in definition.columns] == SCHEMA.names
        assert str(definition.columns[3].type) == "NUMERIC(28, 12)"
        rows = db.execute_list_query(f"SELECT * FROM {tables[0]} ORDER BY 1")  # noqa: S608
    back = [
        {
            name: value.to_datetime()
            if hasattr(value, "to_datetime")
            else value.to_date()
            if hasattr(value, "to_date")
            else value
            for name, value in zip(SCHEMA.names, row, strict=True)
        }
        for row in rows
    ]
    assert back == sorted(ROWS, key=lambda r: r["key"])


def test_hyper_file_version_is_the_oldest_that_holds_the_columns() -> None:
    assert database_version(SCHEMA) == "3"  # a 28-digit decimal needs 128-bit numerics
    assert database_version(pa.schema([("m", pa.decimal128(18, 4)), ("k", pa.int64())])) == "2"


def test_an_empty_extract_has_the_table_and_no_rows(tmp_path: Path, hyper: HyperProcess) -> None:
    path = tmp_path / "empty.hyper"
    assert write_hyper(rows_reader([]), path, "fact_x") == 0
    with Connection(hyper.endpoint, str(path)) as db:
        assert db.execute_scalar_query('SELECT count(*) FROM "Extract"."fact_x"') == 0


def _qvd_value(value: Any, arrow_type: pa.DataType) -> Any:
    """A pyqvd symbol as the warehouse value it stands for (from its exact text)."""
    if value is None:
        return None
    text = value.display_value
    if pa.types.is_decimal(arrow_type):
        return Decimal(text)
    if pa.types.is_timestamp(arrow_type):
        pattern = "%Y-%m-%d %H:%M:%S.%f" if "." in text else "%Y-%m-%d %H:%M:%S"
        return dt.datetime.strptime(text, pattern)
    if pa.types.is_date(arrow_type):
        return value.date
    if pa.types.is_boolean(arrow_type):
        return {"true": True, "false": False}[text]
    if pa.types.is_integer(arrow_type):
        return int(text)
    if pa.types.is_floating(arrow_type):
        return value.calculation_value
    return text


def test_qvd_reads_back_through_pyqvd_with_the_same_rows(tmp_path: Path) -> None:
    path = tmp_path / "x.qvd"
    assert write_qvd(rows_reader(), path, "fact_x") == len(ROWS)
    table = QvdTable.from_qvd(str(path))
    assert table.columns == SCHEMA.names
    back = [
        {f.name: _qvd_value(v, f.type) for f, v in zip(SCHEMA, row, strict=True)}
        for row in table.data
    ]
    assert back == ROWS
    # The numbers Qlik computes with: the serial date of the timestamps, doubles of decimals.
    first = table.data[0]
    assert first[4].calculation_value == serial_number(ROWS[0]["at"])
    assert abs(first[4].timestamp - ROWS[0]["at"]) < dt.timedelta(milliseconds=1)
    assert first[2].calculation_value == 27.0
    assert first[1].calculation_value == -7


def test_csv_round_trips_and_defuses_formulas(tmp_path: Path) -> None:
    path = tmp_path / "x.csv"
    assert write_csv(rows_reader(), path, "fact_x") == len(ROWS)
    with path.open(newline="", encoding="utf-8") as handle:
        records = list(csv.DictReader(handle))
    assert list(records[0]) == SCHEMA.names
    assert records[0]["money"] == "27.0000"
    assert records[0]["rate"] == "1.080000000000"
    assert records[0]["at"] == "2026-01-05 10:12:00.123456"
    assert records[0]["flag"] == "true"
    assert records[0]["text"] == "Pumpe S\u00fcd \u2013 20 \u00b0C"
    assert records[2]["rate"] == "1234567890123456.123456789012"
    assert records[2]["key"] == str(2**40)
    # A formula is written inert; nulls and empty text stay apart in the raw file.
    assert records[2]["text"] == '\'=HYPERLINK("http://x")'
    raw = path.read_text(encoding="utf-8").splitlines()
    assert raw[2] == "2,,,,,,,,"
    assert raw[4].split(",")[7] == '""'


def test_xlsx_types_cells_and_never_writes_a_formula(tmp_path: Path) -> None:
    path = tmp_path / "x.xlsx"
    assert write_xlsx(rows_reader(), path, "fact_work_order_status_long_name") == len(ROWS)
    workbook = openpyxl.load_workbook(path)
    sheet = workbook.active
    assert sheet.title == "fact_work_order_status_long_nam"  # Excel's 31-character limit
    values = list(sheet.iter_rows(values_only=True))
    assert list(values[0]) == SCHEMA.names
    assert values[1][:4] == (1, -7, 27, 1.08)
    assert values[1][4] == dt.datetime(2026, 1, 5, 10, 12, 0, 123000)  # Excel keeps ms
    assert values[1][5] == dt.datetime(2026, 1, 6)
    assert values[1][6] is True
    assert values[2] == (2, None, None, None, None, None, None, None, None)
    formula_cell = sheet.cell(row=4, column=8)
    assert formula_cell.value == '=HYPERLINK("http://x")'
    assert formula_cell.data_type == "s"
    assert sheet.cell(row=2, column=3).number_format == "0.0000"


def test_xlsx_replaces_characters_xml_cannot_hold(tmp_path: Path) -> None:
    rows = [ROWS[0] | {"text": "bell\x07 and nul\x00"}]
    path = tmp_path / "x.xlsx"
    write_xlsx(rows_reader(rows), path, "fact_x")
    sheet = openpyxl.load_workbook(path).active
    assert sheet.cell(row=2, column=8).value == "bell\ufffd and nul\ufffd"


def test_xlsx_refuses_more_rows_than_a_sheet_holds(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("maintainpro.analytics.exports.tabular.XLSX_MAX_ROWS", 3)
    with pytest.raises(ExportTooLarge, match="do not fit a worksheet"):
        write_xlsx(rows_reader(), tmp_path / "x.xlsx", "fact_x")
