"""Files exported from a warehouse the ETL built (SQLite and PostgreSQL sources): the same rows
as the warehouse in every format, only the caller's site's rows under a site scope, and a
lineage START then COMPLETE (or FAIL) for every export."""

from __future__ import annotations

import csv
import datetime as dt
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest
from pyqvd import QvdTable
from tableauhyperapi import Connection, HyperProcess, Telemetry

from analytics.exports.conftest import Built
from analytics.exports.exports_world import export_events, warehouse_rows
from maintainpro.analytics.exports.datasets import datasets, get_dataset
from maintainpro.analytics.exports.formats import FileFormat
from maintainpro.analytics.exports.runs import export_file
from maintainpro.analytics.lineage import Lineage


def _key(name: str) -> str:
    return ", ".join(get_dataset(name).table.key)


def _export(
    reader: duckdb.DuckDBPyConnection,
    lineage: Lineage,
    name: str,
    fmt: FileFormat,
    folder: Path,
    scope: frozenset[int] | None = None,
) -> Path:
    path = folder / f"{name}.{fmt.value}"
    export_file(reader, get_dataset(name), fmt, path, lineage, scope=scope)
    return path


HYPER_SETS = ("fact_work_order", "fact_po_line", "fact_alert", "dim_date", "fact_spend")


def test_hyper_extracts_hold_the_warehouse_rows(
    built: Built, reader: duckdb.DuckDBPyConnection, lineage: Lineage, tmp_path: Path
) -> None:
    paths = {n: _export(reader, lineage, n, FileFormat.HYPER, tmp_path) for n in HYPER_SETS}
    with HyperProcess(
        Telemetry.DO_NOT_SEND_USAGE_DATA_TO_TABLEAU, parameters={"log_config": ""}
    ) as hyper:
        for name, path in paths.items():
            expected = warehouse_rows(reader, name, _key(name))
            assert expected, f"{name} is empty in the warehouse: the test would prove nothing"
            with Connection(hyper.endpoint, str(path)) as db:
                rows = db.execute_list_query(
                    f'SELECT * FROM "Extract"."{name}" ORDER BY {_key(name)}'  # noqa: S608
                )
            back = [tuple(_from_hyper(v) for v in row) for row in rows]
            assert back == expected, name


def _from_hyper(value: Any) -> Any:
    if hasattr(value, "to_datetime"):
        return value.to_datetime()
    if hasattr(value, "to_date"):
        return value.to_date()
    return value


def _from_qvd(value: Any, arrow_type: pa.DataType) -> Any:
    if value is None:
        return None
    text = value.display_value
    if pa.types.is_decimal(arrow_type):
        return Decimal(text)
    if pa.types.is_timestamp(arrow_type):
        return dt.datetime.fromisoformat(text)
    if pa.types.is_date(arrow_type):
        return value.date
    if pa.types.is_boolean(arrow_type):
        return {"true": True, "false": False}[text]
    if pa.types.is_integer(arrow_type):
        return int(text)
    if pa.types.is_floating(arrow_type):
        return value.calculation_value
    return text


def test_qvd_files_read_back_through_pyqvd_with_the_warehouse_rows(
    built: Built, reader: duckdb.DuckDBPyConnection, lineage: Lineage, tmp_path: Path
) -> None:
    checked = 0
    for name, dataset in datasets().items():
        path = _export(reader, lineage, name, FileFormat.QVD, tmp_path)
        expected = warehouse_rows(reader, dataset.source, _key(name))
        table = QvdTable.from_qvd(str(path))
        assert table.columns == dataset.table.column_names
        types = [f.type for f in dataset.table.arrow_schema]
        back = [
            tuple(_from_qvd(v, t) for v, t in zip(row, types, strict=True)) for row in table.data
        ]
        assert back == expected, name
        checked += bool(expected)
    assert checked >= 10  # most datasets have rows in the world


def test_parquet_csv_and_xlsx_round_trip(
    built: Built, reader: duckdb.DuckDBPyConnection, lineage: Lineage, tmp_path: Path
) -> None:
    name = "fact_work_order"
    dataset = get_dataset(name)
    expected = warehouse_rows(reader, name, _key(name))
    assert len(expected) == 7  # six in site A, one in site B

    parquet = pq.read_table(_export(reader, lineage, name, FileFormat.PARQUET, tmp_path))
    assert parquet.schema.equals(dataset.table.arrow_schema)
    assert [tuple(r.values()) for r in parquet.to_pylist()] == expected

    csv_path = _export(reader, lineage, name, FileFormat.CSV, tmp_path)
    parsed = pacsv.read_csv(
        csv_path,
        convert_options=pacsv.ConvertOptions(
            column_types=dataset.table.arrow_schema, quoted_strings_can_be_null=False
        ),
    )
    assert [tuple(r.values()) for r in parsed.to_pylist()] == expected

    import openpyxl

    sheet = openpyxl.load_workbook(_export(reader, lineage, name, FileFormat.XLSX, tmp_path)).active
    values = list(sheet.iter_rows(values_only=True))
    assert list(values[0]) == dataset.table.column_names
    assert len(values) == len(expected) + 1
    for got, want in zip(values[1:], expected, strict=True):
        assert got == tuple(_as_excel(v) for v in want)


def _as_excel(value: Any) -> Any:
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, dt.datetime):
        return value.replace(microsecond=value.microsecond // 1000 * 1000)
    return value


SITE_SCOPED = {
    "dim_site": "site_key",
    "dim_asset": "site_key",
    "dim_user": "site_key",
    "fact_work_order": "site_key",
    "fact_schedule_compliance": "site_key",
    "fact_alert": "site_key",
}


def test_a_site_scoped_export_never_holds_another_sites_rows(
    built: Built, reader: duckdb.DuckDBPyConnection, lineage: Lineage, tmp_path: Path
) -> None:
    site_a = frozenset({built.site_a})
    # Everyone's export has site B's rows, so the scoped one has something to leave out.
    everyone = pq.read_table(
        _export(reader, lineage, "fact_work_order", FileFormat.PARQUET, tmp_path)
    )
    assert built.site_b in everyone.column("site_key").to_pylist()

    for name, column in SITE_SCOPED.items():
        folder = tmp_path / "a" / name
        folder.mkdir(parents=True)
        rows = pq.read_table(_export(reader, lineage, name, FileFormat.PARQUET, folder, site_a))
        expected = warehouse_rows(reader, name, _key(name), f"{column} = {built.site_a}")
        assert set(rows.column(column).to_pylist()) <= {built.site_a}, name
        assert [tuple(r.values()) for r in rows.to_pylist()] == expected, name

    # Scoped through a join: status history of site A's work orders only.
    folder = tmp_path / "a" / "status"
    folder.mkdir()
    history = pq.read_table(
        _export(reader, lineage, "fact_work_order_status", FileFormat.PARQUET, folder, site_a)
    )
    keys = set(history.column("work_order_key").to_pylist())
    assert keys
    assert built.ids["wo_b"] not in keys
    assert keys <= {built.ids[f"wo{i}"] for i in range(1, 7)}

    # Shared reference data comes whole; data of no site does not come at all.
    days = pq.read_table(_export(reader, lineage, "dim_date", FileFormat.PARQUET, folder, site_a))
    assert days.num_rows == len(warehouse_rows(reader, "dim_date", "date_key"))
    parts = pq.read_table(_export(reader, lineage, "dim_part", FileFormat.PARQUET, folder, site_a))
    assert parts.num_rows == 0

    # Every format goes through the same filter: site B's asset is in no file for site A.
    for fmt in (FileFormat.CSV, FileFormat.QVD, FileFormat.XLSX):
        path = _export(reader, lineage, "dim_asset", fmt, folder, site_a)
        if fmt is FileFormat.CSV:
            with path.open(newline="", encoding="utf-8") as handle:
                tags = [r["tag"] for r in csv.DictReader(handle)]
        elif fmt is FileFormat.QVD:
            tags = [v.display_value for v in QvdTable.from_qvd(str(path)).get("tag")]
        else:
            import openpyxl

            sheet = openpyxl.load_workbook(path).active
            tags = [r[1] for r in sheet.iter_rows(min_row=2, values_only=True)]
        assert sorted(tags) == ["M-1", "P-1"], fmt


def test_every_export_emits_start_then_complete_with_its_rows(
    built: Built,
    reader: duckdb.DuckDBPyConnection,
    lineage: Lineage,
    lineage_path: Path,
    tmp_path: Path,
) -> None:
    before = len(export_events(lineage_path))
    site_a = frozenset({built.site_a})
    path = _export(reader, lineage, "fact_work_order", FileFormat.CSV, tmp_path, site_a)
    events = export_events(lineage_path)[before:]
    assert [e["eventType"] for e in events] == ["START", "COMPLETE"]
    start, complete = events
    assert start["run"]["runId"] == complete["run"]["runId"]
    assert complete["job"]["name"] == "export.fact_work_order.csv"
    assert complete["job"]["facets"]["jobType"]["jobType"] == "EXPORT"
    (source,) = complete["inputs"]
    assert source["name"] == "main.fact_work_order"
    assert source["namespace"].startswith("duckdb://")
    (output,) = complete["outputs"]
    assert output["namespace"] == "file"
    assert output["name"] == str(path.resolve())
    stats = output["outputFacets"]["outputStatistics"]
    assert stats["size"] == path.stat().st_size
    assert stats["rowCount"] == len(
        warehouse_rows(reader, "fact_work_order", "work_order_key", f"site_key = {built.site_a}")
    )
    lineage_of = output["facets"]["columnLineage"]
    assert lineage_of["fields"]["status"]["inputFields"][0]["field"] == "status"
    assert lineage_of["dataset"][0]["field"] == "site_key"
    assert lineage_of["dataset"][0]["transformations"][0]["subtype"] == "FILTER"


def test_a_failed_export_emits_fail_and_leaves_no_file(
    built: Built,
    reader: duckdb.DuckDBPyConnection,
    lineage: Lineage,
    lineage_path: Path,
    tmp_path: Path,
) -> None:
    before = len(export_events(lineage_path))
    missing = tmp_path / "no-such-folder" / "fact_alert.parquet"
    with pytest.raises(FileNotFoundError):
        export_file(
            reader, get_dataset("fact_alert"), FileFormat.PARQUET, missing, lineage, scope=None
        )
    events = export_events(lineage_path)[before:]
    assert [e["eventType"] for e in events] == ["START", "FAIL"]
    assert events[0]["run"]["runId"] == events[1]["run"]["runId"]
    assert "FileNotFoundError" in events[1]["run"]["facets"]["errorMessage"]["message"]
    assert not missing.parent.exists()


def test_a_failed_rewrite_keeps_the_previous_file(
    built: Built,
    reader: duckdb.DuckDBPyConnection,
    lineage: Lineage,
    lineage_path: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    folder = tmp_path / "out"
    folder.mkdir()
    path = _export(reader, lineage, "fact_alert", FileFormat.CSV, folder)
    first = path.read_bytes()

    def broken(reader: pa.RecordBatchReader, path: Path, name: str) -> int:
        path.write_text("half a file")
        raise RuntimeError("disk full")

    from maintainpro.analytics.exports import formats

    monkeypatch.setitem(formats.SPECS, FileFormat.CSV, formats.FormatSpec("text/csv", broken))
    with pytest.raises(RuntimeError, match="disk full"):
        export_file(reader, get_dataset("fact_alert"), FileFormat.CSV, path, lineage, scope=None)
    assert path.read_bytes() == first
    assert [p.name for p in folder.iterdir()] == [path.name]
    assert export_events(lineage_path)[-1]["eventType"] == "FAIL"
