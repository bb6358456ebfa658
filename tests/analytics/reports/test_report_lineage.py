"""Report runs emit OpenLineage events like ETL jobs and exports: START, then COMPLETE or FAIL."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy.orm import Session, sessionmaker

from analytics.openlineage_spec import check_event, events_in
from analytics.reports.conftest import Clock
from analytics.reports.report_world import RUN_AT, World, definition, email_recipient
from maintainpro.analytics.reports.lineage import JOB_PREFIX
from maintainpro.analytics.reports.records import RunStatus
from maintainpro.analytics.reports.runner import ReportJobs
from maintainpro.config import Settings
from peers import Inbox, free_port


def _report_events(path: Path) -> list[dict[str, object]]:
    return [e for e in events_in(path) if str(e["job"]["name"]).startswith(JOB_PREFIX)]  # type: ignore[index]


def test_a_delivered_report_emits_start_and_complete(
    session_factory: sessionmaker[Session],
    db: Session,
    world: World,
    smtp: tuple[Inbox, Settings],
    tmp_path: Path,
) -> None:
    inbox, settings = smtp
    lineage = tmp_path / "lineage.jsonl"
    configured = settings.model_copy(
        update={"warehouse_path": tmp_path / "w.duckdb", "lineage_file": lineage}
    )
    report = definition(db, world, "backlog", name="Backlog")
    email_recipient(db, report, address="hq@plant.example")
    jobs = ReportJobs(session_factory, configured, clock=Clock(RUN_AT))
    jobs.run_now(report)
    assert inbox.messages

    events = _report_events(lineage)
    assert [e["eventType"] for e in events] == ["START", "COMPLETE"]
    assert events[0]["run"]["runId"] == events[1]["run"]["runId"]  # type: ignore[index]
    assert events[1]["outputs"][0]["outputFacets"]["outputStatistics"]["size"] > 0  # type: ignore[index]
    for event in events:
        check_event(event)


def test_a_failed_attempt_emits_fail_with_the_reason(
    session_factory: sessionmaker[Session],
    db: Session,
    world: World,
    settings: Settings,
    tmp_path: Path,
) -> None:
    lineage = tmp_path / "lineage.jsonl"
    # Nobody listens on the SMTP port, so the attempt fails and waits for a retry.
    down = settings.model_copy(
        update={
            "smtp_host": "127.0.0.1",
            "smtp_port": free_port(),
            "smtp_starttls": False,
            "warehouse_path": tmp_path / "w.duckdb",
            "lineage_file": lineage,
        }
    )
    report = definition(db, world, "backlog", name="Backlog")
    email_recipient(db, report, address="hq@plant.example")
    jobs = ReportJobs(session_factory, down, clock=Clock(RUN_AT))
    run_id = jobs.run_now(report)
    assert jobs.wait_finished(run_id, 5) is RunStatus.RETRYING

    start, fail = _report_events(lineage)
    assert (start["eventType"], fail["eventType"]) == ("START", "FAIL")
    message = fail["run"]["facets"]["errorMessage"]["message"]  # type: ignore[index]
    assert "hq@plant.example" in message
    check_event(start)
    check_event(fail)
