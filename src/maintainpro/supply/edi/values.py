"""Conversions between X12 element text and Python values (Decimal, date, time)."""

from __future__ import annotations

from datetime import date, time
from decimal import Decimal, InvalidOperation

from maintainpro.supply.edi.errors import X12MappingError, X12SerializationError
from maintainpro.supply.edi.model import Segment, is_digits


def _fail(segment: Segment, number: int, expected: str) -> X12MappingError:
    value = segment.element(number)
    return X12MappingError(
        f"{segment.tag}{number:02d} should be {expected}, got {value[:40]!r}", segment.position
    )


def _is_numeric_text(text: str) -> bool:
    digits = text.removeprefix("-")
    whole, _, fraction = digits.partition(".")
    return bool(whole + fraction) and is_digits(whole + fraction) and digits.count(".") <= 1


def text(segment: Segment, number: int) -> str:
    """Element text without surrounding blanks ("" when absent)."""
    return segment.element(number).strip()


def required_text(segment: Segment, number: int) -> str:
    """Element text that must be present."""
    value = text(segment, number)
    if not value:
        raise X12MappingError(f"{segment.tag}{number:02d} is required", segment.position)
    return value


def optional_decimal(segment: Segment, number: int) -> Decimal | None:
    """An explicit-decimal (R) element as Decimal, None when empty."""
    value = text(segment, number)
    if not value:
        return None
    # Decimal() would also accept "NaN", "1e5" and "Infinity"; X12 R values are plain.
    if not _is_numeric_text(value):
        raise _fail(segment, number, "a decimal number")
    try:
        return Decimal(value)
    except InvalidOperation as exc:  # pragma: no cover - guarded by _is_numeric_text
        raise _fail(segment, number, "a decimal number") from exc


def required_decimal(segment: Segment, number: int) -> Decimal:
    """An explicit-decimal (R) element that must be present."""
    value = optional_decimal(segment, number)
    if value is None:
        raise X12MappingError(f"{segment.tag}{number:02d} is required", segment.position)
    return value


def optional_implied(segment: Segment, number: int, places: int = 2) -> Decimal | None:
    """An implied-decimal (Nn) element, e.g. N2 "36596" -> Decimal("365.96")."""
    value = text(segment, number)
    if not value:
        return None
    digits = value.removeprefix("-")
    if not is_digits(digits):
        raise _fail(segment, number, f"an N{places} number (digits, implied decimals)")
    return Decimal(value).scaleb(-places)


def optional_int(segment: Segment, number: int) -> int | None:
    """A whole-number (N0) element, None when empty."""
    value = text(segment, number)
    if not value:
        return None
    if not is_digits(value.removeprefix("-")):
        raise _fail(segment, number, "a whole number")
    return int(value)


def optional_date(segment: Segment, number: int) -> date | None:
    """A CCYYMMDD (or legacy YYMMDD) date element, None when empty."""
    value = text(segment, number)
    if not value:
        return None
    if not is_digits(value) or len(value) not in (6, 8):
        raise _fail(segment, number, "a date CCYYMMDD")
    if len(value) == 6:
        # Legacy YYMMDD: pivot like most translators do.
        year = int(value[:2])
        value = f"{1900 + year if year >= 50 else 2000 + year}{value[2:]}"
    try:
        return date(int(value[:4]), int(value[4:6]), int(value[6:8]))
    except ValueError as exc:
        raise _fail(segment, number, "a valid calendar date") from exc


def required_date(segment: Segment, number: int) -> date:
    """A date element that must be present."""
    value = optional_date(segment, number)
    if value is None:
        raise X12MappingError(f"{segment.tag}{number:02d} is required", segment.position)
    return value


def optional_time(segment: Segment, number: int) -> time | None:
    """An HHMM[SS[d..]] time element, None when empty."""
    value = text(segment, number)
    if not value:
        return None
    if not is_digits(value) or len(value) < 4:
        raise _fail(segment, number, "a time HHMM[SS]")
    seconds = int(value[4:6]) if len(value) >= 6 else 0
    try:
        return time(int(value[:2]), int(value[2:4]), seconds)
    except ValueError as exc:
        raise _fail(segment, number, "a valid time of day") from exc


def first_component(value: str) -> str:
    """First component of a composite, whatever the (unknown here) component separator."""
    for index, char in enumerate(value):
        if not char.isalnum() and char not in " -._/":
            return value[:index]
    return value


def format_decimal(value: Decimal) -> str:
    """Render a Decimal as an X12 R value (no exponent, no superfluous zeros)."""
    if not value.is_finite():
        raise X12SerializationError(f"cannot write {value} as an X12 number")
    rendered = format(value, "f")
    if "." in rendered:
        rendered = rendered.rstrip("0").rstrip(".")
    return "0" if rendered in {"-0", ""} else rendered


def format_implied(value: Decimal, places: int = 2) -> str:
    """Render a Decimal as an implied-decimal Nn value, e.g. 365.96 -> "36596"."""
    scaled = value.scaleb(places)
    if scaled != scaled.to_integral_value():
        raise X12SerializationError(f"{value} has more than {places} decimals")
    return str(int(scaled))


def format_date(value: date | None) -> str:
    """Render a date as CCYYMMDD ("" for None)."""
    return value.strftime("%Y%m%d") if value is not None else ""


def format_time(value: time | None) -> str:
    """Render a time as HHMM, or HHMMSS when seconds are set ("" for None)."""
    if value is None:
        return ""
    return value.strftime("%H%M%S" if value.second else "%H%M")
