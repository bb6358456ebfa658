"""Server-driven paging: keyset positions in ``$skiptoken``, and next links under 2,048 characters.

Rows are ordered by the requested ``$orderby`` with the key appended, so the order is total and a
page can start right after the last row served (``WHERE (order columns) > (last values)``), as
cheap on page 1,000 as on page 1 and stable while other rows are added.

A next link repeats the request's own options with ``$skiptoken=k.<position>``. When that would
pass 2,048 characters (a long $filter), the options travel compressed inside the token
(``z.<...>``); when even that is too long, the server keeps them for an hour under a random
cursor id (``c.<id>``), which only the same user can use.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import json
import math
import secrets
import threading
import time
import zlib
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any, Final
from urllib.parse import quote

from maintainpro.analytics.odata.errors import bad_request
from maintainpro.analytics.odata.model import Property
from maintainpro.analytics.schema import sql_type

MAX_URL_LENGTH: Final = 2048
MAX_TOKEN_LENGTH: Final = 4096
MAX_INFLATED: Final = 16 * 1024
CURSOR_TTL_S: Final = 3600.0
MAX_CURSORS: Final = 10_000
_SAFE: Final = "'(),:"


@dataclass(frozen=True)
class OrderItem:
    """One ordering column and its direction."""

    prop: Property
    descending: bool = False


def order_by_sql(order: Sequence[OrderItem], alias: str = "t") -> str:
    """The ORDER BY list: nulls sort lowest, as OData has it."""
    return ", ".join(
        f'{alias}."{o.prop.name}" ' + ("DESC NULLS LAST" if o.descending else "ASC NULLS FIRST")
        for o in order
    )


def after_sql(
    order: Sequence[OrderItem], values: Sequence[Any], alias: str = "t"
) -> tuple[str, list[Any]]:
    """A predicate keeping the rows that sort strictly after ``values`` (the last row served)."""
    disjuncts: list[str] = []
    params: list[Any] = []
    equal: list[str] = []
    equal_params: list[Any] = []
    for item, value in zip(order, values, strict=True):
        column = f'{alias}."{item.prop.name}"'
        typed = f"CAST(? AS {sql_type(item.prop.type)})"
        after: str | None
        if value is None:
            after = None if item.descending else f"{column} IS NOT NULL"
            after_params: list[Any] = []
        elif item.descending:
            after, after_params = f"({column} < {typed} OR {column} IS NULL)", [value]
        else:
            after, after_params = f"{column} > {typed}", [value]
        if after is not None:
            disjuncts.append("(" + " AND ".join([*equal, after]) + ")")
            params += [*equal_params, *after_params]
        if value is None:
            equal.append(f"{column} IS NULL")
        else:
            equal.append(f"{column} = {typed}")
            equal_params.append(value)
    if not disjuncts:
        return "FALSE", []
    predicate = "(" + " OR ".join(disjuncts) + ")"
    first, value = order[0], values[0]
    if value is None:
        return predicate, params
    # Implied by the disjunction, but a plain range on the first column lets DuckDB skip row
    # groups by their min/max before evaluating the rest.
    column = f'{alias}."{first.prop.name}"'
    typed = f"CAST(? AS {sql_type(first.prop.type)})"
    bound = (
        f"({column} <= {typed} OR {column} IS NULL)" if first.descending else f"{column} >= {typed}"
    )
    return f"({bound} AND {predicate})", [value, *params]


# --------------------------------------------------------------------------- positions


def _plain(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return "NaN" if math.isnan(value) else ("INF" if value > 0 else "-INF")
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, dt.date):  # dates and date-times
        return value.isoformat()
    return value


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        raise bad_request("invalid $skiptoken") from None


def encode_position(values: Sequence[Any]) -> str:
    """A position token for the last row served (its ordering values)."""
    text = json.dumps([_plain(v) for v in values], separators=(",", ":"))
    return "k." + _b64(text.encode())


def _typed(value: Any, prop: Property) -> Any:
    kind = prop.kind
    if value is None:
        return None
    if kind == "int" and type(value) is int:
        return value
    if kind == "bool" and type(value) is bool:
        return value
    if kind == "string" and isinstance(value, str):
        return value
    if kind == "double":
        if isinstance(value, int | float) and type(value) is not bool:
            return float(value)
        special = {"NaN": math.nan, "INF": math.inf, "-INF": -math.inf}
        if isinstance(value, str) and value in special:
            return special[value]
    if isinstance(value, str):
        try:
            if kind == "decimal":
                return Decimal(value)
            if kind == "date":
                return dt.date.fromisoformat(value)
            if kind == "datetime":
                return dt.datetime.fromisoformat(value)
        except (ValueError, InvalidOperation):
            pass
    raise bad_request("invalid $skiptoken")


def decode_position(token: str, order: Sequence[OrderItem]) -> list[Any]:
    """The ordering values of a ``k.`` token, checked against the ordering columns' types."""
    if not token.startswith("k.") or len(token) > MAX_TOKEN_LENGTH:
        raise bad_request("invalid $skiptoken")
    try:
        values = json.loads(_unb64(token[2:]))
    except (ValueError, UnicodeDecodeError):
        raise bad_request("invalid $skiptoken") from None
    if not isinstance(values, list) or len(values) != len(order):
        raise bad_request("invalid $skiptoken")
    return [_typed(v, o.prop) for v, o in zip(values, order, strict=True)]


# --------------------------------------------------------------------------- next links


class CursorStore:
    """Query options of next links too long for a URL, kept in memory for an hour."""

    def __init__(self, ttl_s: float = CURSOR_TTL_S, capacity: int = MAX_CURSORS) -> None:
        """An empty store."""
        self.ttl_s = ttl_s
        self.capacity = capacity
        self._lock = threading.Lock()
        self._items: OrderedDict[str, tuple[float, int, str, dict[str, str]]] = OrderedDict()

    def put(self, user_id: int, entity_set: str, options: Mapping[str, str]) -> str:
        """Keep the options; returns the cursor id."""
        cursor = secrets.token_urlsafe(16)
        with self._lock:
            self._items[cursor] = (
                time.monotonic() + self.ttl_s,
                user_id,
                entity_set,
                dict(options),
            )
            while len(self._items) > self.capacity:
                self._items.popitem(last=False)
        return cursor

    def get(self, user_id: int, entity_set: str, cursor: str) -> dict[str, str] | None:
        """The options kept under a cursor, if it is the same user's, set's and still fresh."""
        with self._lock:
            item = self._items.get(cursor)
            if item is None:
                return None
            expires, owner, kept_set, options = item
            if expires < time.monotonic():
                del self._items[cursor]
                return None
        if owner != user_id or kept_set != entity_set:
            return None
        return dict(options)


def query_string(options: Mapping[str, str]) -> str:
    """Options as a query string: spaces as %20 and "+" as %2B, so no form decoding can bite."""
    return "&".join(f"{name}={quote(value, safe=_SAFE)}" for name, value in options.items())


def next_link(
    base: str,
    options: Mapping[str, str],
    position: str,
    *,
    user_id: int,
    entity_set: str,
    cursors: CursorStore,
    max_length: int = MAX_URL_LENGTH,
) -> str:
    """The next page's URL: the options and the position, or a compact token standing for them."""
    plain = f"{base}?{query_string({**options, '$skiptoken': position})}"
    if len(plain) <= max_length:
        return plain
    packed = json.dumps({"o": dict(options), "p": position}, separators=(",", ":"))
    token = "z." + _b64(zlib.compress(packed.encode(), 9))
    compact = f"{base}?{query_string({'$skiptoken': token})}"
    if len(compact) <= max_length:
        return compact
    cursor = cursors.put(user_id, entity_set, {**options, "$skiptoken": position})
    return f"{base}?{query_string({'$skiptoken': 'c.' + cursor})}"


def unpack_token(
    token: str, *, user_id: int, entity_set: str, cursors: CursorStore
) -> dict[str, str] | None:
    """The options a ``z.`` or ``c.`` token stands for (with ``$skiptoken`` set to the position);
    None for a plain position token."""
    if token.startswith("k."):
        return None
    if token.startswith("c."):
        options = cursors.get(user_id, entity_set, token[2:])
        if options is None:
            raise bad_request("the paging cursor has expired: read the entity set from the start")
        return options
    if not token.startswith("z.") or len(token) > MAX_TOKEN_LENGTH:
        raise bad_request("invalid $skiptoken")
    try:
        inflater = zlib.decompressobj()
        raw = inflater.decompress(_unb64(token[2:]), MAX_INFLATED)
        if inflater.unconsumed_tail:
            raise ValueError("too large")
        packed = json.loads(raw)
    except (zlib.error, ValueError, UnicodeDecodeError):
        raise bad_request("invalid $skiptoken") from None
    if not isinstance(packed, dict):
        raise bad_request("invalid $skiptoken")
    options, position = packed.get("o"), packed.get("p")
    if not (
        isinstance(options, dict)
        and isinstance(position, str)
        and position.startswith("k.")
        and all(isinstance(k, str) and isinstance(v, str) for k, v in options.items())
    ):
        raise bad_request("invalid $skiptoken")
    return {**options, "$skiptoken": position}
