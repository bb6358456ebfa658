"""Column types shared by the core tables: enums stored as text, timestamps."""

from __future__ import annotations

import datetime as dt
import enum
from typing import Any

from sqlalchemy import Enum
from sqlalchemy.orm import Mapped, mapped_column

from maintainpro.core.db import UTCDateTime, utcnow


def text_enum(enum_cls: type[enum.Enum], length: int = 32) -> Enum:
    """An enum stored as its value in a VARCHAR, so new members need no type migration."""
    return Enum(
        enum_cls,
        native_enum=False,
        create_constraint=False,
        length=length,
        values_callable=lambda members: [m.value for m in members],
        validate_strings=True,
    )


class Timestamped:
    """Mixin adding created_at and updated_at maintained by the ORM."""

    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)


def row_dict(obj: Any) -> dict[str, Any]:
    """The column values of an ORM object, JSON-friendly, for audit records and events."""
    result: dict[str, Any] = {}
    for column in obj.__table__.columns:
        value = getattr(obj, column.key, None)
        result[column.key] = json_value(value)
    return result


def json_value(value: Any) -> Any:
    """Convert a column value to something json.dumps accepts without loss of meaning."""
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    if isinstance(value, int | float | str | bool) or value is None:
        return value
    return str(value)
