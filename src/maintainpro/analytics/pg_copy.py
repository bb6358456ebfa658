"""Arrow tables as PostgreSQL COPY data: binary where every column allows it, CSV otherwise.

Both encoders work column by column in Arrow and NumPy, never row by row in Python, so a batch
of a few hundred thousand rows is encoded in milliseconds. The binary format (PostgreSQL's
"COPY BINARY": a header, then per row a field count and, per field, a length and big-endian
bytes) also spares the server parsing text, which is most of the cost of a CSV COPY of floats.
``numeric`` has no simple binary form, so tables with DECIMAL columns go as CSV.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from typing import Final, Literal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv

Format = Literal["binary", "csv"]

# Rows per chunk handed to COPY: big enough to keep the server busy, small enough that one
# chunk stays a few tens of MB.
COPY_BATCH: Final = 100_000
BINARY_HEADER: Final = b"PGCOPY\n\xff\r\n\x00" + b"\x00\x00\x00\x00" + b"\x00\x00\x00\x00"
BINARY_TRAILER: Final = b"\xff\xff"
# PostgreSQL counts dates and timestamps from 2000-01-01, Arrow from 1970-01-01.
PG_EPOCH_DAYS: Final = 10_957
PG_EPOCH_MICROS: Final = PG_EPOCH_DAYS * 86_400 * 1_000_000
_CSV_OPTIONS: Final = pa_csv.WriteOptions(include_header=False, batch_size=COPY_BATCH)


def copy_format(arrow_schema: pa.Schema) -> Format:
    """Binary when every column has a binary encoding here, else CSV."""
    return "binary" if all(_binary_ok(f.type) for f in arrow_schema) else "csv"


def copy_options(fmt: Format) -> str:
    """The WITH (...) clause of the COPY statement for a format."""
    # In CSV, Arrow writes a null as an empty unquoted field and every string quoted, so an
    # empty string ("") and a null stay apart.
    return "(FORMAT binary)" if fmt == "binary" else "(FORMAT csv, NULL '')"


def _binary_ok(arrow_type: pa.DataType) -> bool:
    if pa.types.is_timestamp(arrow_type):
        return arrow_type.unit == "us" and arrow_type.tz is None
    return (
        pa.types.is_integer(arrow_type)
        and arrow_type.bit_width in (8, 16, 32, 64)
        and pa.types.is_signed_integer(arrow_type)
    ) or arrow_type in (pa.float64(), pa.bool_(), pa.date32(), pa.string())


def chunks(rows: pa.Table, fmt: Format) -> Iterator[bytes]:
    """The rows as COPY data in ``fmt``, a chunk of at most COPY_BATCH rows at a time."""
    batches = rows.to_batches(max_chunksize=COPY_BATCH)
    if fmt == "csv":
        for batch in batches:
            buffer = io.BytesIO()
            pa_csv.write_csv(batch, buffer, _CSV_OPTIONS)
            yield buffer.getvalue()
        return
    yield BINARY_HEADER
    for batch in batches:
        if batch.num_rows:
            yield binary_rows(batch)
    yield BINARY_TRAILER


def _fixed(column: pa.Array) -> tuple[np.ndarray, int]:
    """(big-endian values with nulls as zero, bytes per value) of a fixed-width column."""
    kind = column.type
    if pa.types.is_timestamp(kind):
        values = pc.fill_null(column.cast(pa.int64()), 0).to_numpy() - PG_EPOCH_MICROS
        return values.astype(">i8"), 8
    if pa.types.is_date32(kind):
        values = pc.fill_null(column.cast(pa.int32()), 0).to_numpy() - PG_EPOCH_DAYS
        return values.astype(">i4"), 4
    if pa.types.is_boolean(kind):
        return pc.fill_null(column, False).to_numpy(zero_copy_only=False).astype(np.uint8), 1
    if pa.types.is_floating(kind):
        return pc.fill_null(column, 0.0).to_numpy().astype(">f8"), 8
    # Integers: PostgreSQL has no one-byte integer; int8 goes to smallint.
    width = max(2, kind.bit_width // 8)
    return pc.fill_null(column, 0).to_numpy().astype(f">i{width}"), width


class _Field:
    """One column of a batch, ready to be cut into the fields of any subset of its rows."""

    def __init__(self, column: pa.Array) -> None:
        """Encode the column once: sizes per row (-1 for null) and the bytes to cut from."""
        valid = pc.is_valid(column).to_numpy(zero_copy_only=False)
        self.strings = pa.types.is_string(column.type)
        if self.strings:
            dense = pc.fill_null(column, "")
            n = len(dense)
            self.offsets = np.frombuffer(dense.buffers()[1], dtype=np.int32)[
                dense.offset : dense.offset + n + 1
            ].astype(np.int64)
            data = dense.buffers()[2]
            self.values = (
                np.frombuffer(data, dtype=np.uint8) if data is not None else np.zeros(0, np.uint8)
            )
            lengths = np.diff(self.offsets)
        else:
            self.values, width = _fixed(column)
            lengths = np.full(len(column), width, dtype=np.int64)
        self.sizes = np.where(valid, lengths, -1)
        # Columns whose field size is the same on every row do not split rows into groups.
        self.varies = bool(self.sizes.size) and bool((self.sizes != self.sizes[0]).any())

    def cut(self, rows: np.ndarray, size: int) -> list[np.ndarray]:
        """The fields (length word, then data) of ``rows``, all of ``size`` bytes (-1: null)."""
        count = rows.size
        length = np.frombuffer(int(size).to_bytes(4, "big", signed=True), dtype=np.uint8)
        parts = [np.broadcast_to(length, (count, 4))]
        if size > 0:
            if self.strings:
                parts.append(self.values[self.offsets[rows][:, None] + np.arange(size)])
            else:
                parts.append(self.values[rows].view(np.uint8).reshape(count, size))
        return parts


def binary_rows(batch: pa.RecordBatch) -> bytes:
    """The rows of a batch in PostgreSQL's binary COPY format (without header and trailer).

    Rows are grouped by the sizes of their fields (which strings are how long, which values
    are null); within a group every row has the same layout, so the group is assembled as one
    byte matrix, column block by column block. COPY does not care about row order.
    """
    fields = [_Field(c) for c in batch.columns]
    count = np.frombuffer(len(fields).to_bytes(2, "big"), dtype=np.uint8)
    varying = [f.sizes for f in fields if f.varies]
    if varying:
        _, group = np.unique(np.stack(varying, axis=1), axis=0, return_inverse=True)
        group = group.reshape(-1)
    else:
        group = np.zeros(batch.num_rows, dtype=np.int64)
    order = np.argsort(group, kind="stable")
    bounds = np.cumsum(np.bincount(group))[:-1]
    out = []
    for rows in np.split(order, bounds):
        first = int(rows[0])
        parts = [np.broadcast_to(count, (rows.size, 2))]
        for field in fields:
            parts.extend(field.cut(rows, int(field.sizes[first])))
        out.append(np.hstack(parts).tobytes())
    return b"".join(out)
