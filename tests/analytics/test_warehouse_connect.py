"""Opening the warehouse while this process already holds it another way."""

from __future__ import annotations

from pathlib import Path

import pytest

from maintainpro.analytics.warehouse import DuckDbWarehouse, WarehouseError, connect


def test_a_reader_during_a_write_in_the_same_process_gets_a_warehouse_error(
    tmp_path: Path,
) -> None:
    path = tmp_path / "warehouse.duckdb"
    with DuckDbWarehouse(path) as writer:
        writer.ensure_schema()
        # DuckDB refuses a read-only connection to a file this process has open for writing;
        # callers (ML sources, feeds) handle WarehouseError ("in use"), not DuckDB's own error.
        with pytest.raises(WarehouseError, match="in use"):
            connect(path, read_only=True)
    reader = connect(path, read_only=True)
    try:
        assert reader.execute("SELECT count(*) FROM etl_runs").fetchone() == (0,)
    finally:
        reader.close()
