"""Training, evaluation and retraining jobs, and predictions stored as warehouse facts.

Anomaly models: per sensor, trained on the older 80 % of the training window and evaluated on
the newer 20 % (false alarms on held-out normal data, and recall of spikes injected into a copy
of it). RUL: per monitored sensor with an asset, from hourly values, toward the failure level
learned from the asset's failure history or its alert rule's critical level, with the settings
of the live registry version of target "rul". Every run writes its anomaly scores or RUL
estimates to the warehouse table `fact_prediction` (replacing the rows of the same run) so BI
tools see them.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import math
import os
import tempfile
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Final

import duckdb
import numpy as np
import pyarrow as pa
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from maintainpro.analytics.ml.anomaly import AnomalyModel, alarms, train
from maintainpro.analytics.ml.registry import ModelRecord, ModelRegistry, models_dir
from maintainpro.analytics.ml.rul import (
    BOOTSTRAP,
    COVERAGE,
    HORIZON_BUCKETS,
    HORIZON_DAYS,
    MIN_POINTS,
    SPAN_DAYS,
    RulEstimate,
    estimate_rul,
    learned_threshold,
)
from maintainpro.analytics.ml.rul_calibration import (
    BAND_SCALE,
    CALIBRATION_ASSETS,
    CALIBRATION_SEED,
    band_scale_for,
)
from maintainpro.analytics.ml.scoring import sensor_target
from maintainpro.analytics.ml.sources import TrainingSource, training_source
from maintainpro.analytics.schema import FACT_PREDICTION
from maintainpro.analytics.transforms import date_key
from maintainpro.analytics.warehouse import (
    DuckDbWarehouse,
    WarehouseError,
    naive_utc,
    warehouse_file,
)
from maintainpro.config import Settings
from maintainpro.core.assets import Asset
from maintainpro.core.work_orders import WorkOrder, WorkOrderType
from maintainpro.iot.devices import Device, Sensor
from maintainpro.iot.trends import _monitored

log = logging.getLogger(__name__)

TRAIN_DAYS: Final = 7
HOLDOUT: Final = 0.2
RUL_FILE: Final = "rul.json"
# Spikes injected into held-out data to measure recall: this many robust sigmas.
SPIKE_SIGMAS: Final = 8.0
# The registry target of the RUL method and the history (days of hourly values) it reads.
RUL_TARGET: Final = "rul"
RUL_KIND: Final = "degradation_trend"
RUL_HISTORY_DAYS: Final = 14.0
# Pull-forward reasons from RUL estimates carry this phrase; the asset page finds them by it.
RUL_REASON: Final = "remaining useful life"


# --------------------------------------------------------------------------- anomaly models


def held_out_metrics(model: AnomalyModel, holdout: np.ndarray, seed: int = 0) -> dict[str, float]:
    """False-alarm rate on normal held-out data and recall of injected spikes."""
    if holdout.size <= model.window + 20:
        return {}
    false_alarm = float(alarms(model, holdout).mean())
    rng = np.random.default_rng(seed)
    spiked = holdout.copy()
    scale = model.level_scale * SPIKE_SIGMAS
    starts = rng.choice(np.arange(model.window, holdout.size - 10, 30), size=5, replace=False)
    for s in starts:
        spiked[s : s + model.min_run + 2] += scale
    raised = alarms(model, spiked)
    hits = sum(bool(raised[s - model.window : s - model.window + 10].any()) for s in starts)
    return {"false_alarm_rate": false_alarm, "spike_recall": hits / len(starts)}


@dataclass(frozen=True)
class AnomalyFact:
    """A newly trained anomaly model version and its score of the sensor's newest reading."""

    sensor_id: int
    asset_id: int | None
    site_id: int | None
    model_id: int
    model_version: int
    score: float | None
    threshold: float


def train_anomaly_versions(
    factory: sessionmaker[Session],
    registry: ModelRegistry,
    source: TrainingSource,
    now: dt.datetime,
    *,
    days: int = TRAIN_DAYS,
) -> list[AnomalyFact]:
    """Train a new anomaly model version for every enabled sensor with enough data."""
    start = now - dt.timedelta(days=days)
    with factory() as session:
        sensors = session.execute(
            select(Sensor.id, Device.asset_id, Asset.site_id)
            .join(Device, Sensor.device_id == Device.id)
            .outerjoin(Asset, Device.asset_id == Asset.id)
            .where(Sensor.enabled.is_(True), Device.enabled.is_(True))
            .order_by(Sensor.id)
        ).all()
    trained = []
    for sensor_id, asset_id, site_id in sensors:
        values = np.asarray(source.raw(sensor_id, start, now), dtype=np.float64)
        cut = int(values.size * (1 - HOLDOUT))
        try:
            model = train(values[:cut])
        except ValueError:
            continue  # too few readings yet
        record = registry.register(
            sensor_target(sensor_id),
            model.kind,
            model,
            window=(start, now),
            features=list(model.feature_names),
            metrics=held_out_metrics(model, values[cut:]),
            params={"window": model.window, "threshold": model.threshold},
        )
        trained.append(
            AnomalyFact(
                sensor_id=sensor_id,
                asset_id=asset_id,
                site_id=site_id,
                model_id=record.id,
                model_version=record.version,
                score=_newest_score(model, values),
                threshold=model.threshold,
            )
        )
    log.info("anomaly models trained", extra={"models": [f.model_id for f in trained]})
    return trained


def _newest_score(model: AnomalyModel, values: np.ndarray) -> float | None:
    finite = values[np.isfinite(values)]
    if finite.size <= model.window:
        return None
    return float(model.score(finite[-(model.window + 1) :])[-1])


def train_anomaly_models(
    factory: sessionmaker[Session],
    registry: ModelRegistry,
    source: TrainingSource,
    now: dt.datetime,
    *,
    days: int = TRAIN_DAYS,
) -> list[int]:
    """Train a new anomaly model version for every enabled sensor; returns the new ids."""
    return [f.model_id for f in train_anomaly_versions(factory, registry, source, now, days=days)]


# --------------------------------------------------------------------------- RUL


def rul_method_params() -> dict[str, Any]:
    """The RUL method's settings in this code, as a registry version of target "rul" keeps them."""
    return {
        "span_days": SPAN_DAYS,
        "coverage": COVERAGE,
        "resamples": BOOTSTRAP,
        "history_days": RUL_HISTORY_DAYS,
        # The band's calibration is part of the version: per nominal coverage, one factor per
        # bucket of the estimated RUL, and the simulated runs it was fitted on.
        "band_scale": {level: list(factors) for level, factors in BAND_SCALE.items()},
        "band_scale_fit": {"seed": CALIBRATION_SEED, "assets": CALIBRATION_ASSETS},
    }


def rul_method(registry: ModelRegistry, now: dt.datetime) -> ModelRecord:
    """The live RUL method version, registering this code's settings when no version has them.

    So a change of the method's settings in the code becomes a new version (and live), while a
    version promoted by hand stays live as long as the code's settings are already registered.
    """
    params = rul_method_params()
    versions = [r for r in registry.records() if r.target == RUL_TARGET]
    matching = [r for r in versions if r.params == params]
    if not matching:
        return registry.register(
            RUL_TARGET,
            RUL_KIND,
            params,
            window=(now - dt.timedelta(days=RUL_HISTORY_DAYS), now),
            features=["hourly average"],
            metrics={},
            params=params,
        )
    live = registry.live(RUL_TARGET)
    return live if live is not None else registry.promote(matching[-1].id)


def _setting(method: ModelRecord | None, name: str, default: float) -> float:
    value = None if method is None else method.params.get(name)
    if isinstance(value, int | float) and not isinstance(value, bool) and value > 0:
        return float(value)
    return default


def _band_scale(method: ModelRecord | None, coverage: float) -> tuple[float, ...] | None:
    """The band's factors at `coverage`: the version's own (none in a version stored before
    calibration, which so keeps its bootstrap band), else the code's."""
    if method is None:
        return band_scale_for(coverage)
    table = method.params.get("band_scale")
    factors = table.get(f"{coverage:g}") if isinstance(table, dict) else None
    if not isinstance(factors, list) or len(factors) != len(HORIZON_BUCKETS) + 1:
        return None
    if not all(isinstance(f, int | float) and f > 0 for f in factors):
        return None
    return tuple(float(f) for f in factors)


@dataclass(frozen=True)
class AssetRul:
    """The RUL of an asset, from its sensor nearest to failure."""

    asset_id: int
    sensor_id: int
    sensor_name: str
    computed_at: dt.datetime
    rul_days: float
    low_days: float
    high_days: float | None
    threshold: float
    threshold_source: str  # "failure history" | "alert rule"
    site_id: int | None = None
    model_id: int | None = None
    model_version: int | None = None
    path: str = "linear"  # the degradation path extrapolated (line, exponential, ...)

    @property
    def failure_at(self) -> dt.datetime:
        """The predicted failure time."""
        return self.computed_at + dt.timedelta(days=self.rul_days)

    @property
    def earliest_at(self) -> dt.datetime:
        """The band's early end: what maintenance planning should beat."""
        return self.computed_at + dt.timedelta(days=self.low_days)


@dataclass(frozen=True)
class RulGap:
    """A monitored asset without an estimate, and why (no degrading trend, too little history)."""

    asset_id: int
    computed_at: dt.datetime
    reason: str
    site_id: int | None = None


@dataclass(frozen=True)
class RulRun:
    """One RUL refresh: the estimates and the monitored assets left without one."""

    computed_at: dt.datetime
    estimates: list[AssetRul] = field(default_factory=list)
    gaps: list[RulGap] = field(default_factory=list)
    model_id: int | None = None
    model_version: int | None = None

    def estimate_of(self, asset_id: int) -> AssetRul | None:
        """The asset's estimate, if this run made one."""
        return next((e for e in self.estimates if e.asset_id == asset_id), None)

    def gap_of(self, asset_id: int) -> RulGap | None:
        """Why this run made no estimate for the asset, if it looked at it."""
        return next((g for g in self.gaps if g.asset_id == asset_id), None)


def _failure_levels(
    session: Session, source: TrainingSource, sensor_id: int, asset_id: int
) -> list[float]:
    """The sensor's level in the 24 h before each corrective work order of its asset."""
    opened = session.scalars(
        select(WorkOrder.created_at).where(
            WorkOrder.asset_id == asset_id, WorkOrder.type == WorkOrderType.CORRECTIVE
        )
    ).all()
    levels = []
    for at in opened:
        hours = source.hourly(sensor_id, at - dt.timedelta(hours=24), at)
        if hours:
            levels.append(max(v for _, v in hours))
    return levels


def no_estimate_reason(
    sensor_name: str,
    points: Sequence[tuple[dt.datetime, float]],
    now: dt.datetime,
    span_days: float,
    threshold: float,
    direction: str,
) -> str:
    """Why a sensor's hourly values gave no RUL: too few of them, or no trend toward failure."""
    since = now - dt.timedelta(days=span_days)
    recent = sum(1 for t, v in points if t >= since and math.isfinite(v))
    if recent < MIN_POINTS:
        return (
            f"not enough history: {sensor_name} has {recent} hourly values in the last "
            f"{span_days:g} days, {MIN_POINTS} needed"
        )
    heading = "rising to" if direction == "above" else "falling to"
    return (
        f"no degrading trend: {sensor_name} is not {heading} the failure level {threshold:g} "
        f"within {HORIZON_DAYS:g} days"
    )


def assess_rul(
    factory: sessionmaker[Session],
    source: TrainingSource,
    now: dt.datetime,
    *,
    method: ModelRecord | None = None,
    history_days: float | None = None,
) -> RulRun:
    """RUL of every monitored asset (its sensor with the earliest predicted failure), and why not.

    The method's settings come from `method` (a registry version of target "rul"), else the code.
    """
    span = _setting(method, "span_days", SPAN_DAYS)
    coverage = _setting(method, "coverage", COVERAGE)
    resamples = int(_setting(method, "resamples", BOOTSTRAP))
    history = max(history_days or _setting(method, "history_days", RUL_HISTORY_DAYS), span)
    band_scale = _band_scale(method, coverage)
    model_id = None if method is None else method.id
    model_version = None if method is None else method.version
    best: dict[int, AssetRul] = {}
    why_not: dict[int, list[str]] = {}
    with factory() as session:
        # The sensors with a critical level, as the trend predictions see them.
        monitored = _monitored(session)
        asset_ids = {s.asset_id for s in monitored if s.asset_id is not None}
        sites: dict[int, int] = {}
        if asset_ids:
            sites = {
                asset_id: site_id
                for asset_id, site_id in session.execute(
                    select(Asset.id, Asset.site_id).where(Asset.id.in_(asset_ids))
                )
            }
        for sensor, criticals in monitored.items():
            if sensor.asset_id is None:
                continue
            critical = criticals[0]
            learned = learned_threshold(
                _failure_levels(session, source, sensor.id, sensor.asset_id)
            )
            threshold = learned if learned is not None else critical.threshold
            points = source.hourly(sensor.id, now - dt.timedelta(days=history), now)
            estimate: RulEstimate | None = estimate_rul(
                [(t - now).total_seconds() / 86_400 for t, _ in points],
                [v for _, v in points],
                threshold,
                critical.direction,
                now_days=0.0,
                span_days=span,
                coverage=coverage,
                resamples=resamples,
                band_scale=band_scale,
            )
            if estimate is None:
                why_not.setdefault(sensor.asset_id, []).append(
                    no_estimate_reason(
                        sensor.name, points, now, span, threshold, critical.direction
                    )
                )
                continue
            found = AssetRul(
                asset_id=sensor.asset_id,
                sensor_id=sensor.id,
                sensor_name=sensor.name,
                computed_at=now,
                rul_days=estimate.rul_days,
                low_days=estimate.low_days,
                high_days=estimate.high_days,
                threshold=threshold,
                threshold_source="failure history" if learned is not None else "alert rule",
                site_id=sites.get(sensor.asset_id),
                model_id=model_id,
                model_version=model_version,
                path=str(getattr(estimate, "model", "linear")),
            )
            earlier = best.get(sensor.asset_id)
            if earlier is None or found.rul_days < earlier.rul_days:
                best[sensor.asset_id] = found
    gaps = [
        RulGap(asset_id, now, "; ".join(reasons), sites.get(asset_id))
        for asset_id, reasons in sorted(why_not.items())
        if asset_id not in best
    ]
    return RulRun(now, list(best.values()), gaps, model_id, model_version)


def update_rul(
    factory: sessionmaker[Session],
    source: TrainingSource,
    now: dt.datetime,
    *,
    days: float = RUL_HISTORY_DAYS,
) -> list[AssetRul]:
    """RUL of every monitored asset (its sensor with the earliest predicted failure)."""
    return assess_rul(factory, source, now, history_days=days).estimates


def save_rul(directory: Path, run: RulRun | list[AssetRul]) -> None:
    """Replace the stored RUL run (read by the asset page, API and pull-forward)."""
    if isinstance(run, list):
        computed = run[0].computed_at if run else dt.datetime.now(dt.UTC)
        run = RulRun(computed, run)
    directory.mkdir(parents=True, exist_ok=True)
    body = {
        "computed_at": run.computed_at.isoformat(),
        "model_id": run.model_id,
        "model_version": run.model_version,
        "estimates": [
            {**asdict(e), "computed_at": e.computed_at.isoformat()} for e in run.estimates
        ],
        "without_estimate": [
            {**asdict(g), "computed_at": g.computed_at.isoformat()} for g in run.gaps
        ],
    }
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".rul-")
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        json.dump(body, handle)
    os.replace(tmp, directory / RUL_FILE)


def _row_of(cls: type[Any], row: dict[str, Any]) -> Any:
    known = {f.name for f in fields(cls)}
    values = {k: v for k, v in row.items() if k in known}
    values["computed_at"] = dt.datetime.fromisoformat(values["computed_at"])
    return cls(**values)


def load_rul_run(directory: Path) -> RulRun | None:
    """The stored RUL run, or None when none has been stored (or the file is unreadable)."""
    path = directory / RUL_FILE
    if not path.exists():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        if isinstance(data, list):  # the format before runs were stored: estimates only
            estimates = [_row_of(AssetRul, row) for row in data]
            computed = estimates[0].computed_at if estimates else None
            if computed is None:
                return None
            return RulRun(computed, estimates)
        return RulRun(
            computed_at=dt.datetime.fromisoformat(data["computed_at"]),
            estimates=[_row_of(AssetRul, row) for row in data.get("estimates", [])],
            gaps=[_row_of(RulGap, row) for row in data.get("without_estimate", [])],
            model_id=data.get("model_id"),
            model_version=data.get("model_version"),
        )
    except (OSError, ValueError, TypeError, KeyError, AttributeError) as exc:
        log.warning("stored RUL estimates unreadable", extra={"error": str(exc)})
        return None


def missing_reason(run: RulRun | None, asset_id: int) -> str:
    """Why an asset has no RUL estimate in the stored run (for the asset page and the API)."""
    if run is None:
        return "the remaining-life job has not run yet"
    gap = run.gap_of(asset_id)
    if gap is not None:
        return gap.reason
    return "none of its sensors has a critical alert level to forecast toward"


def load_rul(directory: Path) -> dict[int, AssetRul]:
    """The stored RUL estimates by asset id."""
    run = load_rul_run(directory)
    return {} if run is None else {e.asset_id: e for e in run.estimates}


def rul_forecasts(directory: Path) -> dict[int, tuple[dt.datetime, str]]:
    """Pull-forward input: per asset, the early end of the RUL band and the reason."""
    return {asset_id: (e.earliest_at, rul_reason(e)) for asset_id, e in load_rul(directory).items()}


def rul_reason(e: AssetRul) -> str:
    """Why an RUL estimate pulls a PM forward (contains `RUL_REASON`)."""
    version = f", RUL model v{e.model_version}" if e.model_version is not None else ""
    return (
        f"{e.sensor_name}: {RUL_REASON} {e.rul_days:.1f} days "
        f"(band {e.low_days:.1f}-{_days(e.high_days)}) to the failure level "
        f"{e.threshold:g} from the {e.threshold_source}{version}"
    )


def _days(value: float | None) -> str:
    return "open" if value is None or not math.isfinite(value) else f"{value:.1f}"


# --------------------------------------------------------------------------- facts


def _rul_rows(now: dt.datetime, rul: Sequence[AssetRul]) -> list[dict[str, object]]:
    return [
        {
            "predicted_at": naive_utc(now),
            "date_key": date_key(now),
            "kind": "rul",
            "model_id": e.model_id,
            "model_version": e.model_version,
            "sensor_key": e.sensor_id,
            "asset_key": e.asset_id,
            "site_key": e.site_id,
            "value": e.rul_days,
            "low": e.low_days,
            "high": e.high_days,
            "threshold": e.threshold,
            "threshold_source": e.threshold_source,
            "failure_at": naive_utc(e.failure_at),
        }
        for e in rul
    ]


def _anomaly_rows(now: dt.datetime, facts: Sequence[AnomalyFact]) -> list[dict[str, object]]:
    return [
        {
            "predicted_at": naive_utc(now),
            "date_key": date_key(now),
            "kind": "anomaly",
            "model_id": f.model_id,
            "model_version": f.model_version,
            "sensor_key": f.sensor_id,
            "asset_key": f.asset_id,
            "site_key": f.site_id,
            "value": f.score,
            "low": None,
            "high": None,
            "threshold": f.threshold,
            "threshold_source": "training scores",
            "failure_at": None,
        }
        for f in facts
    ]


def _replace_run(
    warehouse_path: Path, kind: str, now: dt.datetime, rows: list[dict[str, object]]
) -> int:
    """Replace the fact_prediction rows of one run (kind, predicted_at) with `rows`."""
    try:
        with DuckDbWarehouse(warehouse_path) as warehouse:
            warehouse.connection.execute(FACT_PREDICTION.ddl())
            with warehouse.transaction():
                # Re-running a run (same kind and time) replaces its rows: the fact stays
                # unique by its natural key however often a job is retried.
                warehouse.connection.execute(
                    f"DELETE FROM {FACT_PREDICTION.name} WHERE kind = ? AND predicted_at = ?",  # noqa: S608 - schema name
                    [kind, naive_utc(now)],
                )
                return warehouse.insert(
                    FACT_PREDICTION, pa.Table.from_pylist(rows, FACT_PREDICTION.arrow_schema)
                )
    except (WarehouseError, duckdb.Error) as exc:
        # The warehouse is busy (a rebuild holds the file): the next run writes again.
        log.warning("predictions not written to the warehouse", extra={"error": str(exc)})
        return 0


def write_prediction_facts(warehouse_path: Path, now: dt.datetime, rul: list[AssetRul]) -> int:
    """Store this run's RUL estimates in fact_prediction (replacing the same run's rows)."""
    return _replace_run(warehouse_path, "rul", now, _rul_rows(now, rul))


def write_anomaly_facts(
    warehouse_path: Path, now: dt.datetime, facts: Sequence[AnomalyFact]
) -> int:
    """Store a retraining run's anomaly scores in fact_prediction (replacing the same run's)."""
    return _replace_run(warehouse_path, "anomaly", now, _anomaly_rows(now, facts))


# --------------------------------------------------------------------------- the jobs


def retrain(factory: sessionmaker[Session], settings: Settings, now: dt.datetime) -> list[int]:
    """Scheduled retraining: a new anomaly model version per sensor from the last week."""
    registry = ModelRegistry(models_dir(settings))
    facts = train_anomaly_versions(factory, registry, training_source(factory, settings), now)
    write_anomaly_facts(warehouse_file(settings), now, facts)
    return [f.model_id for f in facts]


def refresh_rul(
    factory: sessionmaker[Session], settings: Settings, now: dt.datetime
) -> list[AssetRul]:
    """Re-estimate every asset's RUL, store it and write it to the warehouse facts."""
    method = rul_method(ModelRegistry(models_dir(settings)), now)
    run = assess_rul(factory, training_source(factory, settings), now, method=method)
    save_rul(models_dir(settings), run)
    write_prediction_facts(warehouse_file(settings), now, run.estimates)
    return run.estimates
