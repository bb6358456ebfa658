"""Alert-rule condition JSON: validation messages and conversion to evaluation rules."""

from __future__ import annotations

from datetime import timedelta

import pytest

from maintainpro.iot.rule_specs import (
    BadQualitySpec,
    RateSpec,
    RuleSpecError,
    SensorTarget,
    StaleSpec,
    ThresholdSpec,
    bind_rule,
    parse_condition,
)
from maintainpro.iot.rules import (
    BadQualityCondition,
    Direction,
    Metric,
    Severity,
    StaleCondition,
    ThresholdCondition,
)

THRESHOLD = {
    "kind": "threshold",
    "direction": "above",
    "levels": [{"severity": "warning", "threshold": 5}, {"severity": "critical", "threshold": 9}],
    "clear_at": 4,
    "duration_s": 30,
    "repeat_count": 2,
    "clear_duration_s": 10,
}
SENSORS = [
    SensorTarget(1, "d1/vib", "vibration", "pump"),
    SensorTarget(2, "d1/temp", "temperature", "pump"),
    SensorTarget(3, "d2/vib", "vibration", "fan"),
]


def test_threshold_spec_becomes_a_rule() -> None:
    spec = parse_condition(THRESHOLD)
    assert isinstance(spec, ThresholdSpec)
    rules = bind_rule(7, spec, sensor_pk=1, sensor_type=None, asset_class=None, sensors=SENSORS)
    rule = rules[1]
    assert list(rules) == [1]
    assert (rule.rule_id, rule.sensor_id) == ("rule-7", "d1/vib")
    assert isinstance(rule.condition, ThresholdCondition)
    assert rule.condition.direction is Direction.ABOVE
    assert rule.condition.severities == (Severity.WARNING, Severity.CRITICAL)
    assert rule.condition.clear_level == 4
    assert (rule.duration, rule.repeat_count, rule.clear_duration) == (
        timedelta(seconds=30),
        2,
        timedelta(seconds=10),
    )


def test_kind_defaults_to_threshold_and_other_kinds_convert() -> None:
    spec = parse_condition({"levels": [{"severity": "major", "threshold": 1.5}]})
    assert isinstance(spec, ThresholdSpec)
    rate = parse_condition(
        {"kind": "rate", "direction": "below", "levels": [{"severity": "major", "threshold": -2}]}
    )
    assert isinstance(rate, RateSpec)
    condition = rate.to_condition()
    assert isinstance(condition, ThresholdCondition)
    assert condition.metric is Metric.RATE_PER_MINUTE
    stale = parse_condition({"kind": "stale", "after_s": 90})
    assert isinstance(stale, StaleSpec)
    assert stale.to_condition() == StaleCondition(timedelta(seconds=90), Severity.MAJOR)
    bad = parse_condition({"kind": "bad_quality", "count": 3, "severity": "critical"})
    assert isinstance(bad, BadQualitySpec)
    assert bad.to_condition() == BadQualityCondition(Severity.CRITICAL)
    assert bad.timing()[1] == 3
    # Stored normalised, the JSON parses back to the same spec.
    assert parse_condition(spec.model_dump(mode="json")) == spec


@pytest.mark.parametrize(
    ("condition", "message"),
    [
        ({"kind": "magic"}, "kind"),
        ({**THRESHOLD, "levels": []}, "levels"),
        ({**THRESHOLD, "extra": 1}, "extra: Extra inputs are not permitted"),
        (
            {**THRESHOLD, "levels": [{"severity": "warning", "threshold": 5}] * 2},
            "each severity may appear only once",
        ),
        (
            {
                **THRESHOLD,
                "levels": [
                    {"severity": "warning", "threshold": 9},
                    {"severity": "critical", "threshold": 5},
                ],
            },
            "critical threshold must be strictly further above than warning",
        ),
        ({**THRESHOLD, "clear_at": 6}, "hysteresis band would overlap"),
        ({**THRESHOLD, "duration_s": -1}, "duration_s: Input should be greater than or equal"),
        ({**THRESHOLD, "repeat_count": 0}, "repeat_count"),
        ({**THRESHOLD, "levels": [{"severity": "fatal", "threshold": 1}]}, "levels.0.severity"),
        ({**THRESHOLD, "clear_at": float("nan")}, "clear_at"),
        ({"kind": "stale", "after_s": 0}, "after_s: Input should be greater than 0"),
        ({"kind": "stale", "after_s": 5, "duration_s": 3}, "duration_s: Extra inputs"),
        ({"kind": "bad_quality", "count": 0}, "count"),
        ("not an object", "invalid alert condition"),
    ],
)
def test_invalid_conditions_are_refused_with_a_clear_reason(
    condition: object, message: str
) -> None:
    with pytest.raises(RuleSpecError, match="invalid alert condition") as info:
        parse_condition(condition)
    assert message in str(info.value)
    # The rejected value itself is never echoed.
    assert "nan" not in str(info.value).replace("finite", "")


def test_templates_bind_to_every_matching_sensor() -> None:
    spec = parse_condition(THRESHOLD)
    by_type = bind_rule(
        3, spec, sensor_pk=None, sensor_type="vibration", asset_class=None, sensors=SENSORS
    )
    assert sorted(by_type) == [1, 3]
    assert by_type[3].rule_id == "rule-3:d2/vib"
    both = bind_rule(
        3, spec, sensor_pk=None, sensor_type="vibration", asset_class="pump", sensors=SENSORS
    )
    assert list(both) == [1]
    by_class = bind_rule(
        3, spec, sensor_pk=None, sensor_type=None, asset_class="pump", sensors=SENSORS
    )
    assert sorted(by_class) == [1, 2]
    # Neither a sensor nor a selector: binds to nothing rather than to the whole plant.
    assert (
        bind_rule(3, spec, sensor_pk=None, sensor_type=None, asset_class=None, sensors=SENSORS)
        == {}
    )
    # A rule on a sensor that is gone (or disabled) binds to nothing.
    assert (
        bind_rule(3, spec, sensor_pk=99, sensor_type=None, asset_class=None, sensors=SENSORS) == {}
    )
