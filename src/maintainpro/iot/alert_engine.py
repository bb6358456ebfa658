"""The alert engine: evaluates stored readings against alert rules, keeps rule state in the
database, raises/escalates/clears alerts with outbox events, and opens condition-based work."""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from maintainpro.core.assets import Asset
from maintainpro.core.audit import SYSTEM, set_actor
from maintainpro.core.db import utcnow
from maintainpro.core.events import emit
from maintainpro.core.maintenance import PartNeed, open_work_order
from maintainpro.core.work_orders import (
    Origin,
    Priority,
    WorkOrder,
    WorkOrderNote,
    WorkOrderType,
)
from maintainpro.iot.alert_lifecycle import alert_payload
from maintainpro.iot.alerts import (
    OPEN_ALERT_STATUSES,
    Alert,
    AlertKind,
    AlertNote,
    AlertRule,
    AlertStatus,
    RuleStateRow,
)
from maintainpro.iot.connectors.base import Backoff
from maintainpro.iot.devices import Device, Sensor
from maintainpro.iot.ingest import registry_version
from maintainpro.iot.rule_specs import (
    ALERT_KINDS,
    PartNeedSpec,
    RuleSpecError,
    SensorTarget,
    bind_rule,
    parse_condition,
)
from maintainpro.iot.rules import (
    Clear,
    Escalate,
    Raise,
    Rule,
    RuleState,
    Sample,
    Severity,
    StaleCondition,
    Transition,
    check_stale,
    evaluate,
    initial_state,
)
from maintainpro.iot.timeseries import QUALITY_NAMES, ReadingRow, from_ms

log = logging.getLogger(__name__)

SEVERITY_PRIORITY: dict[Severity, Priority] = {
    Severity.WARNING: Priority.MEDIUM,
    Severity.MAJOR: Priority.HIGH,
    Severity.CRITICAL: Priority.URGENT,
}
_PRIORITY_RANK = {
    p: i for i, p in enumerate((Priority.LOW, Priority.MEDIUM, Priority.HIGH, Priority.URGENT))
}
# A batch that keeps failing is dropped after this many tries so one poison batch cannot stop
# alerting for the whole plant; the failure is logged with the traceback.
MAX_ATTEMPTS = 5


@dataclass(frozen=True, slots=True)
class BoundRule:
    """An alert rule bound to one sensor, with what acting on its transitions needs."""

    rule_pk: int
    name: str
    kind: AlertKind
    rule: Rule
    sensor_pk: int
    sensor_label: str
    device_pk: int
    asset_id: int | None
    opens_work_order: bool
    parts: tuple[PartNeed, ...]
    cooldown_s: int

    @property
    def is_stale(self) -> bool:
        """Return whether this is an offline (stale-data) rule."""
        return isinstance(self.rule.condition, StaleCondition)


@dataclass(frozen=True)
class RuleSet:
    """Every enabled rule bound to its sensors, keyed by sensor pk."""

    version: str
    by_sensor: dict[int, list[BoundRule]]

    def stale_rules(self) -> list[BoundRule]:
        """Return the offline rules."""
        return [b for bound in self.by_sensor.values() for b in bound if b.is_stale]


def rules_version(session: Session) -> str:
    """A fingerprint that changes when rules, sensors, devices or assets change."""
    rules = session.execute(select(func.count(AlertRule.id), func.max(AlertRule.updated_at))).one()
    assets = session.execute(select(func.count(Asset.id), func.max(Asset.updated_at))).one()
    return f"{rules[0]}:{rules[1]}:{assets[0]}:{assets[1]}:{registry_version(session)}"


def load_rule_set(session: Session) -> RuleSet:
    """Read and bind every enabled rule; a rule whose stored JSON is invalid is skipped (logged)."""
    version = rules_version(session)
    rows = session.execute(
        select(
            Sensor.id,
            Device.key,
            Sensor.key,
            Sensor.type,
            Device.id,
            Device.asset_id,
            Asset.asset_class,
        )
        .join(Device, Sensor.device_id == Device.id)
        .outerjoin(Asset, Device.asset_id == Asset.id)
        .where(Sensor.enabled.is_(True), Device.enabled.is_(True))
        .order_by(Sensor.id)
    ).all()
    targets = [SensorTarget(pk, f"{dk}/{sk}", st, ac) for pk, dk, sk, st, _, _, ac in rows]
    where = {pk: (device_pk, asset_id) for pk, _, _, _, device_pk, asset_id, _ in rows}
    labels = {t.pk: t.label for t in targets}
    by_sensor: dict[int, list[BoundRule]] = {}
    # A sensor's own rule of a kind overrides templates of that kind for that sensor, so
    # tuning one sensor's thresholds (the threshold page) never yields two alerts for one fault.
    own_kinds: dict[int, set[AlertKind]] = {}
    from_template: set[tuple[int, int]] = set()
    for rule in session.scalars(
        select(AlertRule).where(AlertRule.enabled.is_(True)).order_by(AlertRule.id)
    ):
        try:
            spec = parse_condition(rule.condition)
            parts = tuple(
                PartNeed(p.part_id, p.quantity)
                for p in (PartNeedSpec.model_validate(x) for x in rule.work_order_parts or [])
            )
            bound = bind_rule(
                rule.id,
                spec,
                sensor_pk=rule.sensor_id,
                sensor_type=rule.sensor_type,
                asset_class=rule.asset_class,
                sensors=targets,
            )
        except (RuleSpecError, ValidationError, ValueError) as exc:
            log.warning("alert rule skipped", extra={"rule_id": rule.id, "error": str(exc)})
            continue
        for sensor_pk, evaluation_rule in bound.items():
            device_pk, asset_id = where[sensor_pk]
            if rule.sensor_id is None:
                from_template.add((rule.id, sensor_pk))
            else:
                own_kinds.setdefault(sensor_pk, set()).add(ALERT_KINDS[spec.kind])
            by_sensor.setdefault(sensor_pk, []).append(
                BoundRule(
                    rule_pk=rule.id,
                    name=rule.name,
                    kind=ALERT_KINDS[spec.kind],
                    rule=evaluation_rule,
                    sensor_pk=sensor_pk,
                    sensor_label=labels[sensor_pk],
                    device_pk=device_pk,
                    asset_id=asset_id,
                    opens_work_order=rule.opens_work_order,
                    parts=parts,
                    cooldown_s=rule.cooldown_s,
                )
            )
    for sensor_pk, kinds in own_kinds.items():
        by_sensor[sensor_pk] = [
            b
            for b in by_sensor[sensor_pk]
            if not ((b.rule_pk, sensor_pk) in from_template and b.kind in kinds)
        ]
    return RuleSet(version, by_sensor)


class AlertEngine:
    """Turns stored readings into alerts; one instance per hub process."""

    def __init__(
        self,
        factory: sessionmaker[Session],
        *,
        public_url: str = "http://127.0.0.1:8000",
        refresh_s: float = 1.0,
    ) -> None:
        self.factory = factory
        self.public_url = public_url.rstrip("/")
        self.refresh_s = refresh_s
        self._queue: asyncio.Queue[list[ReadingRow]] = asyncio.Queue()
        self._rules: RuleSet | None = None
        self._checked = 0.0
        # Reading batches and the stale timer run in different threads and share rule state.
        self._lock = threading.Lock()

    # -- feeding ------------------------------------------------------------------------------

    def on_stored(self, rows: Sequence[ReadingRow]) -> None:
        """Pipeline listener: queue the committed rows (called in the event loop, never blocks)."""
        if rows:
            self._queue.put_nowait(list(rows))

    async def run(self) -> None:
        """Evaluate queued batches in order, off the event loop, until cancelled."""
        while True:
            batch = await self._queue.get()
            taken = 1
            # Merging what has piled up keeps the database round trips per reading low.
            while not self._queue.empty() and len(batch) < 50_000:
                batch.extend(self._queue.get_nowait())
                taken += 1
            try:
                await self._process_with_retry(batch)
            finally:
                for _ in range(taken):
                    self._queue.task_done()

    async def wait_idle(self) -> None:
        """Wait until every queued batch has been evaluated."""
        await self._queue.join()

    async def _process_with_retry(self, batch: list[ReadingRow]) -> None:
        backoff = Backoff(first=0.2, cap=10.0)
        for attempt in range(1, MAX_ATTEMPTS + 1):
            try:
                await asyncio.to_thread(self.process, batch)
                return
            except Exception:
                self.invalidate()
                if attempt == MAX_ATTEMPTS:
                    log.exception(
                        "alert evaluation failed; batch dropped", extra={"size": len(batch)}
                    )
                    return
                log.warning("alert evaluation failed; retrying", exc_info=True)
                await asyncio.sleep(backoff.next_delay())

    def invalidate(self) -> None:
        """Reload the rules before the next evaluation (after an API change)."""
        self._rules = None

    def _rule_set(self, session: Session) -> RuleSet:
        now = time.monotonic()
        if self._rules is None or now - self._checked >= self.refresh_s:
            self._checked = now
            if self._rules is None or rules_version(session) != self._rules.version:
                self._rules = load_rule_set(session)
        return self._rules

    # -- evaluation ---------------------------------------------------------------------------

    def process(self, rows: Sequence[ReadingRow]) -> int:
        """Evaluate stored readings in one transaction; returns the transitions applied."""
        with self._lock, self.factory() as session, session.begin():
            set_actor(session, SYSTEM)
            rule_set = self._rule_set(session)
            per_sensor: dict[int, list[ReadingRow]] = {}
            for reading in rows:
                if reading.sensor_id in rule_set.by_sensor:
                    per_sensor.setdefault(reading.sensor_id, []).append(reading)
            if not per_sensor:
                return 0
            now = utcnow()
            stored = _load_states(session, per_sensor)
            applied = 0
            for sensor_pk, readings in per_sensor.items():
                readings.sort(key=lambda r: r.ts)
                samples = [
                    Sample(from_ms(r.ts), r.value, QUALITY_NAMES.get(r.quality, "bad"))
                    for r in readings
                ]
                for bound in rule_set.by_sensor[sensor_pk]:
                    row = stored.get((bound.rule_pk, sensor_pk))
                    state = _state_of(bound, row, now)
                    for sample in samples:
                        result = evaluate(bound.rule, state, sample)
                        if result.ignored:
                            continue
                        state = result.state
                        for transition in result.transitions:
                            self._apply(session, bound, transition, now)
                            applied += 1
                    _save_state(session, bound, row, state)
            return applied

    def check_stale_alerts(self, now: dt.datetime | None = None) -> int:
        """Raise offline alerts for sensors silent past their stale rule; returns alerts raised.

        Clearing happens in :meth:`process` when a reading arrives again.
        """
        when = now or utcnow()
        with self._lock, self.factory() as session, session.begin():
            set_actor(session, SYSTEM)
            stale = self._rule_set(session).stale_rules()
            if not stale:
                return 0
            stored = _load_states(session, {b.sensor_pk for b in stale})
            raised = 0
            for bound in stale:
                row = stored.get((bound.rule_pk, bound.sensor_pk))
                state = _state_of(bound, row, when)
                new_state, transitions = check_stale(bound.rule, state, when)
                for transition in transitions:
                    self._apply(session, bound, transition, when)
                    raised += 1
                if row is None or new_state is not state:
                    _save_state(session, bound, row, new_state)
            return raised

    # -- transitions --------------------------------------------------------------------------

    def _apply(self, session: Session, bound: BoundRule, t: Transition, now: dt.datetime) -> None:
        alert = _open_alert(session, bound)
        if isinstance(t, Raise):
            if alert is None:
                self._raise(session, bound, t.severity, t, now)
            elif Severity[alert.severity.upper()] < t.severity:
                self._escalate(session, bound, alert, t.severity, t, now)
            else:
                # A repeat (the state was reset while the alert stayed open): update, don't flood.
                alert.value, alert.reason = t.value, t.reason
        elif isinstance(t, Escalate):
            if alert is None:
                # An operator cleared the alert by hand while the condition went on getting worse.
                self._raise(session, bound, t.to_severity, t, now)
            else:
                self._escalate(session, bound, alert, t.to_severity, t, now)
        elif alert is not None:
            self._clear(session, bound, alert, t, now)

    def _raise(
        self,
        session: Session,
        bound: BoundRule,
        severity: Severity,
        t: Raise | Escalate,
        now: dt.datetime,
    ) -> None:
        alert = Alert(
            rule_id=bound.rule_pk,
            sensor_id=bound.sensor_pk,
            device_id=bound.device_pk,
            asset_id=bound.asset_id,
            kind=bound.kind,
            severity=severity.label,
            status=AlertStatus.ACTIVE,
            title=f"{bound.name} ({bound.sensor_label})"[:300],
            reason=t.reason,
            value=t.value,
            raised_at=now,
            escalations=0,
            # A stale alert has no triggering reading: its time is the timer's.
            reading_at=t.at if t.value is not None else None,
        )
        alert.notes.append(AlertNote(action="raised", body=t.reason, created_at=now))
        session.add(alert)
        session.flush()
        self._condition_work(session, bound, alert, severity, t.reason, now)
        emit(session, "alert.raised", alert_payload(session, alert, self.public_url))

    def _escalate(
        self,
        session: Session,
        bound: BoundRule,
        alert: Alert,
        severity: Severity,
        t: Raise | Escalate,
        now: dt.datetime,
    ) -> None:
        alert.severity = severity.label
        alert.escalations += 1
        alert.escalated_at = now
        alert.value, alert.reason = t.value, t.reason
        if t.value is not None:
            alert.reading_at = t.at
        alert.notes.append(AlertNote(action="escalated", body=t.reason, created_at=now))
        order = _linked_open_order(session, alert)
        if order is not None:
            _raise_priority(order, SEVERITY_PRIORITY[severity])
            order.notes.append(
                WorkOrderNote(
                    body=f"Alert #{alert.id} escalated to {severity.label}: {t.reason}",
                    created_at=now,
                )
            )
        elif bound.opens_work_order:
            # The raise fell in a cooldown; a worse condition still deserves a work order.
            self._condition_work(session, bound, alert, severity, t.reason, now)
        session.flush()
        emit(session, "alert.escalated", alert_payload(session, alert, self.public_url))

    def _clear(
        self, session: Session, bound: BoundRule, alert: Alert, t: Clear, now: dt.datetime
    ) -> None:
        alert.status = AlertStatus.CLEARED
        alert.cleared_at = now
        alert.value, alert.reason = t.value, t.reason
        alert.notes.append(AlertNote(action="cleared", body=t.reason, created_at=now))
        order = _linked_open_order(session, alert)
        if order is not None:
            # The work stays open: the condition went away, the cause may not have.
            order.notes.append(
                WorkOrderNote(
                    body=(
                        f"Alert #{alert.id} cleared at {now.isoformat()}: {t.reason}. "
                        "The work order stays open until someone has inspected the asset."
                    ),
                    created_at=now,
                )
            )
        session.flush()
        payload = alert_payload(session, alert, self.public_url)
        # Alert.reading_at keeps the raising reading; the event names the reading that cleared it.
        payload["reading_at"] = t.at.isoformat()
        emit(session, "alert.cleared", payload)

    def _condition_work(
        self,
        session: Session,
        bound: BoundRule,
        alert: Alert,
        severity: Severity,
        reason: str,
        now: dt.datetime,
    ) -> None:
        """Open (or join) the condition-based work order of this rule on this asset."""
        if not bound.opens_work_order or bound.asset_id is None:
            return
        ref = f"rule:{bound.rule_pk}:asset:{bound.asset_id}"
        orders = list(
            session.scalars(
                select(WorkOrder).where(WorkOrder.origin_ref == ref).order_by(WorkOrder.id.desc())
            )
        )
        current = next((o for o in orders if o.is_open), None)
        if current is not None:
            alert.work_order_id = current.id
            _raise_priority(current, SEVERITY_PRIORITY[severity])
            current.notes.append(
                WorkOrderNote(
                    body=f"Alert #{alert.id} ({severity.label}): {reason}", created_at=now
                )
            )
            return
        finished = [o.closed_at or o.completed_at or o.updated_at for o in orders]
        last = max((f for f in finished if f is not None), default=None)
        if last is not None and now - last < dt.timedelta(seconds=bound.cooldown_s):
            alert.notes.append(
                AlertNote(
                    action="cooldown",
                    body=(
                        f"no work order opened: the last one for this rule and asset finished "
                        f"at {last.isoformat()}, within the {bound.cooldown_s} s cooldown"
                    ),
                    created_at=now,
                )
            )
            return
        asset_url = f"{self.public_url}/assets/{bound.asset_id}"
        order, shortages = open_work_order(
            session,
            asset_id=bound.asset_id,
            title=f"Condition: {bound.name}"[:200],
            type=WorkOrderType.CONDITION_BASED,
            priority=SEVERITY_PRIORITY[severity],
            description=(
                f"Opened by alert #{alert.id} ({severity.label}) of rule {bound.name!r} on "
                f"{bound.sensor_label}.\n\nReadings: {reason}\n\nTrend: {asset_url}\n"
                f"Alert: {self.public_url}/alerts/{alert.id}"
            ),
            parts=bound.parts,
            origin=Origin.ALERT,
            origin_ref=ref,
        )
        alert.work_order_id = order.id
        if shortages:
            log.info(
                "condition-based work short of parts",
                extra={"work_order_id": order.id, "parts": [s.part_id for s in shortages]},
            )


def _load_states(session: Session, sensors: Iterable[int]) -> dict[tuple[int, int], RuleStateRow]:
    rows = session.scalars(select(RuleStateRow).where(RuleStateRow.sensor_id.in_(list(sensors))))
    return {(r.rule_id, r.sensor_id): r for r in rows}


def _state_of(bound: BoundRule, row: RuleStateRow | None, now: dt.datetime) -> RuleState:
    if row is not None:
        try:
            return RuleState.from_dict(row.state)
        except (ValueError, TypeError) as exc:
            log.warning(
                "rule state unreadable; starting afresh",
                extra={"rule_id": bound.rule_pk, "sensor_id": bound.sensor_pk, "error": str(exc)},
            )
    # Monitoring starts now, so a sensor that never reports still goes stale.
    return initial_state(bound.rule, watch_since=now)


def _save_state(
    session: Session, bound: BoundRule, row: RuleStateRow | None, state: RuleState
) -> None:
    data: dict[str, Any] = state.to_dict()
    if row is None:
        session.add(RuleStateRow(rule_id=bound.rule_pk, sensor_id=bound.sensor_pk, state=data))
    elif row.state != data:
        row.state = data


def _open_alert(session: Session, bound: BoundRule) -> Alert | None:
    return session.scalar(
        select(Alert)
        .where(
            Alert.rule_id == bound.rule_pk,
            Alert.sensor_id == bound.sensor_pk,
            Alert.status.in_(OPEN_ALERT_STATUSES),
        )
        .order_by(Alert.id.desc())
        .limit(1)
    )


def _linked_open_order(session: Session, alert: Alert) -> WorkOrder | None:
    if alert.work_order_id is None:
        return None
    order = session.get(WorkOrder, alert.work_order_id)
    return order if order is not None and order.is_open else None


def _raise_priority(order: WorkOrder, priority: Priority) -> None:
    if _PRIORITY_RANK[priority] > _PRIORITY_RANK[order.priority]:
        order.priority = priority
