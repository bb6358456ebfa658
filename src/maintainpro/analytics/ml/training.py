"""Training, evaluation and retraining jobs, and predictions stored as warehouse facts.

Anomaly models: per sensor, trained on the older 80 % of the training window and evaluated on
the newer 20 % (false alarms on held-out normal data, and recall of spikes injected into a copy
of it). RUL: per monitored sensor with an asset, from hourly values, toward the failure level
learned from the asset's failure history or its alert rule's critical level. Every run writes
its anomaly scores and RUL estimates to `fact_prediction` so BI tools see them.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import math
import os
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Final

import numpy as np
import pyarrow as pa
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from maintainpro.analytics.ml.anomaly import AnomalyModel, alarms, train
from maintainpro.analytics.ml.registry import ModelRegistry, models_dir
from maintainpro.analytics.ml.rul import RulEstimate, estimate_rul, learned_threshold
from maintainpro.analytics.ml.scoring import sensor_target
from maintainpro.analytics.ml.sources import TrainingSource, training_source
from maintainpro.analytics.schema import F64, I64, STR, TS, WarehouseTable, _c
from maintainpro.analytics.warehouse import (
    DuckDbWarehouse,
    WarehouseError,
    naive_utc,
    warehouse_file,
)
from maintainpro.config import Settings
from maintainpro.core.work_orders import WorkOrder, WorkOrderType
from maintainpro.iot.devices import Device, Sensor
from maintainpro.iot.trends import _monitored

log = logging.getLogger(__name__)

TRAIN_DAYS: Final = 7
HOLDOUT: Final = 0.2
RUL_FILE: Final = "rul.json"
# Spikes injected into held-out data to measure recall: this many robust sigmas.
SPIKE_SIGMAS: Final = 8.0

FACT_PREDICTION = WarehouseTable(
    "fact_prediction",
    "fact",
    "Model outputs: anomaly scores per sensor and remaining useful life per asset, per run.",
    (
        _c("predicted_at", TS),
        _c("model_id", I64),
        _c("kind", STR, "anomaly | rul"),
        _c("sensor_key", I64),
        _c("asset_key", I64),
        _c("value", F64, "anomaly score, or RUL in days"),
        _c("low", F64, "band low (RUL days)"),
        _c("high", F64, "band high (RUL days); null when open-ended"),
        _c("threshold", F64, "alarm threshold, or failure level"),
        _c("failure_at", TS, "predicted failure time (RUL)"),
    ),
    ("predicted_at", "kind", "sensor_key"),
)


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


def train_anomaly_models(
    factory: sessionmaker[Session],
    registry: ModelRegistry,
    source: TrainingSource,
    now: dt.datetime,
    *,
    days: int = TRAIN_DAYS,
) -> list[int]:
    """Train a new anomaly model version for every enabled sensor with enough data."""
    start = now - dt.timedelta(days=days)
    with factory() as session:
        sensor_ids = list(
            session.scalars(
                select(Sensor.id)
                .join(Device, Sensor.device_id == Device.id)
                .where(Sensor.enabled.is_(True), Device.enabled.is_(True))
            )
        )
    trained = []
    for sensor_id in sensor_ids:
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
        trained.append(record.id)
    log.info("anomaly models trained", extra={"models": trained})
    return trained


# --------------------------------------------------------------------------- RUL


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

    @property
    def failure_at(self) -> dt.datetime:
        """The predicted failure time."""
        return self.computed_at + dt.timedelta(days=self.rul_days)

    @property
    def earliest_at(self) -> dt.datetime:
        """The band's early end: what maintenance planning should beat."""
        return self.computed_at + dt.timedelta(days=self.low_days)


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


def update_rul(
    factory: sessionmaker[Session], source: TrainingSource, now: dt.datetime, *, days: int = 14
) -> list[AssetRul]:
    """RUL of every monitored asset (its sensor with the earliest predicted failure)."""
    best: dict[int, AssetRul] = {}
    with factory() as session:
        # The sensors with a critical level, as the trend predictions see them.
        for sensor, criticals in _monitored(session).items():
            if sensor.asset_id is None:
                continue
            critical = criticals[0]
            learned = learned_threshold(
                _failure_levels(session, source, sensor.id, sensor.asset_id)
            )
            threshold = learned if learned is not None else critical.threshold
            points = source.hourly(sensor.id, now - dt.timedelta(days=days), now)
            estimate: RulEstimate | None = estimate_rul(
                [(t - now).total_seconds() / 86_400 for t, _ in points],
                [v for _, v in points],
                threshold,
                critical.direction,
                now_days=0.0,
            )
            if estimate is None:
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
            )
            earlier = best.get(sensor.asset_id)
            if earlier is None or found.rul_days < earlier.rul_days:
                best[sensor.asset_id] = found
    return list(best.values())


def save_rul(directory: Path, estimates: list[AssetRul]) -> None:
    """Replace the stored RUL estimates (read by the asset page, API and pull-forward)."""
    directory.mkdir(parents=True, exist_ok=True)
    rows = [{**asdict(e), "computed_at": e.computed_at.isoformat()} for e in estimates]
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".rul-")
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        json.dump(rows, handle)
    os.replace(tmp, directory / RUL_FILE)


def load_rul(directory: Path) -> dict[int, AssetRul]:
    """The stored RUL estimates by asset id."""
    path = directory / RUL_FILE
    if not path.exists():
        return {}
    rows = json.loads(path.read_text(encoding="utf-8"))
    out = {}
    for row in rows:
        row["computed_at"] = dt.datetime.fromisoformat(row["computed_at"])
        estimate = AssetRul(**row)
        out[estimate.asset_id] = estimate
    return out


def rul_forecasts(directory: Path) -> dict[int, tuple[dt.datetime, str]]:
    """Pull-forward input: per asset, the early end of the RUL band and the reason."""
    return {
        asset_id: (
            e.earliest_at,
            f"{e.sensor_name}: remaining useful life {e.rul_days:.1f} days "
            f"(band {e.low_days:.1f}-{_days(e.high_days)}) to the failure level "
            f"{e.threshold:g} from the {e.threshold_source}",
        )
        for asset_id, e in load_rul(directory).items()
    }


def _days(value: float | None) -> str:
    return "open" if value is None or not math.isfinite(value) else f"{value:.1f}"


# --------------------------------------------------------------------------- facts


def write_prediction_facts(warehouse_path: Path, now: dt.datetime, rul: list[AssetRul]) -> int:
    """Append this run's RUL estimates to fact_prediction."""
    rows: list[dict[str, object]] = [
        {
            "predicted_at": naive_utc(now),
            "model_id": None,
            "kind": "rul",
            "sensor_key": e.sensor_id,
            "asset_key": e.asset_id,
            "value": e.rul_days,
            "low": e.low_days,
            "high": e.high_days,
            "threshold": e.threshold,
            "failure_at": naive_utc(e.failure_at),
        }
        for e in rul
    ]
    try:
        with DuckDbWarehouse(warehouse_path) as warehouse:
            warehouse.connection.execute(FACT_PREDICTION.ddl())
            with warehouse.transaction():
                return warehouse.insert(
                    FACT_PREDICTION, pa.Table.from_pylist(rows, FACT_PREDICTION.arrow_schema)
                )
    except WarehouseError as exc:
        # The warehouse is being rebuilt by another process: the next run writes again.
        log.warning("predictions not written to the warehouse", extra={"error": str(exc)})
        return 0


# --------------------------------------------------------------------------- the jobs


def retrain(factory: sessionmaker[Session], settings: Settings, now: dt.datetime) -> list[int]:
    """Scheduled retraining: a new anomaly model version per sensor from the last week."""
    registry = ModelRegistry(models_dir(settings))
    return train_anomaly_models(factory, registry, training_source(factory, settings), now)


def refresh_rul(
    factory: sessionmaker[Session], settings: Settings, now: dt.datetime
) -> list[AssetRul]:
    """Re-estimate every asset's RUL, store it and append it to the warehouse facts."""
    estimates = update_rul(factory, training_source(factory, settings), now)
    save_rul(models_dir(settings), estimates)
    write_prediction_facts(warehouse_file(settings), now, estimates)
    return estimates
