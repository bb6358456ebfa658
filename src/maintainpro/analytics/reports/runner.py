"""Running reports: due schedules become runs, a run is claimed once, then per recipient the
site filter is applied, the files rendered and delivered, and everything is recorded.

- **Once per due time.** A schedule moves its ``next_run_at`` with a compare-and-set update
  and the run's (schedule, scheduled_for) is unique, so two hub processes make one run.
- **Claimed once.** A run is taken with a compare-and-set on its status (queued or retrying
  and due, or running with an expired claim); the loser of a race sees no row changed.
- **Nothing sent twice.** Each recipient's result is committed as soon as it is known; a retry
  (or a process taking over an expired claim) only serves recipients not yet served.
- **Retried, then shown.** A failed delivery is retried with doubling back-off up to
  ``MAX_ATTEMPTS`` attempts; then the run is ``failed`` with the reason per recipient.
- **Kept and audited.** The files of every scope produced are kept (``outputs``) when the
  attempt ends, and each delivery attempt is a row of the BI access audit (``audit``); neither
  can fail a delivery.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final
from zoneinfo import ZoneInfo

import httpx
from openlineage.client.event_v2 import RunState
from sqlalchemy import and_, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from maintainpro.analytics.access import AccessLedger, record_access, site_scope
from maintainpro.analytics.lineage import Lineage, lineage_for
from maintainpro.analytics.reports.audit import delivery_event
from maintainpro.analytics.reports.data import ReportData, RunParams, SiteScope, SourceError
from maintainpro.analytics.reports.delivery import (
    Parcel,
    SftpTarget,
    drop_via_sftp,
    post_webhook,
    send_email,
)
from maintainpro.analytics.reports.formatting import RenderedFile, base_name
from maintainpro.analytics.reports.lineage import attempt_run_id, report_event
from maintainpro.analytics.reports.maintenance_sources import site_codes
from maintainpro.analytics.reports.outputs import ProducedScope, keep_outputs, scope_label
from maintainpro.analytics.reports.periods import report_period
from maintainpro.analytics.reports.records import (
    RecipientKind,
    ReportDefinition,
    ReportRecipient,
    ReportRun,
    ReportSchedule,
    RunStatus,
    RunTrigger,
)
from maintainpro.analytics.reports.render_csv import render_csv
from maintainpro.analytics.reports.render_pdf import render_pdf
from maintainpro.analytics.reports.render_xlsx import render_xlsx
from maintainpro.analytics.reports.scheduler import (
    ScheduleError,
    ScheduleState,
    due_runs,
    first_run,
)
from maintainpro.analytics.reports.sources import source_for, split_params
from maintainpro.analytics.warehouse import warehouse_file
from maintainpro.config import Settings
from maintainpro.core.db import utcnow
from maintainpro.core.delivery import (
    WEBHOOK_TIMEOUT_S,
    DeliveryError,
    Mailer,
    SecretBox,
    retry_delay,
)
from maintainpro.core.notifications import WebhookEndpoint
from maintainpro.core.users import User

# Report statuses that end an attempt well (a skipped report had nothing to send).
_COMPLETED: Final = frozenset({RunStatus.SUCCEEDED, RunStatus.SKIPPED})
log = logging.getLogger(__name__)

MAX_ATTEMPTS: Final = 4
LEASE: Final = dt.timedelta(minutes=15)
REPORT_TICK_S: Final = 30.0
MAX_ERROR: Final = 500
SENT, SKIPPED, FAILED, PENDING = "sent", "skipped", "failed", "pending"
FORMATS: Final = ("pdf", "xlsx", "csv")
Clock = Callable[[], dt.datetime]


# --------------------------------------------------------------------------- scopes


def intersect(first: SiteScope, second: SiteScope) -> SiteScope:
    """The sites both scopes allow (None allows every site)."""
    if first is None:
        return second
    if second is None:
        return first
    return first & second


def recipient_scope(recipient: ReportRecipient, user: User | None, owner: User | None) -> SiteScope:
    """What a recipient may see: its explicit site, else its user's; never beyond the owner's."""
    scope: SiteScope = None
    if recipient.site_id is not None:
        scope = frozenset({recipient.site_id})
    elif user is not None:
        scope = site_scope(user)
    # A site-bound author cannot send other sites' rows anywhere.
    return intersect(scope, site_scope(owner) if owner is not None else None)


def target_text(recipient: ReportRecipient, user: User | None) -> str:
    """Where a recipient's copy goes, for the run record (no secrets)."""
    if recipient.kind is RecipientKind.EMAIL:
        return recipient.address or (user.email if user and user.email else "(no address)")
    if recipient.kind is RecipientKind.WEBHOOK:
        return f"webhook {recipient.webhook_id}"
    target = SftpTarget.of(recipient.sftp or {})
    return f"sftp://{target.username}@{target.host}:{target.port}/{target.folder}"


def report_link(settings: Settings | None, definition_id: int) -> str | None:
    """The report's page on the hub, from the public URL the settings give (None without)."""
    if settings is None or not settings.public_url:
        return None
    return f"{settings.public_url.rstrip('/')}/reports/{definition_id}"


# --------------------------------------------------------------------------- queueing


def _start_unset(factory: sessionmaker[Session], now: dt.datetime) -> None:
    # A schedule written without a next run (by hand, or by an older version) starts now.
    with factory() as session, session.begin():
        for schedule in session.scalars(
            select(ReportSchedule).where(
                ReportSchedule.enabled, ReportSchedule.next_run_at.is_(None)
            )
        ):
            try:
                schedule.next_run_at = first_run(schedule.cron, schedule.timezone, now)
            except ScheduleError as exc:
                log.error(
                    "report schedule unusable",
                    extra={"schedule_id": schedule.id, "error": str(exc)},
                )


def enqueue_due(factory: sessionmaker[Session], now: dt.datetime) -> list[int]:
    """Create one run per schedule that has come due (on time or missed); the run ids."""
    _start_unset(factory, now)
    with factory() as session:
        rows = session.execute(
            select(ReportSchedule)
            .where(ReportSchedule.enabled, ReportSchedule.next_run_at <= now)
            .order_by(ReportSchedule.id)
        ).scalars()
        states = {
            s.id: (
                s.definition_id,
                ScheduleState(s.id, s.cron, s.timezone, s.enabled, s.next_run_at),
            )
            for s in rows
        }
    created = []
    for schedule_id, (definition_id, state) in states.items():
        try:
            (due,) = due_runs([state], now)
        except (ScheduleError, ValueError) as exc:
            log.error(
                "report schedule unusable", extra={"schedule_id": schedule_id, "error": str(exc)}
            )
            continue
        with factory() as session, session.begin():
            moved = session.scalar(
                update(ReportSchedule)
                .where(
                    ReportSchedule.id == schedule_id,
                    ReportSchedule.next_run_at == state.next_run_at,
                )
                .values(next_run_at=due.next_run_at, last_run_at=due.scheduled_for)
                .returning(ReportSchedule.id)
                .execution_options(synchronize_session=False)
            )
            if moved is None:
                continue  # another process took this due time
            run = ReportRun(
                definition_id=definition_id,
                schedule_id=schedule_id,
                trigger=RunTrigger.CATCH_UP if due.catch_up else RunTrigger.SCHEDULE,
                scheduled_for=due.scheduled_for,
                status=RunStatus.QUEUED,
                attempts=0,
                next_attempt_at=now,
                recipients=[],
                size_bytes=0,
                created_at=now,
            )
            session.add(run)
            try:
                session.flush()
            except IntegrityError:
                session.rollback()
                continue
            created.append(run.id)
            if due.catch_up:
                log.info(
                    "missed report run queued",
                    extra={
                        "schedule_id": schedule_id,
                        "scheduled_for": due.scheduled_for.isoformat(),
                        "missed": due.missed,
                    },
                )
    return created


def queue_manual_run(session: Session, definition: ReportDefinition, now: dt.datetime) -> ReportRun:
    """A run started by hand, for now (flushed, not committed)."""
    run = ReportRun(
        definition_id=definition.id,
        schedule_id=None,
        trigger=RunTrigger.MANUAL,
        scheduled_for=now,
        status=RunStatus.QUEUED,
        attempts=0,
        next_attempt_at=now,
        recipients=[],
        size_bytes=0,
        created_at=now,
    )
    session.add(run)
    session.flush()
    return run


def ready_runs(factory: sessionmaker[Session], now: dt.datetime, limit: int = 50) -> list[int]:
    """Runs waiting (queued or retrying and due) or abandoned (claim expired), oldest first."""
    with factory() as session:
        return list(
            session.scalars(
                select(ReportRun.id)
                .where(_claimable(now))
                .order_by(ReportRun.next_attempt_at, ReportRun.id)
                .limit(limit)
            )
        )


def _claimable(now: dt.datetime) -> Any:
    return or_(
        and_(
            ReportRun.status.in_([RunStatus.QUEUED, RunStatus.RETRYING]),
            or_(ReportRun.next_attempt_at.is_(None), ReportRun.next_attempt_at <= now),
        ),
        and_(ReportRun.status == RunStatus.RUNNING, ReportRun.claimed_until < now),
    )


def claim(
    factory: sessionmaker[Session], run_id: int, now: dt.datetime, lease: dt.timedelta = LEASE
) -> bool:
    """Take a run for this process; False when another process has it or it is not due."""
    with factory() as session, session.begin():
        taken = session.scalar(
            update(ReportRun)
            .where(ReportRun.id == run_id, _claimable(now))
            .values(
                status=RunStatus.RUNNING,
                claimed_until=now + lease,
                attempts=ReportRun.attempts + 1,
            )
            .returning(ReportRun.id)
            .execution_options(synchronize_session=False)
        )
        return taken is not None


# --------------------------------------------------------------------------- producing


def definition_zone(session: Session, definition_id: int) -> str:
    """The zone of a definition's first schedule (UTC without one)."""
    zone = session.scalar(
        select(ReportSchedule.timezone)
        .where(ReportSchedule.definition_id == definition_id)
        .order_by(ReportSchedule.id)
        .limit(1)
    )
    return zone or "UTC"


def run_zone(session: Session, run: ReportRun) -> str:
    """The zone a run's period and times are read in: its schedule's, else the definition's."""
    if run.schedule_id is not None:
        schedule = session.get(ReportSchedule, run.schedule_id)
        if schedule is not None:
            return schedule.timezone
    return definition_zone(session, run.definition_id)


def render_files(data: ReportData, formats: list[str], base: str) -> tuple[RenderedFile, ...]:
    """The files of the definition's formats, in the order PDF, XLSX, CSV."""
    files: list[RenderedFile] = []
    if "pdf" in formats:
        files.append(render_pdf(data, base))
    if "xlsx" in formats:
        files.append(render_xlsx(data, base))
    if "csv" in formats:
        files.extend(render_csv(data, base))
    return tuple(files)


@dataclasses.dataclass
class _Production:
    """One run's data and files per scope, made once however many recipients share a scope."""

    session: Session
    definition: ReportDefinition
    params: RunParams
    data: dict[SiteScope, ReportData] = dataclasses.field(default_factory=dict)
    files: dict[SiteScope, tuple[RenderedFile, ...]] = dataclasses.field(default_factory=dict)

    def data_for(self, scope: SiteScope) -> ReportData:
        if scope not in self.data:
            source = source_for(self.definition.source)
            produced = source.run(self.session, self.params, scope)
            codes = site_codes(self.session, scope) if scope is not None else ()
            self.data[scope] = dataclasses.replace(produced, sites=codes)
        return self.data[scope]

    def files_for(self, scope: SiteScope) -> tuple[RenderedFile, ...]:
        if scope not in self.files:
            data = self.data_for(scope)
            label = "-".join(data.sites) if scope is not None else None
            base = base_name(data, self.definition.name, label or ("none" if scope else None))
            self.files[scope] = render_files(data, list(self.definition.formats), base)
        return self.files[scope]

    def produced(self) -> list[ProducedScope]:
        """Every scope files were rendered for, with its sites' codes."""
        return [
            ProducedScope(scope, self.data[scope].sites, files)
            for scope, files in self.files.items()
        ]

    def rows_for(self, scope: SiteScope) -> int:
        """Rows of a scope's data produced in this attempt (0 when it was not produced)."""
        data = self.data.get(scope)
        return sum(len(t.rows) for t in data.tables) if data is not None else 0

    def label_for(self, scope: SiteScope) -> str:
        """How a scope reads in the audit and the kept files ("all sites", "SA, SB")."""
        data = self.data.get(scope)
        return scope_label(scope, data.sites if data is not None else ())


@dataclasses.dataclass
class Channels:
    """The open ways out for one run: an SMTP connection, an HTTP client, the secrets box, and
    the BI access audit that records each delivery."""

    mailer: Mailer
    http: httpx.Client
    box: SecretBox | None
    ledger: AccessLedger | None = None


def deliver(
    session: Session,
    channels: Channels,
    recipient: ReportRecipient,
    user: User | None,
    parcel: Parcel,
) -> str:
    """Send a parcel to one recipient; what was done (the address, status or remote paths)."""
    if recipient.kind is RecipientKind.EMAIL:
        address = recipient.address or (user.email if user is not None else None)
        if not address:
            raise DeliveryError("the recipient has no e-mail address", permanent=True)
        send_email(channels.mailer, address, parcel)
        return address
    if recipient.kind is RecipientKind.WEBHOOK:
        endpoint = (
            session.get(WebhookEndpoint, recipient.webhook_id)
            if recipient.webhook_id is not None
            else None
        )
        key = f"report-run-{parcel.run_id}-{recipient.id}"
        return f"HTTP {post_webhook(channels.http, endpoint, channels.box, parcel, key)}"
    if recipient.sftp is None:
        raise DeliveryError("the recipient has no SFTP target", permanent=True)
    paths = drop_via_sftp(
        SftpTarget.of(recipient.sftp), recipient.secrets, channels.box, parcel.files
    )
    return ", ".join(paths)


def _snapshot(session: Session, definition: ReportDefinition) -> list[dict[str, Any]]:
    recipients = session.scalars(
        select(ReportRecipient)
        .where(ReportRecipient.definition_id == definition.id, ReportRecipient.active)
        .order_by(ReportRecipient.id)
    ).all()
    entries: list[dict[str, Any]] = []
    for recipient in recipients:
        user = session.get(User, recipient.user_id) if recipient.user_id is not None else None
        entries.append(
            {
                "recipient_id": recipient.id,
                "kind": recipient.kind.value,
                "target": target_text(recipient, user),
                "status": PENDING,
                "attempts": 0,
                "bytes": 0,
                "files": [],
                "error": None,
                "permanent": False,
                "at": None,
            }
        )
    return entries


def _serve(
    production: _Production,
    channels: Channels,
    run: ReportRun,
    entry: dict[str, Any],
    owner: User | None,
) -> None:
    """One recipient's part of an attempt, recorded in its entry."""
    session, definition = production.session, production.definition
    recipient = session.get(ReportRecipient, entry["recipient_id"])
    if recipient is None or not recipient.active:
        entry.update(status=FAILED, permanent=True, error="the recipient was removed or paused")
        return
    user = session.get(User, recipient.user_id) if recipient.user_id is not None else None
    if user is not None and not user.active:
        entry.update(status=FAILED, permanent=True, error="the recipient's user is inactive")
        return
    scope = recipient_scope(recipient, user, owner)
    entry["sites"] = sorted(scope) if scope is not None else None
    data = production.data_for(scope)
    if definition.skip_when_empty and data.is_empty:
        entry.update(status=SKIPPED, error=None, detail="nothing to report")
        return
    parcel = Parcel(
        report_id=definition.id,
        report_name=definition.name,
        source=definition.source,
        run_id=run.id,
        data=data,
        files=production.files_for(scope),
        link=report_link(production.params.settings, definition.id),
    )
    detail = deliver(session, channels, recipient, user, parcel)
    entry.update(
        status=SENT,
        bytes=parcel.size,
        files=[f.filename for f in parcel.files],
        error=None,
        permanent=False,
        detail=detail,
    )


def _finish(
    run: ReportRun,
    entries: list[dict[str, Any]],
    now: dt.datetime,
    max_attempts: int,
    error: str | None = None,
) -> None:
    failed = [e for e in entries if e["status"] == FAILED]
    run.claimed_until = None
    if error is not None:
        run.status, run.error, run.finished_at, run.next_attempt_at = (
            RunStatus.FAILED,
            error,
            now,
            None,
        )
        return
    if not failed:
        everyone_skipped = all(e["status"] == SKIPPED for e in entries)
        run.status = RunStatus.SKIPPED if everyone_skipped else RunStatus.SUCCEEDED
        run.error = "no active recipients" if not entries else None
        run.finished_at, run.next_attempt_at = now, None
        return
    reasons = "; ".join(f"{e['target']}: {e['error']}" for e in failed)[:2000]
    if run.attempts >= max_attempts or all(e.get("permanent") for e in failed):
        run.status, run.error, run.finished_at, run.next_attempt_at = (
            RunStatus.FAILED,
            reasons,
            now,
            None,
        )
        log.error("report run failed", extra={"run_id": run.id, "error": reasons})
        return
    run.status, run.error = RunStatus.RETRYING, reasons
    run.next_attempt_at = now + retry_delay(run.attempts)
    log.warning(
        "report run will be retried",
        extra={"run_id": run.id, "attempts": run.attempts, "error": reasons},
    )


def execute(
    factory: sessionmaker[Session],
    settings: Settings,
    run_id: int,
    now: dt.datetime,
    *,
    box: SecretBox | None = None,
    http: httpx.Client | None = None,
    max_attempts: int = MAX_ATTEMPTS,
    ledger: AccessLedger | None = None,
) -> RunStatus:
    """Produce and deliver a run this process has claimed; returns where the run ended up.

    Deliveries are audited through ``ledger`` (without one, a ledger of this call's own that is
    flushed before it returns).
    """
    own_ledger = ledger is None
    channels = Channels(
        Mailer(settings),
        http or httpx.Client(timeout=WEBHOOK_TIMEOUT_S, follow_redirects=False),
        box,
        ledger if ledger is not None else AccessLedger(factory),
    )
    lineage = lineage_for(settings, warehouse_file(settings))
    started = _lineage_start(factory, lineage, run_id, now)
    try:
        with factory() as session:
            status = _execute(session, settings, channels, run_id, now, max_attempts)
    except Exception as exc:
        if started is not None:
            _lineage_end(factory, lineage, started, run_id, now, error=f"{type(exc).__name__}")
        raise
    finally:
        channels.mailer.close()
        if http is None:
            channels.http.close()
        if own_ledger and channels.ledger is not None:
            channels.ledger.close()
    if started is not None:
        _lineage_end(factory, lineage, started, run_id, now)
    return status


def _lineage_start(
    factory: sessionmaker[Session], lineage: Lineage, run_id: int, now: dt.datetime
) -> _Attempt | None:
    with factory() as session:
        run = session.get(ReportRun, run_id)
        definition = session.get(ReportDefinition, run.definition_id) if run else None
        if run is None or definition is None:
            return None
        attempt = _Attempt(
            definition.id, definition.name, definition.source, attempt_run_id(run.id, run.attempts)
        )
    lineage.emit(
        report_event(
            lineage,
            RunState.START,
            definition_id=attempt.definition_id,
            name=attempt.name,
            source=attempt.source,
            run_id=attempt.run_id,
            at=now,
        )
    )
    return attempt


def _lineage_end(
    factory: sessionmaker[Session],
    lineage: Lineage,
    attempt: _Attempt,
    run_id: int,
    now: dt.datetime,
    *,
    error: str | None = None,
) -> None:
    with factory() as session:
        run = session.get(ReportRun, run_id)
        size = run.size_bytes if run is not None else None
        if error is None and run is not None and run.status not in _COMPLETED:
            error = run.error or str(run.status)
    lineage.emit(
        report_event(
            lineage,
            RunState.FAIL if error is not None else RunState.COMPLETE,
            definition_id=attempt.definition_id,
            name=attempt.name,
            source=attempt.source,
            run_id=attempt.run_id,
            at=now,
            size=size,
            error=error,
        )
    )


@dataclass(frozen=True)
class _Attempt:
    definition_id: int
    name: str
    source: str
    run_id: str


def _execute(
    session: Session,
    settings: Settings,
    channels: Channels,
    run_id: int,
    now: dt.datetime,
    max_attempts: int,
) -> RunStatus:
    run = session.get(ReportRun, run_id)
    definition = session.get(ReportDefinition, run.definition_id) if run else None
    if run is None or definition is None:
        return RunStatus.FAILED
    if run.started_at is None:
        run.started_at = now
    zone = run_zone(session, run)
    try:
        period, options = split_params(definition.params)
        options = source_for(definition.source).check(options)
    except SourceError as exc:
        _finish(run, list(run.recipients), now, max_attempts, error=str(exc))
        session.commit()
        return run.status
    if run.period_start is None or run.period_end is None:
        run.period_start, run.period_end = report_period(period, run.scheduled_for, ZoneInfo(zone))
    if not run.recipients:
        run.recipients = _snapshot(session, definition)
    session.commit()
    owner = session.get(User, definition.owner_id) if definition.owner_id is not None else None
    params = RunParams(
        period_start=run.period_start,
        period_end=run.period_end,
        timezone=zone,
        as_of=run.scheduled_for,
        title=definition.name,
        options=options,
        base_currency=settings.base_currency,
        settings=settings,
        # A report reads no more than its owner may (an owner removed: nothing).
        permissions=owner.permissions if owner is not None and owner.active else frozenset(),
        owner=owner if owner is not None and owner.active else None,
    )
    production = _Production(session, definition, params)
    entries = [dict(e) for e in run.recipients]
    for entry in entries:
        if entry["status"] in (SENT, SKIPPED):
            continue
        entry["attempts"] = int(entry.get("attempts", 0)) + 1
        entry["at"] = now.isoformat()
        began = time.perf_counter()
        try:
            _serve(production, channels, run, entry, owner)
        except DeliveryError as exc:
            entry.update(status=FAILED, error=str(exc)[:MAX_ERROR], permanent=exc.permanent)
        except SourceError as exc:
            entry.update(status=FAILED, error=str(exc)[:MAX_ERROR], permanent=True)
        except Exception as exc:
            # A source, renderer or database fault: logged with its trace, and retried.
            session.rollback()
            log.exception("report production failed", extra={"run_id": run_id})
            entry.update(status=FAILED, error=f"{type(exc).__name__}: {exc}"[:MAX_ERROR])
        _audit_delivery(production, channels, run.id, entry, owner, began)
        # Committed per recipient: a crash now cannot make a served recipient get it twice.
        run.recipients = [dict(e) for e in entries]
        run.size_bytes = sum(int(e.get("bytes", 0)) for e in entries if e["status"] == SENT)
        run.claimed_until = now + LEASE
        session.commit()
    _keep(session, production, run_id, settings.report_output_max_bytes, now)
    _finish(run, entries, now, max_attempts)
    session.commit()
    return run.status


def _keep(
    session: Session, production: _Production, run_id: int, cap: int, now: dt.datetime
) -> None:
    """Keep the files this attempt produced; a failure is logged, never fails the run."""
    produced = production.produced()
    if not produced:
        return
    try:
        kept = keep_outputs(session, run_id, produced, cap, now)
        session.commit()
    except Exception:
        # The copies are delivered already; only the hub's copy is lost.
        session.rollback()
        log.exception("report outputs not kept", extra={"run_id": run_id})
        return
    log.info("report outputs kept", extra={"run_id": run_id, "files": kept})


def _audit_delivery(
    production: _Production,
    channels: Channels,
    run_id: int,
    entry: dict[str, Any],
    owner: User | None,
    began: float,
) -> None:
    """Record a delivery attempt in the BI access audit (a skipped copy is no delivery)."""
    if channels.ledger is None or entry["status"] not in (SENT, FAILED):
        return
    try:
        session, definition = production.session, production.definition
        recipient = session.get(ReportRecipient, entry["recipient_id"])
        person = (
            session.get(User, recipient.user_id)
            if recipient is not None and recipient.user_id is not None
            else None
        )
        if "sites" in entry:
            sites = entry["sites"]
            scope: SiteScope = frozenset(sites) if sites is not None else None
            rows, label = production.rows_for(scope), production.label_for(scope)
        else:  # refused before its scope was known (recipient removed, user inactive)
            rows, label = 0, "-"
        event = delivery_event(
            definition,
            run_id,
            entry,
            person or owner,
            rows=rows,
            duration_ms=(time.perf_counter() - began) * 1000,
            scope=label,
        )
        record_access(channels.ledger, event)
    except Exception:
        # Auditing must never fail a delivery.
        log.exception("report delivery not audited", extra={"run_id": run_id})


def preview(
    session: Session,
    settings: Settings,
    definition: ReportDefinition,
    at: dt.datetime,
    site_scope: SiteScope,
) -> tuple[ReportData, tuple[RenderedFile, ...]]:
    """What a run at ``at`` would produce for a scope, without sending or recording anything."""
    zone = definition_zone(session, definition.id)
    period, options = split_params(definition.params)
    options = source_for(definition.source).check(options)
    start, end = report_period(period, at, ZoneInfo(zone))
    owner = session.get(User, definition.owner_id) if definition.owner_id is not None else None
    params = RunParams(
        start,
        end,
        zone,
        at,
        definition.name,
        options,
        settings.base_currency,
        settings=settings,
        permissions=owner.permissions if owner is not None else frozenset(),
        owner=owner,
    )
    production = _Production(session, definition, params)
    return production.data_for(site_scope), production.files_for(site_scope)


# --------------------------------------------------------------------------- the service


class ReportJobs:
    """The report scheduler of one hub process: the supervisor's tick, the catch-up on start,
    and run-now."""

    def __init__(
        self,
        factory: sessionmaker[Session],
        settings: Settings,
        box: SecretBox | None = None,
        *,
        clock: Clock = utcnow,
        http: httpx.Client | None = None,
        max_attempts: int = MAX_ATTEMPTS,
        ledger: AccessLedger | None = None,
    ) -> None:
        """Keep what runs need; nothing is opened until a run executes.

        ``ledger`` is the app's BI access audit; without one the jobs keep their own.
        """
        self._factory = factory
        self._settings = settings
        self._box = box
        self._clock = clock
        self._http = http
        self._max_attempts = max_attempts
        self._ledger = ledger if ledger is not None else AccessLedger(factory)
        self._finished: dict[int, RunStatus] = {}
        self._changed = threading.Condition()

    def catch_up(self) -> list[int]:
        """Queue the runs missed while the hub was down (one per schedule); their ids."""
        try:
            created = enqueue_due(self._factory, self._clock())
        except Exception:
            # The hub still starts; the next tick tries again.
            log.exception("report catch-up failed")
            return []
        if created:
            log.info("report runs queued on start", extra={"runs": created})
        return created

    def tick(self) -> int:
        """Queue due runs, then execute every ready one; how many were executed."""
        enqueue_due(self._factory, self._clock())
        return len(self.run_ready())

    def run_ready(self) -> list[int]:
        """Claim and execute the runs that are ready; the ids this process executed."""
        done = []
        for run_id in ready_runs(self._factory, self._clock()):
            if claim(self._factory, run_id, self._clock()):
                self._execute(run_id)
                done.append(run_id)
        return done

    def run_now(self, definition_id: int) -> int:
        """Run a definition at once, here; the run's id (its record says how it went)."""
        now = self._clock()
        with self._factory() as session, session.begin():
            definition = session.get(ReportDefinition, definition_id)
            if definition is None:
                raise LookupError(f"report {definition_id} does not exist")
            run_id = queue_manual_run(session, definition, now).id
        if claim(self._factory, run_id, now):
            self._execute(run_id)
        return run_id

    def _execute(self, run_id: int) -> None:
        status = execute(
            self._factory,
            self._settings,
            run_id,
            self._clock(),
            box=self._box,
            http=self._http,
            max_attempts=self._max_attempts,
            ledger=self._ledger,
        )
        # The audit rows are written before anyone is told the run is done.
        self._ledger.flush()
        with self._changed:
            self._finished[run_id] = status
            self._changed.notify_all()

    def wait_finished(self, run_id: int, timeout: float) -> RunStatus | None:
        """Block until this process has executed the run (an attempt), or the timeout."""
        with self._changed:
            self._changed.wait_for(lambda: run_id in self._finished, timeout)
            return self._finished.get(run_id)
