"""Report files kept on the hub: what a run produced per recipient scope, who may download it,
and the daily purge.

Each scope a run produced files for (every site, or a set of sites) gets one ``report_outputs``
row per file: its name, type, size and SHA-256, and its bytes unless the file is larger than
``report_output_max_bytes`` (then ``not_kept_reason`` says so). A retry keeps only files not
kept already for the run (same scope, name and bytes), so a recipient served on a later attempt
with changed data finds that copy too.

A download follows the warehouse's site rule (``analytics.access.site_scope``): a user tied to
sites may download a file only when every site of its scope is one of theirs; a file of every
site is for users of every site only.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Final

from sqlalchemy import delete, select
from sqlalchemy.orm import Session, sessionmaker

from maintainpro.analytics.reports.data import SiteScope
from maintainpro.analytics.reports.formatting import RenderedFile
from maintainpro.analytics.reports.records import ReportOutput
from maintainpro.core.db import transaction

log = logging.getLogger(__name__)

ALL_SITES: Final = "all sites"
NO_SITES: Final = "no sites"
MAX_LABEL: Final = 200
PURGE_CHUNK: Final = 500


@dataclass(frozen=True)
class ProducedScope:
    """The files a run rendered for one scope, with the codes of the scope's sites."""

    scope: SiteScope
    site_codes: tuple[str, ...]
    files: tuple[RenderedFile, ...]


def scope_label(scope: SiteScope, site_codes: Sequence[str]) -> str:
    """How a scope reads: "all sites", the site codes ("SA, SB"), or "no sites"."""
    if scope is None:
        return ALL_SITES
    if not scope:
        return NO_SITES
    text = ", ".join(site_codes) if site_codes else ", ".join(str(s) for s in sorted(scope))
    return text if len(text) <= MAX_LABEL else text[: MAX_LABEL - 1] + "…"


def site_list(scope: SiteScope) -> list[int] | None:
    """A scope as stored: its site ids in order, None for every site."""
    return None if scope is None else sorted(scope)


def too_large(size: int, cap: int) -> str | None:
    """Why a file of this size is not kept under the cap (None: it is kept)."""
    if size <= cap:
        return None
    return f"larger than the {cap:,} bytes kept (report_output_max_bytes)"


def output_rows(
    run_id: int, produced: ProducedScope, cap: int, now: dt.datetime
) -> list[ReportOutput]:
    """The rows of one scope's files (not added to any session)."""
    rows = []
    for file in produced.files:
        reason = too_large(len(file.content), cap)
        rows.append(
            ReportOutput(
                run_id=run_id,
                scope_label=scope_label(produced.scope, produced.site_codes),
                site_ids=site_list(produced.scope),
                filename=file.filename[:255],
                media_type=file.mime[:127],
                size_bytes=len(file.content),
                sha256=hashlib.sha256(file.content).hexdigest(),
                content=file.content if reason is None else None,
                not_kept_reason=reason,
                created_at=now,
            )
        )
    return rows


def _sites_key(sites: Sequence[int] | None) -> tuple[int, ...] | None:
    return tuple(sites) if sites is not None else None


def keep_outputs(
    session: Session,
    run_id: int,
    produced: Iterable[ProducedScope],
    cap: int,
    now: dt.datetime,
) -> int:
    """Add the rows of files not yet kept for the run (flushed, not committed); how many."""
    known = session.execute(
        select(ReportOutput.site_ids, ReportOutput.filename, ReportOutput.sha256).where(
            ReportOutput.run_id == run_id
        )
    )
    seen = {(_sites_key(sites), name, digest) for sites, name, digest in known}
    added = 0
    for scope in produced:
        for row in output_rows(run_id, scope, cap, now):
            key = (
                _sites_key(row.site_ids),
                row.filename,
                row.sha256,
            )
            if key in seen:
                continue
            seen.add(key)
            session.add(row)
            added += 1
    session.flush()
    return added


def may_download(user_scope: SiteScope, output_sites: Sequence[int] | None) -> bool:
    """Whether a user with this site scope may have a file of these sites (None: every site)."""
    if user_scope is None:
        return True
    if output_sites is None:
        return False
    return set(output_sites) <= user_scope


def purge_report_outputs(
    factory: sessionmaker[Session], retention_days: int, now: dt.datetime
) -> int:
    """Delete kept files older than the retention (0 keeps every file); how many were deleted.

    Deleted a few hundred at a time: the rows hold the files' bytes.
    """
    if retention_days <= 0:
        return 0
    cutoff = now - dt.timedelta(days=retention_days)
    deleted = 0
    while True:
        with transaction(factory) as session:
            ids = list(
                session.scalars(
                    select(ReportOutput.id)
                    .where(ReportOutput.created_at < cutoff)
                    .limit(PURGE_CHUNK)
                )
            )
            if ids:
                session.execute(
                    delete(ReportOutput).where(ReportOutput.id.in_(ids)),
                    execution_options={"synchronize_session": False},
                )
        deleted += len(ids)
        if len(ids) < PURGE_CHUNK:
            break
    if deleted:
        log.info(
            "report outputs purged",
            extra={"files": deleted, "before": cutoff.isoformat(), "days": retention_days},
        )
    return deleted


def visible_outputs(session: Session, run_id: int, user_scope: SiteScope) -> list[ReportOutput]:
    """A run's files a user with this scope may download (kept or not), by scope and name."""
    rows = session.scalars(
        select(ReportOutput)
        .where(ReportOutput.run_id == run_id)
        .order_by(ReportOutput.scope_label, ReportOutput.filename, ReportOutput.id)
    )
    return [row for row in rows if may_download(user_scope, row.site_ids)]


def visible_output(
    session: Session, run_id: int, output_id: int, user_scope: SiteScope
) -> tuple[ReportOutput | None, bool]:
    """The run's file, and whether the user may have it (a file of another scope reads as
    missing to the caller: its existence is not revealed)."""
    row = session.get(ReportOutput, output_id)
    if row is None or row.run_id != run_id:
        return None, False
    return row, may_download(user_scope, row.site_ids)
