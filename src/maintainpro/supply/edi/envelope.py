"""Outbound envelopes: wrap transaction contents into an interchange with correct counts."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Protocol

from maintainpro.supply.edi.errors import X12SerializationError
from maintainpro.supply.edi.model import (
    ISA_WIDTHS,
    FunctionalGroup,
    Interchange,
    Segment,
    Separators,
    TransactionSet,
    uses_repetition_separator,
)

_MAX_CONTROL_NUMBER = 999_999_999


class EnvelopeLevel(StrEnum):
    """Which envelope a control number is requested for."""

    INTERCHANGE = "interchange"
    GROUP = "group"
    TRANSACTION_SET = "transaction_set"


class ControlNumbers(Protocol):
    """Supplies the next control number for an envelope level (unique per partner)."""

    def __call__(self, level: EnvelopeLevel, /) -> int:
        """Return the next control number for `level`, between 1 and 999999999."""
        ...


def sequential_control_numbers(start: int = 1) -> ControlNumbers:
    """Return an in-memory ControlNumbers counting up from `start` independently per level."""
    next_numbers = dict.fromkeys(EnvelopeLevel, start)

    def take(level: EnvelopeLevel, /) -> int:
        number = next_numbers[level]
        next_numbers[level] = number + 1
        return number

    return take


@dataclass(frozen=True, slots=True)
class PartyId:
    """An interchange-level identity: ISA qualifier plus identifier."""

    qualifier: str
    identifier: str


@dataclass(frozen=True, slots=True)
class EnvelopeSettings:
    """Everything besides content and control numbers that goes into ISA and GS."""

    sender: PartyId
    receiver: PartyId
    application_sender: str = ""
    application_receiver: str = ""
    version: str = "00401"
    group_version: str = "004010"
    usage_indicator: str = "P"
    acknowledgement_requested: bool = False
    separators: Separators = field(default_factory=Separators)


@dataclass(frozen=True, slots=True)
class TransactionContent:
    """The body of one outbound transaction set (everything between ST and SE)."""

    set_id: str
    functional_id: str
    segments: tuple[Segment, ...]
    implementation_reference: str = ""


def _control(numbers: ControlNumbers, level: EnvelopeLevel) -> int:
    number = numbers(level)
    if not 1 <= number <= _MAX_CONTROL_NUMBER:
        raise X12SerializationError(f"{level.value} control number {number} is out of range")
    return number


def _isa_field(value: str, number: int) -> str:
    width = ISA_WIDTHS[number - 1]
    if len(value) > width:
        raise X12SerializationError(f"ISA{number:02d} {value!r} is longer than {width}")
    return value.ljust(width)


def _group_contents(
    contents: Sequence[TransactionContent],
) -> list[tuple[str, list[TransactionContent]]]:
    groups: dict[str, list[TransactionContent]] = {}
    for content in contents:
        groups.setdefault(content.functional_id, []).append(content)
    return list(groups.items())


def build_interchange(
    contents: Sequence[TransactionContent],
    settings: EnvelopeSettings,
    control_numbers: ControlNumbers,
    created: datetime,
) -> Interchange:
    """Envelope contents into ISA/GS/ST with counts; one group per functional identifier."""
    separators = settings.separators
    if not uses_repetition_separator(settings.version):
        separators = Separators(separators.element, separators.segment, separators.component, None)
    interchange_number = _control(control_numbers, EnvelopeLevel.INTERCHANGE)
    header = Segment(
        "ISA",
        (
            "00",
            " " * 10,
            "00",
            " " * 10,
            _isa_field(settings.sender.qualifier, 5),
            _isa_field(settings.sender.identifier, 6),
            _isa_field(settings.receiver.qualifier, 7),
            _isa_field(settings.receiver.identifier, 8),
            created.strftime("%y%m%d"),
            created.strftime("%H%M"),
            separators.repetition or "U",
            _isa_field(settings.version, 12),
            str(interchange_number).zfill(9),
            "1" if settings.acknowledgement_requested else "0",
            _isa_field(settings.usage_indicator, 15),
            separators.component,
        ),
    )
    groups: list[FunctionalGroup] = []
    for functional_id, members in _group_contents(contents):
        group_number = str(_control(control_numbers, EnvelopeLevel.GROUP))
        group_header = Segment.of(
            "GS",
            functional_id,
            settings.application_sender or settings.sender.identifier,
            settings.application_receiver or settings.receiver.identifier,
            created.strftime("%Y%m%d"),
            created.strftime("%H%M"),
            group_number,
            "X",
            settings.group_version,
        )
        sets: list[TransactionSet] = []
        for content in members:
            set_number = str(_control(control_numbers, EnvelopeLevel.TRANSACTION_SET)).zfill(4)
            sets.append(
                TransactionSet(
                    Segment.of("ST", content.set_id, set_number, content.implementation_reference),
                    content.segments,
                    Segment("SE", (str(len(content.segments) + 2), set_number)),
                )
            )
        groups.append(
            FunctionalGroup(
                group_header, tuple(sets), Segment("GE", (str(len(sets)), group_number))
            )
        )
    trailer = Segment("IEA", (str(len(groups)), str(interchange_number).zfill(9)))
    return Interchange(separators, header, tuple(groups), trailer)
