"""Report tables: definitions, their cron schedules, recipients, the record of every run and
the files runs produced (kept for download)."""

from __future__ import annotations

import datetime as dt
import enum
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    ForeignKey,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from maintainpro.core.columns import Timestamped, text_enum
from maintainpro.core.db import Base, UTCDateTime, utcnow


class RecipientKind(enum.StrEnum):
    """How a report reaches its recipient."""

    EMAIL = "email"
    WEBHOOK = "webhook"
    SFTP = "sftp"


class RunStatus(enum.StrEnum):
    """Where a run is: waiting, being produced, done, skipped, waiting to retry, given up."""

    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    SKIPPED = "skipped"
    RETRYING = "retrying"


class RunTrigger(enum.StrEnum):
    """Why a run exists: its schedule came due, it was missed while the hub was down, by hand."""

    SCHEDULE = "schedule"
    CATCH_UP = "catch_up"
    MANUAL = "manual"


class ReportDefinition(Timestamped, Base):
    """What a report shows (a source and its parameters), in which formats, and whose it is."""

    __tablename__ = "report_definitions"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    description: Mapped[str] = mapped_column(Text, default="")
    # A built-in source name (pm_compliance, bad_actors, ...) or saved_query.
    source: Mapped[str] = mapped_column(String(64))
    params: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    formats: Mapped[list[str]] = mapped_column(JSON, default=list)
    skip_when_empty: Mapped[bool] = mapped_column(Boolean, default=False)
    owner_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))

    schedules: Mapped[list[ReportSchedule]] = relationship(
        back_populates="definition", cascade="all, delete-orphan", passive_deletes=True
    )
    recipients: Mapped[list[ReportRecipient]] = relationship(
        back_populates="definition", cascade="all, delete-orphan", passive_deletes=True
    )


class ReportSchedule(Timestamped, Base):
    """When a definition runs: a five-field cron expression read in an IANA time zone."""

    __tablename__ = "report_schedules"

    id: Mapped[int] = mapped_column(primary_key=True)
    definition_id: Mapped[int] = mapped_column(
        ForeignKey("report_definitions.id", ondelete="CASCADE"), index=True
    )
    cron: Mapped[str] = mapped_column(String(100))
    timezone: Mapped[str] = mapped_column(String(64), default="UTC")
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    # The next fire time (UTC); a value in the past when the hub starts means a missed run.
    next_run_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime(), index=True)
    last_run_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())

    definition: Mapped[ReportDefinition] = relationship(back_populates="schedules")


class ReportRecipient(Timestamped, Base):
    """Where a definition's output goes, and which site's rows that recipient may see.

    E-mail goes to ``address`` (or the user's own address); webhooks go to a registered
    ``WebhookEndpoint`` (its URL and sealed signing secret); SFTP drops go to the server in
    ``sftp`` (host, port, username, pinned host keys, folder) with the password or private key
    sealed in ``secrets``. The site filter is ``site_id`` when set, else the site of ``user``.
    """

    __tablename__ = "report_recipients"

    id: Mapped[int] = mapped_column(primary_key=True)
    definition_id: Mapped[int] = mapped_column(
        ForeignKey("report_definitions.id", ondelete="CASCADE"), index=True
    )
    kind: Mapped[RecipientKind] = mapped_column(text_enum(RecipientKind))
    address: Mapped[str | None] = mapped_column(String(254))
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    webhook_id: Mapped[int | None] = mapped_column(
        ForeignKey("webhook_endpoints.id", ondelete="CASCADE")
    )
    sftp: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    secrets: Mapped[bytes | None] = mapped_column(LargeBinary, info={"audit": "redact"})
    site_id: Mapped[int | None] = mapped_column(ForeignKey("sites.id", ondelete="CASCADE"))
    active: Mapped[bool] = mapped_column(Boolean, default=True)

    definition: Mapped[ReportDefinition] = relationship(back_populates="recipients")


class ReportRun(Base):
    """One production of a report for all its recipients: status, attempts, what went where."""

    __tablename__ = "report_runs"
    # The run log is itself the record; auditing each status change would only double it.
    __audit__ = False
    __table_args__ = (UniqueConstraint("schedule_id", "scheduled_for"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    definition_id: Mapped[int] = mapped_column(
        ForeignKey("report_definitions.id", ondelete="CASCADE"), index=True
    )
    # None for runs started by hand; (schedule, scheduled_for) is unique so that two hub
    # processes noticing the same due time create one run between them.
    schedule_id: Mapped[int | None] = mapped_column(
        ForeignKey("report_schedules.id", ondelete="SET NULL")
    )
    trigger: Mapped[RunTrigger] = mapped_column(text_enum(RunTrigger))
    scheduled_for: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    status: Mapped[RunStatus] = mapped_column(
        text_enum(RunStatus), default=RunStatus.QUEUED, index=True
    )
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime(), index=True)
    # A process working on the run holds it until then; past it, another may take it over.
    claimed_until: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    started_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    finished_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    period_start: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    period_end: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    # One entry per recipient: kind, target, sites, status, attempts, files, bytes, error.
    recipients: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    size_bytes: Mapped[int] = mapped_column(Integer, default=0)
    error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)


class ReportOutput(Base):
    """One file a run produced for one recipient scope, kept on the hub for download.

    A file over the size cap is recorded without its bytes (``content`` NULL) and
    ``not_kept_reason`` says why; rows older than ``report_output_retention_days`` are purged.
    """

    __tablename__ = "report_outputs"
    # The bytes are the record; the change audit would copy every file into the audit log.
    __audit__ = False

    id: Mapped[int] = mapped_column(primary_key=True)
    run_id: Mapped[int] = mapped_column(
        ForeignKey("report_runs.id", ondelete="CASCADE"), index=True
    )
    # "all sites", or the site codes of the scope ("SA, SB"), as the recipients' copies said.
    scope_label: Mapped[str] = mapped_column(String(200))
    # The site ids the scope covered; None for every site.
    site_ids: Mapped[list[int] | None] = mapped_column(JSON)
    filename: Mapped[str] = mapped_column(String(255))
    media_type: Mapped[str] = mapped_column(String(127))
    size_bytes: Mapped[int] = mapped_column(BigInteger)
    sha256: Mapped[str] = mapped_column(String(64))
    # Deferred: listings never read the bytes, only a download does.
    content: Mapped[bytes | None] = mapped_column(LargeBinary, deferred=True)
    not_kept_reason: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow, index=True)
