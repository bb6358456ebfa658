"""Analytics pages: the maintenance figures, the analytics integration dashboard (BI connections,
pipeline performance, the PostgreSQL warehouse's loads, dataset sync status) and the dataset
catalog with each dataset's lineage.

The maintenance figures need ``work_orders:read``. The dashboard and the catalog show who reads
what through the BI channels and how the warehouse is kept, so they need ``audit:read`` (analysts,
maintenance managers and administrators); a dataset's row count is what the reader's site may
see, and datasets of areas the reader's role may not read are left out.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final

import psycopg
from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import HTMLResponse
from sqlalchemy import func, select
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from maintainpro.analytics.access import ConnectionStats, access_ledger, site_scope
from maintainpro.analytics.catalog import (
    Catalog,
    Dataset,
    DatasetStatus,
    Graph,
    JobSummary,
    Loaded,
    catalog_for,
    snapshot,
    summarise_runs,
    sync_counts,
)
from maintainpro.analytics.exports.schedules import RunState, exports_dir, load_state
from maintainpro.analytics.feeds.status import FeedStatus, feed_status
from maintainpro.analytics.warehouse import RunRecord, WarehouseError
from maintainpro.analytics.warehouse_pg import PostgresWarehouse, where_is
from maintainpro.api.deps import SessionDep
from maintainpro.config import Settings
from maintainpro.core.db import utcnow
from maintainpro.core.users import Permission, User
from maintainpro.core.work_orders import OPEN_STATUSES, WorkOrder, WorkOrderType
from maintainpro.web.charts import Chart, Series
from maintainpro.web.pages import render
from maintainpro.web.session_auth import PageUser, page_permission

router = APIRouter(include_in_schema=False)
CanReadWork = page_permission(Permission.WORK_ORDERS_READ)
CanAudit = page_permission(Permission.AUDIT_READ)
RUN_HISTORY: Final = 500
# Refusals before a user was known (bad tokens) shown on the integration page: the last day.
REFUSALS_WINDOW: Final = dt.timedelta(hours=24)
# The PostgreSQL warehouse card must not hold the page: a server that does not answer is
# "unreachable" after this long (libpq's connect_timeout, whole seconds, at least 2), and a
# query that waits (on a lock) is cancelled after the statement timeout.
PG_CONNECT_TIMEOUT_S: Final = 3
PG_STATEMENT_TIMEOUT_MS: Final = 3000
PG_REASON_CHARS: Final = 300
# Lineage graph geometry (SVG user units).
NODE_W: Final = 200
NODE_H: Final = 40
COLUMN_GAP: Final = 70
ROW_GAP: Final = 16
LABEL_CHARS: Final = 28


@router.get("/analytics", dependencies=[CanReadWork])
def analytics_page(request: Request, db: SessionDep, user: PageUser) -> HTMLResponse:
    """Maintenance figures computed from the work orders."""
    now = utcnow()
    since = now - dt.timedelta(days=90)
    done = db.scalars(
        select(WorkOrder).where(
            WorkOrder.completed_at.is_not(None), WorkOrder.completed_at >= since
        )
    ).all()
    hours = [
        (o.completed_at - o.started_at).total_seconds() / 3600
        for o in done
        if o.completed_at and o.started_at
    ]
    preventive = [o for o in done if o.type is WorkOrderType.PREVENTIVE and o.due_at]
    on_time = [o for o in preventive if o.completed_at and o.due_at and o.completed_at <= o.due_at]
    open_orders = db.scalars(select(WorkOrder).where(WorkOrder.status.in_(OPEN_STATUSES))).all()
    ages = [(now - o.created_at).days for o in open_orders]
    by_type = dict(db.execute(select(WorkOrder.type, func.count()).group_by(WorkOrder.type)).all())
    return render(
        request,
        "analytics_kpis.html",
        user,
        completed=len(done),
        mean_repair_hours=(sum(hours) / len(hours)) if hours else None,
        pm_compliance=(100 * len(on_time) / len(preventive)) if preventive else None,
        backlog=len(open_orders),
        backlog_mean_age=(sum(ages) / len(ages)) if ages else None,
        by_type=by_type,
        types=list(WorkOrderType),
        can_audit=Permission.AUDIT_READ in user.permissions,
    )


# --------------------------------------------------------------------------- shared


def _settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def _visible(catalog: Catalog, user: User) -> list[Dataset]:
    return [d for d in catalog if d.readable_by(user.permissions)]


@dataclass(frozen=True)
class ConnectionRow:
    """One BI connection (a user through one credential on one channel) as the page shows it."""

    stats: ConnectionStats
    state: str  # ok | failing

    @classmethod
    def of(cls, stats: ConnectionStats) -> ConnectionRow:
        """Failing while its last request was refused or failed."""
        return cls(stats, "failing" if stats.last_status >= 400 else "ok")


@dataclass(frozen=True)
class ScheduledExport:
    """A scheduled export and what its last run did."""

    name: str
    dataset: str
    format: str
    cron: str
    enabled: bool
    last: RunState | None
    next_run: dt.datetime | None


def _scheduled(settings: Settings, catalog: Catalog, now: dt.datetime) -> list[ScheduledExport]:
    state = load_state(exports_dir(settings))
    rows = []
    for definition in catalog.exports:
        last = state.get(definition.name)
        rows.append(
            ScheduledExport(
                name=definition.name,
                dataset=definition.dataset,
                format=definition.format.value,
                cron=definition.cron,
                enabled=definition.enabled,
                last=last,
                next_run=definition.next_run(last.last_run_at if last else now)
                if definition.enabled
                else None,
            )
        )
    return rows


def durations_chart(runs: Sequence[RunRecord]) -> Chart:
    """ETL run durations over time, one line per job (oldest run first)."""
    by_job: dict[str, list[RunRecord]] = {}
    for run in sorted(runs, key=lambda r: r.started_at):
        if run.duration_s is not None:
            by_job.setdefault(run.job, []).append(run)
    series = [
        Series(job, [r.started_at for r in rs], [round(r.duration_s or 0.0, 3) for r in rs], "s")
        for job, rs in by_job.items()
    ]
    return Chart("ETL run duration", series, y_title="seconds")


@dataclass(frozen=True)
class PostgresLoad:
    """A job's last load into the PostgreSQL warehouse and its last failure, if any."""

    summary: JobSummary
    last_failure: RunRecord | None


@dataclass(frozen=True)
class PostgresStatus:
    """The PostgreSQL warehouse as the page shows it: where, and its loads or why not."""

    where: str
    loads: tuple[PostgresLoad, ...] = ()
    unreachable: str | None = None


def last_loads(runs: Sequence[RunRecord]) -> tuple[PostgresLoad, ...]:
    """Per job (in ETL order), its summary and its newest failed run, from runs newest first."""
    failures: dict[str, RunRecord] = {}
    for run in runs:
        if run.status == "failed":
            failures.setdefault(run.job, run)
    return tuple(PostgresLoad(s, failures.get(s.job)) for s in summarise_runs(runs))


def _reason(exc: Exception, url: str) -> str:
    # The driver's message, not WarehouseError's wrapper (the card already says where), on one
    # line; the URL's password is masked in case a message ever quotes the URL.
    cause = exc.__cause__ if isinstance(exc.__cause__, psycopg.Error) else exc
    text = " ".join(str(cause).split()) or type(cause).__name__
    password = make_url(url).password
    if password:
        text = text.replace(str(password), "***")
    return text[:PG_REASON_CHARS]


def postgres_status(settings: Settings) -> PostgresStatus | None:
    """The PostgreSQL warehouse's last loads, or why they cannot be read; None when it is off.

    Never raises: the card reports a store that is down, it must not take the page with it.
    """
    url = settings.warehouse_postgres_url
    if not url:
        return None
    try:
        where = where_is(url, settings.warehouse_schema)
    except ArgumentError:
        # Not a URL at all: say so without echoing it (it may hold a password).
        return PostgresStatus("warehouse_postgres_url", unreachable="the URL cannot be parsed")
    try:
        with PostgresWarehouse(
            url, settings.warehouse_schema, connect_timeout=PG_CONNECT_TIMEOUT_S
        ) as store:
            store.connection.execute(f"SET statement_timeout = {PG_STATEMENT_TIMEOUT_MS}")
            runs = store.recent_runs(RUN_HISTORY)
    except psycopg.errors.UndefinedTable:
        # Reachable, but no refresh has created the schema yet.
        return PostgresStatus(where)
    except (psycopg.Error, WarehouseError) as exc:
        return PostgresStatus(where, unreachable=_reason(exc, url))
    return PostgresStatus(where, last_loads(runs))


@router.get("/analytics/integration", dependencies=[CanAudit])
def integration_page(request: Request, user: PageUser) -> HTMLResponse:
    """BI connection status, pipeline performance and dataset sync status."""
    settings = _settings(request)
    now = utcnow()
    loaded: Loaded = catalog_for(settings)
    datasets = _visible(loaded.catalog, user)
    seen = snapshot(
        settings,
        loaded.catalog,
        scope=site_scope(user),
        now=now,
        names=[d.name for d in datasets],
        run_limit=RUN_HISTORY,
    )
    # Computed from the BI access audit table: the figures outlive restarts.
    ledger = access_ledger(request.app.state)
    stats = ledger.connections()
    refusals = ledger.refusals_since(now - REFUSALS_WINDOW)
    connections = [ConnectionRow.of(s) for s in stats]
    feeds: FeedStatus = feed_status(request.app.state, stats)
    jobs = summarise_runs(seen.runs)
    return render(
        request,
        "analytics_integration.html",
        user,
        notices=[*loaded.notices, *([seen.problem] if seen.problem else [])],
        connections=connections,
        failing=sum(1 for c in connections if c.state == "failing"),
        refusals=refusals,
        retention_days=settings.bi_access_retention_days,
        feeds=feeds,
        exports=_scheduled(settings, loaded.catalog, now),
        jobs=jobs,
        failed_jobs=sum(1 for j in jobs if j.last.status == "failed"),
        figure=durations_chart(seen.runs).figure() if seen.runs else None,
        postgres=postgres_status(settings),
        datasets=datasets,
        statuses=seen.statuses,
        sync_totals=sync_counts(seen.statuses),
        now=now,
    )


@router.get("/analytics/datasets", dependencies=[CanAudit])
def datasets_page(request: Request, user: PageUser) -> HTMLResponse:
    """The dataset catalog."""
    settings = _settings(request)
    loaded = catalog_for(settings)
    datasets = _visible(loaded.catalog, user)
    seen = snapshot(
        settings,
        loaded.catalog,
        scope=site_scope(user),
        now=utcnow(),
        names=[d.name for d in datasets],
        run_limit=1,
    )
    return render(
        request,
        "analytics_datasets.html",
        user,
        notices=[*loaded.notices, *([seen.problem] if seen.problem else [])],
        datasets=datasets,
        statuses=seen.statuses,
    )


# --------------------------------------------------------------------------- lineage graph


@dataclass(frozen=True)
class Box:
    """A laid-out node of the lineage graph."""

    id: str
    label: str
    title: str
    kind: str
    href: str | None
    x: int
    y: int
    focus: bool


@dataclass(frozen=True)
class Line:
    """A laid-out edge: a cubic curve from the right of one box to the left of another."""

    path: str
    title: str


@dataclass(frozen=True)
class Layout:
    """The lineage graph placed in columns, ready for the SVG template."""

    width: int
    height: int
    boxes: tuple[Box, ...]
    lines: tuple[Line, ...]


def _clip(text: str) -> str:
    return text if len(text) <= LABEL_CHARS else text[: LABEL_CHARS - 1] + "…"


def layout_graph(graph: Graph) -> Layout:
    """Columns by longest path from the sources, rows in name order (pure)."""
    incoming: dict[str, list[str]] = {n.id: [] for n in graph.nodes}
    for edge in graph.edges:
        incoming[edge.target].append(edge.source)
    column: dict[str, int] = {}

    def depth(node: str) -> int:
        if node not in column:
            column[node] = 1 + max((depth(s) for s in incoming[node]), default=-1)
        return column[node]

    for node in graph.nodes:
        depth(node.id)
    columns: dict[int, list[str]] = {}
    for node in sorted(graph.nodes, key=lambda n: (n.kind, n.label)):
        columns.setdefault(column[node.id], []).append(node.id)
    place: dict[str, tuple[int, int]] = {}
    for c, ids in columns.items():
        for r, node_id in enumerate(ids):
            place[node_id] = (c * (NODE_W + COLUMN_GAP) + 2, r * (NODE_H + ROW_GAP) + 2)
    boxes = []
    for node in graph.nodes:
        x, y = place[node.id]
        title = f"{node.label} ({node.detail or node.kind})"
        href = f"/analytics/datasets/{node.dataset}" if node.dataset else None
        boxes.append(
            Box(node.id, _clip(node.label), title, node.kind, href, x, y, node.id == graph.focus)
        )
    lines = []
    for edge in graph.edges:
        (x1, y1), (x2, y2) = place[edge.source], place[edge.target]
        x1, y1, y2 = x1 + NODE_W, y1 + NODE_H // 2, y2 + NODE_H // 2
        bend = (x2 - x1) // 2
        path = f"M{x1},{y1} C{x1 + bend},{y1} {x2 - bend},{y2} {x2 - 6},{y2}"
        source, target = graph.node(edge.source), graph.node(edge.target)
        title = f"{source.label if source else edge.source} → {target.label if target else ''}"
        if edge.columns:
            title += ": " + ", ".join(edge.columns)
        lines.append(Line(path, title))
    width = (max(column.values(), default=0) + 1) * (NODE_W + COLUMN_GAP) - COLUMN_GAP + 4
    rows = max((len(ids) for ids in columns.values()), default=1)
    height = rows * (NODE_H + ROW_GAP) - ROW_GAP + 4
    return Layout(width, height, tuple(boxes), tuple(lines))


@router.get("/analytics/datasets/{name}", dependencies=[CanAudit])
def dataset_page(request: Request, user: PageUser, name: str) -> HTMLResponse:
    """One dataset: its policy, freshness, columns with their sources, and its lineage graph."""
    settings = _settings(request)
    loaded = catalog_for(settings)
    dataset = loaded.catalog.get(name)
    if dataset is None or not dataset.readable_by(user.permissions):
        raise HTTPException(404, "No such dataset.")
    seen = snapshot(settings, loaded.catalog, scope=site_scope(user), now=utcnow(), names=[name])
    status: DatasetStatus | None = seen.statuses.get(name)
    graph = loaded.catalog.lineage(name)
    context: dict[str, Any] = {
        "notices": [*loaded.notices, *([seen.problem] if seen.problem else [])],
        "dataset": dataset,
        "status": status,
        "graph": layout_graph(graph),
        "readers": loaded.catalog.readers(name),
        "node_w": NODE_W,
        "node_h": NODE_H,
    }
    return render(request, "analytics_dataset.html", user, **context)
