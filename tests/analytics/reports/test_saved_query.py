"""A saved question as a report: a Cube-style query through the semantic model over a warehouse,
limited to the report's period, the recipient's sites and what the report's owner may read."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy.orm import Session, sessionmaker

from analytics.reports.conftest import Clock
from analytics.reports.mail import attachments, messages_to, sheet_rows
from analytics.reports.report_world import (
    BERLIN,
    FEB_END,
    FEB_START,
    RUN_AT,
    World,
    email_recipient,
)
from analytics.reports.report_world import definition as make_definition
from maintainpro.analytics.reports.data import RunParams, SourceError
from maintainpro.analytics.reports.records import ReportDefinition, ReportRun, RunStatus
from maintainpro.analytics.reports.runner import ReportJobs
from maintainpro.analytics.reports.saved_query import QueryNotAllowed, with_period
from maintainpro.analytics.reports.sources import checked_params, source_for
from maintainpro.analytics.semantic.load import answer
from maintainpro.analytics.semantic.model import default_model
from maintainpro.analytics.semantic.plan import Access
from maintainpro.analytics.warehouse import DuckDbWarehouse
from maintainpro.config import Settings
from maintainpro.core.users import ROLE_PERMISSIONS, Role, User
from peers import Inbox

QUERY: dict[str, Any] = {
    "measures": ["WorkOrders.count"],
    "dimensions": ["Assets.site"],
    "timeDimensions": [{"dimension": "WorkOrders.createdAt"}],
    "order": {"Assets.site": "asc"},
}
SITE_A_KEY = 1  # S1 in the synthetic plant


def params(settings: Settings, **options: Any) -> RunParams:
    """February in Berlin, all permissions."""
    title = "Work orders by site"
    return RunParams(FEB_START, FEB_END, BERLIN, RUN_AT, title, options, settings=settings)


def expected(settings: Settings, scope: frozenset[int] | None) -> list[tuple[str, int]]:
    """The semantic layer's own answer for February, asked directly."""
    with DuckDbWarehouse(settings.warehouse_path) as target:  # type: ignore[arg-type]
        result = answer(
            target.connection,
            default_model(),
            with_period(QUERY, FEB_START, FEB_END),
            Access(ROLE_PERMISSIONS[Role.ADMIN], scope),
            today=RUN_AT.date(),
        )
    return [(r["Assets.site"], r["WorkOrders.count"]) for r in result.body["data"]]


def test_the_answer_matches_the_semantic_layer_for_the_period_and_scope(
    db: Session, warehouse_settings: Settings
) -> None:
    source = source_for("saved_query")
    everyone = source.run(db, params(warehouse_settings, query=QUERY), None)
    rows = [tuple(r) for r in everyone.tables[0].rows]
    assert rows == expected(warehouse_settings, None)
    assert len(rows) > 1  # more than one site, or the scope test below proves nothing
    titles = [c.title for c in everyone.tables[0].columns]
    assert titles == ["Site", "Work orders"]
    total = next(f for f in everyone.summary if f.label.endswith("(total)"))
    assert total.value == sum(count for _, count in rows)
    site_a = source.run(db, params(warehouse_settings, query=QUERY), frozenset({SITE_A_KEY}))
    assert [tuple(r) for r in site_a.tables[0].rows] == expected(
        warehouse_settings, frozenset({SITE_A_KEY})
    )
    assert len(site_a.tables[0].rows) == 1
    # The whole warehouse (January to March) holds more than February.
    whole = source.run(db, params(warehouse_settings, query=QUERY, use_period=False), None)
    assert sum(r[1] for r in whole.tables[0].rows) > total.value  # type: ignore[misc,operator]


def test_a_site_recipient_gets_no_rows_of_a_cube_without_sites(
    db: Session, warehouse_settings: Settings
) -> None:
    spend = {"measures": ["Spend.lines"]}
    source = source_for("saved_query")
    data = source.run(db, params(warehouse_settings, query=spend), frozenset({SITE_A_KEY}))
    assert data.is_empty
    assert "no single site" in data.notes[-1]


@pytest.mark.parametrize(
    ("given", "problem"),
    [
        ({}, "needs a query"),
        ({"query": {"measures": ["Nope.count"]}}, "query:"),
        ({"query": "SELECT 1"}, "query:"),
        ({"query": QUERY, "chart": "pie"}, "chart must be"),
        ({"query": QUERY, "sql": "DROP TABLE x"}, "takes the options"),
    ],
)
def test_bad_saved_queries_are_refused(given: dict[str, Any], problem: str) -> None:
    with pytest.raises(SourceError, match=problem):
        checked_params("saved_query", given)


def test_a_report_reads_no_more_than_its_owner_may(
    session_factory: sessionmaker[Session],
    db: Session,
    world: World,
    warehouse_settings: Settings,
    smtp: tuple[Inbox, Settings],
) -> None:
    inbox, mail_settings = smtp
    settings = mail_settings.model_copy(
        update={"warehouse_path": warehouse_settings.warehouse_path}
    )
    question = {"query": QUERY, "chart": "bar"}
    report = make_definition(db, world, "saved_query", name="WO by site", params=question)
    email_recipient(db, report, user_id=world.manager_a)
    jobs = ReportJobs(session_factory, settings, clock=Clock(RUN_AT))
    jobs.run_now(report)
    xlsx = attachments(messages_to(inbox)["manager-a@plant.example"])["xlsx"][1]
    assert sheet_rows(xlsx, "WO by site")[1:] == [("S1", expected(settings, frozenset({1}))[0][1])]

    # Owned by a technician, a question about spend (procurement cubes) cannot run.
    technician = User(username="tech", role=Role.TECHNICIAN, password_hash="x")
    db.add(technician)
    db.commit()
    spend = ReportDefinition(
        name="Spend question",
        source="saved_query",
        params=checked_params("saved_query", {"query": {"measures": ["Spend.lines"]}}),
        formats=["pdf"],
        owner_id=technician.id,
    )
    db.add(spend)
    db.commit()
    email_recipient(db, spend.id, address="hq@plant.example")
    run_id = jobs.run_now(spend.id)
    with session_factory() as session:
        run = session.get(ReportRun, run_id)
        assert run is not None
        assert run.status is RunStatus.FAILED  # permanent: retrying would not change it
        assert "hq@plant.example" not in messages_to(inbox)
    technicians = RunParams(
        FEB_START,
        FEB_END,
        BERLIN,
        RUN_AT,
        "Spend",
        {"query": {"measures": ["Spend.lines"]}},
        settings=settings,
        permissions=ROLE_PERMISSIONS[Role.TECHNICIAN],
    )
    with pytest.raises(QueryNotAllowed):
        source_for("saved_query").run(db, technicians, None)
