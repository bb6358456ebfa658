"""Parquet files: the dataset's Arrow schema as is (decimals, UTC timestamps, dates), zstd."""

from __future__ import annotations

from pathlib import Path
from typing import Final

import pyarrow as pa
import pyarrow.parquet as pq

COMPRESSION: Final = "zstd"


def write_parquet(reader: pa.RecordBatchReader, path: Path, name: str) -> int:
    """Write the batches to one Parquet file; returns the rows written."""
    rows = 0
    metadata = {b"maintainpro.dataset": name.encode()}
    with pq.ParquetWriter(
        path, reader.schema.with_metadata(metadata), compression=COMPRESSION
    ) as writer:
        for batch in reader:
            writer.write_batch(batch)
            rows += batch.num_rows
    return rows
