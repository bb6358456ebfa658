"""Scheduled exports: a YAML file of definitions, when each is due, and running the due ones.

``exports.yaml`` (beside the warehouse) lists what to produce and when::

    exports:
      - name: work-orders-tableau      # folder name under the exports directory
        dataset: fact_work_order       # an entity set of the feed
        format: hyper                  # hyper | qvd | parquet | csv | xlsx | lake | delta
        cron: "0 * * * *"              # UTC, five fields
        sites: [1]                     # optional: only these sites' rows (default: every site)
      - name: readings-lake
        dataset: fact_sensor_hour
        format: lake                   # Hive-partitioned Parquet, dt=YYYY-MM-DD
        cron: "*/15 * * * *"
        lookback_days: 2               # incremental: replace the days from 2 before the last run

Files land in ``<exports>/<name>/<dataset>.<ext>``; lake and Delta definitions use
``<exports>/<name>/`` as their lake root. What each definition last did is kept in
``<exports>/.schedule-state.json``. A supervisor job calls ``run_due_exports`` every minute; the
CLI and the API run exports on demand. Every run emits OpenLineage START and COMPLETE or FAIL.
"""

from __future__ import annotations

import datetime as dt
import enum
import json
import logging
import os
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Final

import duckdb
import yaml
from croniter import croniter  # type: ignore[import-untyped]
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from maintainpro.analytics.exports.datasets import UnknownDataset, get_dataset
from maintainpro.analytics.exports.formats import FileFormat
from maintainpro.analytics.exports.runs import ExportResult, export_file, export_lake
from maintainpro.analytics.lineage import Lineage, lineage_for
from maintainpro.analytics.warehouse import WarehouseError, open_read_only, warehouse_file
from maintainpro.config import Settings

log = logging.getLogger(__name__)

SCHEDULE_FILE: Final = "exports.yaml"
EXPORTS_DIR: Final = "exports"
STATE_FILE: Final = ".schedule-state.json"
JOB_PREFIX: Final = "schedule."

Clock = Callable[[], dt.datetime]


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class ScheduleError(ValueError):
    """The schedule file cannot be read or holds an invalid definition."""


class ScheduleFormat(enum.StrEnum):
    """What a scheduled export produces: one file, or the lake (Parquet or Delta)."""

    HYPER = "hyper"
    QVD = "qvd"
    PARQUET = "parquet"
    CSV = "csv"
    XLSX = "xlsx"
    LAKE = "lake"
    DELTA = "delta"

    @property
    def file_format(self) -> FileFormat | None:
        """The single-file format, or None for the lake."""
        try:
            return FileFormat(self.value)
        except ValueError:
            return None


class ExportDefinition(BaseModel):
    """One scheduled export."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,63}$")
    dataset: str = Field(max_length=64)
    format: ScheduleFormat
    cron: str = Field(max_length=100)
    sites: tuple[int, ...] | None = None
    lookback_days: int | None = Field(default=None, ge=0, le=3660)
    enabled: bool = True

    @field_validator("cron")
    @classmethod
    def _valid_cron(cls, value: str) -> str:
        if len(value.split()) != 5 or not croniter.is_valid(value):
            raise ValueError("cron must be five fields, e.g. '0 2 * * *' (UTC)")
        return value

    @field_validator("dataset")
    @classmethod
    def _known_dataset(cls, value: str) -> str:
        try:
            get_dataset(value)
        except UnknownDataset:
            raise ValueError("not an exportable dataset (see GET /odata/)") from None
        return value

    @model_validator(mode="after")
    def _lookback_fits(self) -> ExportDefinition:
        if self.lookback_days is None:
            return self
        if self.format.file_format is not None:
            raise ValueError("lookback_days applies to lake and delta exports only")
        if not get_dataset(self.dataset).partitioned:
            raise ValueError(f"{self.dataset} has no days: it is exported whole")
        return self

    @property
    def scope(self) -> frozenset[int] | None:
        """The sites whose rows the export holds (None: every site)."""
        return None if self.sites is None else frozenset(self.sites)

    def next_run(self, after: dt.datetime) -> dt.datetime:
        """The first time after ``after`` (aware UTC) that the cron expression fires."""
        fire: dt.datetime = croniter(self.cron, after.astimezone(dt.UTC)).get_next(dt.datetime)
        return fire


class _ScheduleFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    exports: list[ExportDefinition] = Field(default_factory=list)

    @model_validator(mode="after")
    def _unique_names(self) -> _ScheduleFile:
        names = [d.name for d in self.exports]
        if len(names) != len(set(names)):
            raise ValueError("export names must be unique")
        return self


def schedule_file(settings: Settings) -> Path:
    """Where the schedule lives: beside the warehouse."""
    return warehouse_file(settings).parent / SCHEDULE_FILE


def exports_dir(settings: Settings) -> Path:
    """Where scheduled exports are written: beside the warehouse."""
    return warehouse_file(settings).parent / EXPORTS_DIR


def parse_definitions(text: str) -> list[ExportDefinition]:
    """The definitions in a schedule document (YAML)."""
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ScheduleError(f"the schedule is not valid YAML: {exc}") from exc
    try:
        return _ScheduleFile.model_validate(document or {}).exports
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'file'}: {e['msg']}" for e in exc.errors()
        )
        raise ScheduleError(f"invalid schedule: {problems}") from exc


def load_definitions(path: Path) -> list[ExportDefinition]:
    """The definitions in a schedule file; none when there is no file."""
    if not path.exists():
        return []
    return parse_definitions(path.read_text(encoding="utf-8"))


def output_path(root: Path, definition: ExportDefinition) -> Path:
    """Where a definition's file goes, or (lake, Delta) its lake root."""
    folder = root / definition.name
    file_format = definition.format.file_format
    if file_format is None:
        return folder
    return folder / f"{definition.dataset}.{file_format.value}"


# --------------------------------------------------------------------------- state


@dataclass
class RunState:
    """What a definition's last run did."""

    last_run_at: dt.datetime
    status: str  # "completed" | "failed"
    run_id: str | None = None
    rows: int | None = None
    duration_s: float | None = None
    error: str | None = None
    last_success_at: dt.datetime | None = None

    def as_json(self) -> dict[str, Any]:
        """JSON-ready."""
        data = asdict(self)
        for key in ("last_run_at", "last_success_at"):
            data[key] = data[key].isoformat() if data[key] else None
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> RunState:
        """Read back what ``as_json`` wrote."""
        success = data.get("last_success_at")
        return cls(
            last_run_at=dt.datetime.fromisoformat(data["last_run_at"]),
            status=str(data["status"]),
            run_id=data.get("run_id"),
            rows=data.get("rows"),
            duration_s=data.get("duration_s"),
            error=data.get("error"),
            last_success_at=dt.datetime.fromisoformat(success) if success else None,
        )


def load_state(root: Path) -> dict[str, RunState]:
    """Every definition's last run, by name (empty before the first run)."""
    path = root / STATE_FILE
    if not path.exists():
        return {}
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
        return {name: RunState.from_json(data) for name, data in raw.items()}
    except (ValueError, KeyError, TypeError) as exc:
        # A damaged state file only makes every export due once more.
        log.warning("export schedule state unreadable; starting afresh", extra={"error": str(exc)})
        return {}


def save_state(root: Path, state: dict[str, RunState]) -> None:
    """Write the state file atomically."""
    root.mkdir(parents=True, exist_ok=True)
    path = root / STATE_FILE
    partial = root / f".{STATE_FILE}.{uuid.uuid4().hex[:8]}.partial"
    document = {name: run.as_json() for name, run in sorted(state.items())}
    partial.write_text(json.dumps(document, indent=2), encoding="utf-8")
    os.replace(partial, path)


def is_due(definition: ExportDefinition, last: RunState | None, now: dt.datetime) -> bool:
    """Whether a definition should run now: never run yet, or its next fire time has come."""
    if not definition.enabled:
        return False
    return last is None or definition.next_run(last.last_run_at) <= now


# --------------------------------------------------------------------------- running


def _since(definition: ExportDefinition, last: RunState | None) -> dt.date | None:
    if definition.lookback_days is None or last is None or last.last_success_at is None:
        return None
    return last.last_success_at.date() - dt.timedelta(days=definition.lookback_days)


def run_definition(
    connection: duckdb.DuckDBPyConnection,
    definition: ExportDefinition,
    root: Path,
    lineage: Lineage,
    last: RunState | None = None,
    *,
    clock: Clock = _now,
) -> ExportResult:
    """Run one definition now (raising its error after lineage has recorded it)."""
    dataset = get_dataset(definition.dataset)
    target = output_path(root, definition)
    job_name = JOB_PREFIX + definition.name
    file_format = definition.format.file_format
    if file_format is None:
        target.mkdir(parents=True, exist_ok=True)
        return export_lake(
            connection,
            dataset,
            target,
            lineage,
            delta=definition.format is ScheduleFormat.DELTA,
            scope=definition.scope,
            since=_since(definition, last),
            job_name=job_name,
            clock=clock,
        )
    target.parent.mkdir(parents=True, exist_ok=True)
    return export_file(
        connection,
        dataset,
        file_format,
        target,
        lineage,
        scope=definition.scope,
        job_name=job_name,
        clock=clock,
    )


def run_definitions(
    connection: duckdb.DuckDBPyConnection,
    definitions: Sequence[ExportDefinition],
    root: Path,
    lineage: Lineage,
    *,
    due_only: bool = True,
    clock: Clock = _now,
) -> dict[str, RunState]:
    """Run the (due) definitions one after the other; a failure does not stop the others.

    Returns the new state of each definition that ran; the state file is updated.
    """
    state = load_state(root)
    ran: dict[str, RunState] = {}
    for definition in definitions:
        now = clock()
        last = state.get(definition.name)
        if due_only and not is_due(definition, last, now):
            continue
        began = time.perf_counter()
        try:
            result = run_definition(connection, definition, root, lineage, last, clock=clock)
        except Exception as exc:  # noqa: BLE001 - recorded in the state and lineage; others go on
            log.warning(
                "scheduled export failed", extra={"export": definition.name, "error": str(exc)}
            )
            ran[definition.name] = RunState(
                last_run_at=now,
                status="failed",
                duration_s=time.perf_counter() - began,
                error=f"{type(exc).__name__}: {exc}"[:1000],
                last_success_at=last.last_success_at if last else None,
            )
        else:
            ran[definition.name] = RunState(
                last_run_at=now,
                status="completed",
                run_id=result.run_id,
                rows=result.rows,
                duration_s=time.perf_counter() - began,
                last_success_at=now,
            )
        state[definition.name] = ran[definition.name]
        save_state(root, state)
    return ran


def run_due_exports(settings: Settings, *, clock: Clock = _now) -> dict[str, RunState]:
    """The supervisor's job: run every due definition of the configured schedule.

    Nothing happens without a schedule file; a warehouse that is not built yet or is being
    written by the ETL is skipped until the next round.
    """
    definitions = load_definitions(schedule_file(settings))
    root = exports_dir(settings)
    state = load_state(root)
    now = clock()
    if not any(is_due(d, state.get(d.name), now) for d in definitions):
        return {}
    try:
        connection = open_read_only(settings)
    except (WarehouseError, duckdb.Error) as exc:
        log.info("scheduled exports wait for the warehouse", extra={"reason": str(exc)})
        return {}
    try:
        lineage = lineage_for(settings, warehouse_file(settings))
        return run_definitions(connection, definitions, root, lineage, clock=clock)
    finally:
        connection.close()
