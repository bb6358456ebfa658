"""The edge configuration schema and its message: validation, digest, versions."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pytest

from edge_configs import NOW, PRESS, make_config, reencode
from maintainpro.iot.edge.channel import ConfigAck, agent_of_ack_topic, config_topic
from maintainpro.iot.edge.config import (
    ConfigError,
    EdgeSettings,
    decode_config,
    encode_config,
)
from maintainpro.iot.registry import DeviceSpec


def test_round_trip_is_exact_and_deterministic() -> None:
    config = make_config(7)
    message = encode_config(config)
    assert encode_config(config) == message
    decoded = decode_config(message)
    assert decoded == config
    assert decoded.version == 7
    assert decoded.devices[0].sensors[0].min_value == -20.5
    assert decoded.settings.poll_s == 5
    # The stored JSON form encodes to the same bytes (what the hub keeps in the database).
    assert encode_config(json.loads(json.dumps(config.payload()))) == message
    body = json.loads(message)
    assert body["format"] == "maintainpro.edge-config/1"
    assert body["issued_at"] == "2026-03-01T08:30:00Z"
    assert "credentials" not in body["devices"][0]


def test_a_changed_byte_breaks_the_digest() -> None:
    message = encode_config(make_config(3))
    tampered = message.replace(b"tcp://10.0.0.5:502", b"tcp://10.0.0.6:502")
    with pytest.raises(ConfigError, match="digest mismatch") as caught:
        decode_config(tampered)
    assert caught.value.version == 3, "the version is still reported with the rejection"
    body = json.loads(message)
    del body["sha256"]
    with pytest.raises(ConfigError, match="sha256: missing"):
        decode_config(json.dumps(body))
    with pytest.raises(ConfigError, match="sha256: missing"):
        decode_config(json.dumps({**body, "sha256": "abc"}))


@pytest.mark.parametrize(
    ("data", "error"),
    [
        (b"{not json", "not valid JSON"),
        (b"\xff\xfe", "not valid JSON"),
        (b"[1, 2]", "expected a JSON object"),
        (b'"text"', "expected a JSON object"),
        (b"", "not valid JSON"),
    ],
)
def test_garbage_is_rejected_with_a_reason(data: bytes, error: str) -> None:
    with pytest.raises(ConfigError, match=error):
        decode_config(data)


def _broken(change: Any) -> dict[str, Any]:
    body: dict[str, Any] = json.loads(encode_config(make_config(4)))
    change(body)
    return body


@pytest.mark.parametrize(
    ("change", "error"),
    [
        (lambda b: b["devices"][0].update(endpoint="http://10.0.0.5"), r"devices\.0\.endpoint"),
        (lambda b: b["devices"][0]["sensors"][1].update(key="oil-temp"), "sensor keys must be"),
        (lambda b: b["devices"].append(dict(b["devices"][0])), "device keys must be unique"),
        (lambda b: b.update(version=0), r"version: Input should be greater than or equal to 1"),
        (lambda b: b.update(version="5"), r"version: Input should be a valid integer"),
        (lambda b: b.update(version=True), r"version"),
        (lambda b: b.update(surprise=1), r"surprise: Extra inputs are not permitted"),
        (lambda b: b.update(format="other/2"), r"format"),
        (lambda b: b.update(issued_at="2026-03-01T08:30:00"), r"issued_at"),
        (lambda b: b.update(agent="edge 1"), r"agent"),
        (lambda b: b["settings"].update(poll_s=-1), r"settings\.poll_s"),
        (lambda b: b["devices"][0].update(credentials={"password": "x"}), "credentials are not"),
        (lambda b: b.pop("devices") and b["settings"].update(poll_s="x"), r"settings\.poll_s"),
    ],
)
def test_schema_errors_name_the_field(change: Any, error: str) -> None:
    body = _broken(change)
    with pytest.raises(ConfigError, match=error) as caught:
        decode_config(reencode(body))
    text = str(caught.value)
    assert text.startswith("invalid configuration: ")
    assert "10.0.0.5" not in text, "the rejected input is not echoed"


def test_a_version_is_reported_when_readable() -> None:
    body = _broken(lambda b: b["devices"][0].update(protocol="carrier-pigeon"))
    with pytest.raises(ConfigError) as caught:
        decode_config(reencode(body))
    assert caught.value.version == 4
    with pytest.raises(ConfigError) as unreadable:
        decode_config(reencode(_broken(lambda b: b.update(version="x"))))
    assert unreadable.value.version is None


def test_non_finite_numbers_are_refused() -> None:
    body = json.loads(encode_config(make_config()))
    body["devices"][0]["sensors"][0]["min_value"] = float("nan")
    with pytest.raises(ConfigError, match="non-finite"):
        decode_config(json.dumps(body))


def test_the_schema_refuses_credentials_and_duplicate_devices_directly() -> None:
    with pytest.raises(ValueError, match="credentials are not distributed"):
        make_config(devices=[DeviceSpec.model_validate(PRESS | {"credentials": {"u": "p"}})])
    with pytest.raises(ValueError, match="device keys must be unique"):
        make_config(devices=[DeviceSpec.model_validate(PRESS)] * 2)
    paris = dt.timezone(dt.timedelta(hours=1))
    naive = make_config(issued_at=dt.datetime(2026, 3, 1, 9, 30, tzinfo=paris))
    assert naive.issued_at == NOW
    assert naive.issued_at.tzinfo is dt.UTC


def test_an_empty_configuration_is_valid() -> None:
    config = make_config(2, devices=[], settings=EdgeSettings())
    assert decode_config(encode_config(config)).devices == []


def test_topics_and_acks() -> None:
    assert config_topic("edge-1") == "edge/edge-1/config"
    assert agent_of_ack_topic("edge/edge-1/config/ack") == "edge-1"
    assert agent_of_ack_topic("edge/edge-1/config") is None
    assert agent_of_ack_topic("edge//config/ack") is None
    ack = ConfigAck(3, "rejected", "x" * 5000)
    decoded = ConfigAck.decode(ack.encode())
    assert decoded.version == 3
    assert decoded.status == "rejected"
    assert decoded.error is not None
    assert len(decoded.error) == 2000
    for bad in (b"[]", b'{"status": "applied"}', b'{"version": 1, "status": "ok"}',
                b'{"version": true, "status": "applied"}', b"nope"):  # fmt: skip
        with pytest.raises(ValueError, match=r"ack|Expecting"):
            ConfigAck.decode(bad)
