"""Pure alert-rule definitions and evaluation for condition monitoring of sensors.

Everything here is side-effect free: the caller owns persistence of :class:`RuleState`
(``to_dict``/``from_dict``) and the clock (``now`` passed to :func:`check_stale`).

Semantics in brief (details on each function):

* Samples are evaluated per rule and sensor in strictly increasing timestamp order; a sample
  older than the last one seen is ignored (``Disposition.OUT_OF_ORDER``) and one with the same
  timestamp is treated as an at-least-once redelivery (``Disposition.DUPLICATE``).
* A threshold is breached when the measured quantity is strictly beyond it; the alert clears
  when the quantity is strictly on the other side of ``clear_at`` (hysteresis), held for
  ``clear_duration``. Between the two the alert keeps its state, so values in the band never
  flap.
* A level qualifies once its breach has held continuously for ``duration`` (by reading
  timestamps, not wall clock) *and* over ``repeat_count`` consecutive usable readings.
* There is at most one active alert per rule; it only ever escalates. Falling back to a lower
  but still-breached level does not de-escalate: operators acknowledge the worst condition
  seen, and a downgrade would hide it while the asset is still out of its normal band.
* Bad-quality readings are transparent to threshold rules (they neither breach, clear nor
  break a run; the last usable reading stands) and are alerted on by BadQualityCondition rules.
* Stale data is a rule of its own (StaleCondition): :func:`check_stale` takes the rule as well
  as the state because the timeout is rule configuration, not state.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import IntEnum, StrEnum
from itertools import pairwise
from typing import NamedTuple, Protocol

__all__ = [
    "USABLE_QUALITIES",
    "BadQualityCondition",
    "BreachRun",
    "Clear",
    "Condition",
    "Direction",
    "Disposition",
    "Escalate",
    "Evaluation",
    "Level",
    "Metric",
    "Quality",
    "Raise",
    "Rule",
    "RuleState",
    "RuleTemplate",
    "Sample",
    "SampleLike",
    "SensorRef",
    "Severity",
    "StaleCondition",
    "ThresholdCondition",
    "Transition",
    "check_stale",
    "evaluate",
    "initial_state",
    "instantiate_rules",
]

_STATE_VERSION = 1
_ZERO = timedelta(0)


class Severity(IntEnum):
    """Alert severity; the integer order is the escalation order."""

    WARNING = 1
    MAJOR = 2
    CRITICAL = 3

    @property
    def label(self) -> str:
        """Return the lower-case name used in JSON and reason texts."""
        return self.name.lower()


class Quality(StrEnum):
    """Reading quality as reported by the source (OPC UA style)."""

    GOOD = "good"
    UNCERTAIN = "uncertain"
    BAD = "bad"


# Uncertain readings are still evaluated: OPC UA marks e.g. out-of-calibration values uncertain,
# and dropping them would silence exactly the sensors most likely to be drifting. Any quality
# string not listed here (including unknown ones) is treated as bad.
USABLE_QUALITIES: frozenset[str] = frozenset({Quality.GOOD, Quality.UNCERTAIN})


class Direction(StrEnum):
    """Which side of a threshold is the abnormal one."""

    ABOVE = "above"
    BELOW = "below"


class Metric(StrEnum):
    """Quantity a threshold condition is compared against."""

    VALUE = "value"
    RATE_PER_MINUTE = "rate_per_minute"


class Disposition(StrEnum):
    """What :func:`evaluate` did with a sample."""

    ACCEPTED = "accepted"
    OUT_OF_ORDER = "out_of_order"
    DUPLICATE = "duplicate"


class SampleLike(Protocol):
    """Structural input accepted by :func:`evaluate` so callers need not convert readings."""

    @property
    def timestamp(self) -> datetime:
        """Timezone-aware time the reading was taken."""
        ...

    @property
    def value(self) -> float:
        """Measured value."""
        ...

    @property
    def quality(self) -> str:
        """Quality string, see :class:`Quality`."""
        ...


@dataclass(frozen=True, slots=True)
class Sample:
    """Minimal sensor reading evaluated by the rules engine."""

    timestamp: datetime
    value: float
    quality: str = Quality.GOOD


@dataclass(frozen=True, slots=True)
class Level:
    """One threshold of a condition and the severity raised when it is breached."""

    severity: Severity
    threshold: float


@dataclass(frozen=True, slots=True)
class ThresholdCondition:
    """Upper or lower multi-level threshold on the value or its rate of change per minute."""

    direction: Direction
    levels: tuple[Level, ...]
    # None means "clear as soon as the lowest level is no longer breached" (no hysteresis band).
    clear_at: float | None = None
    metric: Metric = Metric.VALUE
    # Derived in __post_init__ so the hot path does not rebuild them for every reading.
    severities: tuple[Severity, ...] = field(init=False, repr=False, compare=False)
    thresholds: tuple[float, ...] = field(init=False, repr=False, compare=False)
    clear_level: float = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        """Validate, normalise levels to ascending severity and derive lookup tuples."""
        if not self.levels:
            raise ValueError("a threshold condition needs at least one level")
        levels = tuple(sorted(self.levels, key=lambda lv: lv.severity))
        severities = [lv.severity for lv in levels]
        if len(set(severities)) != len(severities):
            raise ValueError("each severity may appear only once in a condition")
        for lv in levels:
            if not math.isfinite(lv.threshold):
                raise ValueError(f"threshold for {lv.severity.label} must be finite")
        sign = 1.0 if self.direction is Direction.ABOVE else -1.0
        for lower, higher in pairwise(levels):
            if sign * higher.threshold <= sign * lower.threshold:
                raise ValueError(
                    f"{higher.severity.label} threshold must be strictly further "
                    f"{self.direction.value} than {lower.severity.label}"
                )
        if self.clear_at is not None:
            if not math.isfinite(self.clear_at):
                raise ValueError("clear_at must be finite")
            if sign * self.clear_at > sign * levels[0].threshold:
                raise ValueError(
                    "clear_at must not lie beyond the lowest-severity threshold "
                    "(the hysteresis band would overlap the raise condition)"
                )
        object.__setattr__(self, "levels", levels)
        object.__setattr__(self, "severities", tuple(lv.severity for lv in levels))
        object.__setattr__(self, "thresholds", tuple(float(lv.threshold) for lv in levels))
        clear_level = levels[0].threshold if self.clear_at is None else self.clear_at
        object.__setattr__(self, "clear_level", float(clear_level))


@dataclass(frozen=True, slots=True)
class BadQualityCondition:
    """Raise when readings are of bad quality (use ``Rule.repeat_count`` for N in a row)."""

    severity: Severity = Severity.WARNING


@dataclass(frozen=True, slots=True)
class StaleCondition:
    """Raise an offline alert when no reading arrived for ``after`` (see :func:`check_stale`)."""

    after: timedelta
    severity: Severity = Severity.MAJOR

    def __post_init__(self) -> None:
        """Validate the timeout."""
        if self.after <= _ZERO:
            raise ValueError("stale timeout must be positive")


Condition = ThresholdCondition | BadQualityCondition | StaleCondition


def _validate_timing(
    condition: Condition, duration: timedelta, repeat_count: int, clear_duration: timedelta
) -> None:
    """Validate the timing options shared by rules and templates."""
    if duration < _ZERO or clear_duration < _ZERO:
        raise ValueError("durations must not be negative")
    if repeat_count < 1:
        raise ValueError("repeat_count must be at least 1")
    if isinstance(condition, StaleCondition) and (
        duration != _ZERO or repeat_count != 1 or clear_duration != _ZERO
    ):
        # Rejected rather than ignored so a misconfigured rule cannot silently behave
        # differently from what its definition suggests.
        raise ValueError("stale rules take only StaleCondition.after; timing options do not apply")


@dataclass(frozen=True, slots=True)
class Rule:
    """An alert rule bound to one sensor."""

    rule_id: str
    sensor_id: str
    condition: Condition
    duration: timedelta = _ZERO
    repeat_count: int = 1
    clear_duration: timedelta = _ZERO

    def __post_init__(self) -> None:
        """Validate identifiers and timing options."""
        if not self.rule_id or not self.sensor_id:
            raise ValueError("rule_id and sensor_id must not be empty")
        _validate_timing(self.condition, self.duration, self.repeat_count, self.clear_duration)

    @property
    def level_count(self) -> int:
        """Return how many breach levels this rule tracks in its state."""
        if isinstance(self.condition, ThresholdCondition):
            return len(self.condition.levels)
        return 0 if isinstance(self.condition, StaleCondition) else 1


@dataclass(frozen=True, slots=True)
class SensorRef:
    """What a template needs to know about a sensor to decide whether it applies."""

    sensor_id: str
    sensor_type: str
    asset_class: str | None = None


@dataclass(frozen=True, slots=True)
class RuleTemplate:
    """A rule definition applied to every sensor of a type and/or asset class."""

    template_id: str
    condition: Condition
    sensor_type: str | None = None
    asset_class: str | None = None
    duration: timedelta = _ZERO
    repeat_count: int = 1
    clear_duration: timedelta = _ZERO

    def __post_init__(self) -> None:
        """Validate the selector and timing options."""
        if not self.template_id:
            raise ValueError("template_id must not be empty")
        if self.sensor_type is None and self.asset_class is None:
            # A selector-less template would attach to every sensor in the plant; make that
            # an explicit per-sensor decision instead of an accident.
            raise ValueError("a template needs a sensor_type and/or an asset_class")
        _validate_timing(self.condition, self.duration, self.repeat_count, self.clear_duration)

    def matches(self, sensor: SensorRef) -> bool:
        """Return whether this template applies to ``sensor``."""
        return (self.sensor_type is None or self.sensor_type == sensor.sensor_type) and (
            self.asset_class is None or self.asset_class == sensor.asset_class
        )


def instantiate_rules(template: RuleTemplate, sensors: Iterable[SensorRef]) -> list[Rule]:
    """Create one rule (id ``<template_id>:<sensor_id>``) per matching sensor, in input order."""
    return [
        Rule(
            rule_id=f"{template.template_id}:{sensor.sensor_id}",
            sensor_id=sensor.sensor_id,
            condition=template.condition,
            duration=template.duration,
            repeat_count=template.repeat_count,
            clear_duration=template.clear_duration,
        )
        for sensor in sensors
        if template.matches(sensor)
    ]


@dataclass(frozen=True, slots=True)
class Raise:
    """A new alert was raised."""

    rule_id: str
    sensor_id: str
    severity: Severity
    # The measured quantity (value, or rate per minute); None for offline alerts.
    value: float | None
    at: datetime
    reason: str


@dataclass(frozen=True, slots=True)
class Escalate:
    """The active alert moved to a higher severity."""

    rule_id: str
    sensor_id: str
    from_severity: Severity
    to_severity: Severity
    value: float | None
    at: datetime
    reason: str


@dataclass(frozen=True, slots=True)
class Clear:
    """The active alert cleared; ``severity`` is the severity it had."""

    rule_id: str
    sensor_id: str
    severity: Severity
    value: float | None
    at: datetime
    reason: str


Transition = Raise | Escalate | Clear


@dataclass(frozen=True, slots=True)
class BreachRun:
    """A continuous run of readings breaching one level."""

    since: datetime
    first_value: float
    count: int

    def extended(self) -> BreachRun:
        """Return this run lengthened by one breaching reading."""
        return BreachRun(self.since, self.first_value, self.count + 1)


@dataclass(frozen=True, slots=True)
class RuleState:
    """Per rule-and-sensor evaluation state; small, immutable and JSON-serialisable."""

    # Timestamp of the newest accepted sample of any quality; orders samples.
    last_ts: datetime | None = None
    # Start of monitoring, so a sensor that never reports can still go stale.
    watch_since: datetime | None = None
    # Newest usable reading: the reference for rate of change.
    prev_ts: datetime | None = None
    prev_value: float | None = None
    # One entry per level (ascending severity); None when that level is not breached.
    runs: tuple[BreachRun | None, ...] = ()
    active: Severity | None = None
    raised_at: datetime | None = None
    # Start of the current run of readings satisfying the clear condition while active.
    clear_since: datetime | None = None

    def to_dict(self) -> dict[str, object]:
        """Return a JSON-compatible representation (timestamps as UTC ISO-8601)."""
        return {
            "version": _STATE_VERSION,
            "last_ts": _ts_out(self.last_ts),
            "watch_since": _ts_out(self.watch_since),
            "prev_ts": _ts_out(self.prev_ts),
            "prev_value": self.prev_value,
            "runs": [
                None
                if run is None
                else {
                    "since": _ts_out(run.since),
                    "first_value": run.first_value,
                    "count": run.count,
                }
                for run in self.runs
            ],
            "active": None if self.active is None else self.active.label,
            "raised_at": _ts_out(self.raised_at),
            "clear_since": _ts_out(self.clear_since),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, object]) -> RuleState:
        """Rebuild a state from :meth:`to_dict` output; raise ValueError when malformed."""
        if data.get("version") != _STATE_VERSION:
            raise ValueError(f"unsupported rule state version: {data.get('version')!r}")
        raw_runs = data.get("runs", [])
        if not isinstance(raw_runs, list):
            raise ValueError("runs must be a list")
        runs: list[BreachRun | None] = []
        for raw in raw_runs:
            if raw is None:
                runs.append(None)
                continue
            if not isinstance(raw, Mapping):
                raise ValueError("each run must be an object or null")
            since = _ts_in(raw.get("since"), "runs.since")
            first = _float_in(raw.get("first_value"), "runs.first_value")
            count = raw.get("count")
            if since is None or first is None or type(count) is not int or count < 1:
                raise ValueError("run needs since, first_value and a positive count")
            runs.append(BreachRun(since, first, count))
        active_raw = data.get("active")
        if active_raw is None:
            active = None
        elif isinstance(active_raw, str) and active_raw.upper() in Severity.__members__:
            active = Severity[active_raw.upper()]
        else:
            raise ValueError(f"invalid active severity: {active_raw!r}")
        return cls(
            last_ts=_ts_in(data.get("last_ts"), "last_ts"),
            watch_since=_ts_in(data.get("watch_since"), "watch_since"),
            prev_ts=_ts_in(data.get("prev_ts"), "prev_ts"),
            prev_value=_float_in(data.get("prev_value"), "prev_value"),
            runs=tuple(runs),
            active=active,
            raised_at=_ts_in(data.get("raised_at"), "raised_at"),
            clear_since=_ts_in(data.get("clear_since"), "clear_since"),
        )


def _ts_out(ts: datetime | None) -> str | None:
    """Serialise an aware datetime as UTC ISO-8601."""
    return None if ts is None else ts.astimezone(UTC).isoformat()


def _ts_in(raw: object, name: str) -> datetime | None:
    """Parse an optional aware ISO-8601 timestamp."""
    if raw is None:
        return None
    if not isinstance(raw, str):
        raise ValueError(f"{name} must be an ISO-8601 string")
    ts = datetime.fromisoformat(raw)
    if ts.utcoffset() is None:
        raise ValueError(f"{name} must be timezone-aware")
    return ts.astimezone(UTC)


def _float_in(raw: object, name: str) -> float | None:
    """Parse an optional finite number (bool is rejected despite being an int)."""
    if raw is None:
        return None
    if isinstance(raw, bool) or not isinstance(raw, int | float) or not math.isfinite(raw):
        raise ValueError(f"{name} must be a finite number")
    return float(raw)


def initial_state(rule: Rule, watch_since: datetime | None = None) -> RuleState:
    """Return the empty state for ``rule``; ``watch_since`` lets a silent sensor go stale."""
    if watch_since is not None and watch_since.utcoffset() is None:
        raise ValueError("watch_since must be timezone-aware")
    return RuleState(watch_since=watch_since, runs=(None,) * rule.level_count)


class Evaluation(NamedTuple):
    """Result of :func:`evaluate`; unpacks as ``state, transitions, disposition``."""

    state: RuleState
    transitions: list[Transition]
    disposition: Disposition

    @property
    def ignored(self) -> bool:
        """Return whether the sample was ignored (out of order or duplicate)."""
        return self.disposition is not Disposition.ACCEPTED


def evaluate(rule: Rule, state: RuleState, sample: SampleLike) -> Evaluation:
    """Evaluate one sample against a rule and return the new state and transitions.

    Raises ValueError for a non-finite value or a naive timestamp: such samples must never
    reach the rules, and silently accepting them would poison rates and durations.
    """
    ts = sample.timestamp
    value = sample.value
    if not math.isfinite(value):
        raise ValueError(f"sample value must be finite, got {value!r} for {rule.sensor_id}")
    if ts.utcoffset() is None:
        raise ValueError(f"sample timestamp must be timezone-aware for {rule.sensor_id}")
    last = state.last_ts
    if last is not None and ts <= last:
        # Returning the state object untouched is what guarantees an out-of-order sample can
        # never corrupt a running duration.
        return Evaluation(
            state, [], Disposition.OUT_OF_ORDER if ts < last else Disposition.DUPLICATE
        )

    cond = rule.condition
    usable = sample.quality in USABLE_QUALITIES
    if isinstance(cond, ThresholdCondition):
        return _evaluate_threshold(rule, cond, state, sample, usable)
    if isinstance(cond, BadQualityCondition):
        bad = not usable
        return _apply(rule, state, ts, value, [bad], (cond.severity,), not bad, sample, None)
    # Stale rule: any reading, whatever its quality, proves the sensor is communicating.
    transitions: list[Transition] = []
    if state.active is not None:
        transitions.append(
            Clear(
                rule.rule_id,
                rule.sensor_id,
                state.active,
                value,
                ts,
                f"{rule.sensor_id}: reading received at {_fmt_ts(ts)} after being offline "
                f"(alert raised at {_fmt_ts(state.raised_at)})",
            )
        )
    new_state = RuleState(
        last_ts=ts,
        watch_since=state.watch_since,
        prev_ts=state.prev_ts,
        prev_value=state.prev_value,
        runs=state.runs,
    )
    return Evaluation(new_state, transitions, Disposition.ACCEPTED)


def _evaluate_threshold(
    rule: Rule, cond: ThresholdCondition, state: RuleState, sample: SampleLike, usable: bool
) -> Evaluation:
    """Evaluate a value or rate threshold condition."""
    ts = sample.timestamp
    value = sample.value
    if not usable:
        # A bad reading neither breaches nor clears and does not break a run: the value is
        # untrustworthy, so the last good one is assumed to hold (as DCS alarm blocks do).
        # Bad data has its own BadQualityCondition rule.
        return Evaluation(_with_last_ts(state, ts), [], Disposition.ACCEPTED)

    if cond.metric is Metric.VALUE:
        metric: float | None = value
    elif state.prev_ts is None or state.prev_value is None:
        metric = None
    else:
        minutes = (ts - state.prev_ts).total_seconds() / 60.0
        metric = (value - state.prev_value) / minutes
        if not math.isfinite(metric):
            # Only reachable with extreme values over microsecond gaps; saturate so the state
            # stays JSON-serialisable (JSON has no infinity).
            metric = math.copysign(sys.float_info.max, metric)

    if metric is None:
        # First usable reading of a rate rule: nothing to compare yet, only remember it.
        new_state = RuleState(
            last_ts=ts,
            watch_since=state.watch_since,
            prev_ts=ts,
            prev_value=value,
            runs=state.runs,
            active=state.active,
            raised_at=state.raised_at,
            clear_since=state.clear_since,
        )
        return Evaluation(new_state, [], Disposition.ACCEPTED)

    if cond.direction is Direction.ABOVE:
        breaches = [metric > limit for limit in cond.thresholds]
        clearing = metric < cond.clear_level
    else:
        breaches = [metric < limit for limit in cond.thresholds]
        clearing = metric > cond.clear_level
    return _apply(rule, state, ts, metric, breaches, cond.severities, clearing, sample, value)


def _with_last_ts(state: RuleState, ts: datetime) -> RuleState:
    """Return ``state`` with only the ordering timestamp advanced."""
    return RuleState(
        last_ts=ts,
        watch_since=state.watch_since,
        prev_ts=state.prev_ts,
        prev_value=state.prev_value,
        runs=state.runs,
        active=state.active,
        raised_at=state.raised_at,
        clear_since=state.clear_since,
    )


def _apply(
    rule: Rule,
    state: RuleState,
    ts: datetime,
    metric: float,
    breaches: list[bool],
    severities: tuple[Severity, ...],
    clearing: bool,
    sample: SampleLike,
    reading_value: float | None,
) -> Evaluation:
    """Advance breach runs and the alert state machine by one accepted reading."""
    old_runs = state.runs
    if len(old_runs) != len(breaches):
        # The rule's levels changed since the state was saved; old runs cannot be mapped.
        old_runs = (None,) * len(breaches)
    runs = tuple(
        [
            (None if not hit else BreachRun(ts, metric, 1) if old is None else old.extended())
            for old, hit in zip(old_runs, breaches, strict=True)
        ]
    )

    top = -1
    top_run: BreachRun | None = None
    for i in range(len(runs) - 1, -1, -1):
        run = runs[i]
        if run is not None and run.count >= rule.repeat_count and ts - run.since >= rule.duration:
            top, top_run = i, run
            break

    active = state.active
    raised_at = state.raised_at
    clear_since = state.clear_since
    transitions: list[Transition] = []
    if active is None:
        clear_since = None
        if top_run is not None:
            active = severities[top]
            raised_at = ts
            reason = _breach_reason(rule, state, top_run, top, ts, metric, sample)
            transitions.append(Raise(rule.rule_id, rule.sensor_id, active, metric, ts, reason))
    else:
        if top_run is not None and severities[top] > active:
            reason = _breach_reason(rule, state, top_run, top, ts, metric, sample)
            transitions.append(
                Escalate(rule.rule_id, rule.sensor_id, active, severities[top], metric, ts, reason)
            )
            active = severities[top]
        if clearing:
            if clear_since is None:
                clear_since = ts
            if ts - clear_since >= rule.clear_duration:
                reason = _clear_reason(rule, active, raised_at, clear_since, ts, metric, sample)
                transitions.append(Clear(rule.rule_id, rule.sensor_id, active, metric, ts, reason))
                active = None
                raised_at = None
                clear_since = None
        else:
            clear_since = None

    new_state = RuleState(
        last_ts=ts,
        watch_since=state.watch_since,
        prev_ts=ts if reading_value is not None else state.prev_ts,
        prev_value=reading_value if reading_value is not None else state.prev_value,
        runs=runs,
        active=active,
        raised_at=raised_at,
        clear_since=clear_since,
    )
    return Evaluation(new_state, transitions, Disposition.ACCEPTED)


def check_stale(rule: Rule, state: RuleState, now: datetime) -> tuple[RuleState, list[Transition]]:
    """Raise the offline alert of a stale rule if no reading arrived for its timeout.

    Meant to be called by a timer for every rule; rules without a StaleCondition are returned
    unchanged. Silence is measured from the newest reading timestamp (or ``watch_since`` if the
    sensor never reported), so large device clock skew shows up as staleness.
    """
    if now.utcoffset() is None:
        raise ValueError("now must be timezone-aware")
    cond = rule.condition
    if not isinstance(cond, StaleCondition) or state.active is not None:
        return state, []
    ref = state.last_ts if state.last_ts is not None else state.watch_since
    if ref is None or now - ref < cond.after:
        return state, []
    silent = (now - ref).total_seconds()
    since = (
        f"last reading at {_fmt_ts(ref)}"
        if state.last_ts is not None
        else f"no reading since monitoring started at {_fmt_ts(ref)}"
    )
    reason = (
        f"{rule.sensor_id}: offline, no reading for {silent:g} s "
        f"(limit {cond.after.total_seconds():g} s); {since}"
    )
    new_state = RuleState(
        last_ts=state.last_ts,
        watch_since=state.watch_since,
        prev_ts=state.prev_ts,
        prev_value=state.prev_value,
        runs=state.runs,
        active=cond.severity,
        raised_at=now,
    )
    return new_state, [Raise(rule.rule_id, rule.sensor_id, cond.severity, None, now, reason)]


def _fmt_ts(ts: datetime | None) -> str:
    """Format a timestamp for reason texts, always in UTC so texts are restart-stable."""
    return "?" if ts is None else ts.astimezone(UTC).isoformat()


def _fmt_num(x: float) -> str:
    """Format a number compactly for reason texts."""
    return f"{x:.6g}"


def _breach_reason(
    rule: Rule,
    state: RuleState,
    run: BreachRun,
    index: int,
    ts: datetime,
    metric: float,
    sample: SampleLike,
) -> str:
    """Describe the readings (run ``run`` of level ``index``) that made the level qualify."""
    held = f"held {(ts - run.since).total_seconds():g} s over {run.count} reading(s)"
    cond = rule.condition
    if isinstance(cond, ThresholdCondition):
        level = cond.levels[index]
        op = ">" if cond.direction is Direction.ABOVE else "<"
        sev = level.severity.label
        limit = _fmt_num(level.threshold)
        if cond.metric is Metric.VALUE:
            return (
                f"{rule.sensor_id}: value {_fmt_num(metric)} {op} {limit} ({sev}), {held}: "
                f"first {_fmt_num(run.first_value)} at {_fmt_ts(run.since)}, "
                f"latest {_fmt_num(metric)} at {_fmt_ts(ts)}"
            )
        return (
            f"{rule.sensor_id}: rate {_fmt_num(metric)}/min {op} {limit}/min ({sev}), {held}: "
            f"latest {_fmt_num(sample.value)} at {_fmt_ts(ts)} after "
            f"{_fmt_num(state.prev_value or 0.0)} at {_fmt_ts(state.prev_ts)}; "
            f"first breaching rate {_fmt_num(run.first_value)}/min at {_fmt_ts(run.since)}"
        )
    return (
        f"{rule.sensor_id}: bad-quality readings, {held} since {_fmt_ts(run.since)}; "
        f"latest quality {sample.quality!r} value {_fmt_num(sample.value)} at {_fmt_ts(ts)}"
    )


def _clear_reason(
    rule: Rule,
    severity: Severity,
    raised_at: datetime | None,
    clear_since: datetime,
    ts: datetime,
    metric: float,
    sample: SampleLike,
) -> str:
    """Describe why the active alert cleared."""
    held = f"for {(ts - clear_since).total_seconds():g} s since {_fmt_ts(clear_since)}"
    was = f"alert raised at {_fmt_ts(raised_at)}, severity {severity.label} when cleared"
    cond = rule.condition
    if isinstance(cond, ThresholdCondition):
        op = "<" if cond.direction is Direction.ABOVE else ">"
        unit = "" if cond.metric is Metric.VALUE else "/min"
        what = "value" if cond.metric is Metric.VALUE else "rate"
        return (
            f"{rule.sensor_id}: {what} {_fmt_num(metric)}{unit} {op} clear level "
            f"{_fmt_num(cond.clear_level)}{unit} {held} (latest reading {_fmt_num(sample.value)} "
            f"at {_fmt_ts(ts)}); {was}"
        )
    return (
        f"{rule.sensor_id}: readings usable again {held} (latest quality {sample.quality!r} "
        f"at {_fmt_ts(ts)}); {was}"
    )
