"""$filter: parsing, type checks and the SQL it compiles to (pure), and fuzzing that no text,
however hostile, gets past an OData error or produces SQL outside the entity's columns."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import duckdb
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from maintainpro.analytics import schema
from maintainpro.analytics.odata.errors import ODataError
from maintainpro.analytics.odata.feed import read_page
from maintainpro.analytics.odata.filter_parser import (
    Call,
    Compare,
    In,
    Lit,
    Logical,
    Not,
    Prop,
    parse_filter,
)
from maintainpro.analytics.odata.filter_sql import compile_filter
from maintainpro.analytics.odata.model import EntitySet, entity_sets
from maintainpro.analytics.odata.paging import CursorStore
from maintainpro.analytics.odata.query import ResponseFormat, parse_options

SETS = entity_sets()
ASSET = SETS["dim_asset"]
ALERT = SETS["fact_alert"]
PO_LINE = SETS["fact_po_line"]


def test_precedence_follows_the_spec() -> None:
    tree = parse_filter("a eq 1 or b eq 2 and not c")
    assert tree == Logical(
        "or",
        Compare("eq", Prop("a"), Lit(1, "int")),
        Logical("and", Compare("eq", Prop("b"), Lit(2, "int")), Not(Prop("c"))),
    )
    assert parse_filter("(a eq 1 or b eq 2) and c") == Logical(
        "and",
        Logical(
            "or", Compare("eq", Prop("a"), Lit(1, "int")), Compare("eq", Prop("b"), Lit(2, "int"))
        ),
        Prop("c"),
    )


@pytest.mark.parametrize(
    ("text", "literal"),
    [
        ("null", Lit(None, "null")),
        ("true", Lit(True, "bool")),
        ("-42", Lit(-42, "int")),
        ("9223372036854775807", Lit(2**63 - 1, "int")),
        ("9223372036854775808", Lit(9.223372036854776e18, "double")),
        ("12.50", Lit(Decimal("12.50"), "decimal")),
        ("1e3", Lit(1000.0, "double")),
        ("'it''s'", Lit("it's", "string")),
        ("2026-01-05", Lit(dt.date(2026, 1, 5), "date")),
        ("2026-01-05T10:30:00Z", Lit(dt.datetime(2026, 1, 5, 10, 30), "datetime")),
        (
            "2026-01-05T10:30:00.1234567+01:00",
            Lit(dt.datetime(2026, 1, 5, 9, 30, 0, 123456), "datetime"),
        ),
        # "+" sent unencoded arrives as a space.
        ("2026-01-05T10:30 01:00", Lit(dt.datetime(2026, 1, 5, 9, 30), "datetime")),
        ("2026-01-05T00:30-02:00", Lit(dt.datetime(2026, 1, 5, 2, 30), "datetime")),
    ],
)
def test_literals(text: str, literal: Lit) -> None:
    assert parse_filter(f"x eq {text}") == Compare("eq", Prop("x"), literal)


def test_functions_and_in_lists() -> None:
    assert parse_filter("contains(tolower(name),'pump')") == Call(
        "contains", (Call("tolower", (Prop("name"),)), Lit("pump", "string"))
    )
    assert parse_filter("status in ('open', null)") == In(
        Prop("status"), (Lit("open", "string"), Lit(None, "null"))
    )


@pytest.mark.parametrize(
    "text",
    [
        "",
        "   ",
        "name eq",
        "eq 1",
        "name eq 'open",
        "name eq 1 1",
        "(name eq 1",
        "name eq 1)",
        "name eq 2026-13-01",
        "name eq 2026-01-05T25:00:00Z",
        "name eq 1e999",
        "name == 1",
        'name eq "x"',
        "name eq 1; drop table x",
        "a in ()",
        "a in (b)",
        "not" * 50,
        "(" * 50 + "true" + ")" * 50,
        " or ".join(["a eq 1"] * 500),
        "x" * 5000,
    ],
)
def test_malformed_filters_are_400(text: str) -> None:
    with pytest.raises(ODataError) as raised:
        compile_filter(text, ASSET)
    assert raised.value.status == 400
    assert "drop table" not in raised.value.message


@pytest.mark.parametrize(
    "text",
    [
        "nosuch eq 1",
        "tag eq 1",
        "tag gt true",
        "asset_key eq 'x'",
        "tag",
        "tag and true",
        "not tag",
        "contains(asset_key, '1')",
        "year(tag) eq 2026",
        "hour(install_date) eq 1",
        "nosuchfunction(tag) eq 1",
        "contains(tag) eq true",
        "tag gt null",
        "tag in (1, 2)",
        "null in (1)",
        "read_csv('x') eq 1",
    ],
)
def test_ill_typed_filters_are_400(text: str) -> None:
    with pytest.raises(ODataError) as raised:
        compile_filter(text, ASSET)
    assert raised.value.status == 400


def test_comparisons_compile_to_parameters_with_odata_null_semantics() -> None:
    sql = compile_filter("tag eq 'P-1' and manufacturer ne 'ACME' or site_key eq null", ASSET)
    assert sql.text == (
        '(((t."tag" = CAST(? AS VARCHAR)) AND (t."manufacturer" IS DISTINCT FROM '
        'CAST(? AS VARCHAR))) OR (t."site_key" IS NULL))'
    )
    assert sql.params == ("P-1", "ACME")
    negated = compile_filter("not (install_date lt 2020-01-01)", ASSET)
    assert negated.text.startswith("(NOT coalesce(")
    assert negated.params == (dt.date(2020, 1, 1),)


@pytest.fixture(scope="module")
def warehouse() -> Iterator[duckdb.DuckDBPyConnection]:
    """An in-memory warehouse with a few assets, alerts and order lines, nulls included."""
    connection = duckdb.connect()
    for table in schema.TABLES.values():
        connection.execute(table.ddl())
    connection.execute(
        "INSERT INTO dim_asset (asset_key, tag, name, site_key, manufacturer, install_date) VALUES "
        "(1, 'P-1', 'Pump', 1, 'ACME', DATE '2020-05-01'), (2, 'M-1', 'Motor', 1, NULL, NULL), "
        "(3, 'P-2', 'Pump two', 2, 'Other', DATE '2024-01-01')"
    )
    connection.execute(
        "INSERT INTO fact_alert (alert_key, site_key, severity, raised_at, minutes_to_clear) "
        "VALUES (1, 1, 'high', TIMESTAMP '2026-01-05 10:00', 12.5), "
        "(2, 2, NULL, TIMESTAMP '2026-02-01 00:00', 'nan'::DOUBLE), (3, 1, 'low', NULL, NULL)"
    )
    connection.execute(
        "INSERT INTO fact_po_line (po_line_key, line_total, quantity, need_by) VALUES "
        "(1, 25.0000, 2.000, DATE '2026-01-06'), (2, NULL, 1.5, NULL)"
    )
    yield connection
    connection.close()


def matching(connection: duckdb.DuckDBPyConnection, entity_set: EntitySet, text: str) -> list[Any]:
    """The keys of the rows a filter keeps (no site scope)."""
    sql = compile_filter(text, entity_set)
    key = entity_set.key[0]
    rows = connection.execute(
        f'SELECT t."{key}" FROM {entity_set.source} AS t WHERE {sql.text} ORDER BY 1',  # noqa: S608
        list(sql.params),
    ).fetchall()
    return [r[0] for r in rows]


@pytest.mark.parametrize(
    ("entity_set", "text", "keys"),
    [
        (ASSET, "tag eq 'P-1'", [1]),
        (ASSET, "manufacturer ne 'ACME'", [2, 3]),  # null ne 'ACME' is true
        (ASSET, "not (manufacturer eq 'ACME')", [2, 3]),
        (ASSET, "manufacturer eq null", [2]),
        (ASSET, "not (install_date lt 2021-01-01)", [2, 3]),  # a null comparison is false
        (ASSET, "startswith(tag,'P') and not endswith(name,'two')", [1]),
        (ASSET, "contains(tolower(name),'pump')", [1, 3]),
        (ASSET, "indexof(tag,'-') eq 1 and length(tag) eq 3", [1, 2, 3]),
        (ASSET, "tag in ('M-1', 'P-2', null)", [2, 3]),
        (ASSET, "year(install_date) ge 2024 or install_date eq null", [2, 3]),
        (ASSET, "site_key eq 1 and (asset_key gt 1 or tag eq 'P-1')", [1, 2]),
        (ASSET, "concat(tag, name) eq 'P-1Pump'", [1]),
        (ALERT, "raised_at ge 2026-01-05T11:00:00+01:00 and raised_at lt 2026-02-01", [1]),
        (ALERT, "date(raised_at) eq 2026-02-01 and hour(raised_at) eq 0", [2]),
        (ALERT, "minutes_to_clear gt 12 and round(minutes_to_clear) le 13", [1]),
        (ALERT, "severity ne 'high'", [2, 3]),
        (PO_LINE, "line_total eq 25 and quantity gt 1.999", [1]),
        (PO_LINE, "line_total eq 25.0 or need_by eq null", [1, 2]),
        (PO_LINE, "floor(quantity) eq 1", [2]),
        (PO_LINE, "true", [1, 2]),
        (PO_LINE, "null eq null and not false", [1, 2]),
    ],
)
def test_filters_keep_the_rows_odata_says(
    warehouse: duckdb.DuckDBPyConnection, entity_set: EntitySet, text: str, keys: list[int]
) -> None:
    assert matching(warehouse, entity_set, text) == keys


# --------------------------------------------------------------------------- fuzzing

_FIXED_WORDS = {
    "t", "CAST", "AS", "AND", "OR", "NOT", "IS", "NULL", "DISTINCT", "FROM", "IN", "TRUE",
    "FALSE", "coalesce", "false", "contains", "starts_with", "ends_with", "lower", "upper",
    "trim", "length", "strpos", "year", "month", "day", "hour", "minute", "second", "DATE",
    "round", "floor", "ceil", "BOOLEAN", "BIGINT", "DECIMAL", "DOUBLE", "VARCHAR", "TIMESTAMP",
}  # fmt: skip


def assert_whitelisted(sql: str, entity_set: EntitySet) -> None:
    """Only the set's own column names, fixed words and placeholders: no client text."""
    columns = set(re.findall(r'"([^"]*)"', sql))
    assert columns <= {p.name for p in entity_set.properties}
    rest = re.sub(r'"[^"]*"', "", sql)
    assert "'" not in rest
    assert ";" not in rest
    assert "--" not in rest
    assert "/*" not in rest
    assert set(re.findall(r"[A-Za-z_][A-Za-z0-9_]*", rest)) <= _FIXED_WORDS
    assert set(re.findall(r"\d+", rest)) <= {"38", "18", "1"}


def serve(connection: duckdb.DuckDBPyConnection, entity_set: EntitySet, text: str) -> int:
    """Serve a page with this filter for a site-1 user; the HTTP status it would answer."""
    refused: ODataError | None = None
    try:
        compiled = compile_filter(text, entity_set)
        assert_whitelisted(compiled.text, entity_set)
        read_page(
            connection,
            entity_set,
            parse_options([("$filter", text), ("$count", "true")]),
            frozenset({1}),
            page_size=2,
            response=ResponseFormat(),
            service_root="http://x/odata/",
            user_id=1,
            cursors=CursorStore(),
        )
    except ODataError as error:
        refused = error
    return 200 if refused is None else refused.status


_PROPS = st.sampled_from(
    ["tag", "name", "asset_key", "site_key", "install_date", "manufacturer", "severity",
     "raised_at", "minutes_to_clear", "line_total", "quantity", "need_by", "nosuch", "t", "1x"]
)  # fmt: skip
_LITERALS = st.one_of(
    st.sampled_from(["null", "true", "false", "2026-01-05", "2026-01-05T10:00:00Z", "1e308"]),
    st.integers(min_value=-(2**70), max_value=2**70).map(str),
    st.decimals(allow_nan=False, allow_infinity=False, places=4).map(str),
    st.floats(allow_nan=False, allow_infinity=False).map(repr),
    st.text(max_size=12).map(lambda s: "'" + s.replace("'", "''") + "'"),
)
_FUNCTIONS = st.sampled_from(
    ["contains", "startswith", "endswith", "tolower", "toupper", "trim", "length", "indexof",
     "concat", "year", "month", "day", "hour", "minute", "second", "date", "round", "floor",
     "ceiling", "substringof", "read_csv", "now"]
)  # fmt: skip
_OPS = st.sampled_from(["eq", "ne", "gt", "ge", "lt", "le", "and", "or", "in", "EQ", "Or"])


def _expressions() -> st.SearchStrategy[str]:
    leaves = st.one_of(_PROPS, _LITERALS)

    def extend(children: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
        return st.one_of(
            st.tuples(children, _OPS, children).map(" ".join),
            children.map(lambda c: f"not {c}"),
            children.map(lambda c: f"({c})"),
            st.tuples(_FUNCTIONS, st.lists(children, max_size=3)).map(
                lambda f: f"{f[0]}({','.join(f[1])})"
            ),
            st.tuples(children, st.lists(_LITERALS, min_size=1, max_size=4)).map(
                lambda i: f"{i[0]} in ({','.join(i[1])})"
            ),
        )

    return st.recursive(leaves, extend, max_leaves=12)


_FUZZ = settings(
    max_examples=400, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


@_FUZZ
@given(text=st.text(max_size=200), entity=st.sampled_from([ASSET, ALERT, PO_LINE]))
def test_arbitrary_text_never_escapes_as_anything_but_an_odata_error(
    warehouse: duckdb.DuckDBPyConnection, text: str, entity: EntitySet
) -> None:
    assert serve(warehouse, entity, text) in (200, 400)


@_FUZZ
@given(text=_expressions(), entity=st.sampled_from([ASSET, ALERT, PO_LINE]))
def test_generated_expressions_compile_to_whitelisted_sql_or_an_odata_error(
    warehouse: duckdb.DuckDBPyConnection, text: str, entity: EntitySet
) -> None:
    assert serve(warehouse, entity, text) in (200, 400)
