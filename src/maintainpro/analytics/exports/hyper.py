"""Tableau .hyper extracts through Tableau's Hyper API (the optional ``hyper`` extra).

The rows are staged as a Parquet file that Hyper itself reads with ``external()``: no row-by-row
inserts, and decimals, timestamps and dates keep their exact values. The extract holds one table,
``"Extract".<dataset>``. Hyper runs as a child process started for the write and stopped after
it, with usage data to Tableau switched off and its own log off. The file format is version 2
(readable by every supported Tableau release) unless a decimal needs more than 18 digits, which
only version 3 stores (Tableau 2022.4.1 and later).
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any, Final

import pyarrow as pa

from maintainpro.analytics.exports.parquet import write_parquet

SCHEMA_NAME: Final = "Extract"
# Hyper's file format versions: 2 opens everywhere; 3 adds 128-bit numerics (precision > 18).
BASE_VERSION: Final = "2"
WIDE_NUMERIC_VERSION: Final = "3"
MAX_NARROW_PRECISION: Final = 18


class HyperUnavailable(RuntimeError):
    """Tableau's Hyper API is not installed (``pip install maintainpro[hyper]``)."""


def _api() -> Any:
    try:
        import tableauhyperapi  # type: ignore[import-untyped]
    except ImportError as exc:  # pragma: no cover - the extra is installed in development
        raise HyperUnavailable(
            "Tableau .hyper files need the Hyper API: pip install 'maintainpro[hyper]'"
        ) from exc
    return tableauhyperapi


def database_version(schema: pa.Schema) -> str:
    """The oldest Hyper file format that stores every column of the schema."""
    wide = any(
        pa.types.is_decimal(f.type) and f.type.precision > MAX_NARROW_PRECISION for f in schema
    )
    return WIDE_NUMERIC_VERSION if wide else BASE_VERSION


def sql_type(api: Any, arrow_type: pa.DataType) -> Any:
    """The Hyper type of a warehouse column."""
    sql = api.SqlType
    if pa.types.is_decimal(arrow_type):
        return sql.numeric(arrow_type.precision, arrow_type.scale)
    if pa.types.is_timestamp(arrow_type):
        return sql.timestamp()
    simple = {
        pa.int8(): sql.small_int,
        pa.int16(): sql.small_int,
        pa.int32(): sql.int,
        pa.int64(): sql.big_int,
        pa.float64(): sql.double,
        pa.string(): sql.text,
        pa.bool_(): sql.bool,
        pa.date32(): sql.date,
    }
    try:
        return simple[arrow_type]()
    except KeyError:
        raise TypeError(f"no Hyper type for {arrow_type}") from None


def process_parameters(schema: pa.Schema, log_dir: Path) -> dict[str, str]:
    """Hyper's start-up parameters: no log file, the file format the columns need."""
    return {
        "log_config": "",
        "log_dir": str(log_dir),
        "default_database_version": database_version(schema),
    }


def write_hyper(reader: pa.RecordBatchReader, path: Path, name: str) -> int:
    """Write the batches as a .hyper extract with one table; returns the rows written."""
    api = _api()
    schema = reader.schema
    definition = api.TableDefinition(
        api.TableName(SCHEMA_NAME, name),
        [api.TableDefinition.Column(f.name, sql_type(api, f.type)) for f in schema],
    )
    with tempfile.TemporaryDirectory(prefix=".hyper-", dir=path.parent) as scratch:
        staged = Path(scratch) / "rows.parquet"
        rows = write_parquet(reader, staged, name)
        with (
            api.HyperProcess(
                api.Telemetry.DO_NOT_SEND_USAGE_DATA_TO_TABLEAU,
                parameters=process_parameters(schema, Path(scratch)),
            ) as hyper,
            api.Connection(hyper.endpoint, str(path), api.CreateMode.CREATE_AND_REPLACE) as db,
        ):
            db.catalog.create_schema_if_not_exists(SCHEMA_NAME)
            db.catalog.create_table(definition)
            columns = ", ".join(api.escape_name(f.name) for f in schema)
            source = api.escape_string_literal(str(staged))
            inserted = db.execute_command(
                f"INSERT INTO {definition.table_name} ({columns}) "  # noqa: S608 - escaped names
                f"SELECT {columns} FROM external({source})"
            )
    if inserted != rows:
        raise RuntimeError(f"Hyper stored {inserted} of {rows} rows")
    return rows
