"""The data lake: Parquet in Hive-style day partitions (the default) or Delta Lake tables.

Layout under the lake root::

    parquet/<dataset>/dt=YYYY-MM-DD/part-0.parquet   facts, one folder per UTC day
    parquet/<dataset>/part-0.parquet                 dimensions, whole
    delta/<dataset>/                                 Delta tables (facts partitioned by dt)

A write covers either everything (full) or the days from ``since`` on (incremental): every day it
covers is replaced whole by the rows the warehouse holds for it now, so re-running a window never
duplicates a row and a day whose rows have gone is emptied. Parquet partitions are staged beside
the dataset and swapped in folder by folder, so a reader never sees half a day. Delta writes are
one transaction each (``replaceWhere`` on the covered days) and every write is a version that
``read_delta`` can travel back to.
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import pyarrow as pa
import pyarrow.dataset as pads
from deltalake import DeltaTable, write_deltalake

from maintainpro.analytics.exports.datasets import DAY_COLUMN, Dataset
from maintainpro.analytics.exports.parquet import COMPRESSION, write_parquet

PARQUET_DIR: Final = "parquet"
DELTA_DIR: Final = "delta"
PART_FILE: Final = "part-0.parquet"
NULL_DAY: Final = "__HIVE_DEFAULT_PARTITION__"
PARTITION_PREFIX: Final = f"{DAY_COLUMN}="


class LakeError(RuntimeError):
    """A lake write was asked for something it cannot do."""


@dataclass(frozen=True)
class LakeWrite:
    """What a lake write did."""

    rows: int
    days: tuple[str, ...] = ()
    removed_days: tuple[str, ...] = ()
    version: int | None = None


def day_partitioning() -> pads.Partitioning:
    """Hive-style partitioning on the day column (``dt=YYYY-MM-DD``)."""
    return pads.partitioning(pa.schema([(DAY_COLUMN, pa.date32())]), flavor="hive")


def parquet_root(lake: Path, dataset: Dataset) -> Path:
    """Where a dataset's Parquet files live in the lake."""
    return lake / PARQUET_DIR / dataset.name


def delta_root(lake: Path, dataset: Dataset) -> Path:
    """Where a dataset's Delta table lives in the lake."""
    return lake / DELTA_DIR / dataset.name


def _check_window(dataset: Dataset, since: dt.date | None) -> None:
    if since is not None and not dataset.partitioned:
        raise LakeError(f"{dataset.name} has no days: it is written whole")


def _check_rows(dataset: Dataset, reader: pa.RecordBatchReader) -> None:
    if dataset.partitioned and DAY_COLUMN not in reader.schema.names:
        raise LakeError(f"the rows of {dataset.name} lack their day column")


# --------------------------------------------------------------------------- Parquet


def _covered(day: str, since: dt.date | None) -> bool:
    if since is None:
        return True
    if day == NULL_DAY:
        return False  # rows without a day only come with a full write
    return dt.date.fromisoformat(day) >= since


def _swap(staged: Path, target: Path) -> None:
    """Put a staged folder or file in the target's place; the old one goes only after."""
    old = target.with_name(f".old-{uuid.uuid4().hex[:8]}-{target.name}")
    if target.exists():
        os.replace(target, old)
    os.replace(staged, target)
    if old.is_dir():
        shutil.rmtree(old)
    elif old.exists():
        old.unlink()


def write_partitioned(
    reader: pa.RecordBatchReader, dataset: Dataset, lake: Path, *, since: dt.date | None = None
) -> LakeWrite:
    """Write a dataset's rows as Hive-partitioned Parquet; ``since`` limits the days replaced.

    Facts need the day column in the rows (``read_batches(..., with_day=True)``).
    """
    _check_window(dataset, since)
    _check_rows(dataset, reader)
    root = parquet_root(lake, dataset)
    root.mkdir(parents=True, exist_ok=True)
    staging = root.parent / f".staging-{dataset.name}-{uuid.uuid4().hex[:12]}"
    staging.mkdir()
    try:
        if not dataset.partitioned:
            rows = write_parquet(reader, staging / PART_FILE, dataset.name)
            _swap(staging / PART_FILE, root / PART_FILE)
            return LakeWrite(rows=rows)
        counted = _Counted(reader)
        pads.write_dataset(
            counted.reader(),
            staging,
            format="parquet",
            partitioning=day_partitioning(),
            basename_template="part-{i}.parquet",
            existing_data_behavior="error",
            file_options=pads.ParquetFileFormat().make_write_options(compression=COMPRESSION),
        )
        written = sorted(p.name.removeprefix(PARTITION_PREFIX) for p in staging.iterdir())
        for day in written:
            _swap(staging / f"{PARTITION_PREFIX}{day}", root / f"{PARTITION_PREFIX}{day}")
        present = [
            p.name.removeprefix(PARTITION_PREFIX)
            for p in root.iterdir()
            if p.is_dir() and p.name.startswith(PARTITION_PREFIX)
        ]
        gone = sorted(d for d in present if d not in written and _covered(d, since))
        for day in gone:
            shutil.rmtree(root / f"{PARTITION_PREFIX}{day}")
        return LakeWrite(rows=counted.rows, days=tuple(written), removed_days=tuple(gone))
    finally:
        shutil.rmtree(staging, ignore_errors=True)


class _Counted:
    """Passes batches through, counting the rows."""

    def __init__(self, source: pa.RecordBatchReader) -> None:
        self.source = source
        self.rows = 0

    def reader(self) -> pa.RecordBatchReader:
        def batches() -> Iterator[pa.RecordBatch]:
            for batch in self.source:
                self.rows += batch.num_rows
                yield batch

        return pa.RecordBatchReader.from_batches(self.source.schema, batches())


def read_partitioned(lake: Path, dataset: Dataset) -> pa.Table:
    """Everything the lake holds for a dataset (facts with their ``dt`` column)."""
    root = parquet_root(lake, dataset)
    if not dataset.partitioned:
        return pads.dataset(root / PART_FILE, format="parquet").to_table()
    return pads.dataset(root, format="parquet", partitioning=day_partitioning()).to_table()


# --------------------------------------------------------------------------- Delta Lake


def write_delta(
    reader: pa.RecordBatchReader, dataset: Dataset, lake: Path, *, since: dt.date | None = None
) -> LakeWrite:
    """Write a dataset's rows to its Delta table as one new version; returns the version."""
    _check_window(dataset, since)
    _check_rows(dataset, reader)
    root = delta_root(lake, dataset)
    root.mkdir(parents=True, exist_ok=True)
    counted = _Counted(reader)
    exists = DeltaTable.is_deltatable(str(root))
    partition_by = [DAY_COLUMN] if dataset.partitioned else None
    if since is not None and exists:
        # replaceWhere: the covered days are swapped for the new rows in one commit. The date
        # comes from a date object, so the predicate holds no outside text.
        write_deltalake(
            str(root),
            counted.reader(),
            mode="overwrite",
            partition_by=partition_by,
            predicate=f"{DAY_COLUMN} >= '{since.isoformat()}'",
        )
    else:
        write_deltalake(str(root), counted.reader(), mode="overwrite", partition_by=partition_by)
    return LakeWrite(rows=counted.rows, version=DeltaTable(str(root)).version())


def read_delta(
    lake: Path,
    dataset: Dataset,
    *,
    version: int | None = None,
    as_of: dt.datetime | None = None,
) -> pa.Table:
    """A dataset's Delta table now, at a version, or as it was at a moment (time travel)."""
    table = DeltaTable(str(delta_root(lake, dataset)))
    if version is not None and as_of is not None:
        raise LakeError("give a version or a moment, not both")
    if version is not None:
        table.load_as_version(version)
    elif as_of is not None:
        table.load_as_version(as_of)
    return table.to_pyarrow_table()


def delta_history(lake: Path, dataset: Dataset) -> list[dict[str, object]]:
    """The Delta table's commits, newest first (version, timestamp, operation, metrics)."""
    return list(DeltaTable(str(delta_root(lake, dataset))).history())
