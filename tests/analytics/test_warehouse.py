"""The DuckDB store: no extension can be installed or loaded, where the file lives, readers."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import duckdb
import pyarrow as pa
import pytest

from maintainpro.analytics import schema
from maintainpro.analytics.warehouse import (
    DuckDbWarehouse,
    WarehouseError,
    connect,
    open_read_only,
    warehouse_file,
)
from maintainpro.config import Settings


def test_extensions_cannot_be_installed_loaded_or_switched_back_on(tmp_path: Path) -> None:
    connection = connect(tmp_path / "w.duckdb")
    settings = connection.execute(
        "SELECT current_setting('autoinstall_known_extensions'), "
        "current_setting('autoload_known_extensions'), current_setting('TimeZone')"
    ).fetchone()
    assert settings == (False, False, "UTC")
    for statement in ("INSTALL postgres_scanner", "LOAD sqlite_scanner"):
        with pytest.raises(duckdb.PermissionException):
            connection.execute(statement)
    with pytest.raises(duckdb.InvalidInputException, match="locked"):
        connection.execute("SET autoload_known_extensions = true")
    with pytest.raises(duckdb.PermissionException):
        connection.execute("SELECT * FROM read_csv('/etc/hostname')")
    connection.close()


def test_loads_are_cast_to_the_schema_and_deleted_by_natural_key(tmp_path: Path) -> None:
    with DuckDbWarehouse(tmp_path / "w.duckdb") as target:
        target.ensure_schema()
        table = schema.DIM_SITE
        target.insert(
            table,
            pa.table(
                {
                    "site_key": [1, 2],
                    "code": ["A", "B"],
                    "name": ["a", "b"],
                    "timezone": ["UTC", "UTC"],
                }
            ),
        )
        with target.transaction():
            target.delete_keys(table, pa.table({"site_key": pa.array([2], pa.int32())}))
        rows = target.connection.execute("SELECT site_key, code FROM dim_site").fetchall()
        assert rows == [(1, "A")]

        def empty_then_fail() -> None:
            with target.transaction():
                target.delete_all(table)
                raise RuntimeError("boom")

        with pytest.raises(RuntimeError, match="boom"):
            empty_then_fail()
        assert target.count(table) == 1
        with pytest.raises(WarehouseError):
            target.delete_since(table, "no_such_column", dt.datetime.now(dt.UTC))


def test_the_warehouse_file_sits_beside_the_sqlite_database_unless_configured(
    tmp_path: Path,
) -> None:
    beside = Settings(database_url=f"sqlite:///{tmp_path}/data/hub.db")
    assert warehouse_file(beside) == tmp_path / "data" / "warehouse.duckdb"
    postgres = Settings(database_url="postgresql+psycopg://u:p@db/cmms")
    assert warehouse_file(postgres) == Path("data") / "warehouse.duckdb"
    chosen = Settings(database_url="sqlite:///x.db", warehouse_path=tmp_path / "w.duckdb")
    assert warehouse_file(chosen) == tmp_path / "w.duckdb"


def test_readers_open_it_read_only(tmp_path: Path) -> None:
    settings = Settings(warehouse_path=tmp_path / "w.duckdb")
    with pytest.raises(WarehouseError, match="warehouse build"):
        open_read_only(settings)
    with DuckDbWarehouse(tmp_path / "w.duckdb") as target:
        target.ensure_schema()
    reader = open_read_only(settings)
    assert reader.execute("SELECT count(*) FROM fact_work_order").fetchone() == (0,)
    with pytest.raises(duckdb.InvalidInputException, match="read-only"):
        reader.execute("DELETE FROM fact_work_order")
    reader.close()
