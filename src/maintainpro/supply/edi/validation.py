"""Envelope validation: control numbers, counts and trailers of ISA/GS/ST envelopes."""

from __future__ import annotations

from maintainpro.supply.edi.errors import EnvelopeProblem, ProblemCode
from maintainpro.supply.edi.model import (
    FunctionalGroup,
    Interchange,
    Segment,
    TransactionSet,
    is_digits,
)


def same_control_number(left: str, right: str) -> bool:
    """Compare control numbers, ignoring padding and leading zeros."""
    a, b = left.strip(), right.strip()
    if is_digits(a) and is_digits(b):
        return int(a) == int(b)
    return a == b


def _problem(code: ProblemCode, message: str, segment: Segment) -> EnvelopeProblem:
    return EnvelopeProblem(code, message, segment.position)


def _check_count(
    segment: Segment, number: int, actual: int, code: ProblemCode, what: str
) -> list[EnvelopeProblem]:
    declared = segment.element(number).strip()
    ref = f"{segment.tag}{number:02d}"
    if not is_digits(declared):
        return [
            _problem(
                ProblemCode.INVALID_COUNT, f"{ref} should be a count, got {declared!r}", segment
            )
        ]
    if int(declared) != actual:
        return [_problem(code, f"{ref} declares {declared} {what} but {actual} found", segment)]
    return []


def _check_control(
    header: Segment, header_number: int, trailer: Segment, trailer_number: int, code: ProblemCode
) -> list[EnvelopeProblem]:
    expected = header.element(header_number)
    found = trailer.element(trailer_number)
    if same_control_number(expected, found):
        return []
    message = (
        f"{trailer.tag}{trailer_number:02d} control number {found.strip()!r} does not match "
        f"{header.tag}{header_number:02d} {expected.strip()!r}"
    )
    return [_problem(code, message, trailer)]


def validate_transaction_set(transaction_set: TransactionSet) -> list[EnvelopeProblem]:
    """Check one ST..SE envelope: identifiers, trailer, control number and segment count."""
    header = transaction_set.header
    problems: list[EnvelopeProblem] = []
    if not header.element(1).strip() or not header.element(2).strip():
        problems.append(
            _problem(
                ProblemCode.MALFORMED_ENVELOPE_SEGMENT,
                "ST needs a transaction set identifier (ST01) and control number (ST02)",
                header,
            )
        )
    trailer = transaction_set.trailer
    if trailer is None:
        problems.append(
            _problem(
                ProblemCode.MISSING_SET_TRAILER,
                f"transaction set {header.element(1)} {header.element(2)} has no SE trailer",
                header,
            )
        )
        return problems
    problems += _check_control(header, 2, trailer, 2, ProblemCode.SET_CONTROL_MISMATCH)
    # SE01 counts ST and SE themselves.
    actual = len(transaction_set.segments) + 2
    problems += _check_count(trailer, 1, actual, ProblemCode.SEGMENT_COUNT_MISMATCH, "segments")
    return problems


def validate_group_envelope(group: FunctionalGroup) -> list[EnvelopeProblem]:
    """Check only the GS/GE pair of a group: shape, trailer, control number and set count."""
    header = group.header
    problems: list[EnvelopeProblem] = []
    if len(header.elements) < 8 or not header.element(6).strip():
        problems.append(
            _problem(
                ProblemCode.MALFORMED_ENVELOPE_SEGMENT,
                f"GS needs 8 elements including GS06, got {len(header.elements)}",
                header,
            )
        )
    if group.trailer is None:
        problems.append(
            _problem(
                ProblemCode.MISSING_GROUP_TRAILER,
                f"functional group {header.element(6)!r} has no GE trailer",
                header,
            )
        )
    else:
        problems += _check_control(header, 6, group.trailer, 2, ProblemCode.GROUP_CONTROL_MISMATCH)
        problems += _check_count(
            group.trailer,
            1,
            len(group.transaction_sets),
            ProblemCode.SET_COUNT_MISMATCH,
            "transaction sets",
        )
    return problems


def validate_group(group: FunctionalGroup) -> list[EnvelopeProblem]:
    """Check one GS..GE envelope and every transaction set inside it."""
    problems = validate_group_envelope(group)
    seen: set[str] = set()
    for transaction_set in group.transaction_sets:
        number = transaction_set.control_number.strip()
        if number and number in seen:
            problems.append(
                _problem(
                    ProblemCode.DUPLICATE_CONTROL_NUMBER,
                    f"ST02 {number!r} is used twice in group {group.control_number!r}",
                    transaction_set.header,
                )
            )
        seen.add(number)
        problems += validate_transaction_set(transaction_set)
    return problems


def validate_interchange(interchange: Interchange) -> list[EnvelopeProblem]:
    """Check the ISA/IEA envelope and every group inside it; return all problems found."""
    header, trailer = interchange.header, interchange.trailer
    problems = _check_control(header, 13, trailer, 2, ProblemCode.INTERCHANGE_CONTROL_MISMATCH)
    problems += _check_count(
        trailer, 1, len(interchange.groups), ProblemCode.GROUP_COUNT_MISMATCH, "functional groups"
    )
    seen: set[str] = set()
    for group in interchange.groups:
        number = group.control_number.strip()
        if number and number in seen:
            problems.append(
                _problem(
                    ProblemCode.DUPLICATE_CONTROL_NUMBER,
                    f"GS06 {number!r} is used twice in the interchange",
                    group.header,
                )
            )
        seen.add(number)
        problems += validate_group(group)
    return problems
