"""/metrics in the Prometheus text format: ingest, connectors, devices, background tasks."""

from __future__ import annotations

from collections.abc import Iterable

from fastapi import APIRouter, Request
from fastapi.responses import PlainTextResponse
from sqlalchemy import select

from maintainpro.api.deps import SessionDep
from maintainpro.core.db import utcnow
from maintainpro.iot.devices import Device, DeviceStatus

router = APIRouter(tags=["health"])
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


def _label(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _metric(
    name: str, kind: str, help_text: str, samples: Iterable[tuple[dict[str, str], float]]
) -> list[str]:
    lines = [f"# HELP {name} {help_text}", f"# TYPE {name} {kind}"]
    for labels, value in samples:
        rendered = ",".join(f'{k}="{_label(v)}"' for k, v in labels.items())
        lines.append(f"{name}{{{rendered}}} {value:g}" if rendered else f"{name} {value:g}")
    return lines


@router.get("/metrics", response_class=PlainTextResponse)
def metrics(request: Request, db: SessionDep) -> PlainTextResponse:
    """Counters for monitoring; no secrets and no per-reading data."""
    lines: list[str] = []
    hub = getattr(request.app.state, "iot_hub", None)
    if hub is not None:
        stats = hub.pipeline.stats
        for field, kind, text in (
            ("received", "counter", "readings handed to the ingest pipeline"),
            ("stored", "counter", "readings stored"),
            ("duplicates", "counter", "readings already stored (redeliveries)"),
            ("dead_lettered", "counter", "inputs refused into the dead-letter table"),
            ("batches", "counter", "write transactions"),
            ("write_errors", "counter", "failed write attempts (retried)"),
            ("queued", "gauge", "messages waiting in the ingest queue"),
            ("last_batch_ms", "gauge", "duration of the last write transaction"),
        ):
            suffix = "_total" if kind == "counter" else ""
            lines += _metric(
                f"maintainpro_ingest_{field}{suffix}", kind, text, [({}, getattr(stats, field))]
            )
        connectors = hub.connector_stats
        for field, kind, text in (
            ("messages", "counter", "messages received or polls made"),
            ("readings", "counter", "readings produced"),
            ("errors", "counter", "errors"),
            ("reconnects", "counter", "reconnections"),
            ("connected", "gauge", "1 when connected"),
        ):
            suffix = "_total" if kind == "counter" else ""
            lines += _metric(
                f"maintainpro_connector_{field}{suffix}",
                kind,
                text,
                [
                    ({"connector": c.name, "protocol": c.protocol}, float(getattr(c, field)))
                    for c in connectors
                ],
            )
    now = utcnow()
    counts = dict.fromkeys((s.value for s in DeviceStatus), 0)
    for device in db.scalars(select(Device)).all():
        counts[device.status_at(now).value] += 1
    lines += _metric(
        "maintainpro_devices",
        "gauge",
        "devices by derived status",
        [({"status": status}, float(n)) for status, n in counts.items()],
    )
    supervisor = getattr(request.app.state, "supervisor", None)
    if supervisor is not None:
        lines += _metric(
            "maintainpro_task_failures_total",
            "counter",
            "failures of supervised background tasks",
            [({"task": s.name}, float(s.failures)) for s in supervisor.statuses],
        )
    return PlainTextResponse("\n".join(lines) + "\n", media_type=CONTENT_TYPE)
