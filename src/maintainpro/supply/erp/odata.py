"""OData v2 and v4 details shared by the SAP and Microsoft connectors (pure functions)."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator, Mapping
from decimal import Decimal, InvalidOperation
from typing import Any

import httpx

from maintainpro.supply.erp.http import ErpHttp, generic_error, loads

_V2_DATE = re.compile(r"^/Date\((-?\d+)([+-]\d{4})?\)/$")
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
_V2_TIME = re.compile(r"^PT(?:(\d+)H)?(?:(\d+)M)?(?:(\d+)(?:\.\d+)?S)?$")


def quote(value: str) -> str:
    """An OData string literal: single quotes, embedded quotes doubled."""
    return "'" + value.replace("'", "''") + "'"


def utc(moment: dt.datetime) -> dt.datetime:
    """An aware datetime in UTC; naive values are refused rather than guessed."""
    if moment.tzinfo is None:
        raise ValueError("timestamps must be timezone-aware")
    return moment.astimezone(dt.UTC)


def v4_timestamp(moment: dt.datetime) -> str:
    """An OData v4 DateTimeOffset literal in UTC (no quotes)."""
    return utc(moment).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def v2_datetimeoffset(moment: dt.datetime) -> str:
    """An OData v2 ``datetimeoffset'...'`` literal in UTC."""
    return "datetimeoffset'" + utc(moment).strftime("%Y-%m-%dT%H:%M:%S") + "Z'"


def v2_datetime(day: dt.date) -> str:
    """An OData v2 ``datetime'...'`` literal for midnight of a day (Edm.DateTime)."""
    return f"datetime'{day.isoformat()}T00:00:00'"


def v2_date_value(day: dt.date) -> str:
    """An Edm.DateTime value in the OData v2 JSON format: ``/Date(<ms since epoch>)/``."""
    moment = dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC)
    return f"/Date({(moment - _EPOCH) // dt.timedelta(milliseconds=1)})/"


def parse_v2_date(value: object) -> dt.datetime | None:
    """Read ``/Date(ms)/`` or ``/Date(ms+hhmm)/`` (OData v2 JSON) as an aware UTC datetime."""
    if not isinstance(value, str) or not value:
        return None
    match = _V2_DATE.match(value)
    if match is None:
        raise ValueError(f"not an OData v2 date: {value[:40]!r}")
    # The milliseconds are UTC; the offset only says which zone the value was entered in.
    return _EPOCH + dt.timedelta(milliseconds=int(match.group(1)))


def parse_v2_time(value: object) -> dt.time:
    """Read an Edm.Time value (``PT14H30M05S``); empty means midnight."""
    if not isinstance(value, str) or not value:
        return dt.time(0, 0)
    match = _V2_TIME.match(value)
    if match is None:
        raise ValueError(f"not an OData v2 time: {value[:40]!r}")
    hours, minutes, seconds = (int(part or 0) for part in match.groups())
    return dt.time(hours, minutes, seconds)


def parse_timestamp(value: object) -> dt.datetime | None:
    """Read an ISO 8601 timestamp (OData v4, Oracle REST) as an aware UTC datetime."""
    if not isinstance(value, str) or not value:
        return None
    moment = dt.datetime.fromisoformat(value)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    return moment.astimezone(dt.UTC)


def parse_day(value: object) -> dt.date | None:
    """Read the date part of an ISO date or timestamp."""
    if not isinstance(value, str) or not value:
        return None
    return dt.date.fromisoformat(value[:10])


def decimal(value: object) -> Decimal:
    """A quantity or amount from JSON (a string in OData v2, a number in v4) as a Decimal."""
    if isinstance(value, Decimal):
        return value
    if isinstance(value, int | str):
        try:
            return Decimal(value)
        except InvalidOperation as exc:
            raise ValueError(f"not a number: {str(value)[:40]!r}") from exc
    raise ValueError(f"not a number: {type(value).__name__}")


def text(record: Mapping[str, Any], key: str) -> str:
    """A string field, empty when missing or null."""
    value = record.get(key)
    return "" if value is None else str(value)


def v2_error(response: httpx.Response) -> tuple[str | None, str]:
    """SAP Gateway's error: ``{"error": {"code", "message": {"lang", "value"}, ...}}``."""
    try:
        error = loads(response)["error"]
        message = error["message"]
        value = message["value"] if isinstance(message, Mapping) else str(message)
        return (str(error.get("code")) if error.get("code") else None), str(value)
    except (ValueError, KeyError, TypeError):
        return generic_error(response)


def v4_error(response: httpx.Response) -> tuple[str | None, str]:
    """The OData v4 error (Dynamics 365): ``{"error": {"code", "message"}}``."""
    try:
        error = loads(response)["error"]
        return (str(error.get("code")) if error.get("code") else None), str(error["message"])
    except (ValueError, KeyError, TypeError):
        return generic_error(response)


def v4_pages(
    http: ErpHttp, path: str, params: Mapping[str, str], *, max_pages: int = 10_000
) -> Iterator[dict[str, Any]]:
    """Every record of a v4 collection, following ``@odata.nextLink`` page by page."""
    body = http.json("GET", path, params=params)
    for _ in range(max_pages):
        yield from body.get("value", [])
        link = body.get("@odata.nextLink")
        if not link:
            return
        # The next link is a complete URL carrying the query (skip token included).
        body = http.json("GET", http.follow(str(link)))
    raise RuntimeError(f"more than {max_pages} pages from {path}")
