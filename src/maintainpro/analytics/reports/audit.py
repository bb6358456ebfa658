"""Report deliveries and downloads in the BI access audit (``bi_access_log``).

A report delivery is an export: each recipient's delivery attempt is recorded on channel
``report`` (200 when it was delivered, 500 with the reason when it failed) and each download of
a kept file on channel ``report_download``. The dataset is the report's source; the options name
the report, the run, and where the copy went (or which file was downloaded).
"""

from __future__ import annotations

from typing import Any, Final

from maintainpro.analytics.access import AccessEvent
from maintainpro.analytics.reports.records import ReportDefinition, ReportOutput
from maintainpro.core.users import User

DELIVERY_CHANNEL: Final = "report"
DOWNLOAD_CHANNEL: Final = "report_download"
UNKNOWN_DATASET: Final = "-"


def delivery_event(
    definition: ReportDefinition,
    run_id: int,
    entry: dict[str, Any],
    person: User | None,
    *,
    rows: int,
    duration_ms: float,
    scope: str,
) -> AccessEvent:
    """The audit event of one recipient's delivery attempt, from its entry in the run record."""
    failed = entry.get("status") == "failed"
    return AccessEvent(
        channel=DELIVERY_CHANNEL,
        dataset=definition.source,
        user_id=person.id if person is not None else None,
        username=person.username if person is not None else None,
        credential_id=None,
        credential_name=None,
        options={
            "report": definition.name,
            "report_id": str(definition.id),
            "run_id": str(run_id),
            "recipient": str(entry.get("kind", "")),
            "target": str(entry.get("target", "")),
            "formats": ",".join(definition.formats),
            "scope": scope,
            "files": ",".join(str(f) for f in entry.get("files") or []),
        },
        rows=rows if not failed else 0,
        duration_ms=duration_ms,
        status=500 if failed else 200,
        error=str(entry.get("error") or "delivery failed") if failed else None,
    )


def download_event(
    user: User,
    definition: ReportDefinition | None,
    run_id: int,
    output_id: int,
    output: ReportOutput | None,
    *,
    status: int,
    duration_ms: float,
    via: str,
    error: str | None = None,
) -> AccessEvent:
    """The audit event of a download of a kept file (served or refused)."""
    options = {"run_id": str(run_id), "output_id": str(output_id), "via": via}
    if definition is not None:
        options["report"] = definition.name
        options["report_id"] = str(definition.id)
    if output is not None:
        options["file"] = output.filename
        options["scope"] = output.scope_label
        options["bytes"] = str(output.size_bytes)
    return AccessEvent(
        channel=DOWNLOAD_CHANNEL,
        dataset=definition.source if definition is not None else UNKNOWN_DATASET,
        user_id=user.id,
        username=user.username,
        credential_id=None,
        credential_name=None,
        options=options,
        rows=0,
        duration_ms=duration_ms,
        status=status,
        error=error,
    )
