"""Immutable data model of an X12 interchange: separators, segments and envelopes."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

from maintainpro.supply.edi.errors import SegmentPosition, X12SeparatorError

# ISA element widths are fixed by the standard; index 0 is ISA01.
ISA_WIDTHS: tuple[int, ...] = (2, 10, 2, 10, 2, 15, 2, 15, 6, 4, 1, 5, 9, 1, 1, 1)


@dataclass(frozen=True, slots=True)
class Separators:
    """The delimiters of one interchange, as declared by its ISA segment."""

    element: str = "*"
    segment: str = "~"
    component: str = ">"
    repetition: str | None = "^"

    def __post_init__(self) -> None:
        """Reject delimiters that would make the interchange ambiguous."""
        named = [("element", self.element), ("segment", self.segment)]
        named.append(("component", self.component))
        if self.repetition is not None:
            named.append(("repetition", self.repetition))
        for name, char in named:
            if len(char) != 1:
                raise X12SeparatorError(f"{name} separator must be one character, got {char!r}")
            if char.isalnum() or char == " ":
                raise X12SeparatorError(
                    f"{name} separator {char!r} is a letter, digit or space and would be "
                    "confused with data"
                )
            # Line breaks are tolerated as layout between segments, so only the
            # segment terminator may be one.
            if name != "segment" and char in "\r\n":
                raise X12SeparatorError(f"{name} separator cannot be a line break")
        chars = [char for _, char in named]
        if len(set(chars)) != len(chars):
            raise X12SeparatorError(f"separators must all differ, got {chars!r}")

    def as_set(self) -> frozenset[str]:
        """Return every delimiter character in use."""
        chars = {self.element, self.segment, self.component}
        if self.repetition is not None:
            chars.add(self.repetition)
        return frozenset(chars)


@dataclass(frozen=True, slots=True)
class Segment:
    """One segment: its identifier and its elements (element 1 is `elements[0]`)."""

    tag: str
    elements: tuple[str, ...] = ()
    # Positions help error reports but must not break equality of re-parsed documents.
    position: SegmentPosition | None = field(default=None, compare=False, repr=False)

    @classmethod
    def of(cls, tag: str, *elements: str) -> Segment:
        """Build a segment, dropping trailing empty elements as X12 requires."""
        values = list(elements)
        while values and values[-1] == "":
            values.pop()
        return cls(tag, tuple(values))

    def element(self, number: int) -> str:
        """Return element `number` (1-based), or an empty string when absent."""
        if 1 <= number <= len(self.elements):
            return self.elements[number - 1]
        return ""

    def where(self) -> str:
        """Describe the segment and its location for error messages."""
        return f"{self.tag} at {self.position}" if self.position is not None else self.tag


@dataclass(frozen=True, slots=True)
class TransactionSet:
    """An ST..SE transaction set; `segments` excludes the ST and SE segments."""

    header: Segment
    segments: tuple[Segment, ...]
    trailer: Segment | None

    @property
    def set_id(self) -> str:
        """ST01, the transaction set identifier such as 850."""
        return self.header.element(1)

    @property
    def control_number(self) -> str:
        """ST02, the transaction set control number."""
        return self.header.element(2)

    @property
    def implementation_reference(self) -> str:
        """ST03, the implementation convention reference (005010 and later)."""
        return self.header.element(3)


@dataclass(frozen=True, slots=True)
class FunctionalGroup:
    """A GS..GE functional group."""

    header: Segment
    transaction_sets: tuple[TransactionSet, ...]
    trailer: Segment | None

    @property
    def functional_id(self) -> str:
        """GS01, the functional identifier code such as PO."""
        return self.header.element(1)

    @property
    def sender(self) -> str:
        """GS02, the application sender code."""
        return self.header.element(2)

    @property
    def receiver(self) -> str:
        """GS03, the application receiver code."""
        return self.header.element(3)

    @property
    def control_number(self) -> str:
        """GS06, the group control number."""
        return self.header.element(6)

    @property
    def version(self) -> str:
        """GS08, the version/release/industry code such as 004010VICS."""
        return self.header.element(8)


@dataclass(frozen=True, slots=True)
class Interchange:
    """An ISA..IEA interchange with the separators it was (or will be) written with."""

    separators: Separators
    header: Segment
    groups: tuple[FunctionalGroup, ...]
    trailer: Segment

    @property
    def sender_qualifier(self) -> str:
        """ISA05 without padding."""
        return self.header.element(5).strip()

    @property
    def sender_id(self) -> str:
        """ISA06 without padding."""
        return self.header.element(6).strip()

    @property
    def receiver_qualifier(self) -> str:
        """ISA07 without padding."""
        return self.header.element(7).strip()

    @property
    def receiver_id(self) -> str:
        """ISA08 without padding."""
        return self.header.element(8).strip()

    @property
    def version(self) -> str:
        """ISA12, the interchange control version such as 00401."""
        return self.header.element(12).strip()

    @property
    def control_number(self) -> str:
        """ISA13, the interchange control number."""
        return self.header.element(13).strip()

    @property
    def usage_indicator(self) -> str:
        """ISA15: P for production, T for test."""
        return self.header.element(15).strip()

    def transaction_sets(self) -> Iterator[TransactionSet]:
        """Iterate over every transaction set of every group."""
        for group in self.groups:
            yield from group.transaction_sets


def is_digits(value: str) -> bool:
    """True for a non-empty run of ASCII digits (str.isdigit also accepts e.g. "²")."""
    return value.isascii() and value.isdigit()


def uses_repetition_separator(version: str) -> bool:
    """Tell whether ISA11 is a repetition separator (00402 and later) for an ISA12 value."""
    return is_digits(version) and int(version) >= 402
