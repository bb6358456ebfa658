"""The dataset catalog: every warehouse dataset with its owner, classification, freshness, row
count and lineage.

The datasets are the warehouse's tables (dimensions, facts, the ETL's bookkeeping), its KPI views,
the rollups the OData feed publishes and the cubes' pre-aggregation tables. What a dataset *is*
comes from the code that makes it (``schema``, ``odata.rollups``, ``kpis``, the semantic model);
who owns it, how sensitive it is and how often it should be refreshed come from ``catalog.yaml``
(shipped in the package, overridable beside the warehouse). A derived dataset that the file does
not name takes the owner of its first input and never a lower classification than its inputs.

``build_catalog`` is pure; ``read_status`` reads the warehouse (row counts under the reader's site
scope, the ETL's and the cubes' last successful runs) and says whether each dataset is in sync.
"""

from __future__ import annotations

import datetime as dt
import functools
import logging
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from importlib.resources import files
from pathlib import Path
from typing import Final, Literal

import duckdb
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from maintainpro.analytics import kpis, schema
from maintainpro.analytics.access import (
    ALL_SITES_ONLY,
    SiteRule,
    can_read,
    rule_for,
    scope_predicate,
)
from maintainpro.analytics.exports.schedules import (
    ExportDefinition,
    ScheduleError,
    load_definitions,
    schedule_file,
)
from maintainpro.analytics.jobs import ALL_JOBS
from maintainpro.analytics.lineage import JOB_PREFIX
from maintainpro.analytics.odata import rollups
from maintainpro.analytics.odata.model import entity_sets
from maintainpro.analytics.schema import WarehouseTable, sql_type
from maintainpro.analytics.semantic.model import SemanticModel, default_model
from maintainpro.analytics.semantic.preaggs import SITE, Layout, layouts
from maintainpro.analytics.warehouse import (
    RunRecord,
    WarehouseError,
    aware_utc,
    open_read_only,
    read_runs,
    warehouse_file,
)
from maintainpro.config import Settings
from maintainpro.core.users import Permission

log = logging.getLogger(__name__)

CATALOG_FILE: Final = "catalog.yaml"
CUBE_STATE: Final = "cube_preagg_state"  # kept by semantic.materialise
Classification = Literal["public", "internal", "confidential"]
LEVELS: Final[tuple[Classification, ...]] = ("public", "internal", "confidential")
Kind = Literal["dimension", "fact", "meta", "rollup", "view", "cube"]
# fresh: refreshed within its interval; stale: not; failed: the last run failed; never: not
# loaded yet; missing: the warehouse has no such table (not built, or built by an older version).
SyncState = Literal["fresh", "stale", "failed", "never", "missing"]
NodeKind = Literal["source", "job", "dataset", "cube", "entity_set", "export", "api"]
OWNER_PATTERN: Final = r"^[a-z][a-z0-9 _-]{0,39}$"


class CatalogError(ValueError):
    """A catalog policy file cannot be read or is invalid."""


# --------------------------------------------------------------------------- policies


class Policy(BaseModel):
    """Owner, classification and refresh interval of a dataset (any may be left to defaults)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    owner: str | None = Field(default=None, pattern=OWNER_PATTERN)
    classification: Classification | None = None
    refresh_hours: float | None = Field(default=None, gt=0, le=24 * 366)


class Defaults(Policy):
    """The policy of a dataset the file does not name: every field given."""

    owner: str = Field(default="analytics", pattern=OWNER_PATTERN)
    classification: Classification = "internal"
    refresh_hours: float = Field(default=24.0, gt=0, le=24 * 366)


class Policies(BaseModel):
    """A policy file: defaults and per-dataset policies."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    defaults: Defaults = Field(default_factory=Defaults)
    datasets: dict[str, Policy] = Field(default_factory=dict)

    def merged(self, other: Policies) -> Policies:
        """These policies with ``other``'s laid over them, field by field."""
        datasets = dict(self.datasets)
        for name, policy in other.datasets.items():
            base = datasets.get(name, Policy())
            datasets[name] = base.model_copy(update=policy.model_dump(exclude_none=True))
        defaults = self.defaults.model_copy(update=other.defaults.model_dump(exclude_defaults=True))
        return Policies(defaults=defaults, datasets=datasets)


def parse_policies(text: str, *, source: str = CATALOG_FILE) -> Policies:
    """Policies from YAML text; ``CatalogError`` naming every problem."""
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise CatalogError(f"{source} is not valid YAML: {exc}") from None
    try:
        return Policies.model_validate(data or {})
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'file'}: {e['msg']}"
            for e in exc.errors(include_input=False)
        )
        raise CatalogError(f"{source} is invalid: {problems}") from None


@functools.cache
def shipped_policies() -> Policies:
    """The policies shipped with the package."""
    text = files(__package__).joinpath(CATALOG_FILE).read_text(encoding="utf-8")
    return parse_policies(text, source=f"{__package__}/{CATALOG_FILE}")


def policies_at(path: Path) -> Policies:
    """The shipped policies, overridden by the file at ``path`` when there is one."""
    if not path.exists():
        return shipped_policies()
    return shipped_policies().merged(
        parse_policies(path.read_text(encoding="utf-8"), source=str(path))
    )


# --------------------------------------------------------------------------- datasets


@dataclass(frozen=True)
class ColumnInfo:
    """A column of a dataset and the operational columns ("table.column") it comes from."""

    name: str
    type: str
    description: str
    sources: tuple[str, ...] = ()
    how: str = "identity"


@dataclass(frozen=True)
class Dataset:
    """One catalogued dataset."""

    name: str
    kind: Kind
    description: str
    owner: str
    classification: Classification
    refresh: dt.timedelta
    columns: tuple[ColumnInfo, ...]
    key: tuple[str, ...]
    loaded_by: str | None  # the ETL job (or "cube refresh") that writes it; None: computed on read
    inputs: tuple[str, ...]  # catalogued datasets it is computed from
    sources: tuple[str, ...]  # operational tables it is loaded from
    published: tuple[str, ...]  # channels: odata, export, cube
    permissions: frozenset[Permission]
    site_rule: SiteRule
    cube: str | None = None

    @property
    def stored(self) -> bool:
        """Whether it is a table of its own (views and rollups are computed on read)."""
        return self.kind not in ("view", "rollup")

    def readable_by(self, granted: frozenset[Permission]) -> bool:
        """Whether a role with these permissions may see the dataset in the catalog."""
        return not self.permissions or bool(self.permissions & granted)


@dataclass(frozen=True)
class Node:
    """A node of a lineage graph: a dataset, a job, or where a dataset is published."""

    id: str
    label: str
    kind: NodeKind
    dataset: str | None = None  # the catalogued dataset it stands for, if any
    detail: str = ""


@dataclass(frozen=True)
class Edge:
    """Data flows from ``source`` to ``target``; ``columns`` names the columns read, if known."""

    source: str
    target: str
    columns: tuple[str, ...] = ()


@dataclass(frozen=True)
class Graph:
    """The lineage of one dataset: everything upstream of it and everything downstream."""

    focus: str
    nodes: tuple[Node, ...]
    edges: tuple[Edge, ...]

    def node(self, node_id: str) -> Node | None:
        """The node of that id."""
        return next((n for n in self.nodes if n.id == node_id), None)


@dataclass
class _Builder:
    nodes: dict[str, Node] = field(default_factory=dict)
    edges: dict[tuple[str, str], Edge] = field(default_factory=dict)

    def add(self, node: Node) -> str:
        self.nodes.setdefault(node.id, node)
        return node.id

    def link(self, source: str, target: str, columns: Iterable[str] = ()) -> None:
        self.edges.setdefault((source, target), Edge(source, target, tuple(sorted(columns))))


def _dataset_node(dataset: Dataset) -> Node:
    return Node(f"dataset:{dataset.name}", dataset.name, "dataset", dataset.name, dataset.kind)


class Catalog:
    """Every dataset, with what reads it (rollups, views, cubes, exports, the OData feed)."""

    def __init__(
        self,
        datasets: Sequence[Dataset],
        exports: Sequence[ExportDefinition] = (),
    ) -> None:
        """A catalog of these datasets; ``exports`` are the scheduled exports reading them."""
        self.datasets = {d.name: d for d in datasets}
        self.exports = tuple(exports)

    def __iter__(self) -> Iterator[Dataset]:
        """The datasets in catalogue order."""
        return iter(self.datasets.values())

    def get(self, name: str) -> Dataset | None:
        """The dataset of that name."""
        return self.datasets.get(name)

    def readers(self, name: str) -> list[Dataset]:
        """The datasets computed from this one."""
        return [d for d in self.datasets.values() if name in d.inputs]

    def lineage(self, name: str) -> Graph:
        """The lineage graph of a dataset: its inputs back to the operational tables (through
        the ETL jobs) and its readers forward to where they are published."""
        focus = self.datasets[name]
        graph = _Builder()
        self._upstream(focus, graph)
        self._downstream(focus, graph)
        return Graph(f"dataset:{name}", tuple(graph.nodes.values()), tuple(graph.edges.values()))

    def _upstream(self, dataset: Dataset, graph: _Builder) -> str:
        me = graph.add(_dataset_node(dataset))
        if dataset.sources and dataset.loaded_by:
            label = JOB_PREFIX + dataset.loaded_by  # the OpenLineage job name
            job = graph.add(Node(f"job:{dataset.loaded_by}", label, "job", detail="ETL job"))
            graph.link(job, me)
            read: dict[str, set[str]] = {}
            for column in dataset.columns:
                for source in column.sources:
                    table, _, name = source.partition(".")
                    read.setdefault(table, set()).add(name)
            for table in dataset.sources:
                node = graph.add(Node(f"source:{table}", table, "source", detail="operational"))
                graph.link(node, job, read.get(table, ()))
        via = me
        if dataset.cube is not None:
            via = graph.add(Node(f"cube:{dataset.cube}", dataset.cube, "cube", detail="cube"))
            graph.link(via, me)
        for name in dataset.inputs:
            upstream = self.datasets.get(name)
            if upstream is not None:
                graph.link(self._upstream(upstream, graph), via)
        return me

    def _downstream(self, dataset: Dataset, graph: _Builder) -> None:
        me = graph.add(_dataset_node(dataset))
        for channel in dataset.published:
            if channel == "odata":
                node = Node(f"odata:{dataset.name}", f"/odata/{dataset.name}", "entity_set")
                graph.link(me, graph.add(node))
            elif channel == "cube":
                node = Node("api:semantic", "/api/v1/semantic", "api", detail="cube queries")
                graph.link(me, graph.add(node))
        for export in self.exports:
            if export.dataset == dataset.name:
                node = Node(
                    f"export:{export.name}", export.name, "export", detail=export.format.value
                )
                graph.link(me, graph.add(node))
        for reader in self.readers(dataset.name):
            target = me
            if reader.cube is not None:
                target = graph.add(Node(f"cube:{reader.cube}", reader.cube, "cube", detail="cube"))
                graph.link(me, target)
            graph.link(target, graph.add(_dataset_node(reader)))
            self._downstream(reader, graph)


_TABLE_KIND: Final[dict[str, Kind]] = {"dimension": "dimension", "fact": "fact", "meta": "meta"}
_WORD: Final = re.compile(r"\b[a-z_][a-z0-9_]*\b")


def _named_tables(sql: str, known: Iterable[str]) -> tuple[str, ...]:
    """The known table names a query mentions, in first-mention order."""
    names = set(known)
    return tuple(dict.fromkeys(w for w in _WORD.findall(sql) if w in names))


def _columns(table: WarehouseTable) -> tuple[ColumnInfo, ...]:
    return tuple(
        ColumnInfo(c.name, sql_type(c.type), c.description, c.sources, c.how) for c in table.columns
    )


@dataclass(frozen=True)
class _Draft:
    """A dataset before its policy is applied."""

    name: str
    kind: Kind
    description: str
    columns: tuple[ColumnInfo, ...]
    key: tuple[str, ...]
    loaded_by: str | None
    inputs: tuple[str, ...]
    sources: tuple[str, ...]
    published: tuple[str, ...]
    permissions: frozenset[Permission]
    site_rule: SiteRule
    cube: str | None = None


def _drafts(model: SemanticModel, exported: set[str]) -> list[_Draft]:
    published = entity_sets()
    loaders = {t.name: job.name for job in ALL_JOBS for t in job.outputs}
    cube_inputs = {c.name: c.source_tables for c in model.cubes}
    layout_list: tuple[Layout, ...] = layouts(model)
    # Tables the cube API answers from (the bookkeeping a cube reads is not published by it).
    cubed = {
        t
        for layout in layout_list
        for t in layout.cube.source_tables
        if schema.TABLES.get(t) is None or schema.TABLES[t].kind != "meta"
    }

    def channels(name: str) -> tuple[str, ...]:
        found = []
        if name in published:
            found.append("odata")
        if name in exported:
            found.append("export")
        if name in cubed:
            found.append("cube")
        return tuple(found)

    drafts = []
    for table in (*schema.DIMENSIONS, *schema.FACTS, *schema.META):
        entity = published.get(table.name)
        drafts.append(
            _Draft(
                name=table.name,
                kind=_TABLE_KIND[table.kind],
                description=table.description,
                columns=_columns(table),
                key=table.key,
                loaded_by=loaders.get(table.name, "etl" if table.kind == "meta" else None),
                inputs=(),
                sources=tuple(table.source_tables),
                published=channels(table.name),
                permissions=entity.permissions if entity else frozenset(),
                site_rule=entity.site_rule if entity else rule_for(table),
            )
        )
    warehouse = [t.name for t in (*schema.DIMENSIONS, *schema.FACTS)]
    for rollup in rollups.ROLLUPS:
        entity = published[rollup.table.name]
        drafts.append(
            _Draft(
                name=rollup.table.name,
                kind="rollup",
                description=rollup.table.description,
                columns=_columns(rollup.table),
                key=rollup.table.key,
                loaded_by=None,
                inputs=_named_tables(rollup.query, warehouse),
                sources=(),
                published=channels(rollup.table.name),
                permissions=entity.permissions,
                site_rule=entity.site_rule,
            )
        )
    macros = " ".join(kpis.MACROS)
    for name, sql in kpis.VIEWS.items():
        drafts.append(
            _Draft(
                name=name,
                kind="view",
                description=_VIEW_DESCRIPTIONS.get(name, "Maintenance KPI view."),
                columns=(),
                key=(),
                loaded_by=None,
                inputs=tuple(
                    n
                    for n in _named_tables(f"{sql} {macros}", [*warehouse, "etl_runs", *kpis.VIEWS])
                    if n != name
                ),
                sources=(),
                published=(),
                permissions=frozenset({Permission.ASSETS_READ}),
                site_rule=ALL_SITES_ONLY,
            )
        )
    for layout in layout_list:
        inputs = list(cube_inputs[layout.cube.name])
        for joined in layout.joined:
            inputs += [t for t in cube_inputs[joined.name] if t not in inputs]
        drafts.append(
            _Draft(
                name=layout.table,
                kind="cube",
                description=f"Pre-aggregation {layout.name}: {layout.cube.description}".strip(),
                columns=(),
                key=(),
                loaded_by="cube refresh",
                inputs=tuple(inputs),
                sources=(),
                published=("cube",),
                permissions=layout.cube.permissions,
                site_rule=SiteRule(column=SITE) if layout.has_site else layout.cube.site_rule,
                cube=layout.cube.name,
            )
        )
    return drafts


_VIEW_DESCRIPTIONS: Final = {
    "kpi_period": "The KPI period: first work order to the end of the last work-order load.",
    "kpi_asset": "MTBF, MTTR, availability, PM compliance, backlog and cost per asset.",
    "kpi_site": "The maintenance KPIs per site.",
}


def build_catalog(
    policies: Policies,
    model: SemanticModel,
    exports: Sequence[ExportDefinition] = (),
) -> Catalog:
    """The catalog (pure): every dataset with its policy applied, inputs before readers."""
    drafts = _drafts(model, {e.dataset for e in exports})
    done: dict[str, Dataset] = {}
    for draft in drafts:
        own = policies.datasets.get(draft.name, Policy())
        parents = [done[n] for n in draft.inputs if n in done]
        derived = bool(parents) and not draft.sources
        owner = own.owner or (parents[0].owner if derived else policies.defaults.owner)
        levels = [own.classification or policies.defaults.classification]
        if derived:
            # A derived dataset is never less sensitive than what it is computed from.
            levels = [own.classification] if own.classification else []
            levels += [p.classification for p in parents]
        classification = max(levels, key=LEVELS.index)
        hours = own.refresh_hours
        if hours is None:
            hours = (
                min(p.refresh.total_seconds() / 3600 for p in parents)
                if derived
                else policies.defaults.refresh_hours
            )
        done[draft.name] = Dataset(
            name=draft.name,
            kind=draft.kind,
            description=draft.description,
            owner=owner,
            classification=classification,
            refresh=dt.timedelta(hours=hours),
            columns=draft.columns,
            key=draft.key,
            loaded_by=draft.loaded_by,
            inputs=draft.inputs,
            sources=draft.sources,
            published=draft.published,
            permissions=draft.permissions,
            site_rule=draft.site_rule,
            cube=draft.cube,
        )
    return Catalog(list(done.values()), exports)


# --------------------------------------------------------------------------- status


@dataclass(frozen=True)
class Freshness:
    """When a dataset was last brought up to date, and what that says about it."""

    state: SyncState
    last_success: dt.datetime | None = None
    last_run_at: dt.datetime | None = None
    last_status: str | None = None
    last_error: str | None = None
    age: dt.timedelta | None = None

    @property
    def in_sync(self) -> bool:
        """Fresh, and the last attempt did not fail."""
        return self.state == "fresh"


@dataclass(frozen=True)
class DatasetStatus:
    """A dataset as it is in the warehouse now, for one reader."""

    name: str
    exists: bool
    visible: bool  # False: the reader's site sees no row of it
    rows: int | None  # rows the reader may see; None when not stored, missing or not visible
    freshness: Freshness


@dataclass(frozen=True)
class LoadRecord:
    """The last success and the last attempt of one loader (an ETL job, a cube table)."""

    last_success: dt.datetime | None
    last_run_at: dt.datetime | None
    last_status: str | None
    last_error: str | None = None


def freshness(
    load: LoadRecord | None, refresh: dt.timedelta, now: dt.datetime, *, exists: bool = True
) -> Freshness:
    """Whether a dataset loaded as ``load`` says is in sync with its refresh interval (pure)."""
    if not exists:
        return Freshness("missing")
    if load is None or load.last_success is None:
        status = load.last_status if load else None
        return Freshness(
            "failed" if status == "failed" else "never",
            last_run_at=load.last_run_at if load else None,
            last_status=status,
            last_error=load.last_error if load else None,
        )
    age = max(now - load.last_success, dt.timedelta(0))
    state: SyncState = "fresh" if age <= refresh else "stale"
    if load.last_status == "failed":
        state = "failed"
    return Freshness(
        state, load.last_success, load.last_run_at, load.last_status, load.last_error, age
    )


def _oldest(loads: Sequence[LoadRecord | None]) -> LoadRecord | None:
    """A derived dataset is as fresh as its oldest input; failed if any input's load failed."""
    if not loads or any(x is None or x.last_success is None for x in loads):
        return next((x for x in loads if x is not None and x.last_success is None), None)
    known = [x for x in loads if x is not None]
    oldest = min(known, key=lambda x: x.last_success or dt.datetime.max.replace(tzinfo=dt.UTC))
    failed = next((x for x in known if x.last_status == "failed"), None)
    if failed is not None:
        return LoadRecord(oldest.last_success, failed.last_run_at, "failed", failed.last_error)
    return oldest


def _existing(connection: duckdb.DuckDBPyConnection) -> set[str]:
    rows = connection.execute(
        "SELECT table_name FROM duckdb_tables() WHERE schema_name = 'main' "
        "UNION SELECT view_name FROM duckdb_views() WHERE schema_name = 'main' AND NOT internal"
    ).fetchall()
    return {str(r[0]) for r in rows}


def job_loads(connection: duckdb.DuckDBPyConnection) -> dict[str, LoadRecord]:
    """Per ETL job: its last successful finish and its last attempt (from ``etl_runs``)."""
    rows = connection.execute(
        """
        SELECT job,
               max(finished_at) FILTER (WHERE status = 'completed'),
               arg_max(started_at, started_at),
               arg_max(status, started_at),
               arg_max(error, started_at)
        FROM etl_runs GROUP BY job
        """
    ).fetchall()
    return {
        str(job): LoadRecord(aware_utc(success), aware_utc(last), status, error)
        for job, success, last, status, error in rows
    }


# Tables no ETL job loads, written by the hub's own jobs with a time of writing per row: their
# freshness is the newest such time (the ML jobs keep no run records in the warehouse).
WRITTEN_AT: Final[dict[str, str]] = {schema.FACT_PREDICTION.name: "predicted_at"}


def written_loads(
    connection: duckdb.DuckDBPyConnection, existing: set[str]
) -> dict[str, LoadRecord]:
    """Per table of ``WRITTEN_AT`` that exists and has rows: its newest write as a load."""
    found = {}
    for table, column in WRITTEN_AT.items():
        if table not in existing:
            continue
        rows = connection.execute(f'SELECT max("{column}") FROM "{table}"').fetchall()  # noqa: S608 - constants
        newest = aware_utc(rows[0][0]) if rows and rows[0][0] is not None else None
        if newest is not None:
            found[table] = LoadRecord(newest, newest, "completed")
    return found


def cube_loads(connection: duckdb.DuckDBPyConnection) -> dict[str, LoadRecord]:
    """Per pre-aggregation table: when it was last refreshed (failures are not kept)."""
    rows = connection.execute(f"SELECT table_name, refreshed_at FROM {CUBE_STATE}").fetchall()  # noqa: S608 - constant
    return {str(table): LoadRecord(aware_utc(at), aware_utc(at), "completed") for table, at in rows}


def _count(
    connection: duckdb.DuckDBPyConnection, dataset: Dataset, scope: frozenset[int] | None
) -> int:
    predicate, params = scope_predicate(dataset.site_rule, scope, alias="t")
    row = connection.execute(
        f'SELECT count(*) FROM "{dataset.name}" AS t WHERE {predicate}',  # noqa: S608 - catalogued names
        params,
    ).fetchall()
    return int(row[0][0]) if row else 0


def read_status(
    connection: duckdb.DuckDBPyConnection,
    catalog: Catalog,
    *,
    scope: frozenset[int] | None,
    now: dt.datetime,
    names: Iterable[str] | None = None,
) -> dict[str, DatasetStatus]:
    """Each dataset's row count (as the scope may see it) and freshness, by name."""
    existing = _existing(connection)
    jobs = job_loads(connection) if "etl_runs" in existing else {}
    cubes = cube_loads(connection) if CUBE_STATE in existing else {}
    written = written_loads(connection, existing)
    loads: dict[str, LoadRecord | None] = {}
    for dataset in catalog:
        if dataset.kind == "cube":
            loads[dataset.name] = cubes.get(dataset.name)
        elif dataset.kind == "meta":
            # The bookkeeping is as fresh as the latest job that finished.
            loads[dataset.name] = max(
                jobs.values(),
                key=lambda x: x.last_success or dt.datetime.min.replace(tzinfo=dt.UTC),
                default=None,
            )
        elif dataset.loaded_by is not None:
            loads[dataset.name] = jobs.get(dataset.loaded_by)
        elif dataset.name in WRITTEN_AT:
            loads[dataset.name] = written.get(dataset.name)
        else:
            loads[dataset.name] = _oldest([loads.get(n) for n in dataset.inputs])
    wanted = set(names) if names is not None else set(catalog.datasets)
    result = {}
    for dataset in catalog:
        if dataset.name not in wanted:
            continue
        exists = dataset.name in existing
        if dataset.kind == "rollup":  # computed on read from its inputs
            exists = all(n in existing for n in dataset.inputs)
        visible = can_read(dataset.site_rule, scope)
        rows = None
        if exists and visible and dataset.stored:
            rows = _count(connection, dataset, scope)
        result[dataset.name] = DatasetStatus(
            name=dataset.name,
            exists=exists,
            visible=visible,
            rows=rows,
            freshness=freshness(loads[dataset.name], dataset.refresh, now, exists=exists),
        )
    return result


# --------------------------------------------------------------------------- pipeline


@dataclass(frozen=True)
class JobSummary:
    """One ETL job's recent record: its last run and how the runs went."""

    job: str
    last: RunRecord
    runs: int
    failures: int
    mean_duration_s: float | None
    rows_per_s: float | None  # rows written per second by the last completed run
    last_success: dt.datetime | None


def summarise_runs(runs: Sequence[RunRecord]) -> list[JobSummary]:
    """Per job (in ETL order), from run records newest first (pure)."""
    by_job: dict[str, list[RunRecord]] = {}
    for run in runs:
        by_job.setdefault(run.job, []).append(run)
    order = {job.name: i for i, job in enumerate(ALL_JOBS)}
    summaries = []
    for job, records in sorted(by_job.items(), key=lambda kv: (order.get(kv[0], 999), kv[0])):
        durations = [r.duration_s for r in records if r.duration_s is not None]
        done = [r for r in records if r.status == "completed"]
        rate = None
        if done and done[0].duration_s:
            rate = done[0].rows_out / done[0].duration_s
        summaries.append(
            JobSummary(
                job=job,
                last=records[0],
                runs=len(records),
                failures=sum(1 for r in records if r.status == "failed"),
                mean_duration_s=sum(durations) / len(durations) if durations else None,
                rows_per_s=rate,
                last_success=done[0].finished_at if done else None,
            )
        )
    return summaries


def sync_counts(statuses: Mapping[str, DatasetStatus]) -> dict[SyncState, int]:
    """How many datasets are in each sync state."""
    counts: dict[SyncState, int] = {}
    for status in statuses.values():
        counts[status.freshness.state] = counts.get(status.freshness.state, 0) + 1
    return counts


# --------------------------------------------------------------------------- edges (I/O)


@dataclass(frozen=True)
class Loaded:
    """The catalog as configured, with what could not be read of its configuration."""

    catalog: Catalog
    notices: tuple[str, ...] = ()


def catalog_for(settings: Settings) -> Loaded:
    """The catalog with the policy file and export schedule beside the warehouse.

    A broken policy file or schedule does not hide the catalog: the shipped policies (or no
    scheduled exports) stand in, and the problem is reported as a notice.
    """
    folder = warehouse_file(settings).parent
    notices: list[str] = []
    try:
        policies = policies_at(folder / CATALOG_FILE)
    except CatalogError as exc:
        log.warning("catalog policies unreadable", extra={"error": str(exc)})
        notices.append(f"{exc}; the shipped policies apply")
        policies = shipped_policies()
    try:
        exports = load_definitions(schedule_file(settings))
    except ScheduleError as exc:
        notices.append(f"the export schedule cannot be read: {exc}")
        exports = []
    return Loaded(build_catalog(policies, default_model(), exports), tuple(notices))


@dataclass(frozen=True)
class Snapshot:
    """What the warehouse says now: dataset statuses and recent ETL runs (or why not)."""

    statuses: dict[str, DatasetStatus]
    runs: list[RunRecord]
    problem: str | None = None


def snapshot(
    settings: Settings,
    catalog: Catalog,
    *,
    scope: frozenset[int] | None,
    now: dt.datetime,
    names: Iterable[str] | None = None,
    run_limit: int = 500,
) -> Snapshot:
    """Read the warehouse read-only; a missing or busy warehouse is a problem, not an error."""
    path = warehouse_file(settings)
    if not path.exists():
        return Snapshot({}, [], "the warehouse has not been built yet")
    try:
        connection = open_read_only(settings)
    except (WarehouseError, duckdb.Error):
        return Snapshot({}, [], "the warehouse is being written; try again shortly")
    try:
        statuses = read_status(connection, catalog, scope=scope, now=now, names=names)
        has_runs = "etl_runs" in _existing(connection)
        runs = read_runs(connection, limit=run_limit) if has_runs else []
    except duckdb.Error as exc:
        log.warning("warehouse status unreadable", extra={"error": str(exc)})
        return Snapshot({}, [], "the warehouse could not be read")
    finally:
        connection.close()
    return Snapshot(statuses, runs)
