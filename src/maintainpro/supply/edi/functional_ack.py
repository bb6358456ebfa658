"""997 functional acknowledgement: read received ones, and acknowledge a received group."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

from maintainpro.supply.edi.common import require_segment, require_set
from maintainpro.supply.edi.envelope import TransactionContent
from maintainpro.supply.edi.errors import EnvelopeProblem, ProblemCode, X12MappingError
from maintainpro.supply.edi.model import FunctionalGroup, Segment, TransactionSet, is_digits
from maintainpro.supply.edi.validation import validate_group_envelope, validate_transaction_set
from maintainpro.supply.edi.values import optional_int, required_text, text


class AckStatus(StrEnum):
    """AK501/AK901 acknowledgement codes."""

    ACCEPTED = "A"
    ACCEPTED_WITH_ERRORS = "E"
    PARTIALLY_ACCEPTED = "P"
    REJECTED = "R"
    MAC_FAILED = "M"
    SECURITY_FAILED = "W"
    DECRYPTION_FAILED = "X"


@dataclass(frozen=True, slots=True)
class ElementError:
    """An AK4 data element error."""

    position: int
    component_position: int | None
    reference_number: str
    error_code: str
    bad_value: str = ""


@dataclass(frozen=True, slots=True)
class SegmentError:
    """An AK3 segment error with its AK4 element errors."""

    segment_id: str
    position: int
    loop_id: str
    error_code: str
    element_errors: tuple[ElementError, ...] = ()


@dataclass(frozen=True, slots=True)
class SetAcknowledgement:
    """AK2..AK5: the response for one transaction set."""

    set_id: str
    control_number: str
    status: AckStatus
    error_codes: tuple[str, ...] = ()
    segment_errors: tuple[SegmentError, ...] = ()
    implementation_reference: str = ""


@dataclass(frozen=True, slots=True)
class FunctionalAcknowledgement:
    """A 997: AK1 group reference, per-set responses and the AK9 group response."""

    functional_id: str
    group_control_number: str
    status: AckStatus
    sets_included: int
    sets_received: int
    sets_accepted: int
    sets: tuple[SetAcknowledgement, ...] = ()
    error_codes: tuple[str, ...] = ()
    version: str = ""


def _status(segment: Segment, number: int) -> AckStatus:
    value = required_text(segment, number)
    try:
        return AckStatus(value)
    except ValueError as exc:
        raise X12MappingError(
            f"{segment.tag}{number:02d} {value!r} is not an acknowledgement code",
            segment.position,
        ) from exc


def _codes(segment: Segment, first: int, last: int) -> tuple[str, ...]:
    return tuple(text(segment, n) for n in range(first, last + 1) if text(segment, n))


def _count(segment: Segment, number: int) -> int:
    value = optional_int(segment, number)
    if value is None:
        raise X12MappingError(f"{segment.tag}{number:02d} is required", segment.position)
    return value


def _element_error(segment: Segment) -> ElementError:
    # AK401 is a composite in 005010 (position:component); its separator is not known here.
    position_text = required_text(segment, 1)
    digits = "".join(c if is_digits(c) else " " for c in position_text).split()
    if not digits:
        raise X12MappingError(f"AK401 {position_text!r} is not a position", segment.position)
    return ElementError(
        position=int(digits[0]),
        component_position=int(digits[1]) if len(digits) > 1 else None,
        reference_number=text(segment, 2),
        error_code=text(segment, 3),
        bad_value=segment.element(4),
    )


def read_functional_ack(transaction_set: TransactionSet) -> FunctionalAcknowledgement:
    """Map a 997 transaction set to a FunctionalAcknowledgement."""
    require_set(transaction_set, "997")
    segments = transaction_set.segments
    ak1 = require_segment(transaction_set, segments, "AK1")
    ak9 = require_segment(transaction_set, segments, "AK9")
    sets: list[SetAcknowledgement] = []
    ak2: Segment | None = None
    segment_errors: list[SegmentError] = []
    for segment in segments:
        if segment.tag == "AK2":
            ak2, segment_errors = segment, []
        elif segment.tag == "AK3":
            segment_errors.append(
                SegmentError(
                    segment_id=required_text(segment, 1),
                    position=optional_int(segment, 2) or 0,
                    loop_id=text(segment, 3),
                    error_code=text(segment, 4),
                )
            )
        elif segment.tag == "AK4" and segment_errors:
            last = segment_errors[-1]
            segment_errors[-1] = SegmentError(
                last.segment_id,
                last.position,
                last.loop_id,
                last.error_code,
                (*last.element_errors, _element_error(segment)),
            )
        elif segment.tag == "AK5":
            if ak2 is None:
                raise X12MappingError("AK5 without a preceding AK2", segment.position)
            sets.append(
                SetAcknowledgement(
                    set_id=required_text(ak2, 1),
                    control_number=required_text(ak2, 2),
                    status=_status(segment, 1),
                    error_codes=_codes(segment, 2, 6),
                    segment_errors=tuple(segment_errors),
                    implementation_reference=text(ak2, 3),
                )
            )
            ak2 = None
    return FunctionalAcknowledgement(
        functional_id=required_text(ak1, 1),
        group_control_number=required_text(ak1, 2),
        status=_status(ak9, 1),
        sets_included=_count(ak9, 2),
        sets_received=_count(ak9, 3),
        sets_accepted=_count(ak9, 4),
        sets=tuple(sets),
        error_codes=_codes(ak9, 5, 9),
        version=text(ak1, 3),
    )


def functional_ack_content(ack: FunctionalAcknowledgement) -> TransactionContent:
    """Write a FunctionalAcknowledgement as the body of a 997 (AK401 as a simple position)."""
    segments = [Segment.of("AK1", ack.functional_id, ack.group_control_number, ack.version)]
    for response in ack.sets:
        segments.append(
            Segment.of(
                "AK2", response.set_id, response.control_number, response.implementation_reference
            )
        )
        for error in response.segment_errors:
            segments.append(
                Segment.of(
                    "AK3", error.segment_id, str(error.position), error.loop_id, error.error_code
                )
            )
            segments += [
                Segment.of(
                    "AK4",
                    str(element.position),
                    element.reference_number,
                    element.error_code,
                    element.bad_value,
                )
                for element in error.element_errors
            ]
        segments.append(Segment.of("AK5", response.status.value, *response.error_codes[:5]))
    segments.append(
        Segment.of(
            "AK9",
            ack.status.value,
            str(ack.sets_included),
            str(ack.sets_received),
            str(ack.sets_accepted),
            *ack.error_codes[:5],
        )
    )
    return TransactionContent("997", "FA", tuple(segments))


def _set_error_code(code: ProblemCode) -> str:
    """AK5 syntax error code for an envelope problem inside a transaction set."""
    match code:
        case ProblemCode.MISSING_SET_TRAILER:
            return "2"
        case ProblemCode.SET_CONTROL_MISMATCH:
            return "3"
        case ProblemCode.SEGMENT_COUNT_MISMATCH | ProblemCode.INVALID_COUNT:
            return "4"
        case ProblemCode.MALFORMED_ENVELOPE_SEGMENT:
            return "6"
        case ProblemCode.DUPLICATE_CONTROL_NUMBER:
            return "23"
        case _:
            return "5"


def _group_error_code(code: ProblemCode) -> str | None:
    """AK9 syntax error code for a group-level envelope problem."""
    match code:
        case ProblemCode.MISSING_GROUP_TRAILER:
            return "3"
        case ProblemCode.GROUP_CONTROL_MISMATCH:
            return "4"
        case ProblemCode.SET_COUNT_MISMATCH | ProblemCode.INVALID_COUNT:
            return "5"
        case ProblemCode.MALFORMED_ENVELOPE_SEGMENT:
            return "6"
        case _:
            return None


def _inside(problem: EnvelopeProblem, transaction_set: TransactionSet) -> bool:
    start = transaction_set.header.position
    end = transaction_set.trailer.position if transaction_set.trailer else None
    if problem.position is None or start is None:
        return False
    return start.index < problem.position.index and (
        end is None or problem.position.index <= end.index
    )


def acknowledge_group(
    group: FunctionalGroup, problems: Sequence[EnvelopeProblem] = ()
) -> FunctionalAcknowledgement:
    """Build the 997 answer for a received group from its envelope and syntax problems.

    `problems` may be the parse problems of the interchange: those located inside a
    transaction set (e.g. an invalid segment) reject that set with AK5 code 5.
    """
    responses: list[SetAcknowledgement] = []
    seen: set[str] = set()
    for transaction_set in group.transaction_sets:
        found = validate_transaction_set(transaction_set)
        found += [p for p in problems if _inside(p, transaction_set)]
        codes = {_set_error_code(p.code) for p in found}
        if transaction_set.control_number in seen:
            codes.add("23")
        seen.add(transaction_set.control_number)
        ordered = tuple(sorted(codes, key=int))
        responses.append(
            SetAcknowledgement(
                set_id=transaction_set.set_id,
                control_number=transaction_set.control_number,
                status=AckStatus.REJECTED if ordered else AckStatus.ACCEPTED,
                error_codes=ordered,
                implementation_reference=transaction_set.implementation_reference,
            )
        )
    group_codes = {
        code
        for code in (_group_error_code(p.code) for p in validate_group_envelope(group))
        if code is not None
    }
    accepted = sum(1 for r in responses if r.status is AckStatus.ACCEPTED)
    if group_codes or (responses and accepted == 0):
        status = AckStatus.REJECTED
    elif accepted < len(responses):
        status = AckStatus.PARTIALLY_ACCEPTED
    else:
        status = AckStatus.ACCEPTED
    declared = group.trailer.element(1).strip() if group.trailer is not None else ""
    return FunctionalAcknowledgement(
        functional_id=group.functional_id,
        group_control_number=group.control_number,
        status=status,
        sets_included=int(declared) if is_digits(declared) else len(responses),
        sets_received=len(responses),
        sets_accepted=accepted,
        sets=tuple(responses),
        error_codes=tuple(sorted(group_codes, key=int)),
        version=group.version if group.version.startswith("005") else "",
    )
