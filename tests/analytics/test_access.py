"""Row-level security by site and the access record, shared by every BI channel (pure, plus
DuckDB to run the predicates; the record on SQLite and PostgreSQL)."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable

import duckdb
import pytest
from sqlalchemy.orm import Session, sessionmaker

from maintainpro.analytics import schema
from maintainpro.analytics.access import (
    ALL_SITES_ONLY,
    BY_SITE_KEY,
    SHARED,
    AccessEvent,
    AccessLedger,
    access_ledger,
    can_read,
    record_access,
    rule_for,
    scope_predicate,
    site_scope,
)
from maintainpro.core.users import Role, User


def test_a_user_of_a_site_sees_that_site_and_a_user_of_none_sees_all() -> None:
    assert site_scope(User(username="a", role=Role.ANALYST, site_id=4)) == frozenset({4})
    assert site_scope(User(username="b", role=Role.ANALYST, site_id=None)) is None
    # The site binds administrators too: RLS is by site, not by role.
    assert site_scope(User(username="c", role=Role.ADMIN, site_id=2)) == frozenset({2})


def test_rules_follow_the_tables() -> None:
    assert rule_for(schema.FACT_SENSOR_HOUR) == BY_SITE_KEY
    assert rule_for(schema.DIM_SITE) == BY_SITE_KEY
    assert rule_for(schema.DIM_DATE) == SHARED
    assert rule_for(schema.DIM_CURRENCY) == SHARED
    assert rule_for(schema.FACT_SPEND) == ALL_SITES_ONLY
    assert rule_for(schema.DIM_SUPPLIER) == ALL_SITES_ONLY
    via = rule_for(schema.FACT_WORK_ORDER_STATUS).via
    assert via == ("work_order_key", "fact_work_order", "work_order_key")
    for table in (*schema.DIMENSIONS, *schema.FACTS):
        rule = rule_for(table)
        # A table with a site column is never shared or closed to site users.
        assert ("site_key" in table.column_names) == (rule.column == "site_key")
    assert can_read(ALL_SITES_ONLY, None)
    assert not can_read(ALL_SITES_ONLY, frozenset({1}))
    assert can_read(SHARED, frozenset({1}))


@pytest.fixture
def warehouse() -> duckdb.DuckDBPyConnection:
    """Work orders and their status rows on sites 1 and 2 (and one without a site)."""
    connection = duckdb.connect()
    for table in schema.TABLES.values():
        connection.execute(table.ddl())
    connection.execute(
        "INSERT INTO fact_work_order (work_order_key, site_key) VALUES (1, 1), (2, 2), (3, NULL)"
    )
    connection.execute(
        "INSERT INTO fact_work_order_status (work_order_key, seq) "
        "VALUES (1, 0), (1, 1), (2, 0), (3, 0)"
    )
    connection.execute("INSERT INTO fact_spend (invoice_line_key) VALUES (1)")
    connection.execute("INSERT INTO dim_date (date_key) VALUES (20260105)")
    return connection


@pytest.mark.parametrize(
    ("table", "scope", "expected"),
    [
        (schema.FACT_WORK_ORDER, None, 3),
        (schema.FACT_WORK_ORDER, frozenset({1}), 1),
        (schema.FACT_WORK_ORDER, frozenset({1, 2}), 2),
        (schema.FACT_WORK_ORDER, frozenset(), 0),
        (schema.FACT_WORK_ORDER_STATUS, frozenset({1}), 2),
        (schema.FACT_WORK_ORDER_STATUS, frozenset({2}), 1),
        (schema.FACT_WORK_ORDER_STATUS, None, 4),
        (schema.FACT_SPEND, frozenset({1}), 0),
        (schema.FACT_SPEND, None, 1),
        (schema.DIM_DATE, frozenset({1}), 1),
    ],
)
def test_predicates_keep_the_scopes_rows(
    warehouse: duckdb.DuckDBPyConnection,
    table: schema.WarehouseTable,
    scope: frozenset[int] | None,
    expected: int,
) -> None:
    predicate, params = scope_predicate(rule_for(table), scope, alias="w")
    assert "?" not in predicate or params
    found = warehouse.execute(
        f"SELECT count(*) FROM {table.name} AS w WHERE {predicate}",  # noqa: S608 - schema names
        params,
    ).fetchone()
    assert found == (expected,)


def test_predicates_take_no_identifier_from_outside() -> None:
    with pytest.raises(ValueError, match="identifier"):
        scope_predicate(BY_SITE_KEY, frozenset({1}), alias='t" OR 1=1 --')


def _event(**fields: object) -> AccessEvent:
    base: dict[str, object] = {
        "channel": "odata",
        "dataset": "fact_alert",
        "user_id": None,
        "username": None,
        "credential_id": 3,
        "credential_name": "power bi",
        "options": {"$filter": "x eq 1"},
        "rows": 10,
        "duration_ms": 12.5,
        "status": 200,
    }
    base.update(fields)
    return AccessEvent(**base)  # type: ignore[arg-type]


def test_the_ledger_counts_per_connection(
    caplog: pytest.LogCaptureFixture,
    session_factory: sessionmaker[Session],
    make_user: Callable[..., tuple[User, str]],
) -> None:
    ana, _ = make_user(Role.ANALYST, "ana")
    me = {"user_id": ana.id, "username": "ana"}
    ledger = AccessLedger(session_factory)
    t0 = dt.datetime(2026, 1, 5, tzinfo=dt.UTC)
    caplog.set_level(logging.INFO, logger="maintainpro.analytics.access")
    record_access(ledger, _event(at=t0, **me))
    record_access(ledger, _event(at=t0 + dt.timedelta(minutes=1), rows=5, **me))
    record_access(
        ledger,
        _event(at=t0 + dt.timedelta(minutes=2), rows=0, status=400, error="bad $filter", **me),
    )
    record_access(ledger, _event(at=t0, credential_id=4, credential_name="excel", **me))
    record_access(ledger, _event(at=t0, status=401))
    record_access(ledger, _event(at=t0, channel="files", **me))
    odata = ledger.connections("odata")
    assert [(s.credential_name, s.requests) for s in odata] == [("power bi", 3), ("excel", 1)]
    power_bi = odata[0]
    assert (power_bi.rows_served, power_bi.errors) == (15, 1)
    assert (power_bi.last_error, power_bi.last_status) == ("bad $filter", 400)
    assert power_bi.last_error_at == t0 + dt.timedelta(minutes=2)
    assert power_bi.first_access == t0
    assert power_bi.last_access == t0 + dt.timedelta(minutes=2)
    assert len(ledger.connections()) == 3
    lines = [r for r in caplog.records if r.getMessage() == "bi feed access"]
    assert len(lines) == 6  # anonymous refusals are logged and stored, not a connection
    assert lines[0].__dict__["credential_name"] == "power bi"
    assert lines[4].__dict__["outcome"] == "error"
    ledger.close()


def test_long_options_are_clipped_in_the_log(
    caplog: pytest.LogCaptureFixture, session_factory: sessionmaker[Session]
) -> None:
    caplog.set_level(logging.INFO, logger="maintainpro.analytics.access")
    ledger = AccessLedger(session_factory)
    record_access(ledger, _event(options={"$filter": "x" * 5000}))
    logged = caplog.records[-1].__dict__["options"]["$filter"]
    assert len(logged) < 600
    ledger.close()


def test_the_ledger_lives_on_the_app_state(session_factory: sessionmaker[Session]) -> None:
    class State:
        pass

    state = State()
    state.session_factory = session_factory  # type: ignore[attr-defined]
    assert access_ledger(state) is access_ledger(state)
