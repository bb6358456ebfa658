"""Constrained string types for request bodies: codes, names and free text."""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import AfterValidator, StringConstraints

_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
# Markup has no place in a name or title: such fields travel to e-mails, CSV files and BI
# tools that may not escape them. Free text (descriptions, notes) keeps it and is escaped on
# output instead.
_MARKUP = re.compile(r"<\s*/?\s*[A-Za-z!?]|javascript:", re.IGNORECASE)


def _no_control(value: str) -> str:
    if _CONTROL.search(value):
        raise ValueError("control characters are not allowed")
    return value


def _plain_name(value: str) -> str:
    _no_control(value)
    if _MARKUP.search(value):
        raise ValueError("markup is not allowed in names")
    return value


Code = Annotated[
    str,
    StringConstraints(strip_whitespace=True, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.\-/]{0,63}$"),
]
"""An identifier people type and print on labels: letters, digits and _ . - / only."""

Name = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=200),
    AfterValidator(_plain_name),
]
"""A human-readable name or title: no control characters and no markup."""

ShortText = Annotated[
    str, StringConstraints(strip_whitespace=True, max_length=200), AfterValidator(_plain_name)
]
"""A short optional attribute such as a manufacturer or model."""

FreeText = Annotated[str, StringConstraints(max_length=20_000), AfterValidator(_no_control)]
"""Descriptions and notes: anything printable; escaped wherever it is shown."""

Username = Annotated[
    str, StringConstraints(strip_whitespace=True, pattern=r"^[a-z0-9][a-z0-9_.\-]{1,63}$")
]
"""A login name: lower-case letters, digits and _ . - only."""

CurrencyCode = Annotated[str, StringConstraints(pattern=r"^[A-Z]{3}$")]
"""An ISO 4217 alphabetic code."""


def contains_pattern(text: str) -> str:
    """A LIKE pattern matching text anywhere, with the pattern characters taken literally."""
    # Dropping the wildcards and the escape character keeps user input from steering the match.
    cleaned = text.replace("\\", "").replace("%", "").replace("_", "")
    return f"%{cleaned}%"
