"""The three ways a report leaves the hub: e-mail with attachments and an inline summary (plain
text with an HTML alternative), a signed webhook POST carrying the files as base64, and a drop
into an SFTP folder.

Every failure is a ``core.delivery.DeliveryError``; ``permanent`` ones (no address, a deleted
endpoint, refused credentials, a payload too large) are not retried.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import html
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final
from zoneinfo import ZoneInfo

import httpx

from maintainpro.analytics.reports.data import ColumnKind, ReportData, Table
from maintainpro.analytics.reports.formatting import (
    RenderedFile,
    cell_text,
    figure_text,
    period_text,
)
from maintainpro.core.delivery import USER_AGENT, DeliveryError, Mailer, SecretBox, sign
from maintainpro.core.notifications import WebhookEndpoint
from maintainpro.supply.sftp import SftpConfig, SftpError, SftpPermanentError
from maintainpro.supply.sftp_client import upload

EVENT: Final = "report.delivered"
# Webhook receivers commonly refuse bodies over a few MB; base64 adds a third.
MAX_WEBHOOK_FILE_BYTES: Final = 8 * 1024 * 1024
PREVIEW_ROWS: Final = 10
# A dashboard may have sixty tiles; the e-mail previews the first few, the files hold all.
PREVIEW_TABLES: Final = 10
SFTP_PARTNER: Final = "reports"


@dataclass(frozen=True)
class Parcel:
    """What one recipient receives: the report's data and its files."""

    report_id: int
    report_name: str
    source: str
    run_id: int
    data: ReportData
    files: tuple[RenderedFile, ...]
    # The report's page on the hub (from the public URL in the settings), for the e-mail.
    link: str | None = None

    @property
    def size(self) -> int:
        """Bytes of all files."""
        return sum(len(f.content) for f in self.files)


def subject(parcel: Parcel) -> str:
    """E-mail subject: the report, its period and (for a site's copy) the sites."""
    text = f"{parcel.report_name}: {period_text(parcel.data)}"
    if parcel.data.sites:
        text += f" [{', '.join(parcel.data.sites)}]"
    return text


def _cells(table: Table, zone: ZoneInfo) -> list[list[str]]:
    """The header and the first rows of a table as text."""
    return [[c.title for c in table.columns]] + [
        [cell_text(v, c.kind, c.places, zone) for c, v in zip(table.columns, row, strict=True)]
        for row in table.rows[:PREVIEW_ROWS]
    ]


def _more(table: Table) -> str | None:
    extra = len(table.rows) - PREVIEW_ROWS
    return f"... {extra} more rows in the attachments" if extra > 0 else None


def _preview(table: Table, zone: ZoneInfo) -> list[str]:
    cells = _cells(table, zone)
    widths = [min(max(len(row[i]) for row in cells), 30) for i in range(len(table.columns))]
    lines = [table.title, ""]
    if not table.rows:
        return [*lines, "No rows."]
    for row in cells:
        cells_text = (text[:30].ljust(w) for text, w in zip(row, widths, strict=True))
        lines.append("  ".join(cells_text).rstrip())
    more = _more(table)
    return [*lines, more] if more else lines


def _previewed(data: ReportData) -> tuple[Table, ...]:
    """The tables the e-mail shows: none when nothing has rows, else the first few."""
    return () if data.is_empty else data.tables[:PREVIEW_TABLES]


def _unshown(data: ReportData) -> int:
    return len(data.tables) - len(_previewed(data)) if not data.is_empty else 0


def summary_text(parcel: Parcel) -> str:
    """The inline summary: period, headline figures, each table's top rows, the files."""
    data = parcel.data
    zone = ZoneInfo(data.timezone)
    lines = [data.title, f"Period: {period_text(data)}"]
    if data.sites:
        lines.append("Sites: " + ", ".join(data.sites))
    lines.append("")
    if data.is_empty:
        lines += ["Nothing to report for this period.", ""]
    width = max((len(f.label) for f in data.summary), default=0)
    lines += [f"  {f.label.ljust(width)}  {figure_text(f, zone)}" for f in data.summary]
    for table in _previewed(data):
        lines += ["", *_preview(table, zone)]
    if _unshown(data):
        lines += ["", f"... {_unshown(data)} more tables in the attachments"]
    if parcel.files:
        lines += ["", "Attached:"]
        lines += [f"  {f.filename} ({len(f.content):,} bytes)" for f in parcel.files]
    lines += ["", *data.notes]
    if parcel.link:
        lines += ["", f"Open the report in MaintAInPro: {parcel.link}"]
    lines += ["", "-- ", f'MaintAInPro scheduled report "{parcel.report_name}".']
    return "\n".join(lines) + "\n"


_CELL: Final = 'style="padding:4px 8px;border-bottom:1px solid #ddd;text-align:{align}"'
_NUMERIC: Final = frozenset({ColumnKind.INTEGER, ColumnKind.DECIMAL, ColumnKind.PERCENT})


def _html_table(table: Table, zone: ZoneInfo) -> list[str]:
    """A table's first rows as HTML; every value escaped."""
    out = [f'<h2 style="font-size:16px;margin:20px 0 6px">{html.escape(table.title)}</h2>']
    if not table.rows:
        return [*out, '<p style="color:#555">No rows.</p>']
    aligns = ["right" if c.kind in _NUMERIC else "left" for c in table.columns]
    header, *rows = _cells(table, zone)
    out.append('<table style="border-collapse:collapse;font-size:13px">')
    out.append(
        "<thead><tr>"
        + "".join(
            f'<th scope="col" {_CELL.format(align=a)}>{html.escape(t)}</th>'
            for t, a in zip(header, aligns, strict=True)
        )
        + "</tr></thead><tbody>"
    )
    for row in rows:
        out.append(
            "<tr>"
            + "".join(
                f"<td {_CELL.format(align=a)}>{html.escape(t)}</td>"
                for t, a in zip(row, aligns, strict=True)
            )
            + "</tr>"
        )
    out.append("</tbody></table>")
    more = _more(table)
    if more:
        out.append(f'<p style="color:#555">{html.escape(more)}</p>')
    return out


def summary_html(parcel: Parcel) -> str:
    """The inline summary as an HTML document: the same content as the text, escaped."""
    data = parcel.data
    zone = ZoneInfo(data.timezone)
    e = html.escape
    out = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{e(subject(parcel))}</title></head>",
        '<body style="font-family:Arial,Helvetica,sans-serif;color:#1a1a1a">',
        f'<h1 style="font-size:20px">{e(data.title)}</h1>',
        f"<p>Period: {e(period_text(data))}"
        + (f"<br>Sites: {e(', '.join(data.sites))}" if data.sites else "")
        + "</p>",
    ]
    if data.is_empty:
        out.append("<p><strong>Nothing to report for this period.</strong></p>")
    if data.summary:
        out.append('<table style="border-collapse:collapse;font-size:14px"><tbody>')
        out += [
            f'<tr><th scope="row" {_CELL.format(align="left")}>{e(f.label)}</th>'
            f"<td {_CELL.format(align='right')}>{e(figure_text(f, zone))}</td></tr>"
            for f in data.summary
        ]
        out.append("</tbody></table>")
    for table in _previewed(data):
        out += _html_table(table, zone)
    if _unshown(data):
        out.append(f"<p>{_unshown(data)} more tables are in the attachments.</p>")
    if parcel.files:
        out.append("<p>Attached:</p><ul>")
        out += [f"<li>{e(f.filename)} ({len(f.content):,} bytes)</li>" for f in parcel.files]
        out.append("</ul>")
    out += [f'<p style="color:#555;font-size:12px">{e(note)}</p>' for note in data.notes]
    if parcel.link:
        out.append(f'<p><a href="{e(parcel.link)}">Open the report in MaintAInPro</a></p>')
    out.append(
        f'<p style="color:#777;font-size:12px">MaintAInPro scheduled report '
        f"&ldquo;{e(parcel.report_name)}&rdquo;.</p></body></html>"
    )
    return "\n".join(out) + "\n"


def send_email(mailer: Mailer, address: str, parcel: Parcel) -> None:
    """Send the parcel to one address: text and HTML summaries, files attached."""
    mailer.send(
        address,
        subject(parcel),
        summary_text(parcel),
        attachments=[(f.filename, f.mime, f.content) for f in parcel.files],
        html=summary_html(parcel),
    )


def webhook_body(parcel: Parcel) -> bytes:
    """The JSON posted (and signed): the report, period, summary figures and files in base64."""
    data = parcel.data
    zone = ZoneInfo(data.timezone)
    document: dict[str, Any] = {
        "event": EVENT,
        "run_id": parcel.run_id,
        "report": {"id": parcel.report_id, "name": parcel.report_name, "source": parcel.source},
        "title": data.title,
        "period": {
            "start": data.period_start.isoformat(),
            "end": data.period_end.isoformat(),
            "timezone": data.timezone,
        },
        "generated_at": data.generated_at.isoformat(),
        "sites": list(data.sites),
        "empty": data.is_empty,
        "summary": [
            {"label": f.label, "value": f.value, "text": figure_text(f, zone)} for f in data.summary
        ],
        "files": [
            {
                "filename": f.filename,
                "content_type": f.mime,
                "size": len(f.content),
                "sha256": hashlib.sha256(f.content).hexdigest(),
                "content_base64": base64.b64encode(f.content).decode("ascii"),
            }
            for f in parcel.files
        ],
    }
    return json.dumps(document, separators=(",", ":"), default=str).encode()


def post_webhook(
    client: httpx.Client,
    endpoint: WebhookEndpoint | None,
    box: SecretBox | None,
    parcel: Parcel,
    delivery_key: str,
) -> int:
    """POST the parcel to a registered endpoint, signed with its secret; returns the status."""
    if endpoint is None:
        raise DeliveryError("the webhook endpoint was deleted", permanent=True)
    if not endpoint.active:
        raise DeliveryError("the webhook endpoint is disabled", permanent=True)
    if parcel.size > MAX_WEBHOOK_FILE_BYTES:
        raise DeliveryError(
            f"the files ({parcel.size:,} bytes) are too large for a webhook; use e-mail or SFTP",
            permanent=True,
        )
    body = webhook_body(parcel)
    headers = {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        "X-MaintainPro-Event": EVENT,
        # Stable across retries, so a receiver can drop a copy it already has.
        "X-MaintainPro-Delivery": delivery_key,
    }
    if endpoint.secret is not None:
        if box is None:
            raise DeliveryError("the webhook secret cannot be opened: no credentials key")
        try:
            secret = box.open(endpoint.secret).get("secret", "")
        except ValueError as exc:
            raise DeliveryError(str(exc), permanent=True) from exc
        headers["X-MaintainPro-Signature"] = sign(secret, body)
    try:
        response = client.post(endpoint.url, content=body, headers=headers)
    except httpx.HTTPError as exc:
        # The URL is left out: webhook URLs often carry tokens in their path.
        raise DeliveryError(f"{type(exc).__name__}: request failed") from exc
    if not 200 <= response.status_code < 300:
        # 4xx other than 408/429 will not change by trying again.
        permanent = 400 <= response.status_code < 500 and response.status_code not in (408, 429)
        raise DeliveryError(
            f"HTTP {response.status_code}", code=response.status_code, permanent=permanent
        )
    return response.status_code


@dataclass(frozen=True)
class SftpTarget:
    """Where an SFTP recipient's files go (stored on the recipient; secrets sealed apart)."""

    host: str
    username: str
    host_keys: tuple[str, ...]
    port: int = 22
    folder: str = "reports"

    @classmethod
    def of(cls, stored: dict[str, Any]) -> SftpTarget:
        """From the recipient's ``sftp`` column."""
        return cls(
            host=str(stored["host"]),
            username=str(stored["username"]),
            host_keys=tuple(str(k) for k in stored["host_keys"]),
            port=int(stored.get("port", 22)),
            folder=str(stored.get("folder", "reports")),
        )

    def as_json(self) -> dict[str, Any]:
        """For the recipient's ``sftp`` column."""
        return {
            "host": self.host,
            "port": self.port,
            "username": self.username,
            "host_keys": list(self.host_keys),
            "folder": self.folder,
        }

    def config(self, secrets: dict[str, str]) -> SftpConfig:
        """The SFTP client settings (SftpConfigError when they cannot work)."""
        return SftpConfig(
            partner=SFTP_PARTNER,
            host=self.host,
            username=self.username,
            host_keys=self.host_keys,
            port=self.port,
            password=secrets.get("password"),
            private_key=secrets.get("private_key"),
            passphrase=secrets.get("passphrase"),
            outbound_dir=self.folder,
        )


async def _upload_all(config: SftpConfig, files: Sequence[RenderedFile]) -> list[str]:
    return [await upload(config, f.filename, f.content) for f in files]


def drop_via_sftp(
    target: SftpTarget, sealed: bytes | None, box: SecretBox | None, files: Sequence[RenderedFile]
) -> list[str]:
    """Upload each file atomically (write, then rename) into the target folder; remote paths.

    Blocking: runs its own event loop, so it must be called from a thread without one (the
    supervisor's worker threads, synchronous routes, the CLI).
    """
    if sealed is not None and box is None:
        raise DeliveryError("the SFTP credentials cannot be opened: no credentials key")
    try:
        secrets = box.open(sealed) if box is not None and sealed is not None else {}
    except ValueError as exc:
        raise DeliveryError(str(exc), permanent=True) from exc
    try:
        config = target.config(secrets)
        return asyncio.run(_upload_all(config, files))
    except SftpPermanentError as exc:
        raise DeliveryError(str(exc), permanent=True) from exc
    except SftpError as exc:
        raise DeliveryError(str(exc)) from exc
