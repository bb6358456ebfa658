"""Typed X12 exceptions and envelope problem reports."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


@dataclass(frozen=True, slots=True)
class SegmentPosition:
    """Where a segment starts in the parsed input."""

    index: int
    offset: int
    line: int

    def __str__(self) -> str:
        """Render as a human readable location."""
        return f"segment {self.index} (line {self.line}, offset {self.offset})"


class X12Error(ValueError):
    """Base class of every error raised by the X12 codec."""

    def __init__(self, message: str, position: SegmentPosition | None = None) -> None:
        """Store the message and, when known, where in the input it happened."""
        self.message = message
        self.position = position
        super().__init__(f"{message} at {position}" if position is not None else message)


class X12SyntaxError(X12Error):
    """The input cannot be read as an X12 interchange at all."""


class X12SeparatorError(X12SyntaxError):
    """The ISA segment declares separators that cannot work."""


class X12SerializationError(X12Error):
    """A document cannot be written as X12 (bad value, separator collision, range)."""


class X12MappingError(X12Error):
    """A transaction set cannot be mapped to its typed document."""


class UnsupportedTransactionError(X12MappingError):
    """No mapper exists for this transaction set identifier."""


class ProblemCode(StrEnum):
    """Kinds of envelope and syntax problems reported instead of raised."""

    MISSING_SEGMENT_TERMINATOR = "missing_segment_terminator"
    INVALID_SEGMENT_ID = "invalid_segment_id"
    ELEMENT_TOO_LONG = "element_too_long"
    INVALID_ISA = "invalid_isa"
    MALFORMED_ENVELOPE_SEGMENT = "malformed_envelope_segment"
    UNEXPECTED_SEGMENT = "unexpected_segment"
    MISSING_GROUP_TRAILER = "missing_group_trailer"
    MISSING_SET_TRAILER = "missing_set_trailer"
    UNEXPECTED_TRAILER = "unexpected_trailer"
    DATA_AFTER_INTERCHANGE = "data_after_interchange"
    INTERCHANGE_CONTROL_MISMATCH = "interchange_control_mismatch"
    GROUP_CONTROL_MISMATCH = "group_control_mismatch"
    SET_CONTROL_MISMATCH = "set_control_mismatch"
    GROUP_COUNT_MISMATCH = "group_count_mismatch"
    SET_COUNT_MISMATCH = "set_count_mismatch"
    SEGMENT_COUNT_MISMATCH = "segment_count_mismatch"
    DUPLICATE_CONTROL_NUMBER = "duplicate_control_number"
    INVALID_COUNT = "invalid_count"


@dataclass(frozen=True, slots=True)
class EnvelopeProblem:
    """One problem found in an interchange, with its location when known."""

    code: ProblemCode
    message: str
    position: SegmentPosition | None = None

    def __str__(self) -> str:
        """Render as `code at location: message`."""
        where = f" at {self.position}" if self.position is not None else ""
        return f"{self.code.value}{where}: {self.message}"
