"""Machine-learning models: the registry's versions, promoting one, and an asset's RUL."""

from __future__ import annotations

import datetime as dt
from typing import Any

from fastapi import APIRouter, Depends
from pydantic import BaseModel

from maintainpro.analytics.ml.registry import ModelRegistry, RegistryError, models_dir
from maintainpro.analytics.ml.training import load_rul_run, missing_reason
from maintainpro.api.crud import get_or_404
from maintainpro.api.deps import SessionDep, SettingsDep, require
from maintainpro.api.problems import Problem
from maintainpro.core.assets import Asset
from maintainpro.core.users import Permission

router = APIRouter(tags=["ml"])
Reader = Depends(require(Permission.ASSETS_READ))
Writer = Depends(require(Permission.ASSETS_WRITE))


class ModelOut(BaseModel):
    """One model version in the registry."""

    id: int
    target: str
    kind: str
    version: int
    created_at: str
    window_start: str
    window_end: str
    features: list[str]
    metrics: dict[str, float]
    sha256: str
    live: bool
    params: dict[str, Any]


class RulOut(BaseModel):
    """An asset's remaining useful life with its band."""

    asset_id: int
    sensor_id: int
    sensor_name: str
    computed_at: dt.datetime
    rul_days: float
    low_days: float
    high_days: float | None
    failure_at: dt.datetime
    threshold: float
    threshold_source: str
    model_id: int | None
    model_version: int | None
    path: str


def _out(record: Any) -> ModelOut:
    return ModelOut.model_validate(record, from_attributes=True)


@router.get("/ml/models", dependencies=[Reader])
def list_models(settings: SettingsDep) -> list[ModelOut]:
    """Every model version, oldest first."""
    return [_out(r) for r in ModelRegistry(models_dir(settings)).records()]


@router.post("/ml/models/{model_id}/promote", dependencies=[Writer])
def promote_model(model_id: int, settings: SettingsDep) -> ModelOut:
    """Make a version the live model of its target."""
    try:
        return _out(ModelRegistry(models_dir(settings)).promote(model_id))
    except RegistryError:
        raise Problem(404, f"There is no model {model_id}.", title="Model not found") from None


@router.get("/assets/{asset_id}/rul", dependencies=[Reader])
def asset_rul(asset_id: int, db: SessionDep, settings: SettingsDep) -> RulOut:
    """The asset's latest remaining-useful-life estimate (404 with the reason when none)."""
    get_or_404(db, Asset, asset_id)
    run = load_rul_run(models_dir(settings))
    found = None if run is None else run.estimate_of(asset_id)
    if found is None:
        why = missing_reason(run, asset_id)
        raise Problem(
            404,
            f"Asset {asset_id} has no remaining-life estimate: {why}.",
            title="No estimate",
            reason=why,
            computed_at=None if run is None else run.computed_at.isoformat(),
        )
    return RulOut(
        asset_id=found.asset_id,
        sensor_id=found.sensor_id,
        sensor_name=found.sensor_name,
        computed_at=found.computed_at,
        rul_days=found.rul_days,
        low_days=found.low_days,
        high_days=found.high_days,
        failure_at=found.failure_at,
        threshold=found.threshold,
        threshold_source=found.threshold_source,
        model_id=found.model_id,
        model_version=found.model_version,
        path=found.path,
    )
