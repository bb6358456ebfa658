"""The file formats an export can be written in: extension, media type, writer."""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import pyarrow as pa

from maintainpro.analytics.exports.hyper import write_hyper
from maintainpro.analytics.exports.parquet import write_parquet
from maintainpro.analytics.exports.qvd import write_qvd
from maintainpro.analytics.exports.tabular import write_csv, write_xlsx

# (rows, destination, dataset name) -> rows written
Writer = Callable[[pa.RecordBatchReader, Path, str], int]


class FileFormat(enum.StrEnum):
    """A single-file export format; the value is the file extension."""

    HYPER = "hyper"
    QVD = "qvd"
    PARQUET = "parquet"
    CSV = "csv"
    XLSX = "xlsx"


@dataclass(frozen=True)
class FormatSpec:
    """How a format is served and written."""

    media_type: str
    write: Writer


SPECS: Final[dict[FileFormat, FormatSpec]] = {
    # Tableau and Qlik register no media type for their files.
    FileFormat.HYPER: FormatSpec("application/octet-stream", write_hyper),
    FileFormat.QVD: FormatSpec("application/octet-stream", write_qvd),
    FileFormat.PARQUET: FormatSpec("application/vnd.apache.parquet", write_parquet),
    FileFormat.CSV: FormatSpec("text/csv; charset=utf-8", write_csv),
    FileFormat.XLSX: FormatSpec(
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", write_xlsx
    ),
}


def parse_format(text: str) -> FileFormat | None:
    """The format named by an extension (case-insensitive), or None."""
    try:
        return FileFormat(text.lower())
    except ValueError:
        return None
