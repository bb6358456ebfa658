"""`maintainpro reports ...` on a migrated SQLite file, sending to a real SMTP server."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from analytics.reports.report_world import RUN_AT, build, definition, email_recipient, schedule
from maintainpro.cli.main import app
from maintainpro.cli.reports import reports_app
from maintainpro.core.audit import install_audit
from maintainpro.core.db import build_engine, build_session_factory, utcnow
from peers import Inbox, smtp_peer

runner = CliRunner()


@pytest.fixture
def hub(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Inbox, int]]:
    """A migrated file with the two-site world and a PM report to both managers; the inbox."""
    url = f"sqlite:///{tmp_path / 'hub.db'}"
    with smtp_peer() as (inbox, port):
        for name, value in {
            "DATABASE_URL": url,
            "SMTP_HOST": "127.0.0.1",
            "SMTP_PORT": str(port),
            "SMTP_STARTTLS": "false",
            "BASE_CURRENCY": "USD",
        }.items():
            monkeypatch.setenv(f"MAINTAINPRO_{name}", value)
        monkeypatch.setenv("COLUMNS", "200")
        assert runner.invoke(app, ["db", "upgrade"]).exit_code == 0
        install_audit()
        engine = build_engine(url)
        with build_session_factory(engine)() as db:
            world = build(db)
            report = definition(db, world, "pm_compliance", formats=("pdf", "xlsx", "csv"))
            schedule(db, report, next_run_at=utcnow() - dt.timedelta(minutes=1), cron="0 6 1 * *")
            email_recipient(db, report, user_id=world.manager_a)
            email_recipient(db, report, user_id=world.manager_b)
        engine.dispose()
        yield inbox, report


def test_preview_writes_one_sites_files_without_sending(
    hub: tuple[Inbox, int], tmp_path: Path
) -> None:
    inbox, report = hub
    folder = tmp_path / "preview"
    result = runner.invoke(
        reports_app,
        ["preview", str(report), "--out", str(folder), "--site", "SA", "--at", RUN_AT.isoformat()],
    )
    assert result.exit_code == 0, result.output
    names = sorted(p.name for p in folder.iterdir())
    assert names == [
        "pm-compliance-february_2026-03-01_sa.pdf",
        "pm-compliance-february_2026-03-01_sa.xlsx",
        "pm-compliance-february_2026-03-01_sa_by_site.csv",
        "pm-compliance-february_2026-03-01_sa_occurrences.csv",
    ]
    by_site = (folder / names[2]).read_text(encoding="utf-8-sig").splitlines()
    assert by_site == ["Site,On time,Late,Missed,Pending,Compliance %", "SA,1,1,1,0,33.3"]
    assert inbox.messages == []
    listed = runner.invoke(reports_app, ["list"])
    assert "PM compliance February" in listed.output
    assert "0 6 1 * * Europe/Berlin" in listed.output


def test_tick_runs_the_due_schedule_and_runs_shows_it(hub: tuple[Inbox, int]) -> None:
    inbox, report = hub
    result = runner.invoke(reports_app, ["tick"])
    assert result.exit_code == 0, result.output
    assert "1 run(s) queued, 1 executed" in result.output
    assert sorted(r[0] for r, _ in inbox.messages) == [
        "manager-a@plant.example",
        "manager-b@plant.example",
    ]
    again = runner.invoke(reports_app, ["tick"])
    assert "0 run(s) queued, 0 executed" in again.output
    now = runner.invoke(reports_app, ["run", str(report)])
    assert now.exit_code == 0, now.output
    assert "succeeded" in now.output
    log = runner.invoke(reports_app, ["runs", "--status", "succeeded"])
    assert "catch_up" in log.output or "schedule" in log.output
    assert "manual" in log.output
    missing = runner.invoke(reports_app, ["run", "9999"])
    assert missing.exit_code == 1
    assert "does not exist" in missing.output
