"""The JSON form of typed X12 documents, as the archive stores and the API shows them."""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
from decimal import Decimal
from typing import Any


def json_form(value: object) -> Any:
    """Dataclasses as objects, tuples as lists, decimals as exact text, dates as ISO 8601."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {
            field.name: json_form(getattr(value, field.name)) for field in dataclasses.fields(value)
        }
    if isinstance(value, enum.Enum):
        return json_form(value.value)
    if isinstance(value, Decimal):
        # Text keeps every digit a float would lose; money and quantities stay exact.
        return format(value, "f")
    if isinstance(value, dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, list | tuple):
        return [json_form(item) for item in value]
    if isinstance(value, dict):
        return {str(key): json_form(item) for key, item in value.items()}
    return value
