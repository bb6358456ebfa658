"""The model registry: versions of each target's model, their training window and held-out
metrics, and which version is live.

Models are stored with joblib in a `models/` directory beside the warehouse; their metadata
(with the SHA-256 of each file) in `registry.json` there. Loading a joblib/pickle file runs code,
so a model is only loaded from a file name the registry wrote itself and only when its bytes
still hash to the stored SHA-256; anything else is refused, never unpickled.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import json
import os
import tempfile
import threading
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Final

import joblib  # type: ignore[import-untyped]

from maintainpro.analytics.warehouse import warehouse_file
from maintainpro.config import Settings

INDEX: Final = "registry.json"
_LOCK = threading.Lock()


class RegistryError(RuntimeError):
    """A model cannot be found, promoted or loaded."""


class TamperedModel(RegistryError):
    """A model file's bytes do not match the SHA-256 recorded when it was written."""


@dataclass
class ModelRecord:
    """One stored model version."""

    id: int
    target: str  # "sensor:<id>" for anomaly models, "rul" for the RUL method
    kind: str
    version: int
    created_at: str
    window_start: str
    window_end: str
    features: list[str]
    metrics: dict[str, float]
    file: str
    sha256: str
    live: bool = False
    params: dict[str, Any] = field(default_factory=dict)


def models_dir(settings: Settings) -> Path:
    """Where models live: `models/` beside the warehouse file."""
    return warehouse_file(settings).parent / "models"


class ModelRegistry:
    """Model versions of one models directory."""

    def __init__(self, directory: Path) -> None:
        """Use (creating on first write) the registry in `directory`."""
        self.directory = directory

    # -- metadata -----------------------------------------------------------------------------

    def records(self) -> list[ModelRecord]:
        """Every model version, oldest first."""
        path = self.directory / INDEX
        if not path.exists():
            return []
        data = json.loads(path.read_text(encoding="utf-8"))
        return [ModelRecord(**row) for row in data["models"]]

    def _write(self, records: list[ModelRecord]) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        body = json.dumps({"models": [asdict(r) for r in records]}, indent=1)
        # Written beside and renamed over, so a reader never sees half a file.
        fd, tmp = tempfile.mkstemp(dir=self.directory, prefix=".registry-")
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(body)
        os.replace(tmp, self.directory / INDEX)

    def get(self, model_id: int) -> ModelRecord:
        """One version by id."""
        for record in self.records():
            if record.id == model_id:
                return record
        raise RegistryError(f"model {model_id} does not exist")

    def live(self, target: str) -> ModelRecord | None:
        """The live version of a target, if any."""
        return next((r for r in self.records() if r.target == target and r.live), None)

    # -- writing ------------------------------------------------------------------------------

    def register(
        self,
        target: str,
        kind: str,
        model: object,
        *,
        window: tuple[dt.datetime, dt.datetime],
        features: list[str],
        metrics: dict[str, float],
        params: dict[str, Any] | None = None,
        make_live: bool = True,
    ) -> ModelRecord:
        """Store a new version of a target's model (live unless asked otherwise)."""
        buffer = io.BytesIO()
        joblib.dump(model, buffer)
        blob = buffer.getvalue()
        with _LOCK:
            records = self.records()
            model_id = max((r.id for r in records), default=0) + 1
            version = max((r.version for r in records if r.target == target), default=0) + 1
            name = f"model-{model_id}.joblib"
            self.directory.mkdir(parents=True, exist_ok=True)
            (self.directory / name).write_bytes(blob)
            record = ModelRecord(
                id=model_id,
                target=target,
                kind=kind,
                version=version,
                created_at=dt.datetime.now(dt.UTC).isoformat(),
                window_start=window[0].isoformat(),
                window_end=window[1].isoformat(),
                features=features,
                metrics=metrics,
                file=name,
                sha256=hashlib.sha256(blob).hexdigest(),
                params=params or {},
            )
            records.append(record)
            if make_live:
                _make_live(records, record)
            self._write(records)
        return record

    def promote(self, model_id: int) -> ModelRecord:
        """Make a version the live one of its target (the previous live one steps down)."""
        with _LOCK:
            records = self.records()
            record = next((r for r in records if r.id == model_id), None)
            if record is None:
                raise RegistryError(f"model {model_id} does not exist")
            _make_live(records, record)
            self._write(records)
        return record

    def rollback(self, target: str) -> ModelRecord:
        """Make the version before the live one live again."""
        versions = sorted(
            (r for r in self.records() if r.target == target), key=lambda r: r.version
        )
        live = next((r for r in versions if r.live), None)
        if live is None:
            raise RegistryError(f"{target} has no live model")
        older = [r for r in versions if r.version < live.version]
        if not older:
            raise RegistryError(f"{target} has no version before {live.version}")
        return self.promote(older[-1].id)

    # -- loading ------------------------------------------------------------------------------

    def load(self, record: ModelRecord) -> Any:
        """The model of a version, refused unless its file hashes to the recorded SHA-256."""
        if Path(record.file).name != record.file or not record.file.endswith(".joblib"):
            raise RegistryError(f"model {record.id} names a file outside the registry")
        blob = (self.directory / record.file).read_bytes()
        if hashlib.sha256(blob).hexdigest() != record.sha256:
            raise TamperedModel(f"model {record.id}: file does not match its recorded SHA-256")
        return joblib.load(io.BytesIO(blob))


def _make_live(records: list[ModelRecord], chosen: ModelRecord) -> None:
    for record in records:
        if record.target == chosen.target:
            record.live = record is chosen
