"""Machine-learning models: the registry's versions, promoting one, and an asset's RUL."""

from __future__ import annotations

import datetime as dt
from typing import Any

from fastapi import APIRouter, Depends
from pydantic import BaseModel

from maintainpro.analytics.ml.registry import ModelRegistry, RegistryError, models_dir
from maintainpro.analytics.ml.training import load_rul
from maintainpro.api.deps import SettingsDep, require
from maintainpro.api.problems import Problem
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
    computed_at: dt.datetime
    rul_days: float
    low_days: float
    high_days: float | None
    failure_at: dt.datetime
    threshold: float
    threshold_source: str


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
def asset_rul(asset_id: int, settings: SettingsDep) -> RulOut:
    """The asset's latest remaining-useful-life estimate."""
    found = load_rul(models_dir(settings)).get(asset_id)
    if found is None:
        raise Problem(404, f"Asset {asset_id} has no remaining-life estimate.", title="No estimate")
    return RulOut(
        asset_id=found.asset_id,
        sensor_id=found.sensor_id,
        computed_at=found.computed_at,
        rul_days=found.rul_days,
        low_days=found.low_days,
        high_days=found.high_days,
        failure_at=found.failure_at,
        threshold=found.threshold,
        threshold_source=found.threshold_source,
    )
