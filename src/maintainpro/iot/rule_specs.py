"""The JSON stored in ``AlertRule.condition``: validation and conversion to evaluation rules.

A condition is one of four kinds (``threshold``, ``rate``, ``stale``, ``bad_quality``). The
models refuse unknown fields and check everything :mod:`maintainpro.iot.rules` would refuse
later (level order, hysteresis band, timing options), so a rule that was accepted by the API
can always be evaluated.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, model_validator

from maintainpro.iot.alerts import AlertKind
from maintainpro.iot.rules import (
    BadQualityCondition,
    Condition,
    Direction,
    Level,
    Metric,
    Rule,
    RuleTemplate,
    SensorRef,
    Severity,
    StaleCondition,
    ThresholdCondition,
    instantiate_rules,
)

__all__ = [
    "BadQualitySpec",
    "ConditionSpec",
    "LevelSpec",
    "PartNeedSpec",
    "RateSpec",
    "RuleSpecError",
    "SensorTarget",
    "SeverityName",
    "StaleSpec",
    "ThresholdSpec",
    "bind_rule",
    "parse_condition",
]

SeverityName = Literal["warning", "major", "critical"]
# A week: longer holds are almost certainly a unit mistake (ms typed as s).
MAX_SECONDS = 7 * 24 * 3600
Seconds = Annotated[float, Field(ge=0, le=MAX_SECONDS, allow_inf_nan=False)]
FiniteFloat = Annotated[float, Field(allow_inf_nan=False)]


class RuleSpecError(ValueError):
    """A stored or submitted rule condition is not valid; the message says why."""


def severity_of(name: str) -> Severity:
    """Return the severity for its lower-case name."""
    return Severity[name.upper()]


class LevelSpec(BaseModel):
    """One threshold and the severity raised beyond it."""

    model_config = ConfigDict(extra="forbid")
    severity: SeverityName
    threshold: FiniteFloat


class _LevelsSpec(BaseModel):
    """Shared fields of value and rate thresholds."""

    model_config = ConfigDict(extra="forbid")
    direction: Direction = Direction.ABOVE
    levels: Annotated[list[LevelSpec], Field(min_length=1, max_length=3)]
    clear_at: FiniteFloat | None = None
    duration_s: Seconds = 0.0
    repeat_count: Annotated[int, Field(ge=1, le=10_000)] = 1
    clear_duration_s: Seconds = 0.0

    def _metric(self) -> Metric:
        return Metric.VALUE

    @model_validator(mode="after")
    def _consistent(self) -> _LevelsSpec:
        # Building the evaluation condition runs the rules module's own checks (ordering of
        # levels, clear level inside the band), so both places can never disagree.
        self.to_condition()
        return self

    def to_condition(self) -> Condition:
        """Return the evaluation condition."""
        try:
            return ThresholdCondition(
                direction=self.direction,
                levels=tuple(Level(severity_of(lv.severity), lv.threshold) for lv in self.levels),
                clear_at=self.clear_at,
                metric=self._metric(),
            )
        except ValueError as exc:
            raise ValueError(str(exc)) from None

    def timing(self) -> tuple[timedelta, int, timedelta]:
        """Return duration, repeat count and clear duration."""
        return (
            timedelta(seconds=self.duration_s),
            self.repeat_count,
            timedelta(seconds=self.clear_duration_s),
        )

    @property
    def top_threshold(self) -> float:
        """Return the threshold of the highest severity (used to describe the rule)."""
        return max(self.levels, key=lambda lv: severity_of(lv.severity)).threshold


class ThresholdSpec(_LevelsSpec):
    """Multi-level threshold on the value, with hysteresis and hold times."""

    kind: Literal["threshold"] = "threshold"


class RateSpec(_LevelsSpec):
    """Multi-level threshold on the rate of change per minute."""

    kind: Literal["rate"]

    def _metric(self) -> Metric:
        return Metric.RATE_PER_MINUTE


class StaleSpec(BaseModel):
    """Offline alert when a sensor sends nothing for ``after_s`` seconds."""

    model_config = ConfigDict(extra="forbid")
    kind: Literal["stale"]
    after_s: Annotated[float, Field(gt=0, le=MAX_SECONDS, allow_inf_nan=False)]
    severity: SeverityName = "major"

    def to_condition(self) -> Condition:
        """Return the evaluation condition."""
        return StaleCondition(
            after=timedelta(seconds=self.after_s), severity=severity_of(self.severity)
        )

    def timing(self) -> tuple[timedelta, int, timedelta]:
        """Return duration, repeat count and clear duration (none apply to stale rules)."""
        return timedelta(0), 1, timedelta(0)


class BadQualitySpec(BaseModel):
    """Alert after ``count`` bad-quality readings in a row."""

    model_config = ConfigDict(extra="forbid")
    kind: Literal["bad_quality"]
    count: Annotated[int, Field(ge=1, le=10_000)] = 1
    severity: SeverityName = "warning"
    duration_s: Seconds = 0.0
    clear_duration_s: Seconds = 0.0

    def to_condition(self) -> Condition:
        """Return the evaluation condition."""
        return BadQualityCondition(severity=severity_of(self.severity))

    def timing(self) -> tuple[timedelta, int, timedelta]:
        """Return duration, repeat count and clear duration."""
        return (
            timedelta(seconds=self.duration_s),
            self.count,
            timedelta(seconds=self.clear_duration_s),
        )


ConditionSpec = Annotated[
    ThresholdSpec | RateSpec | StaleSpec | BadQualitySpec, Field(discriminator="kind")
]
_ADAPTER: TypeAdapter[ThresholdSpec | RateSpec | StaleSpec | BadQualitySpec] = TypeAdapter(
    ConditionSpec
)

ALERT_KINDS: dict[str, AlertKind] = {
    "threshold": AlertKind.THRESHOLD,
    "rate": AlertKind.RATE,
    "stale": AlertKind.STALE,
    "bad_quality": AlertKind.BAD_QUALITY,
}


def _describe(error: Mapping[str, Any]) -> str:
    # The location and the message suffice; the rejected input is never echoed back.
    if error.get("type") == "union_tag_invalid":
        return "kind: must be one of threshold, rate, stale, bad_quality"
    loc = ".".join(str(p) for p in error.get("loc", ()) if p not in _KIND_TAGS)
    msg = str(error.get("msg", "invalid")).removeprefix("Value error, ")
    return f"{loc}: {msg}" if loc else msg


_KIND_TAGS = frozenset({"threshold", "rate", "stale", "bad_quality"})


def parse_condition(data: object) -> ThresholdSpec | RateSpec | StaleSpec | BadQualitySpec:
    """Validate condition JSON; raise RuleSpecError naming every problem."""
    if isinstance(data, Mapping) and "kind" not in data:
        data = {**data, "kind": "threshold"}
    try:
        return _ADAPTER.validate_python(data)
    except ValidationError as exc:
        problems = "; ".join(_describe(e) for e in exc.errors())
        raise RuleSpecError(f"invalid alert condition: {problems}") from None


class PartNeedSpec(BaseModel):
    """A part a condition-based work order needs (stored in ``AlertRule.work_order_parts``)."""

    model_config = ConfigDict(extra="forbid")
    part_id: Annotated[int, Field(ge=1)]
    quantity: Annotated[Decimal, Field(gt=0, le=1_000_000, max_digits=14, decimal_places=3)]


@dataclass(frozen=True, slots=True)
class SensorTarget:
    """What binding a rule needs to know of a sensor."""

    pk: int
    label: str
    sensor_type: str
    asset_class: str | None


def bind_rule(
    rule_pk: int,
    spec: ThresholdSpec | RateSpec | StaleSpec | BadQualitySpec,
    *,
    sensor_pk: int | None,
    sensor_type: str | None,
    asset_class: str | None,
    sensors: Iterable[SensorTarget],
) -> dict[int, Rule]:
    """Return the evaluation rule per sensor pk: the rule's own sensor, or every template match.

    The evaluation rule names the sensor by its label (``device/sensor``) so that reason texts
    read well in alerts and work orders.
    """
    duration, repeat, clear_duration = spec.timing()
    condition = spec.to_condition()
    targets: Sequence[SensorTarget] = list(sensors)
    if sensor_pk is not None:
        return {
            t.pk: Rule(f"rule-{rule_pk}", t.label, condition, duration, repeat, clear_duration)
            for t in targets
            if t.pk == sensor_pk
        }
    if sensor_type is None and asset_class is None:
        return {}
    template = RuleTemplate(
        template_id=f"rule-{rule_pk}",
        condition=condition,
        sensor_type=sensor_type,
        asset_class=asset_class,
        duration=duration,
        repeat_count=repeat,
        clear_duration=clear_duration,
    )
    by_label = {t.label: t.pk for t in targets}
    refs = [SensorRef(t.label, t.sensor_type, t.asset_class) for t in targets]
    return {by_label[rule.sensor_id]: rule for rule in instantiate_rules(template, refs)}
