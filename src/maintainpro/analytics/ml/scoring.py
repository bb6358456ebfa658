"""Live anomaly scoring: a pipeline listener that scores stored readings with each sensor's
live model and raises (and later clears) alerts of kind "anomaly".

At most one anomaly alert per sensor is open at a time: a new anomaly on a sensor whose alert is
still open updates that alert instead of adding another, the way the rule engine deduplicates.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import threading
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from maintainpro.analytics.ml.anomaly import AnomalyModel, RunState, step
from maintainpro.analytics.ml.registry import INDEX, ModelRegistry, RegistryError
from maintainpro.core.audit import SYSTEM, set_actor
from maintainpro.core.db import utcnow
from maintainpro.core.events import emit
from maintainpro.iot.alert_lifecycle import alert_payload
from maintainpro.iot.alerts import OPEN_ALERT_STATUSES, Alert, AlertKind, AlertNote, AlertStatus
from maintainpro.iot.devices import Device, Sensor
from maintainpro.iot.timeseries import ReadingRow, from_ms, readings_table

log = logging.getLogger(__name__)


def sensor_target(sensor_id: int) -> str:
    """The registry target name of a sensor's anomaly model."""
    return f"sensor:{sensor_id}"


@dataclass
class _Track:
    model_id: int
    model: AnomalyModel
    history: deque[float]
    state: RunState = field(default_factory=RunState)
    last_ts: int = -1


class AnomalyScorer:
    """Scores stored readings with the live anomaly model of their sensor."""

    def __init__(
        self, factory: sessionmaker[Session], registry: ModelRegistry, public_url: str = ""
    ) -> None:
        """Score with the live models of `registry`."""
        self.factory = factory
        self.registry = registry
        self.public_url = public_url.rstrip("/")
        self._queue: asyncio.Queue[list[ReadingRow]] = asyncio.Queue()
        self._tracks: dict[int, _Track] = {}
        self._live: dict[int, int] = {}  # sensor -> live model id
        self._stamp: float | None = None
        self._lock = threading.Lock()

    def on_stored(self, rows: Sequence[ReadingRow]) -> None:
        """Pipeline listener: queue the committed rows (never blocks the event loop)."""
        if rows:
            self._queue.put_nowait(list(rows))

    async def run(self) -> None:
        """Score queued batches off the event loop until cancelled."""
        while True:
            batch = await self._queue.get()
            try:
                await asyncio.to_thread(self.process, batch)
            except Exception:
                # A broken model must not stop ingest or the other listeners; logged loudly.
                log.exception("anomaly scoring failed", extra={"size": len(batch)})
            finally:
                self._queue.task_done()

    async def wait_idle(self) -> None:
        """Wait until every queued batch has been scored."""
        await self._queue.join()

    def _refresh(self) -> None:
        path = self.registry.directory / INDEX
        stamp = path.stat().st_mtime_ns if path.exists() else None
        if stamp == self._stamp:
            return
        self._stamp = stamp
        self._live = {}
        for record in self.registry.records():
            if record.live and record.target.startswith("sensor:"):
                self._live[int(record.target.split(":", 1)[1])] = record.id

    def _track(self, session: Session, sensor_id: int, before_ts: int) -> _Track | None:
        model_id = self._live.get(sensor_id)
        if model_id is None:
            return None
        track = self._tracks.get(sensor_id)
        if track is not None and track.model_id == model_id:
            return track
        try:
            model = self.registry.load(self.registry.get(model_id))
        except (RegistryError, OSError) as exc:
            log.error("anomaly model refused", extra={"model_id": model_id, "error": str(exc)})
            self._live.pop(sensor_id, None)
            return None
        if not isinstance(model, AnomalyModel):
            log.error("registry entry is not an anomaly model", extra={"model_id": model_id})
            self._live.pop(sensor_id, None)
            return None
        # Warm the window from the store so a restart does not blind the model for a window.
        c = readings_table.c
        past = session.execute(
            select(c.value)
            .where(c.sensor_id == sensor_id, c.ts < before_ts, c.quality == 0)
            .order_by(c.ts.desc())
            .limit(model.window)
        ).all()
        history = deque((float(v) for (v,) in reversed(past)), maxlen=model.window + 1)
        track = _Track(model_id, model, history, last_ts=before_ts - 1)
        self._tracks[sensor_id] = track
        return track

    def process(self, rows: Sequence[ReadingRow]) -> int:
        """Score readings in one transaction; returns alerts raised or cleared."""
        with self._lock:
            self._refresh()
            per_sensor: dict[int, list[ReadingRow]] = {}
            for row in rows:
                if row.sensor_id in self._live and row.quality == 0:
                    per_sensor.setdefault(row.sensor_id, []).append(row)
            if not per_sensor:
                return 0
            changed = 0
            with self.factory() as session, session.begin():
                set_actor(session, SYSTEM)
                for sensor_id, readings in per_sensor.items():
                    readings.sort(key=lambda r: r.ts)
                    track = self._track(session, sensor_id, readings[0].ts)
                    if track is None:
                        continue
                    changed += self._score(session, sensor_id, track, readings)
            return changed

    def _score(
        self, session: Session, sensor_id: int, track: _Track, readings: list[ReadingRow]
    ) -> int:
        model = track.model
        changed = 0
        for reading in readings:
            if reading.ts <= track.last_ts:
                continue  # replayed or out of order: the window only moves forward
            track.last_ts = reading.ts
            track.history.append(reading.value)
            if len(track.history) <= model.window:
                continue
            matrix = model.feature_matrix(np.fromiter(track.history, dtype=np.float64))
            score = float(model.scores_of(matrix)[-1])
            level_only = bool(model.level_only_of(matrix)[-1])
            track.state, transition = step(track.state, score > model.threshold, model, level_only)
            if transition is not None:
                self._apply(session, sensor_id, transition, reading, score, model)
                changed += 1
        return changed

    def _apply(
        self,
        session: Session,
        sensor_id: int,
        transition: str,
        reading: ReadingRow,
        score: float,
        model: AnomalyModel,
    ) -> None:
        now = utcnow()
        at = from_ms(reading.ts)
        open_alert = session.scalar(
            select(Alert)
            .where(
                Alert.sensor_id == sensor_id,
                Alert.kind == AlertKind.ANOMALY,
                Alert.status.in_(OPEN_ALERT_STATUSES),
            )
            .order_by(Alert.id.desc())
            .limit(1)
        )
        if transition == "raise":
            reason = (
                f"{model.min_run} readings in a row scored as anomalous by the {model.kind} "
                f"model (score {score:.3g} > {model.threshold:.3g}); last value {reading.value:g}"
            )
            if open_alert is not None:
                open_alert.value, open_alert.reason = reading.value, reason
                return
            row = session.execute(
                select(Sensor.key, Sensor.name, Device.key, Device.id, Device.asset_id)
                .join(Device, Sensor.device_id == Device.id)
                .where(Sensor.id == sensor_id)
            ).one()
            sensor_key, sensor_name, device_key, device_id, asset_id = row
            alert = Alert(
                rule_id=None,
                sensor_id=sensor_id,
                device_id=device_id,
                asset_id=asset_id,
                kind=AlertKind.ANOMALY,
                severity="warning",
                status=AlertStatus.ACTIVE,
                title=f"Anomaly on {sensor_name or sensor_key} ({device_key}/{sensor_key})"[:300],
                reason=reason,
                value=reading.value,
                raised_at=now,
                escalations=0,
                reading_at=at,
            )
            alert.notes.append(AlertNote(action="raised", body=reason, created_at=now))
            session.add(alert)
            session.flush()
            emit(session, "alert.raised", alert_payload(session, alert, self.public_url))
        elif open_alert is not None:
            reason = f"{model.clear_run} normal readings in a row; last value {reading.value:g}"
            open_alert.status = AlertStatus.CLEARED
            open_alert.cleared_at = now
            open_alert.value, open_alert.reason = reading.value, reason
            open_alert.notes.append(AlertNote(action="cleared", body=reason, created_at=now))
            session.flush()
            payload = alert_payload(session, open_alert, self.public_url)
            payload["reading_at"] = dt.datetime.isoformat(at)
            emit(session, "alert.cleared", payload)
