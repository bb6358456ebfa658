"""Report files kept on the hub: one set per recipient scope with the bytes the recipients got,
the size cap, the daily purge, downloads through the API under the site rule, and deliveries
and downloads in the BI access audit."""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Callable
from email.message import Message

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from analytics.reports.conftest import Clock
from analytics.reports.mail import messages_to
from analytics.reports.report_world import RUN_AT, World, definition, email_recipient
from maintainpro.analytics.access import access_ledger
from maintainpro.analytics.access_log import BiAccessRecord
from maintainpro.analytics.reports import runner
from maintainpro.analytics.reports.outputs import (
    ALL_SITES,
    may_download,
    purge_report_outputs,
    too_large,
)
from maintainpro.analytics.reports.records import ReportOutput, ReportRun, RunStatus
from maintainpro.analytics.reports.runner import ReportJobs
from maintainpro.config import Settings
from maintainpro.core.users import Role, User
from peers import Inbox, free_port
from support import bearer

API = "/api/v1"
MakeUser = Callable[..., tuple[User, str]]


def files_in(message: Message) -> dict[str, bytes]:
    """Every attachment of a message by its file name."""
    found: dict[str, bytes] = {}
    for part in message.walk():
        name = part.get_filename()
        if name:
            payload = part.get_payload(decode=True)
            assert isinstance(payload, bytes)
            found[name] = payload
    return found


def outputs_of(factory: sessionmaker[Session], run_id: int) -> list[ReportOutput]:
    """A run's output rows with their bytes loaded."""
    with factory() as session:
        rows = list(
            session.scalars(
                select(ReportOutput).where(ReportOutput.run_id == run_id).order_by(ReportOutput.id)
            )
        )
        for row in rows:
            _ = row.content  # loaded before the session closes
        return rows


def audit_rows(factory: sessionmaker[Session], channel: str) -> list[BiAccessRecord]:
    """The audit rows of one channel, oldest first."""
    with factory() as session:
        return list(
            session.scalars(
                select(BiAccessRecord)
                .where(BiAccessRecord.channel == channel)
                .order_by(BiAccessRecord.id)
            )
        )


def three_scopes(db: Session, world: World) -> int:
    """A PDF + CSV report to site A's and site B's managers and two head-office addresses."""
    report = definition(db, world, "pm_compliance", formats=("pdf", "csv"))
    email_recipient(db, report, user_id=world.manager_a)
    email_recipient(db, report, user_id=world.manager_b)
    email_recipient(db, report, address="hq@plant.example")
    email_recipient(db, report, address="cfo@plant.example")  # same scope as hq: kept once
    return report


def test_each_scope_keeps_the_bytes_its_recipients_received(
    session_factory: sessionmaker[Session],
    db: Session,
    world: World,
    smtp: tuple[Inbox, Settings],
) -> None:
    inbox, settings = smtp
    report = three_scopes(db, world)

    run_id = ReportJobs(session_factory, settings, clock=Clock(RUN_AT)).run_now(report)

    rows = outputs_of(session_factory, run_id)
    by_scope: dict[str, dict[str, ReportOutput]] = {}
    for row in rows:
        by_scope.setdefault(row.scope_label, {})[row.filename] = row
    assert set(by_scope) == {"SA", "SB", ALL_SITES}
    assert len(rows) == sum(len(files) for files in by_scope.values())  # no scope twice
    assert {r.scope_label: r.site_ids for r in rows} == {
        "SA": [world.site_a],
        "SB": [world.site_b],
        ALL_SITES: None,
    }
    mail = messages_to(inbox)
    for address, label in (
        ("manager-a@plant.example", "SA"),
        ("manager-b@plant.example", "SB"),
        ("hq@plant.example", ALL_SITES),
        ("cfo@plant.example", ALL_SITES),
    ):
        received = files_in(mail[address])
        kept = by_scope[label]
        assert set(kept) == set(received), address
        for name, data in received.items():
            row = kept[name]
            assert row.sha256 == hashlib.sha256(data).hexdigest()
            assert row.content == data
            assert row.size_bytes == len(data)
            assert row.not_kept_reason is None
    assert {r.media_type for r in rows} == {"application/pdf", "text/csv"}
    assert all(r.created_at == RUN_AT for r in rows)


def test_deliveries_are_in_the_access_audit(
    session_factory: sessionmaker[Session],
    db: Session,
    world: World,
    smtp: tuple[Inbox, Settings],
) -> None:
    _, settings = smtp
    report = three_scopes(db, world)
    run_id = ReportJobs(session_factory, settings, clock=Clock(RUN_AT)).run_now(report)

    rows = audit_rows(session_factory, "report")
    assert len(rows) == 4
    by_target = {r.options["target"]: r for r in rows}
    manager_a = by_target["manager-a@plant.example"]
    assert (manager_a.user_id, manager_a.status, manager_a.outcome) == (world.manager_a, 200, "ok")
    assert manager_a.dataset == "pm_compliance"
    assert manager_a.options["run_id"] == str(run_id)
    assert manager_a.options["recipient"] == "email"
    assert manager_a.options["formats"] == "pdf,csv"
    assert manager_a.options["scope"] == "SA"
    # A plain address has no user: the report's owner answers for it.
    assert by_target["hq@plant.example"].user_id == world.admin
    assert by_target["hq@plant.example"].options["scope"] == ALL_SITES
    # Rows served: the rows of that scope's data, so every site has more than one site.
    with session_factory() as session:
        run = session.get(ReportRun, run_id)
        assert run is not None
        assert run.status is RunStatus.SUCCEEDED
    site_a, site_b = by_target["manager-a@plant.example"], by_target["manager-b@plant.example"]
    everything = by_target["hq@plant.example"]
    assert site_a.rows > 0
    assert site_b.rows > 0
    assert everything.rows == site_a.rows + site_b.rows
    assert all(r.error is None for r in rows)


def test_a_failed_delivery_is_audited_with_its_reason(
    session_factory: sessionmaker[Session], db: Session, world: World, settings: Settings
) -> None:
    down = settings.model_copy(
        update={"smtp_host": "127.0.0.1", "smtp_port": free_port(), "smtp_starttls": False}
    )
    report = definition(db, world, "backlog", name="Backlog")
    email_recipient(db, report, address="hq@plant.example")

    run_id = ReportJobs(session_factory, down, clock=Clock(RUN_AT)).run_now(report)

    (row,) = audit_rows(session_factory, "report")
    assert (row.status, row.outcome, row.rows) == (500, "error", 0)
    assert row.error is not None
    assert "ConnectionRefusedError" in row.error
    assert row.options["run_id"] == str(run_id)
    # The files were produced: they are kept although nobody received them yet.
    assert {r.scope_label for r in outputs_of(session_factory, run_id)} == {ALL_SITES}


def test_a_file_over_the_cap_is_listed_without_its_bytes(
    session_factory: sessionmaker[Session],
    db: Session,
    world: World,
    smtp: tuple[Inbox, Settings],
) -> None:
    inbox, settings = smtp
    report = definition(db, world, "pm_compliance", formats=("pdf", "csv"))
    email_recipient(db, report, address="hq@plant.example")
    # Between the CSV files and the PDF: the PDF is delivered but not kept.
    tight = settings.model_copy(update={"report_output_max_bytes": 4000})

    run_id = ReportJobs(session_factory, tight, clock=Clock(RUN_AT)).run_now(report)

    received = files_in(messages_to(inbox)["hq@plant.example"])
    rows = {r.filename: r for r in outputs_of(session_factory, run_id)}
    assert set(rows) == set(received)
    for name, row in rows.items():
        assert row.sha256 == hashlib.sha256(received[name]).hexdigest()
        if len(received[name]) > 4000:
            assert row.content is None
            assert (
                row.not_kept_reason == "larger than the 4,000 bytes kept (report_output_max_bytes)"
            )
        else:
            assert row.content == received[name]
            assert row.not_kept_reason is None
    pdf = next(r for n, r in rows.items() if n.endswith(".pdf"))
    assert pdf.content is None, "the test needs a PDF above the cap"
    assert any(r.content is not None for r in rows.values()), "and a CSV below it"


def test_the_cap_rule() -> None:
    assert too_large(100, 100) is None
    assert too_large(101, 100) is not None
    assert too_large(1, 0) is not None


def test_a_storage_failure_does_not_fail_the_delivery(
    session_factory: sessionmaker[Session],
    db: Session,
    world: World,
    smtp: tuple[Inbox, Settings],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    inbox, settings = smtp
    report = definition(db, world, "backlog", name="Backlog")
    email_recipient(db, report, address="hq@plant.example")

    def broken(*args: object, **kwargs: object) -> int:
        raise OSError("disk full")

    monkeypatch.setattr(runner, "keep_outputs", broken)
    run_id = ReportJobs(session_factory, settings, clock=Clock(RUN_AT)).run_now(report)

    assert set(messages_to(inbox)) == {"hq@plant.example"}
    with session_factory() as session:
        run = session.get(ReportRun, run_id)
        assert run is not None
        assert run.status is RunStatus.SUCCEEDED
    assert outputs_of(session_factory, run_id) == []


def test_old_files_are_purged_and_zero_keeps_them(
    session_factory: sessionmaker[Session],
    db: Session,
    world: World,
    smtp: tuple[Inbox, Settings],
) -> None:
    _, settings = smtp
    report = definition(db, world, "backlog", name="Backlog")
    email_recipient(db, report, address="hq@plant.example")
    jobs = ReportJobs(session_factory, settings, clock=Clock(RUN_AT))
    old_run = jobs.run_now(report)
    jobs = ReportJobs(session_factory, settings, clock=Clock(RUN_AT + dt.timedelta(days=20)))
    new_run = jobs.run_now(report)
    assert outputs_of(session_factory, old_run)
    assert outputs_of(session_factory, new_run)
    now = RUN_AT + dt.timedelta(days=35)

    assert purge_report_outputs(session_factory, 0, now) == 0
    old_files = len(outputs_of(session_factory, old_run))
    assert purge_report_outputs(session_factory, 30, now) == old_files

    assert outputs_of(session_factory, old_run) == []
    assert len(outputs_of(session_factory, new_run)) > 0
    with session_factory() as session:
        assert session.get(ReportRun, old_run) is not None  # the run log stays


def test_the_site_rule() -> None:
    assert may_download(None, None)
    assert may_download(None, [1, 2])
    assert may_download(frozenset({1}), [1])
    assert not may_download(frozenset({1}), None)
    assert not may_download(frozenset({1}), [1, 2])
    assert not may_download(frozenset({1}), [2])


def test_download_through_the_api_under_the_site_rule(
    client: TestClient,
    make_user: MakeUser,
    session_factory: sessionmaker[Session],
    db: Session,
    world: World,
    smtp: tuple[Inbox, Settings],
) -> None:
    inbox, settings = smtp
    report = three_scopes(db, world)
    run_id = ReportJobs(session_factory, settings, clock=Clock(RUN_AT)).run_now(report)
    rows = outputs_of(session_factory, run_id)
    admin = bearer(make_user(Role.ADMIN)[1])
    manager, manager_token = make_user(Role.MAINTENANCE_MANAGER, site_id=world.site_a)
    site_a = bearer(manager_token)

    listed = client.get(f"{API}/reports/runs/{run_id}/outputs", headers=admin)
    assert listed.status_code == 200, listed.text
    assert sorted(o["id"] for o in listed.json()) == sorted(r.id for r in rows)
    own = client.get(f"{API}/reports/runs/{run_id}/outputs", headers=site_a).json()
    assert {o["scope_label"] for o in own} == {"SA"}
    assert all(o["kept"] and o["download"] for o in own)

    pdf = next(o for o in own if o["filename"].endswith(".pdf"))
    got = client.get(pdf["download"], headers=site_a)
    assert got.status_code == 200
    received = files_in(messages_to(inbox)["manager-a@plant.example"])
    assert got.content == received[pdf["filename"]]
    assert hashlib.sha256(got.content).hexdigest() == pdf["sha256"]
    assert got.headers["content-type"] == "application/pdf"
    assert got.headers["content-disposition"] == f'attachment; filename="{pdf["filename"]}"'
    assert got.headers["x-content-type-options"] == "nosniff"

    # Site B's copy and the all-sites copy read as missing to site A's manager.
    missing = client.get(f"{API}/reports/runs/{run_id}/outputs/999999", headers=site_a)
    assert missing.status_code == 404
    for label in ("SB", ALL_SITES):
        other = next(r for r in rows if r.scope_label == label)
        refused = client.get(f"{API}/reports/runs/{run_id}/outputs/{other.id}", headers=site_a)
        assert refused.status_code == 404, label
        assert refused.json()["detail"] == missing.json()["detail"].replace("999999", str(other.id))
        assert (
            client.get(f"{API}/reports/runs/{run_id}/outputs/{other.id}", headers=admin).status_code
            == 200
        )
    # An output of another run is not this run's.
    assert client.get(f"{API}/reports/runs/{run_id + 1}/outputs/{rows[0].id}", headers=admin)\
        .status_code == 404  # fmt: skip
    assert client.get(f"{API}/reports/runs/{run_id + 1}/outputs", headers=admin).status_code == 404

    access_ledger(client.app.state).flush()  # type: ignore[attr-defined]
    downloads = audit_rows(session_factory, "report_download")
    mine = [d for d in downloads if d.user_id == manager.id]
    assert [d.status for d in mine] == [200, 404, 404, 404]
    served = mine[0]
    assert served.dataset == "pm_compliance"
    assert served.options["file"] == pdf["filename"]
    assert served.options["run_id"] == str(run_id)
    assert served.options["via"] == "api"
    assert mine[2].options["scope"] == "SB"  # the refusal names what was asked for


def test_the_api_needs_a_token_and_reports_read(
    client: TestClient,
    make_user: MakeUser,
    session_factory: sessionmaker[Session],
    db: Session,
    world: World,
    smtp: tuple[Inbox, Settings],
) -> None:
    _, settings = smtp
    report = definition(db, world, "backlog", name="Backlog")
    email_recipient(db, report, address="hq@plant.example")
    run_id = ReportJobs(session_factory, settings, clock=Clock(RUN_AT)).run_now(report)
    (row, *_) = outputs_of(session_factory, run_id)
    technician = bearer(make_user(Role.TECHNICIAN)[1])
    for path in (f"/reports/runs/{run_id}/outputs", f"/reports/runs/{run_id}/outputs/{row.id}"):
        assert client.get(f"{API}{path}").status_code == 401
        assert client.get(f"{API}{path}", headers=technician).status_code == 403
    procurement = bearer(make_user(Role.PROCUREMENT)[1])
    assert client.get(f"{API}/reports/runs/{run_id}/outputs/{row.id}", headers=procurement)\
        .status_code == 200  # fmt: skip


def test_a_hostile_file_name_is_made_safe_and_a_file_not_kept_is_not_served(
    client: TestClient, make_user: MakeUser, db: Session, world: World
) -> None:
    report = definition(db, world, "backlog", name="Backlog")
    run = ReportRun(
        definition_id=report,
        trigger="manual",
        scheduled_for=RUN_AT,
        status=RunStatus.SUCCEEDED,
        recipients=[],
        size_bytes=0,
    )
    db.add(run)
    db.flush()
    hostile = ReportOutput(
        run_id=run.id,
        scope_label=ALL_SITES,
        site_ids=None,
        filename='../../etc/"evil"\r\nSet-Cookie: x=1;<script>.html',
        media_type="text/html",
        size_bytes=25,
        sha256=hashlib.sha256(b"<script>alert(1)</script>").hexdigest(),
        content=b"<script>alert(1)</script>",
        created_at=RUN_AT,
    )
    dropped = ReportOutput(
        run_id=run.id,
        scope_label=ALL_SITES,
        site_ids=None,
        filename="big.pdf",
        media_type="application/pdf",
        size_bytes=10**9,
        sha256="0" * 64,
        content=None,
        not_kept_reason="larger than the 26,214,400 bytes kept (report_output_max_bytes)",
        created_at=RUN_AT,
    )
    db.add_all([hostile, dropped])
    db.commit()
    admin = bearer(make_user(Role.ADMIN)[1])

    got = client.get(f"{API}/reports/runs/{run.id}/outputs/{hostile.id}", headers=admin)
    assert got.status_code == 200
    disposition = got.headers["content-disposition"]
    assert disposition.startswith('attachment; filename="')
    name = disposition.removeprefix('attachment; filename="').removesuffix('"')
    assert not set(name) & set('"/\\\r\n;<>'), name
    assert "set-cookie" not in {
        k.lower() for k in got.headers if k.lower() != "content-disposition"
    }
    assert got.headers["x-content-type-options"] == "nosniff"
    assert "sandbox" in got.headers["content-security-policy"]

    listed = {o["filename"]: o for o in client.get(
        f"{API}/reports/runs/{run.id}/outputs", headers=admin).json()}  # fmt: skip
    assert listed["big.pdf"]["kept"] is False
    assert listed["big.pdf"]["download"] is None
    gone = client.get(f"{API}/reports/runs/{run.id}/outputs/{dropped.id}", headers=admin)
    assert gone.status_code == 404
    assert "not kept" in gone.json()["detail"]
