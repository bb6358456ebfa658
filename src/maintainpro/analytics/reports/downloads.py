"""Serving a report run's kept file to a user: the site rule, the reason for a refusal, and the
audit row, the same for the API and the pages."""

from __future__ import annotations

import time
from dataclasses import dataclass

from sqlalchemy.orm import Session

from maintainpro.analytics.access import AccessLedger, record_access, site_scope
from maintainpro.analytics.reports.audit import download_event
from maintainpro.analytics.reports.outputs import visible_output
from maintainpro.analytics.reports.records import ReportDefinition, ReportOutput, ReportRun
from maintainpro.core.users import User


@dataclass(frozen=True)
class Download:
    """A kept file to send (``content`` set), or why there is none for this user."""

    output: ReportOutput | None
    content: bytes | None
    reason: str


def fetch_download(
    session: Session, ledger: AccessLedger, user: User, run_id: int, output_id: int, *, via: str
) -> Download:
    """The file if the user may have it, recorded in the BI access audit either way.

    Another site's file reads exactly like a missing one; a file too large to keep says so.
    """
    began = time.perf_counter()
    row, allowed = visible_output(session, run_id, output_id, site_scope(user))
    run = session.get(ReportRun, run_id) if row is not None else None
    definition = session.get(ReportDefinition, run.definition_id) if run is not None else None
    content = row.content if row is not None and allowed else None
    if content is not None:
        reason = ""
    elif row is not None and allowed and row.not_kept_reason:
        reason = f"this file was not kept: {row.not_kept_reason}"
    else:
        reason = f"report output {output_id} of run {run_id} does not exist"
    record_access(
        ledger,
        download_event(
            user,
            definition,
            run_id,
            output_id,
            row,
            status=200 if content is not None else 404,
            duration_ms=(time.perf_counter() - began) * 1000,
            via=via,
            error=reason or None,
        ),
    )
    return Download(row if allowed else None, content, reason)
