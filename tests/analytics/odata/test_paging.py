"""System query options, keyset positions and next links (pure, plus DuckDB for the ordering)."""

from __future__ import annotations

import datetime as dt
import json
import math
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import duckdb
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from maintainpro.analytics.odata.errors import ODataError
from maintainpro.analytics.odata.feed import read_page
from maintainpro.analytics.odata.model import EntitySet, Property, entity_sets
from maintainpro.analytics.odata.paging import (
    MAX_URL_LENGTH,
    CursorStore,
    OrderItem,
    after_sql,
    decode_position,
    encode_position,
    next_link,
    order_by_sql,
    unpack_token,
)
from maintainpro.analytics.odata.query import (
    ResponseFormat,
    parse_options,
    plan_query,
    response_format,
)
from maintainpro.analytics.schema import DATE, F64, I64, MONEY, STR, TS

SETS = entity_sets()


def test_options_are_read_and_checked() -> None:
    options = parse_options(
        [
            ("$select", "tag, name"),
            ("$filter", "tag eq 'x'"),
            ("$orderby", "name desc,tag"),
            ("$top", "5"),
            ("$skip", "10"),
            ("$count", "true"),
            ("$format", "application/json;odata.metadata=minimal"),
            ("custom", "ignored"),
        ]
    )
    assert options.select == ("tag", "name")
    assert options.orderby == (("name", True), ("tag", False))
    assert (options.top, options.skip, options.count) == (5, 10, True)
    assert "custom" not in options.given
    assert parse_options([("$COUNT", "TRUE")]).count  # 4.01: case-insensitive names


@pytest.mark.parametrize(
    ("pairs", "status"),
    [
        ([("$top", "-1")], 400),
        ([("$top", "1.5")], 400),
        ([("$skip", "2147483648")], 400),
        ([("$count", "1")], 400),
        ([("$select", "a b")], 400),
        ([("$select", "")], 400),
        ([("$orderby", "a up")], 400),
        ([("$orderby", ",".join(["a"] * 17))], 400),
        ([("$filter", "")], 400),
        ([("$filter", "x" * 5000)], 400),
        ([("$top", "1"), ("$TOP", "2")], 400),
        ([("$nope", "1")], 400),
        ([("$expand", "x")], 501),
        ([("$search", "x")], 501),
        ([("$apply", "groupby((a))")], 501),
        ([("$format", "atom")], 406),
    ],
)
def test_bad_options_are_refused(pairs: list[tuple[str, str]], status: int) -> None:
    with pytest.raises(ODataError) as raised:
        parse_options(pairs)
    assert raised.value.status == status


def test_response_format_from_accept_or_format() -> None:
    assert response_format(None, None) == ResponseFormat("minimal", False)
    power_bi = (
        "application/json;odata.metadata=minimal;q=1.0,application/json;odata=minimalmetadata;"
        "q=0.9,application/atomsvc+xml;q=0.8,application/xml;q=0.7,text/plain;q=0.7"
    )
    assert response_format(power_bi, None) == ResponseFormat("minimal", False)
    assert response_format("application/json;IEEE754Compatible=true", None).ieee754
    assert response_format("text/html", "json;odata.metadata=none").metadata == "none"


def _prop(name: str, type_: Any, key: bool = False) -> Property:
    return Property(name, type_, "", key)


@pytest.mark.parametrize(
    ("prop", "value"),
    [
        (_prop("i", I64), 2**62),
        (_prop("s", STR), "é'\"\\"),
        (_prop("m", MONEY), Decimal("12.3400")),
        (_prop("d", DATE), dt.date(2026, 1, 5)),
        (_prop("t", TS), dt.datetime(2026, 1, 5, 10, 0, 0, 123456)),
        (_prop("f", F64), 0.1),
        (_prop("f", F64), math.inf),
        (_prop("s", STR), None),
    ],
)
def test_positions_round_trip(prop: Property, value: Any) -> None:
    order = [OrderItem(prop), OrderItem(_prop("k", I64, key=True))]
    assert decode_position(encode_position([value, 7]), order) == [value, 7]


@pytest.mark.parametrize(
    "token",
    [
        "k.",
        "k.!!!",
        "k.bnVsbA",  # null
        "k.WzFd",  # [1]: one value for two columns
        "k.WyJ4IiwxXQ",  # ["x",1]: text for an integer column
        "x.WzEsMV0",
        "k." + "A" * 5000,
    ],
)
def test_bad_positions_are_400(token: str) -> None:
    order = [OrderItem(_prop("a", I64)), OrderItem(_prop("k", I64, key=True))]
    with pytest.raises(ODataError) as raised:
        decode_position(token, order)
    assert raised.value.status == 400


ROWS = [
    (1, None, 5.0),
    (2, "b", 1.0),
    (3, "a", None),
    (4, "b", 1.0),
    (5, None, None),
    (6, "a", 2.0),
    (7, "c", float("nan")),
]


@pytest.fixture(scope="module")
def table() -> duckdb.DuckDBPyConnection:
    """A small table with nulls and ties in both ordering columns."""
    connection = duckdb.connect()
    connection.execute("CREATE TABLE r (k BIGINT, s VARCHAR, f DOUBLE)")
    connection.executemany("INSERT INTO r VALUES (?, ?, ?)", ROWS)
    return connection


@settings(max_examples=60, deadline=None)
@given(
    s_desc=st.booleans(),
    f_desc=st.booleans(),
    f_first=st.booleans(),
    page=st.integers(min_value=1, max_value=3),
)
def test_keyset_pages_equal_one_ordered_read(
    table: duckdb.DuckDBPyConnection, s_desc: bool, f_desc: bool, f_first: bool, page: int
) -> None:
    items = [OrderItem(_prop("s", STR), s_desc), OrderItem(_prop("f", F64), f_desc)]
    if f_first:
        items.reverse()
    order = [*items, OrderItem(_prop("k", I64, key=True))]
    columns = ", ".join(f't."{o.prop.name}"' for o in order)
    whole = [
        r[0]
        for r in table.execute(f"SELECT t.k FROM r AS t ORDER BY {order_by_sql(order)}").fetchall()  # noqa: S608
    ]
    walked: list[int] = []
    where, params = "TRUE", []
    while True:
        rows = table.execute(
            f"SELECT t.k, {columns} FROM r AS t WHERE {where} "  # noqa: S608
            f"ORDER BY {order_by_sql(order)} LIMIT {page}",
            params,
        ).fetchall()
        walked += [r[0] for r in rows]
        if len(rows) < page:
            break
        position = decode_position(encode_position(rows[-1][1:]), order)
        where, params = after_sql(order, position)
    assert walked == whole


def test_next_links_stay_under_2048_characters() -> None:
    cursors = CursorStore()
    base = "https://bi.example/odata/fact_sensor_hour"
    position = encode_position([1, "2026-01-05T00:00:00"])
    short = next_link(
        base, {"$filter": "unit eq 'bar'"}, position, user_id=1, entity_set="f", cursors=cursors
    )
    assert short == f"{base}?$filter=unit%20eq%20'bar'&$skiptoken={position}"
    # A long but repetitive filter travels compressed in the token.
    repetitive = " or ".join(f"sensor_key eq {n}" for n in range(150))
    packed = next_link(
        base, {"$filter": repetitive}, position, user_id=1, entity_set="f", cursors=cursors
    )
    assert len(packed) <= MAX_URL_LENGTH
    token = dict(parse_qsl(urlsplit(packed).query))["$skiptoken"]
    assert token.startswith("z.")
    assert unpack_token(token, user_id=2, entity_set="f", cursors=cursors) == {
        "$filter": repetitive,
        "$skiptoken": position,
    }
    # One that does not compress is kept on the server, for the same user and set only.
    noise = "tag in (" + ",".join(f"'{n * 7919 % 104729:x}{n}'" for n in range(300)) + ")"
    kept = next_link(base, {"$filter": noise}, position, user_id=1, entity_set="f", cursors=cursors)
    assert len(kept) <= MAX_URL_LENGTH
    cursor = dict(parse_qsl(urlsplit(kept).query))["$skiptoken"]
    assert cursor.startswith("c.")
    restored = unpack_token(cursor, user_id=1, entity_set="f", cursors=cursors)
    assert restored == {"$filter": noise, "$skiptoken": position}
    for user_id, entity_set in ((2, "f"), (1, "other")):
        with pytest.raises(ODataError):
            unpack_token(cursor, user_id=user_id, entity_set=entity_set, cursors=cursors)
    assert unpack_token(position, user_id=1, entity_set="f", cursors=cursors) is None


def test_cursors_expire_and_the_store_is_bounded() -> None:
    cursors = CursorStore(ttl_s=-1.0, capacity=2)
    cursor = cursors.put(1, "f", {"$filter": "x"})
    assert cursors.get(1, "f", cursor) is None
    bounded = CursorStore(capacity=2)
    first = bounded.put(1, "f", {})
    bounded.put(1, "f", {})
    bounded.put(1, "f", {})
    assert bounded.get(1, "f", first) is None


@pytest.mark.parametrize("token", ["z.!!!", "z.eJxLTEoGAAJNASc", "c.", "z." + "A" * 5000])
def test_bad_packed_tokens_are_400(token: str) -> None:
    with pytest.raises(ODataError) as raised:
        unpack_token(token, user_id=1, entity_set="f", cursors=CursorStore())
    assert raised.value.status == 400


def _sensor_warehouse() -> tuple[duckdb.DuckDBPyConnection, EntitySet]:
    from maintainpro.analytics import schema

    connection = duckdb.connect()
    for t in schema.TABLES.values():
        connection.execute(t.ddl())
    connection.execute(
        "INSERT INTO fact_sensor_hour (sensor_key, site_key, hour_start, value_avg, unit) "
        "SELECT i % 4, 1 + i % 2, TIMESTAMP '2026-01-01' + INTERVAL (i) HOUR, i % 5, 'bar' "
        "FROM range(23) r(i)"
    )
    return connection, SETS["fact_sensor_hour"]


def test_top_and_skip_page_through_the_same_order() -> None:
    connection, entity_set = _sensor_warehouse()
    cursors = CursorStore()

    def page(pairs: list[tuple[str, str]], size: int) -> dict[str, Any]:
        served = read_page(
            connection,
            entity_set,
            parse_options(pairs),
            None,
            page_size=size,
            response=ResponseFormat(),
            service_root="http://x/odata/",
            user_id=1,
            cursors=cursors,
        )
        body: dict[str, Any] = json.loads(served.body)
        return body

    whole = page([("$orderby", "value_avg desc")], 100)["value"]
    collected: list[Any] = []
    pairs = [("$orderby", "value_avg desc"), ("$skip", "3"), ("$top", "11"), ("$count", "true")]
    while True:
        body = page(pairs, 4)
        assert body["@odata.count"] == 23
        collected += body["value"]
        if "@odata.nextLink" not in body:
            break
        query = urlsplit(body["@odata.nextLink"]).query
        assert "$skip=" not in query
        pairs = parse_qsl(query)
    assert collected == whole[3:14]


def test_a_plan_selects_only_what_it_needs_and_scopes_first() -> None:
    entity_set = SETS["fact_sensor_hour"]
    plan = plan_query(
        entity_set,
        parse_options([("$select", "value_avg"), ("$filter", "unit eq 'bar'")]),
        frozenset({7}),
        page_size=10,
    )
    assert plan.rows_params == [7, "bar"]
    assert '"value_avg" := ' in plan.rows_sql
    assert '"unit" :=' not in plan.rows_sql
    assert plan.rows_sql.index('"t"."site_key" IN (?)') < plan.rows_sql.index('t."unit" =')
    assert plan.fetch_rows == 11
    assert [o.prop.name for o in plan.order] == ["sensor_key", "hour_start"]
