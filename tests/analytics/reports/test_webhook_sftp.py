"""Webhook and SFTP recipients: a signed POST to a local HTTP server, an atomic drop into a real
SFTP server's folder; retries that serve only who is still waiting; failures shown."""

from __future__ import annotations

import asyncio
import base64
import csv
import datetime as dt
import hashlib
import io
import json
from pathlib import Path

import openpyxl
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from analytics.reports.conftest import Clock
from analytics.reports.report_world import RUN_AT, World, definition, email_recipient
from maintainpro.analytics.reports.delivery import SftpTarget
from maintainpro.analytics.reports.records import (
    RecipientKind,
    ReportRecipient,
    ReportRun,
    RunStatus,
)
from maintainpro.analytics.reports.runner import MAX_ATTEMPTS, ReportJobs
from maintainpro.config import Settings
from maintainpro.core.delivery import sign
from maintainpro.core.notifications import WebhookEndpoint
from maintainpro.iot.credentials import CredentialBox
from peers import Hook, Inbox, free_port
from supply.sftp_partner import USERNAME, new_key, public_line, running_partner

SECRET = "report-hook-secret-0123456789"


def box_for(settings: Settings) -> CredentialBox:
    """The box of the test settings' credentials key."""
    assert settings.credentials_key is not None
    return CredentialBox(settings.credentials_key.get_secret_value().encode())


def endpoint(db: Session, box: CredentialBox, url: str, *, active: bool = True) -> int:
    """A registered webhook endpoint with a sealed secret; its id."""
    hook = WebhookEndpoint(
        name="BI inbox", url=url, secret=box.seal({"secret": SECRET}), active=active
    )
    db.add(hook)
    db.commit()
    return hook.id


def recipient(db: Session, report: int, **fields: object) -> int:
    """A recipient (committed); its id."""
    row = ReportRecipient(definition_id=report, **fields)
    db.add(row)
    db.commit()
    return row.id


def run_of(factory: sessionmaker[Session], run_id: int) -> ReportRun:
    """A run as stored now."""
    with factory() as session:
        run = session.get(ReportRun, run_id)
        assert run is not None
        return run


def test_webhook_gets_signed_json_with_the_sites_files(
    session_factory: sessionmaker[Session], db: Session, world: World, settings: Settings
) -> None:
    box = box_for(settings)
    hook = Hook([])
    try:
        report = definition(db, world, "bad_actors", name="Bad actors", formats=("pdf", "xlsx"))
        target = recipient(
            db,
            report,
            kind=RecipientKind.WEBHOOK,
            webhook_id=endpoint(db, box, hook.url),
            site_id=world.site_b,
        )
        run_id = ReportJobs(session_factory, settings, box, clock=Clock(RUN_AT)).run_now(report)
        ((headers, body),) = hook.calls
    finally:
        hook.close()
    assert headers["x-maintainpro-signature"] == sign(SECRET, body)
    assert headers["x-maintainpro-event"] == "report.delivered"
    assert headers["x-maintainpro-delivery"] == f"report-run-{run_id}-{target}"
    document = json.loads(body)
    assert (document["report"]["name"], document["sites"], document["empty"]) == (
        "Bad actors",
        ["SB"],
        False,
    )
    assert {"label": "Failure downtime", "value": 30.0, "text": "30.0 h"} in document["summary"]
    files = {f["filename"].rsplit(".", 1)[1]: f for f in document["files"]}
    pdf = base64.b64decode(files["pdf"]["content_base64"])
    assert hashlib.sha256(pdf).hexdigest() == files["pdf"]["sha256"]
    assert pdf.startswith(b"%PDF-")
    assert b"PB-1" in pdf
    xlsx = base64.b64decode(files["xlsx"]["content_base64"])
    sheet = openpyxl.load_workbook(io.BytesIO(xlsx))["Top 10 by work orders"]
    assert [tuple(c.value for c in row) for row in sheet.iter_rows(min_row=2)] == [
        (1, "SB", "PB-1", "Asset PB-1", 1, 30.0, 3)
    ]
    run = run_of(session_factory, run_id)
    assert run.status is RunStatus.SUCCEEDED
    assert run.recipients[0]["detail"] == "HTTP 200"


def test_a_retry_serves_only_the_recipients_still_waiting(
    session_factory: sessionmaker[Session],
    db: Session,
    world: World,
    smtp: tuple[Inbox, Settings],
) -> None:
    inbox, settings = smtp
    box = box_for(settings)
    hook = Hook([500])  # the first POST fails, the next succeeds
    try:
        report = definition(db, world, "backlog", name="Backlog")
        email_recipient(db, report, address="hq@plant.example")
        recipient(db, report, kind=RecipientKind.WEBHOOK, webhook_id=endpoint(db, box, hook.url))
        clock = Clock(RUN_AT)
        jobs = ReportJobs(session_factory, settings, box, clock=clock)
        run_id = jobs.run_now(report)
        run = run_of(session_factory, run_id)
        assert (run.status, run.attempts) == (RunStatus.RETRYING, 1)
        assert [e["status"] for e in run.recipients] == ["sent", "failed"]
        assert run.recipients[1]["error"] == "HTTP 500"
        assert run.next_attempt_at == RUN_AT + dt.timedelta(seconds=30)
        assert jobs.tick() == 0  # not due yet
        clock.advance(seconds=30)
        assert jobs.tick() == 1
        assert len(hook.calls) == 2
    finally:
        hook.close()
    assert len(inbox.messages) == 1  # the e-mail went out once
    run = run_of(session_factory, run_id)
    assert (run.status, run.attempts, run.error) == (RunStatus.SUCCEEDED, 2, None)
    assert [(e["status"], e["attempts"]) for e in run.recipients] == [("sent", 1), ("sent", 2)]


def test_failures_are_retried_with_back_off_then_failed_and_shown(
    session_factory: sessionmaker[Session],
    db: Session,
    world: World,
    settings: Settings,
    client: TestClient,
    admin_headers: dict[str, str],
) -> None:
    # Nobody listens on the SMTP port.
    down = settings.model_copy(
        update={"smtp_host": "127.0.0.1", "smtp_port": free_port(), "smtp_starttls": False}
    )
    report = definition(db, world, "backlog", name="Backlog")
    email_recipient(db, report, address="hq@plant.example")
    clock = Clock(RUN_AT)
    jobs = ReportJobs(session_factory, down, clock=clock)
    run_id = jobs.run_now(report)
    waits = []
    for _ in range(MAX_ATTEMPTS - 1):
        run = run_of(session_factory, run_id)
        assert run.status is RunStatus.RETRYING
        assert run.next_attempt_at is not None
        waits.append((run.next_attempt_at - clock.now).total_seconds())
        clock.now = run.next_attempt_at
        assert jobs.tick() == 1
    assert waits == [30.0, 60.0, 120.0]
    run = run_of(session_factory, run_id)
    assert (run.status, run.attempts) == (RunStatus.FAILED, MAX_ATTEMPTS)
    clock.advance(days=1)
    assert jobs.tick() == 0  # given up: not tried again

    failed = client.get("/api/v1/report-runs", params={"status": "failed"}, headers=admin_headers)
    assert failed.status_code == 200
    (shown,) = failed.json()["items"]
    assert shown["id"] == run_id
    assert shown["error"].startswith("hq@plant.example: ")
    assert shown["recipients"][0]["attempts"] == MAX_ATTEMPTS
    waiting = client.get("/api/v1/report-runs?status=retrying", headers=admin_headers)
    assert waiting.json()["total"] == 0
    one = client.get(f"/api/v1/report-runs/{run_id}", headers=admin_headers).json()
    assert (one["status"], one["finished_at"] is not None) == ("failed", True)


def test_a_disabled_endpoint_fails_at_once(
    session_factory: sessionmaker[Session], db: Session, world: World, settings: Settings
) -> None:
    box = box_for(settings)
    report = definition(db, world, "backlog", name="Backlog")
    recipient(
        db,
        report,
        kind=RecipientKind.WEBHOOK,
        webhook_id=endpoint(db, box, "http://127.0.0.1:9/none", active=False),
    )
    run_id = ReportJobs(session_factory, settings, box, clock=Clock(RUN_AT)).run_now(report)
    run = run_of(session_factory, run_id)
    assert (run.status, run.attempts) == (RunStatus.FAILED, 1)
    assert run.recipients[0]["error"] == "the webhook endpoint is disabled"


async def test_sftp_drop_lands_whole_files_and_a_wrong_host_key_is_refused(
    tmp_path: Path,
    session_factory: sessionmaker[Session],
    db: Session,
    world: World,
    settings: Settings,
) -> None:
    box = box_for(settings)
    report = definition(db, world, "spend", name="Spend", formats=("pdf", "xlsx", "csv"))
    async with running_partner(tmp_path / "partner") as partner:

        def target(host_key: str) -> dict[str, object]:
            return SftpTarget(
                host="127.0.0.1",
                port=partner.port,
                username=USERNAME,
                host_keys=(host_key,),
                folder="outbound",
            ).as_json()

        sealed = box.seal({"private_key": partner.client_key.export_private_key().decode()})
        recipient(
            db, report, kind=RecipientKind.SFTP, sftp=target(public_line(partner.host_key)),
            secrets=sealed, site_id=world.site_a,
        )  # fmt: skip
        recipient(
            db, report, kind=RecipientKind.SFTP, sftp=target(public_line(new_key())),
            secrets=sealed,
        )  # fmt: skip
        jobs = ReportJobs(session_factory, settings, box, clock=Clock(RUN_AT))
        run_id = await asyncio.to_thread(jobs.run_now, report)
    names = ["spend_2026-03-01_sa.pdf", "spend_2026-03-01_sa.xlsx", "spend_2026-03-01_sa_spend.csv"]
    assert sorted(p.name for p in partner.outbound.iterdir()) == names
    # Each file was written under a temporary name and renamed once complete.
    renames = [op for op in partner.ops if op[0] == "posix_rename"]
    assert renames == [("posix_rename", f"outbound/.{n}.part", f"outbound/{n}") for n in names]
    text = (partner.outbound / "spend_2026-03-01_sa_spend.csv").read_text(encoding="utf-8-sig")
    assert list(csv.reader(io.StringIO(text)))[1] == [
        "ACME",
        "ACME Ltd",
        "70.00",
        "100.0",
        "1",
        "1",
    ]
    run = run_of(session_factory, run_id)
    assert [e["status"] for e in run.recipients] == ["sent", "failed"]
    assert "not pinned" in run.recipients[1]["error"]
    assert run.status is RunStatus.FAILED  # a refused host key is not retried
    assert run.size_bytes == sum(p.stat().st_size for p in partner.outbound.iterdir())
