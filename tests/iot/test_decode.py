"""Tests for topic parsing and JSON payload decoding, including hostile inputs."""

from __future__ import annotations

import dataclasses
import json
import math
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from maintainpro.iot.decode import (
    DEFAULT_OPTIONS,
    BadTimestamp,
    BadTopic,
    BatchResult,
    DecodeError,
    DecodeOptions,
    MalformedPayload,
    NonFiniteValue,
    PayloadMapping,
    PayloadTooLarge,
    TopicMatch,
    TopicScheme,
    WrongType,
    compile_path,
    decode_batch,
    decode_message,
    decode_reading,
    parse_topic,
    validate_id,
)
from maintainpro.iot.readings import Quality, SensorReading

NOW = datetime(2026, 11, 27, 10, 5, tzinfo=UTC)
TEN = datetime(2026, 11, 27, 10, 0, tzinfo=UTC)
TEN_MS = int(TEN.timestamp() * 1000)


def single(payload: bytes | str, **kwargs: Any) -> SensorReading:
    """Decode a single reading for device d1 / sensor s1 received at NOW."""
    return decode_reading(payload, device_id="d1", sensor_id="s1", received_at=NOW, **kwargs)


def batch(payload: bytes | str, **kwargs: Any) -> BatchResult:
    """Decode a batch for device d1 received at NOW."""
    return decode_batch(payload, device_id="d1", received_at=NOW, **kwargs)


def dumps(obj: object) -> bytes:
    """Encode like a sloppy publisher would (Python's json allows NaN)."""
    return json.dumps(obj).encode()


# ------------------------------------------------------------------------------------------
# Errors and the reading type
# ------------------------------------------------------------------------------------------

ERROR_TYPES = [MalformedPayload, WrongType, NonFiniteValue, PayloadTooLarge, BadTopic, BadTimestamp]


def test_error_hierarchy() -> None:
    for error_type in ERROR_TYPES:
        assert issubclass(error_type, DecodeError)
        assert issubclass(error_type, ValueError)
        err = error_type("why it failed")
        assert err.reason == str(err) == "why it failed"
    assert len({e.code for e in ERROR_TYPES}) == len(ERROR_TYPES)


def test_reading_requires_utc() -> None:
    with pytest.raises(ValueError, match="UTC"):
        SensorReading("d", "s", 1.0, datetime(2026, 1, 1))
    with pytest.raises(ValueError, match="UTC"):
        SensorReading("d", "s", 1.0, datetime(2026, 1, 1, tzinfo=timezone(timedelta(hours=2))))
    reading = SensorReading("d", "s", 1.0, TEN)
    assert reading.quality is Quality.GOOD
    assert dict(reading.metadata) == {}
    with pytest.raises(dataclasses.FrozenInstanceError):
        reading.value = 2.0  # type: ignore[misc]


def test_quality_is_a_string_enum() -> None:
    assert str(Quality.UNCERTAIN) == "uncertain"
    assert Quality("bad") is Quality.BAD
    assert [q.value for q in Quality] == ["good", "uncertain", "bad"]


# ------------------------------------------------------------------------------------------
# Topics
# ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("topic", "expected"),
    [
        ("devices/pump-01/sensors/temp_1/data", ("pump-01", "temp_1")),
        ("devices/pump-01/data", ("pump-01", None)),
        ("devices/plant1:line2.pump/sensors/a.b/data", ("plant1:line2.pump", "a.b")),
        ("devices/" + "x" * 128 + "/data", ("x" * 128, None)),
        ("devices/data/sensors/sensors/data", ("data", "sensors")),
    ],
)
def test_parse_valid_topics(topic: str, expected: tuple[str, str | None]) -> None:
    match = parse_topic(topic)
    assert match == expected
    assert isinstance(match, TopicMatch)
    assert match.device_id == expected[0]


@pytest.mark.parametrize(
    ("topic", "reason"),
    [
        ("", "empty"),
        ("devices//sensors/t/data", "empty level"),
        ("/devices/d/data", "empty level"),
        ("devices/d/data/", "empty level"),
        ("devices/+/data", "wildcard"),
        ("devices/#", "wildcard"),
        ("devices/d/sensors/+/data", "wildcard"),
        ("devices/d+x/data", "wildcard"),
        ("devices/d", "2 levels"),
        ("devices", "1 levels"),
        ("devices/d/sensors/t/data/extra", "6 levels"),
        ("devices/d/sensors/t/value", "does not match"),
        ("things/d/data", "does not match"),
        ("$SYS/broker/data", "does not match"),
        ("Devices/d/data", "does not match"),
        ("devices/" + "a" * 129 + "/data", "129 characters"),
        ("devices/d e/data", "' '"),
        ("devices/d\u00e9/data", "'é'"),
        ("devices/../data", "not allowed"),
        ("devices/./data", "not allowed"),
        ("devices/d\x00/data", "'\\x00'"),
        ("devices/d\n/data", "'\\n'"),
        ("devices/d/sensors/t*/data", "sensor_id"),
        ("devices/d/data\n", "does not match"),
    ],
)
def test_parse_odd_topics(topic: str, reason: str) -> None:
    with pytest.raises(BadTopic, match=None) as info:
        parse_topic(topic)
    assert reason in info.value.reason


@pytest.mark.parametrize("topic", [None, b"devices/d/data", 42])
def test_parse_non_string_topic(topic: object) -> None:
    with pytest.raises(BadTopic, match="string"):
        parse_topic(topic)  # type: ignore[arg-type]


def test_parse_topic_is_repeatable() -> None:
    # Memoised successes and uncached failures must both behave the same on every call.
    for _ in range(3):
        assert parse_topic("devices/d/sensors/s/data") == ("d", "s")
        with pytest.raises(BadTopic):
            parse_topic("devices/d e/data")


def test_topic_scheme_with_prefix() -> None:
    scheme = TopicScheme.with_prefix("acme/site1/")
    assert parse_topic("acme/site1/pump/sensors/t/data", scheme) == ("pump", "t")
    assert parse_topic("acme/site1/pump/data", scheme) == ("pump", None)
    with pytest.raises(BadTopic):
        parse_topic("devices/pump/data", scheme)


def test_custom_topic_scheme_without_batch() -> None:
    scheme = TopicScheme(single="plant/{sensor_id}/{device_id}", batch=None)
    assert parse_topic("plant/t1/pump", scheme) == ("pump", "t1")
    with pytest.raises(BadTopic, match="does not match"):
        parse_topic("devices/pump/data", scheme)
    with pytest.raises(BadTopic, match="expected 3"):
        parse_topic("devices/pump/sensors/t/data", scheme)


def test_more_specific_template_wins() -> None:
    scheme = TopicScheme(single="a/{device_id}/{sensor_id}", batch="a/{device_id}/all")
    assert parse_topic("a/d/all", scheme) == ("d", None)
    assert parse_topic("a/d/temp", scheme) == ("d", "temp")


def test_topic_schemes_sharing_a_level_count() -> None:
    scheme = TopicScheme(single="a/{device_id}/{sensor_id}", batch="b/{device_id}/all")
    assert parse_topic("a/d/s", scheme) == ("d", "s")
    assert parse_topic("b/d/all", scheme) == ("d", None)
    with pytest.raises(BadTopic, match="does not match"):
        parse_topic("c/d/s", scheme)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"single": "devices/{device_id}/data"},
        {"single": "devices/{device_id}/{sensor_id}/{device_id}"},
        {"single": "devices//{device_id}/{sensor_id}"},
        {"single": "devices/+/{device_id}/{sensor_id}"},
        {"single": "devices/{device}/{device_id}/{sensor_id}"},
        {"single": "devices/x{device_id}/{sensor_id}"},
        {"batch": "devices/{device_id}/{sensor_id}/all"},
        {"batch": "devices/data"},
    ],
)
def test_invalid_topic_templates(kwargs: dict[str, str]) -> None:
    with pytest.raises(ValueError, match="topic template"):
        TopicScheme(**kwargs)


@given(st.text(max_size=300))
def test_parse_topic_only_raises_bad_topic(topic: str) -> None:
    try:
        device_id, sensor_id = parse_topic(topic)
    except BadTopic:
        return
    assert validate_id(device_id) == device_id
    assert sensor_id is None or validate_id(sensor_id) == sensor_id


@given(
    device_id=st.from_regex(r"[A-Za-z0-9_.:-]{1,128}", fullmatch=True),
    sensor_id=st.from_regex(r"[A-Za-z0-9_.:-]{1,128}", fullmatch=True),
)
def test_parse_topic_accepts_every_valid_id(device_id: str, sensor_id: str) -> None:
    if device_id in {".", ".."} or sensor_id in {".", ".."}:
        return
    assert parse_topic(f"devices/{device_id}/sensors/{sensor_id}/data") == (device_id, sensor_id)


# ------------------------------------------------------------------------------------------
# Single readings: the happy paths
# ------------------------------------------------------------------------------------------


def test_decode_documented_example() -> None:
    reading = single(
        b'{"value": 21.5, "timestamp": "2026-11-27T10:00:00Z", "quality": "good", "metadata": {}}'
    )
    assert reading == SensorReading("d1", "s1", 21.5, TEN, Quality.GOOD)
    assert reading.timestamp.tzinfo is UTC


@pytest.mark.parametrize(
    ("timestamp", "expected"),
    [
        ("2026-11-27T10:00:00Z", TEN),
        ("2026-11-27T10:00:00+00:00", TEN),
        ("2026-11-27T12:00:00+02:00", TEN),
        ("2026-11-27T05:30:00-04:30", TEN),
        ("2026-11-27T10:00:00.250Z", TEN + timedelta(milliseconds=250)),
        ("2026-11-27 10:00:00Z", TEN),
        (TEN_MS, TEN),
        (TEN_MS + 1, TEN + timedelta(milliseconds=1)),
        (TEN_MS + 0.5, TEN + timedelta(microseconds=500)),
        (float(TEN_MS), TEN),
    ],
)
def test_timestamp_formats(timestamp: object, expected: datetime) -> None:
    reading = single(dumps({"value": 1, "timestamp": timestamp}))
    assert reading.timestamp == expected
    assert reading.timestamp.utcoffset() == timedelta(0)


@pytest.mark.parametrize("payload", [b'{"value": 1}', b'{"value": 1, "timestamp": null}'])
def test_missing_timestamp_uses_receive_time(payload: bytes) -> None:
    assert single(payload).timestamp == NOW


def test_receive_time_in_other_zone_is_normalised() -> None:
    received = NOW.astimezone(timezone(timedelta(hours=-5)))
    reading = decode_reading(b'{"value": 1}', device_id="d", sensor_id="s", received_at=received)
    assert reading.timestamp == NOW
    assert reading.timestamp.tzinfo is UTC


def test_naive_receive_time_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="received_at") as info:
        decode_reading(
            b'{"value": 1}',
            device_id="d",
            sensor_id="s",
            received_at=datetime(2026, 11, 27),
        )
    assert not isinstance(info.value, DecodeError)


def test_naive_timestamps_rejected_by_default() -> None:
    with pytest.raises(BadTimestamp, match="no timezone"):
        single(b'{"value": 1, "timestamp": "2026-11-27T10:00:00"}')


def test_naive_timestamps_as_utc_when_configured() -> None:
    options = DecodeOptions(naive_timestamps_utc=True)
    reading = single(b'{"value": 1, "timestamp": "2026-11-27T10:00:00"}', options=options)
    assert reading.timestamp == TEN


@pytest.mark.parametrize(
    ("timestamp", "ok"),
    [
        ("2000-01-01T00:00:00Z", True),
        ("1999-12-31T23:59:59.999999Z", False),
        ("2026-11-28T10:05:00Z", True),
        ("2026-11-28T10:05:00.000001Z", False),
        (946684800000, True),
        (946684799999, False),
        (int((NOW + timedelta(days=1)).timestamp() * 1000), True),
        (int((NOW + timedelta(days=1, seconds=1)).timestamp() * 1000), False),
    ],
)
def test_timestamp_window_edges(timestamp: object, ok: bool) -> None:
    payload = dumps({"value": 1, "timestamp": timestamp})
    if ok:
        single(payload)
    else:
        with pytest.raises(BadTimestamp, match="outside"):
            single(payload)


def test_timestamp_window_is_configurable() -> None:
    options = DecodeOptions(min_timestamp=datetime(2026, 1, 1, tzinfo=UTC), max_future=timedelta(0))
    with pytest.raises(BadTimestamp):
        single(b'{"value": 1, "timestamp": "2025-12-31T23:00:00Z"}', options=options)
    with pytest.raises(BadTimestamp):
        single(b'{"value": 1, "timestamp": "2026-11-27T10:05:01Z"}', options=options)
    assert single(b'{"value": 1, "timestamp": "2026-11-27T10:05:00Z"}', options=options)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("good", Quality.GOOD),
        ("uncertain", Quality.UNCERTAIN),
        ("bad", Quality.BAD),
        ("BAD", Quality.BAD),
        (None, Quality.GOOD),
    ],
)
def test_quality(raw: str | None, expected: Quality) -> None:
    assert single(dumps({"value": 1, "quality": raw})).quality is expected


def test_quality_defaults_to_good() -> None:
    assert single(b'{"value": 1}').quality is Quality.GOOD


@pytest.mark.parametrize(
    ("raw", "expected"),
    [(21, 21.0), (-3, -3.0), (0, 0.0), (-0.0, -0.0), (1e308, 1e308), (2**63, float(2**63))],
)
def test_numeric_values(raw: float, expected: float) -> None:
    value = single(dumps({"value": raw})).value
    assert value == expected
    assert type(value) is float


def test_metadata_is_kept_read_only() -> None:
    meta = {"unit": "°C", "nested": {"a": [1, 2.5, None, True]}, "": "empty key"}
    reading = single(dumps({"value": 1, "metadata": meta}))
    assert dict(reading.metadata) == meta
    with pytest.raises(TypeError):
        reading.metadata["unit"] = "K"  # type: ignore[index]


@pytest.mark.parametrize("raw", [None, {}])
def test_empty_metadata(raw: object) -> None:
    assert dict(single(dumps({"value": 1, "metadata": raw})).metadata) == {}


def test_unknown_fields_ignored() -> None:
    payload = dumps(
        {"value": 1.5, "unit": "bar", "extra": {"deep": [1, {"x": None}]}, "v": "2", "VALUE": 9}
    )
    assert single(payload).value == 1.5


def test_non_finite_in_ignored_field_is_ignored() -> None:
    assert single(b'{"value": 1.5, "debug": NaN}').value == 1.5


@pytest.mark.parametrize(
    "payload",
    [
        '{"value": 2.5}',
        bytearray(b'{"value": 2.5}'),
        memoryview(b'{"value": 2.5}'),
        '\ufeff{"value": 2.5}'.encode(),
        '{"value": 2.5, "metadata": {"unit": "°C"}}',
        '{"value": 2.5}'.encode("utf-16"),
    ],
    ids=["str", "bytearray", "memoryview", "utf8-bom", "non-ascii-str", "utf16"],
)
def test_payload_containers(payload: Any) -> None:
    assert single(payload).value == 2.5


# ------------------------------------------------------------------------------------------
# Single readings: hostile input
# ------------------------------------------------------------------------------------------

HOSTILE: list[tuple[str, bytes, type[DecodeError]]] = [
    ("empty", b"", MalformedPayload),
    ("whitespace", b"   ", MalformedPayload),
    ("truncated", b'{"value": 1', MalformedPayload),
    ("garbage", b"not json", MalformedPayload),
    ("trailing-garbage", b'{"value": 1} x', MalformedPayload),
    ("single-quotes", b"{'value': 1}", MalformedPayload),
    ("invalid-utf8", b'{"value": 1, "m": "\xff"}', MalformedPayload),
    ("root-array", b"[1, 2]", WrongType),
    ("root-number", b"21.5", WrongType),
    ("root-string", b'"21.5"', WrongType),
    ("root-null", b"null", WrongType),
    ("missing-value", b"{}", MalformedPayload),
    ("numeric-string", b'{"value": "21.5"}', WrongType),
    ("empty-string", b'{"value": ""}', WrongType),
    ("bool-true", b'{"value": true}', WrongType),
    ("bool-false", b'{"value": false}', WrongType),
    ("null-value", b'{"value": null}', WrongType),
    ("array-value", b'{"value": [1]}', WrongType),
    ("object-value", b'{"value": {"v": 1}}', WrongType),
    ("nan", b'{"value": NaN}', NonFiniteValue),
    ("infinity", b'{"value": Infinity}', NonFiniteValue),
    ("minus-infinity", b'{"value": -Infinity}', NonFiniteValue),
    ("overflow-float", b'{"value": 1e999}', NonFiniteValue),
    ("overflow-int", b'{"value": 1' + b"0" * 400 + b"}", NonFiniteValue),
    ("int-too-many-digits", b'{"value": ' + b"9" * 5000 + b"}", MalformedPayload),
    ("ts-garbage", b'{"value": 1, "timestamp": "yesterday"}', BadTimestamp),
    ("ts-date-only", b'{"value": 1, "timestamp": "2026-11-27"}', BadTimestamp),
    ("ts-empty", b'{"value": 1, "timestamp": ""}', BadTimestamp),
    ("ts-bool", b'{"value": 1, "timestamp": true}', WrongType),
    ("ts-object", b'{"value": 1, "timestamp": {}}', WrongType),
    ("ts-array", b'{"value": 1, "timestamp": [2026]}', WrongType),
    ("ts-nan", b'{"value": 1, "timestamp": NaN}', BadTimestamp),
    ("ts-infinity", b'{"value": 1, "timestamp": 1e999}', BadTimestamp),
    ("ts-huge", b'{"value": 1, "timestamp": 1e300}', BadTimestamp),
    ("ts-huge-int", b'{"value": 1, "timestamp": ' + b"9" * 300 + b"}", BadTimestamp),
    ("ts-negative", b'{"value": 1, "timestamp": -1e20}', BadTimestamp),
    ("ts-seconds-not-ms", b'{"value": 1, "timestamp": 1795773600}', BadTimestamp),
    ("ts-year-1", b'{"value": 1, "timestamp": "0001-01-01T00:00:00+01:00"}', BadTimestamp),
    ("ts-year-9999", b'{"value": 1, "timestamp": "9999-12-31T23:59:59-01:00"}', BadTimestamp),
    (
        "ts-long",
        b'{"value": 1, "timestamp": "2026-11-27T10:00:00' + b"0" * 100 + b'Z"}',
        BadTimestamp,
    ),
    ("ts-numeric-string", b'{"value": 1, "timestamp": "1795773600000"}', BadTimestamp),
    ("quality-number", b'{"value": 1, "quality": 1}', WrongType),
    ("quality-unknown", b'{"value": 1, "quality": "excellent"}', MalformedPayload),
    ("quality-bool", b'{"value": 1, "quality": true}', WrongType),
    ("metadata-array", b'{"value": 1, "metadata": []}', WrongType),
    ("metadata-string", b'{"value": 1, "metadata": "x"}', WrongType),
    ("metadata-nan", b'{"value": 1, "metadata": {"a": NaN}}', NonFiniteValue),
    ("metadata-deep-inf", b'{"value": 1, "metadata": {"a": [[{"b": 1e999}]]}}', NonFiniteValue),
    ("metadata-nul", b'{"value": 1, "metadata": {"a": "x\\u0000y"}}', MalformedPayload),
    ("metadata-nul-key", b'{"value": 1, "metadata": {"\\u0000": 1}}', MalformedPayload),
    ("metadata-surrogate", b'{"value": 1, "metadata": {"a": "\\ud800"}}', MalformedPayload),
    ("metadata-surrogate-key", b'{"value": 1, "metadata": {"\\udfff": 1}}', MalformedPayload),
    ("deep-nesting", b'{"value": 1, "x": ' + b"[" * 30000 + b"]" * 30000 + b"}", MalformedPayload),
    ("deep-objects", b'{"a":' * 10000 + b"1" + b"}" * 10000, MalformedPayload),
    ("too-large", b'{"value": 1, "pad": "' + b"x" * 70000 + b'"}', PayloadTooLarge),
    ("nesting-beyond-limit", b"[" * 100000, PayloadTooLarge),
]


@pytest.mark.parametrize(
    ("payload", "error"), [(p, e) for _, p, e in HOSTILE], ids=[n for n, _, _ in HOSTILE]
)
def test_hostile_payloads(payload: bytes, error: type[DecodeError]) -> None:
    with pytest.raises(DecodeError) as info:
        single(payload)
    assert type(info.value) is error
    assert info.value.reason
    assert len(info.value.reason) < 400


@pytest.mark.parametrize("payload", [None, 42, {"value": 1}, [b"{}"]])
def test_non_bytes_payload(payload: object) -> None:
    with pytest.raises(WrongType, match="payload must be"):
        single(payload)  # type: ignore[arg-type]


def test_error_messages_name_the_field() -> None:
    with pytest.raises(WrongType, match=r"^value: expected number, got string$"):
        single(b'{"value": "21.5"}')
    with pytest.raises(BadTimestamp, match=r"^timestamp: "):
        single(b'{"value": 1, "timestamp": "soon"}')
    with pytest.raises(MalformedPayload, match=r"^quality: "):
        single(b'{"value": 1, "quality": "meh"}')


def test_size_limit_is_exact_and_configurable() -> None:
    base = b'{"value": 1}'
    exact = base + b" " * (64 * 1024 - len(base))
    assert single(exact).value == 1.0
    with pytest.raises(PayloadTooLarge, match="65537 bytes"):
        single(exact + b" ")
    with pytest.raises(PayloadTooLarge):
        single(base, options=DecodeOptions(max_payload_bytes=len(base) - 1))


def test_size_limit_counts_utf8_bytes_of_str_payloads() -> None:
    text = '{"value": 1, "m": {"u": "' + "é" * 20 + '"}}'
    assert single(text, options=DecodeOptions(max_payload_bytes=len(text) + 20)).value == 1.0
    with pytest.raises(PayloadTooLarge):
        single(text, options=DecodeOptions(max_payload_bytes=len(text) + 19))


def test_deep_metadata_within_parser_limits_is_walked_without_recursion() -> None:
    depth = 400
    payload = b'{"value": 1, "metadata": {"a": ' + b"[" * depth + b"]" * depth + b"}}"
    assert single(payload).value == 1.0
    bad = b'{"value": 1, "metadata": {"a": ' + b"[" * depth + b"1e999" + b"]" * depth + b"}}"
    with pytest.raises(NonFiniteValue):
        single(bad)


def test_invalid_ids_passed_by_caller() -> None:
    with pytest.raises(BadTopic, match="device_id"):
        decode_reading(b'{"value": 1}', device_id="a/b", sensor_id="s", received_at=NOW)
    with pytest.raises(BadTopic, match="sensor_id"):
        decode_reading(b'{"value": 1}', device_id="d", sensor_id="", received_at=NOW)


JSON_LEAVES = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()
    | st.text(max_size=30)
    | st.sampled_from(["good", "bad", "uncertain", "2026-11-27T10:00:00Z", "2026-11-27"])
)
JSON_VALUES = st.recursive(
    JSON_LEAVES,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)


@settings(max_examples=300, deadline=None)
@given(
    fields=st.dictionaries(
        st.sampled_from(["value", "timestamp", "quality", "metadata", "other"]), JSON_VALUES
    )
)
def test_any_json_object_decodes_or_raises_decode_error(fields: dict[str, Any]) -> None:
    payload = json.dumps(fields).encode()
    try:
        reading = single(payload)
    except DecodeError:
        return
    assert type(reading.value) is float
    assert math.isfinite(reading.value)
    assert reading.timestamp.utcoffset() == timedelta(0)
    assert DEFAULT_OPTIONS.min_timestamp <= reading.timestamp <= NOW + timedelta(days=1)
    assert reading.quality in Quality


@settings(max_examples=300, deadline=None)
@given(payload=st.binary(max_size=200) | st.text(max_size=200))
def test_any_bytes_decode_or_raise_decode_error(payload: bytes | str) -> None:
    # Any other exception type fails the test; what does decode must be well formed.
    reasons: list[str] = []
    try:
        reading = single(payload)
    except DecodeError as error:
        reasons.append(error.reason)
    else:
        assert math.isfinite(reading.value)
    try:
        result = batch(payload)
    except DecodeError as error:
        reasons.append(error.reason)
    else:
        assert all(math.isfinite(r.value) for r in result.readings)
    assert all(reasons), "every refusal carries a reason for the dead-letter table"


@settings(deadline=None)
@given(
    value=st.floats(allow_nan=False, allow_infinity=False),
    timestamp=st.datetimes(
        min_value=datetime(2000, 1, 1),
        max_value=datetime(2026, 11, 28, 10, 5),
        timezones=st.just(UTC),
    ),
    quality=st.sampled_from(list(Quality)),
    metadata=st.dictionaries(
        st.text(st.characters(codec="utf-8", exclude_characters="\x00")),
        st.integers() | st.text(st.characters(codec="utf-8", exclude_characters="\x00")),
    ),
    as_epoch=st.booleans(),
)
def test_valid_readings_round_trip(
    value: float,
    timestamp: datetime,
    quality: Quality,
    metadata: dict[str, Any],
    as_epoch: bool,
) -> None:
    if as_epoch:
        timestamp = timestamp.replace(microsecond=timestamp.microsecond // 1000 * 1000)
        raw_ts: object = (timestamp - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(milliseconds=1)
    else:
        raw_ts = timestamp.isoformat()
    payload = dumps(
        {"value": value, "timestamp": raw_ts, "quality": quality.value, "metadata": metadata}
    )
    reading = single(payload)
    assert reading == SensorReading("d1", "s1", value, timestamp, quality, reading.metadata)
    assert dict(reading.metadata) == metadata


# ------------------------------------------------------------------------------------------
# Batches
# ------------------------------------------------------------------------------------------


def test_batch_of_good_readings() -> None:
    payload = dumps(
        {
            "readings": [
                {"sensor_id": "t1", "value": 1.0, "timestamp": "2026-11-27T10:00:00Z"},
                {"sensor_id": "t2", "value": 2, "quality": "uncertain"},
                {"sensor_id": "t3", "value": 3.5, "timestamp": TEN_MS, "metadata": {"u": "V"}},
            ]
        }
    )
    result = batch(payload)
    assert result.rejected == ()
    assert [(r.sensor_id, r.value, r.timestamp) for r in result.readings] == [
        ("t1", 1.0, TEN),
        ("t2", 2.0, NOW),
        ("t3", 3.5, TEN),
    ]
    assert result.readings[1].quality is Quality.UNCERTAIN
    assert all(r.device_id == "d1" for r in result.readings)


def test_bad_items_never_lose_good_ones() -> None:
    payload = (
        b'{"readings": ['
        b'{"sensor_id": "ok1", "value": 1},'
        b'{"sensor_id": "t", "value": "x"},'
        b'{"value": 2},'
        b'{"sensor_id": "a/b", "value": 3},'
        b"5,"
        b'{"sensor_id": "t", "value": NaN},'
        b'{"sensor_id": 7, "value": 1},'
        b'{"sensor_id": "t", "value": 1, "timestamp": "1990-01-01T00:00:00Z"},'
        b'{"sensor_id": "t", "value": 1, "quality": "great"},'
        b'{"sensor_id": "t", "value": true},'
        b'{"sensor_id": "ok2", "value": 2, "unknown": [1, 2]}'
        b"]}"
    )
    result = batch(payload)
    assert [r.sensor_id for r in result.readings] == ["ok1", "ok2"]
    assert [(r.index, type(r.error)) for r in result.rejected] == [
        (1, WrongType),
        (2, MalformedPayload),
        (3, MalformedPayload),
        (4, WrongType),
        (5, NonFiniteValue),
        (6, WrongType),
        (7, BadTimestamp),
        (8, MalformedPayload),
        (9, WrongType),
    ]
    for rejected in result.rejected:
        assert rejected.reason == rejected.error.reason
        assert rejected.error.__traceback__ is None
    assert "sensor_id" in result.rejected[1].reason


@pytest.mark.parametrize(
    ("payload", "error"),
    [
        (b"{}", MalformedPayload),
        (b'{"readings": {}}', WrongType),
        (b'{"readings": "x"}', WrongType),
        (b'{"readings": null}', WrongType),
        (b"[]", WrongType),
        (b'{"readings": [', MalformedPayload),
        (b'{"readings": [NaN]}', None),
    ],
)
def test_batch_payload_level_errors(payload: bytes, error: type[DecodeError] | None) -> None:
    if error is None:
        result = batch(payload)
        assert [type(r.error) for r in result.rejected] == [WrongType]
        return
    with pytest.raises(error):
        batch(payload)


def test_empty_batch() -> None:
    assert batch(b'{"readings": []}') == BatchResult((), ())


def test_batch_limit_default() -> None:
    at_limit = b'{"readings": [' + b",".join([b"{}"] * 10_000) + b"]}"
    result = batch(at_limit)
    assert len(result.rejected) == 10_000
    over = b'{"readings": [' + b",".join([b"{}"] * 10_001) + b"]}"
    with pytest.raises(PayloadTooLarge, match="10001 readings"):
        batch(over)


def test_batch_limit_configurable() -> None:
    items = [{"sensor_id": f"s{i}", "value": i} for i in range(4)]
    options = DecodeOptions(max_batch=3)
    with pytest.raises(PayloadTooLarge):
        batch(dumps({"readings": items}), options=options)
    assert len(batch(dumps({"readings": items[:3]}), options=options).readings) == 3


@settings(max_examples=200, deadline=None)
@given(
    items=st.lists(
        JSON_VALUES
        | st.fixed_dictionaries(
            {"sensor_id": st.sampled_from(["a", "b", "", "x y"]), "value": JSON_LEAVES}
        ),
        max_size=20,
    )
)
def test_batch_accounts_for_every_item(items: list[Any]) -> None:
    result = batch(dumps({"readings": items}))
    assert len(result.readings) + len(result.rejected) == len(items)
    indices = [r.index for r in result.rejected]
    assert indices == sorted(set(indices))
    assert all(0 <= i < len(items) for i in indices)
    assert all(math.isfinite(r.value) for r in result.readings)


# ------------------------------------------------------------------------------------------
# decode_message
# ------------------------------------------------------------------------------------------


def test_decode_message_single_and_batch() -> None:
    one = decode_message("devices/d/sensors/t/data", b'{"value": 4}', received_at=NOW)
    assert one == BatchResult((SensorReading("d", "t", 4.0, NOW),))
    many = decode_message(
        "devices/d/data", b'{"readings": [{"sensor_id": "t", "value": 4}, {}]}', received_at=NOW
    )
    assert [r.sensor_id for r in many.readings] == ["t"]
    assert [r.index for r in many.rejected] == [1]


def test_decode_message_errors() -> None:
    with pytest.raises(BadTopic):
        decode_message("devices/+/data", b'{"readings": []}', received_at=NOW)
    with pytest.raises(WrongType):
        decode_message("devices/d/sensors/t/data", b'{"value": "4"}', received_at=NOW)


def test_decode_message_with_custom_scheme_and_mapping() -> None:
    scheme = TopicScheme.with_prefix("plant")
    mapping = PayloadMapping(value="v", timestamp="ts", timestamp_unit="s")
    result = decode_message(
        "plant/p1/sensors/t/data",
        dumps({"v": 3.0, "ts": TEN_MS // 1000}),
        received_at=NOW,
        scheme=scheme,
        mapping=mapping,
    )
    assert result.readings == (SensorReading("p1", "t", 3.0, TEN),)


# ------------------------------------------------------------------------------------------
# JSON paths and payload mappings
# ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "steps"),
    [
        ("value", ("value",)),
        ("data.temp", ("data", "temp")),
        ("readings[0].v", ("readings", 0, "v")),
        ("$.a.b", ("a", "b")),
        ("$", ()),
        ("$['a.b'].c", ("a.b", "c")),
        ('$["x y"]', ("x y",)),
        ("$['']", ("",)),
        ("[1]", (1,)),
        ("$[0][1]", (0, 1)),
        ("a[-1]", ("a", -1)),
        ("$.temp-1", ("temp-1",)),
    ],
)
def test_compile_path(path: str, steps: tuple[str | int, ...]) -> None:
    assert compile_path(path) == steps


@pytest.mark.parametrize(
    "path", ["", "a..b", "a.", ".a", "a[", "a[x]", "a]", "$a", "a['b]", "a[1.5]", "$.", "a[]"]
)
def test_compile_path_rejects_bad_syntax(path: str) -> None:
    with pytest.raises(ValueError, match="path"):
        compile_path(path)


def test_mapping_with_nested_paths() -> None:
    mapping = PayloadMapping(
        value="data.temp", timestamp="data.ts", quality="$.status.q", metadata=None
    )
    payload = dumps(
        {"data": {"temp": 21.5, "ts": TEN_MS}, "status": {"q": "bad"}, "metadata": "ignored"}
    )
    reading = single(payload, mapping=mapping)
    assert (reading.value, reading.timestamp, reading.quality) == (21.5, TEN, Quality.BAD)
    assert dict(reading.metadata) == {}


def test_mapping_for_bare_number_payload() -> None:
    mapping = PayloadMapping(value="$", timestamp=None, quality=None, metadata=None)
    assert single(b"21.5", mapping=mapping) == SensorReading("d1", "s1", 21.5, NOW)
    with pytest.raises(WrongType):
        single(b'"21.5"', mapping=mapping)


def test_mapping_with_indices() -> None:
    mapping = PayloadMapping(value="v[-1]")
    assert single(b'{"v": [1.0, 2.0, 3.0]}', mapping=mapping).value == 3.0
    with pytest.raises(MalformedPayload, match="missing"):
        single(b'{"v": []}', mapping=PayloadMapping(value="v[5]"))


@pytest.mark.parametrize(
    ("payload", "error"),
    [
        (b'{"data": 5}', WrongType),
        (b'{"data": [1]}', WrongType),
        (b'{"data": {}}', MalformedPayload),
        (b'{"data": null}', WrongType),
        (b"{}", MalformedPayload),
    ],
)
def test_mapping_through_wrong_types(payload: bytes, error: type[DecodeError]) -> None:
    with pytest.raises(error):
        single(payload, mapping=PayloadMapping(value="data.temp"))


def test_mapping_for_custom_batches() -> None:
    mapping = PayloadMapping(
        readings="payload.items",
        sensor_id="[0]",
        value="[1]",
        timestamp="[2]",
        quality=None,
        metadata=None,
    )
    payload = dumps(
        {"payload": {"items": [["t1", 1.5, TEN_MS], ["t2", 2.5], ["t3"], {"0": "t4"}, ["t/5", 1]]}}
    )
    result = batch(payload, mapping=mapping)
    assert [(r.sensor_id, r.value, r.timestamp) for r in result.readings] == [
        ("t1", 1.5, TEN),
        ("t2", 2.5, NOW),
    ]
    assert [(r.index, type(r.error)) for r in result.rejected] == [
        (2, MalformedPayload),
        (3, WrongType),
        (4, MalformedPayload),
    ]


@pytest.mark.parametrize("unit", ["s", "ms", "us"])
def test_epoch_units(unit: str) -> None:
    per_second = {"s": 1, "ms": 1000, "us": 1_000_000}[unit]
    mapping = PayloadMapping(timestamp_unit=unit)  # type: ignore[arg-type]
    raw = int(TEN.timestamp()) * per_second
    assert single(dumps({"value": 1, "timestamp": raw}), mapping=mapping).timestamp == TEN


def test_mapping_and_options_validation() -> None:
    with pytest.raises(ValueError, match="timestamp_unit"):
        PayloadMapping(timestamp_unit="minutes")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="path"):
        PayloadMapping(value="a..b")
    with pytest.raises(ValueError, match="positive"):
        DecodeOptions(max_payload_bytes=0)
    with pytest.raises(ValueError, match="positive"):
        DecodeOptions(max_batch=0)
    with pytest.raises(ValueError, match="aware"):
        DecodeOptions(min_timestamp=datetime(2000, 1, 1))
    with pytest.raises(ValueError, match="negative"):
        DecodeOptions(max_future=timedelta(seconds=-1))


def test_options_normalise_min_timestamp_to_utc() -> None:
    options = DecodeOptions(
        min_timestamp=datetime(2000, 1, 1, 2, tzinfo=timezone(timedelta(hours=2)))
    )
    assert options.min_timestamp == datetime(2000, 1, 1, tzinfo=UTC)
    assert options.min_timestamp.tzinfo is UTC


def test_mappings_are_frozen_and_comparable() -> None:
    assert PayloadMapping() == PayloadMapping()
    assert PayloadMapping(value="a") != PayloadMapping()
    with pytest.raises(dataclasses.FrozenInstanceError):
        PayloadMapping().value = "x"  # type: ignore[misc]
    assert hash(TopicScheme()) == hash(TopicScheme())
