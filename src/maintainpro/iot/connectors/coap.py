"""CoAP pieces shared by the hub's server and its device client: binds and payload decoding.

Payloads arrive as JSON (content-format 50), CBOR (60) or a plain-text number (0). CBOR is
turned into the equivalent JSON and run through :mod:`maintainpro.iot.decode`, so every format
gets exactly the same validation (finite numbers, timestamp window, metadata rules) and the same
dead-letter codes.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import decimal
import json
import math
import re
from typing import Any, Final

import cbor2

from maintainpro.iot.decode import (
    DEFAULT_MAPPING,
    DEFAULT_OPTIONS,
    BatchResult,
    DecodeError,
    DecodeOptions,
    MalformedPayload,
    NonFiniteValue,
    PayloadMapping,
    PayloadTooLarge,
    WrongType,
    decode_batch,
    decode_reading,
    validate_id,
)
from maintainpro.iot.readings import SensorReading

__all__ = [
    "COAPS_PORT",
    "COAP_PORT",
    "CONTENT_CBOR",
    "CONTENT_JSON",
    "CONTENT_TEXT",
    "UnsupportedContentFormat",
    "decode_batch_payload",
    "decode_single_payload",
    "parse_bind",
    "parse_text_number",
]

COAP_PORT: Final = 5683
COAPS_PORT: Final = 5684
CONTENT_TEXT: Final = 0
CONTENT_JSON: Final = 50
CONTENT_CBOR: Final = 60

# Deeper CBOR than this is refused before conversion; JSON decoding has its own limits.
_MAX_CBOR_DEPTH: Final = 256
_NUMBER_RE: Final = re.compile(rb"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")
_MAX_TEXT_NUMBER: Final = 64


class UnsupportedContentFormat(DecodeError):
    """The payload's content-format is none the hub decodes (JSON, CBOR, plain text)."""

    code = "unsupported_content_format"


def parse_bind(text: str, default_port: int = COAP_PORT) -> tuple[str, int]:
    """Split ``host:port``, ``[v6]:port`` or a bare host into (host, port)."""
    text = text.strip()
    if not text:
        raise ValueError("bind address is empty")
    if text.startswith("["):
        host, sep, rest = text[1:].partition("]")
        if not sep or (rest and not rest.startswith(":")):
            raise ValueError(f"bad bind address {text!r}")
        port_text = rest[1:]
    elif text.count(":") == 1:
        host, port_text = text.split(":")
    else:
        # No colon, or several: a bare IPv6 address without a port.
        host, port_text = text, ""
    if not host:
        raise ValueError(f"bind address {text!r} has no host")
    if not port_text:
        return host, default_port
    if not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise ValueError(f"bind address {text!r} has a bad port")
    return host, int(port_text)


def parse_text_number(payload: bytes) -> float:
    """A plain-text payload holding one decimal number (no NaN, no locale commas)."""
    text = payload.strip()
    if not text:
        raise MalformedPayload("payload is empty")
    if len(text) > _MAX_TEXT_NUMBER or _NUMBER_RE.fullmatch(text) is None:
        shown = text[:40].decode("utf-8", "replace")
        raise MalformedPayload(f"text payload {shown!r} is not a decimal number")
    value = float(text)
    if not math.isfinite(value):
        raise NonFiniteValue("text payload overflows to infinity")
    return value


def _jsonable(node: Any, depth: int = 0) -> Any:
    """Turn decoded CBOR into plain JSON values, refusing what JSON cannot say."""
    if depth > _MAX_CBOR_DEPTH:
        raise MalformedPayload("CBOR payload nests too deeply")
    if node is None or isinstance(node, bool | int | float | str):
        return node
    if isinstance(node, dict):
        out: dict[str, Any] = {}
        for key, value in node.items():
            if type(key) is not str:
                raise WrongType(f"CBOR map key of type {type(key).__name__}; keys must be text")
            out[key] = _jsonable(value, depth + 1)
        return out
    if isinstance(node, list | tuple):
        return [_jsonable(item, depth + 1) for item in node]
    if isinstance(node, dt.datetime):
        # Tags 0 and 1 (date/time); the decoder then checks zone and plausibility as for JSON.
        return node.isoformat()
    if isinstance(node, decimal.Decimal):
        return float(node)
    raise WrongType(f"CBOR item of type {type(node).__name__} has no JSON equivalent")


def _cbor_as_json(payload: bytes) -> bytes:
    """Decode CBOR and re-encode it as JSON text for the shared decoder."""
    try:
        root = cbor2.loads(payload)
    except RecursionError:
        raise MalformedPayload("CBOR payload nests too deeply") from None
    except Exception as exc:  # noqa: BLE001 - every decoder failure is a bad payload
        raise MalformedPayload(f"invalid CBOR: {str(exc)[:120]}") from None
    # allow_nan keeps NaN visible as NaN so the decoder refuses it as a non-finite value.
    return json.dumps(_jsonable(root), allow_nan=True).encode()


def _as_json(
    payload: bytes, content_format: int | None, options: DecodeOptions
) -> tuple[bytes, DecodeOptions] | None:
    """JSON bytes (and options sized for them) for JSON/CBOR payloads; None for plain text."""
    if len(payload) > options.max_payload_bytes:
        raise PayloadTooLarge(
            f"payload is {len(payload)} bytes, limit is {options.max_payload_bytes}"
        )
    if content_format is None:
        # No content-format option: libcoap and small devices omit it for text/plain, so sniff.
        head = payload.lstrip()[:1]
        content_format = CONTENT_JSON if head in (b"{", b"[") else CONTENT_TEXT
    if content_format == CONTENT_TEXT:
        return None
    if content_format == CONTENT_JSON:
        return payload, options
    if content_format == CONTENT_CBOR:
        text = _cbor_as_json(payload)
        # The size limit applied to what arrived; JSON spelling of CBOR may be longer.
        sized = dataclasses.replace(
            options, max_payload_bytes=max(options.max_payload_bytes, len(text))
        )
        return text, sized
    raise UnsupportedContentFormat(
        f"content-format {content_format} is not supported; use 0 (text), 50 (JSON) or 60 (CBOR)"
    )


def decode_single_payload(
    payload: bytes,
    content_format: int | None,
    *,
    device_id: str,
    sensor_id: str,
    received_at: dt.datetime,
    mapping: PayloadMapping = DEFAULT_MAPPING,
    options: DecodeOptions = DEFAULT_OPTIONS,
) -> SensorReading:
    """Decode one reading from a JSON, CBOR or plain-number payload; raise DecodeError."""
    converted = _as_json(payload, content_format, options)
    if converted is None:
        validate_id(device_id, "device_id")
        validate_id(sensor_id, "sensor_id")
        return SensorReading(
            device_id, sensor_id, parse_text_number(payload), received_at.astimezone(dt.UTC)
        )
    text, sized = converted
    return decode_reading(
        text,
        device_id=device_id,
        sensor_id=sensor_id,
        received_at=received_at,
        mapping=mapping,
        options=sized,
    )


def decode_batch_payload(
    payload: bytes,
    content_format: int | None,
    *,
    device_id: str,
    received_at: dt.datetime,
    mapping: PayloadMapping = DEFAULT_MAPPING,
    options: DecodeOptions = DEFAULT_OPTIONS,
) -> BatchResult:
    """Decode a batch (``{"readings": [...]}``) from JSON or CBOR; raise DecodeError."""
    converted = _as_json(payload, content_format, options)
    if converted is None:
        raise UnsupportedContentFormat("a batch must be JSON (50) or CBOR (60), not plain text")
    text, sized = converted
    return decode_batch(
        text, device_id=device_id, received_at=received_at, mapping=mapping, options=sized
    )
