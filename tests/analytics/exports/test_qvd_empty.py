"""An empty dataset still makes a QVD file that Qlik (here pyqvd) loads."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
from pyqvd import QvdTable  # type: ignore[import-untyped]

from maintainpro.analytics.exports.qvd import write_qvd


def _reader(table: pa.Table) -> pa.RecordBatchReader:
    return pa.RecordBatchReader.from_batches(table.schema, table.to_batches())


def test_an_empty_table_is_written_with_its_columns_and_reads_back_empty(tmp_path: Path) -> None:
    empty = pa.table(
        {
            "asset_key": pa.array([], pa.int64()),
            'name <&> "quoted"': pa.array([], pa.string()),
            "predicted_at": pa.array([], pa.timestamp("us")),
        }
    )
    path = tmp_path / "fact_prediction.qvd"
    written = write_qvd(_reader(empty), path, "fact_prediction & more")
    loaded = QvdTable.from_qvd(str(path))
    assert written == 0
    assert loaded.shape == (0, 3)
    assert loaded.columns == ["asset_key", 'name <&> "quoted"', "predicted_at"]


def test_a_table_with_rows_is_unchanged_by_the_empty_case(tmp_path: Path) -> None:
    table = pa.table({"asset_key": pa.array([1, 2], pa.int64()), "name": ["a", "b"]})
    path = tmp_path / "t.qvd"
    assert write_qvd(_reader(table), path, "t") == 2
    loaded = QvdTable.from_qvd(str(path))
    assert loaded.shape == (2, 2)
    assert loaded.get("name") == ["a", "b"]
