"""System query options to a query plan: parameterised DuckDB SQL for one page and its count.

``parse_options`` reads ``$select $filter $orderby $top $skip $count $skiptoken $format`` (a
custom option without ``$`` is ignored, as OData allows; ``$expand``, ``$search``, ``$apply`` and
the like answer 501). ``plan_query`` checks them against the entity set and builds:

    SELECT to_json(struct_pack(...)) AS row, <order columns>
    FROM <source> AS t
    WHERE (<site scope>) AND (<$filter>) AND (<after the last row served>)
    ORDER BY <$orderby>, <key> LIMIT <page + 1> OFFSET <$skip, first page only>

DuckDB writes each row's JSON itself (exact decimals, dates as text, timestamps as UTC with Z,
non-finite doubles as "NaN"/"INF"/"-INF"), so a page is one query and a string join.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Final, Literal

from maintainpro.analytics.access import scope_predicate
from maintainpro.analytics.odata.errors import ODataError, bad_request, not_implemented
from maintainpro.analytics.odata.filter_sql import compile_filter
from maintainpro.analytics.odata.model import EntitySet, Property
from maintainpro.analytics.odata.paging import OrderItem, after_sql, decode_position, order_by_sql

SUPPORTED: Final = frozenset(
    {"$select", "$filter", "$orderby", "$top", "$skip", "$count", "$skiptoken", "$format"}
)
NOT_OFFERED: Final = frozenset(
    {"$expand", "$search", "$apply", "$compute", "$levels", "$index", "$schemaversion"}
)
MAX_INT: Final = 2**31 - 1
MAX_ORDER_ITEMS: Final = 16
MAX_OPTION_LENGTH: Final = 4096
_NAME: Final = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,127}")
_ORDER_ITEM: Final = re.compile(r"([A-Za-z_][A-Za-z0-9_]{0,127})(?:\s+(asc|desc))?", re.IGNORECASE)
_INT: Final = re.compile(r"\d{1,10}")


@dataclass(frozen=True)
class QueryOptions:
    """The system query options of one request, syntactically checked."""

    given: dict[str, str]  # as received (lower-case names), for next links and the audit
    select: tuple[str, ...] | None = None
    filter: str | None = None
    orderby: tuple[tuple[str, bool], ...] = ()
    top: int | None = None
    skip: int = 0
    count: bool = False
    skiptoken: str | None = None
    format: str | None = None


def _whole(name: str, value: str) -> int:
    if not _INT.fullmatch(value.strip()) or int(value) > MAX_INT:
        raise bad_request(f"{name} must be a whole number from 0 to {MAX_INT}")
    return int(value)


def _names(value: str) -> tuple[str, ...]:
    names = tuple(part.strip() for part in value.split(","))
    if not names or not all(_NAME.fullmatch(n) or n == "*" for n in names):
        raise bad_request("$select must list property names separated by commas")
    return names


def _order(value: str) -> tuple[tuple[str, bool], ...]:
    items: list[tuple[str, bool]] = []
    for part in value.split(","):
        match = _ORDER_ITEM.fullmatch(part.strip())
        if match is None:
            raise bad_request("$orderby must list property names, each optionally asc or desc")
        items.append((match.group(1), (match.group(2) or "asc").lower() == "desc"))
    if len(items) > MAX_ORDER_ITEMS:
        raise bad_request(f"$orderby takes at most {MAX_ORDER_ITEMS} properties")
    return tuple(items)


def parse_options(pairs: Iterable[tuple[str, str]]) -> QueryOptions:
    """The system query options among a request's query parameters; 400/501 for bad ones."""
    given: dict[str, str] = {}
    for raw_name, value in pairs:
        if not raw_name.startswith("$"):
            continue  # a custom query option: ignored, as OData allows
        name = raw_name.lower()
        if name in NOT_OFFERED:
            raise not_implemented(f"{name} is not offered by this feed")
        if name not in SUPPORTED:
            shown = f" {raw_name}" if _NAME.fullmatch(raw_name[1:]) else ""
            raise bad_request(f"unknown system query option{shown}")
        if name in given:
            raise bad_request(f"{name} is given more than once")
        if len(value) > MAX_OPTION_LENGTH:
            raise bad_request(f"{name} is longer than {MAX_OPTION_LENGTH} characters")
        given[name] = value
    count = given.get("$count", "false").strip().lower()
    if count not in ("true", "false"):
        raise bad_request("$count must be true or false")
    fmt = given.get("$format")
    if fmt is not None and not (
        fmt.strip().lower() == "json" or fmt.strip().lower().startswith("application/json")
    ):
        raise ODataError(406, "NotAcceptable", "this feed answers in JSON only")
    filter_text = given.get("$filter")
    if filter_text is not None and not filter_text.strip():
        raise bad_request("$filter is empty")
    return QueryOptions(
        given=given,
        select=_names(given["$select"]) if "$select" in given else None,
        filter=filter_text,
        orderby=_order(given["$orderby"]) if "$orderby" in given else (),
        top=_whole("$top", given["$top"]) if "$top" in given else None,
        skip=_whole("$skip", given["$skip"]) if "$skip" in given else 0,
        count=count == "true",
        skiptoken=given.get("$skiptoken"),
        format=fmt,
    )


@dataclass(frozen=True)
class ResponseFormat:
    """How rows are written: metadata level and IEEE 754 compatibility (big numbers as text)."""

    metadata: Literal["minimal", "none"] = "minimal"
    ieee754: bool = False

    @property
    def content_type(self) -> str:
        """The Content-Type of a JSON response in this format."""
        ieee = "true" if self.ieee754 else "false"
        return (
            f"application/json;odata.metadata={self.metadata};odata.streaming=true;"
            f"IEEE754Compatible={ieee}"
        )


def response_format(accept: str | None, format_option: str | None) -> ResponseFormat:
    """The format asked for by ``$format`` (first) or the first JSON type in ``Accept``."""
    ranges = [format_option] if format_option else (accept or "").split(",")
    for media_range in ranges:
        parts = [p.strip().lower() for p in media_range.split(";")]
        if parts[0] not in ("application/json", "json", "*/*", "application/*"):
            continue
        params = dict(p.split("=", 1) for p in parts[1:] if "=" in p)
        metadata: Literal["minimal", "none"] = (
            "none" if params.get("odata.metadata") == "none" else "minimal"
        )
        return ResponseFormat(metadata, params.get("ieee754compatible") == "true")
    return ResponseFormat()


@dataclass(frozen=True)
class Plan:
    """The SQL of one page (and of the count), and how to page on."""

    rows_sql: str
    rows_params: list[Any]
    count_sql: str | None
    count_params: list[Any]
    order: tuple[OrderItem, ...]
    selected: tuple[str, ...]
    page_rows: int  # rows served on this page at most
    fetch_rows: int  # page_rows + 1 when a further page may follow
    top_left: int | None  # of $top, the rows still due after this page (None: no $top)


def _json_value(prop: Property, ieee754: bool, alias: str) -> str:
    column = f'{alias}."{prop.name}"'
    kind = prop.kind
    if kind == "datetime":
        return f"strftime({column}, '%Y-%m-%dT%H:%M:%S.%fZ')"
    if kind == "double":
        # JSON has no NaN or infinity; OData writes them as strings.
        return (
            f"CASE WHEN {column} IS NULL OR isfinite({column}) THEN to_json({column}) "
            f"WHEN isnan({column}) THEN '\"NaN\"'::JSON "
            f"WHEN {column} > 0 THEN '\"INF\"'::JSON ELSE '\"-INF\"'::JSON END"
        )
    if ieee754 and (kind == "decimal" or prop.edm_type == "Edm.Int64"):
        return f"CAST({column} AS VARCHAR)"
    return column


def _selected(entity_set: EntitySet, select: tuple[str, ...] | None) -> tuple[Property, ...]:
    if select is None or "*" in select:
        return entity_set.properties
    chosen: list[Property] = []
    for name in select:
        prop = entity_set.prop(name)
        if prop is None:
            raise bad_request(f"$select: {entity_set.name} has no property {name!r}")
        if prop not in chosen:
            chosen.append(prop)
    return tuple(chosen)


def _ordering(
    entity_set: EntitySet, orderby: tuple[tuple[str, bool], ...]
) -> tuple[OrderItem, ...]:
    order: list[OrderItem] = []
    for name, descending in orderby:
        prop = entity_set.prop(name)
        if prop is None:
            raise bad_request(f"$orderby: {entity_set.name} has no property {name!r}")
        if any(o.prop.name == name for o in order):
            raise bad_request(f"$orderby names {name} twice")
        order.append(OrderItem(prop, descending))
    # The key makes the order total, so pages neither repeat nor skip rows.
    for key in entity_set.key:
        if not any(o.prop.name == key for o in order):
            prop = entity_set.prop(key)
            assert prop is not None
            order.append(OrderItem(prop))
    return tuple(order)


def plan_query(
    entity_set: EntitySet,
    options: QueryOptions,
    scope: frozenset[int] | None,
    *,
    page_size: int,
    ieee754: bool = False,
    alias: str = "t",
) -> Plan:
    """The SQL for the page these options ask for, within the user's site scope."""
    selected = _selected(entity_set, options.select)
    order = _ordering(entity_set, options.orderby)
    where: list[str] = []
    params: list[Any] = []
    scoped, scope_params = scope_predicate(entity_set.site_rule, scope, alias)
    where.append(scoped)
    params += scope_params
    if options.filter is not None:
        compiled = compile_filter(options.filter, entity_set, alias)
        where.append(compiled.text)
        params += compiled.params
    count_where, count_params = list(where), list(params)
    offset = options.skip
    if options.skiptoken is not None:
        position = decode_position(options.skiptoken, order)
        after, after_params = after_sql(order, position, alias)
        where.append(after)
        params += after_params
        offset = 0  # the position already stands past the skipped rows
    page_rows = page_size if options.top is None else min(page_size, options.top)
    more_possible = options.top is None or options.top > page_rows
    fetch_rows = page_rows + 1 if more_possible else page_rows
    # The page is cut first (only the needed columns through the sort), and its JSON written
    # after: DuckDB would otherwise carry every row's JSON through the top-N.
    needed = list(dict.fromkeys([*(p.name for p in selected), *(o.prop.name for o in order)]))
    inner_columns = ", ".join(f'{alias}."{n}"' for n in needed)
    conditions = " AND ".join(f"({w})" for w in where)
    fields = ", ".join(f'"{p.name}" := {_json_value(p, ieee754, "p")}' for p in selected)
    order_columns = ", ".join(f'p."{o.prop.name}"' for o in order)
    rows_sql = (
        f"SELECT to_json(struct_pack({fields})) AS row_json, {order_columns} FROM ("  # noqa: S608 - names from the model
        f"SELECT {inner_columns} FROM {entity_set.source} AS {alias} WHERE {conditions} "
        f"ORDER BY {order_by_sql(order, alias)} LIMIT {int(fetch_rows)}"
        # $skip only on a first page; later pages start from the position instead.
        + (f" OFFSET {int(offset)}" if offset else "")
        + f") AS p ORDER BY {order_by_sql(order, 'p')}"
    )
    count_sql = None
    if options.count:
        count_conditions = " AND ".join(f"({w})" for w in count_where)
        count_sql = f"SELECT count(*) FROM {entity_set.source} AS {alias} WHERE {count_conditions}"  # noqa: S608 - names from the model
    return Plan(
        rows_sql=rows_sql,
        rows_params=params,
        count_sql=count_sql,
        count_params=count_params if options.count else [],
        order=order,
        selected=tuple(p.name for p in selected),
        page_rows=page_rows,
        fetch_rows=fetch_rows,
        top_left=None if options.top is None else options.top - page_rows,
    )
