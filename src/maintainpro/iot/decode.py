"""Pure decoding of MQTT/CoAP JSON payloads into sensor readings (no I/O, no clock).

Decisions (see also docs of each function):

* Naive ISO-8601 timestamps (no ``Z``/offset) are rejected with :class:`BadTimestamp` by
  default: devices that publish local wall-clock time would otherwise be silently shifted by
  hours. ``DecodeOptions(naive_timestamps_utc=True)`` opts in to reading them as UTC.
* Numeric timestamps are epoch milliseconds by default (``PayloadMapping.timestamp_unit``).
* Values must be JSON numbers. Booleans and numeric strings (``"21.5"``) are rejected with
  :class:`WrongType`: accepting strings invites locale bugs (``"21,5"``) and hides publisher bugs.
* ``NaN``/``Infinity`` literals (accepted by Python's json, not by RFC 8259) and numbers that
  overflow to infinity (``1e999``) are rejected with :class:`NonFiniteValue` wherever they would
  reach a reading (value or metadata). They are rejected per reading rather than per payload,
  so one device-side NaN in a batch does not lose the good readings; in ignored fields they
  are harmless and ignored like any other unknown field.
* JSON ``null`` in an optional field (timestamp, quality, metadata) means "absent".
* A batch larger than ``max_batch`` is rejected whole with :class:`PayloadTooLarge` rather than
  truncated, because which part to keep would be arbitrary.
* Metadata must be a JSON object; strings in it must not contain NUL or lone surrogates,
  which PostgreSQL text/jsonb refuses and which would otherwise fail the whole insert later.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from math import isfinite
from types import MappingProxyType
from typing import Any, ClassVar, Final, Literal, NamedTuple, TypeAlias

from maintainpro.iot.readings import EMPTY_METADATA, Quality, SensorReading

__all__ = [
    "DEFAULT_MAPPING",
    "DEFAULT_OPTIONS",
    "DEFAULT_TOPIC_SCHEME",
    "BadTimestamp",
    "BadTopic",
    "BatchResult",
    "DecodeError",
    "DecodeOptions",
    "MalformedPayload",
    "NonFiniteValue",
    "PayloadMapping",
    "PayloadTooLarge",
    "RejectedItem",
    "TopicMatch",
    "TopicScheme",
    "WrongType",
    "compile_path",
    "decode_batch",
    "decode_message",
    "decode_reading",
    "parse_topic",
    "validate_id",
]


# --------------------------------------------------------------------------------------------
# Errors
# --------------------------------------------------------------------------------------------


class DecodeError(ValueError):
    """Base of every decoding failure; ``code`` and ``reason`` go to the dead-letter table."""

    code: ClassVar[str] = "decode_error"

    def __init__(self, reason: str) -> None:
        """Store the human-readable reason (also the ``str()`` of the exception)."""
        super().__init__(reason)
        self.reason = reason


class MalformedPayload(DecodeError):
    """The payload is not valid JSON, or lacks a required field, or has an invalid field."""

    code = "malformed_payload"


class WrongType(DecodeError):
    """A field has the wrong JSON type (e.g. a string or bool where a number is required)."""

    code = "wrong_type"


class NonFiniteValue(DecodeError):
    """A number is NaN or infinite (``NaN`` literal, ``Infinity`` literal or overflow)."""

    code = "non_finite_value"


class PayloadTooLarge(DecodeError):
    """The payload exceeds the byte limit or the batch exceeds the reading limit."""

    code = "payload_too_large"


class BadTopic(DecodeError):
    """The MQTT topic (or CoAP path) does not match the scheme or carries an invalid id."""

    code = "bad_topic"


class BadTimestamp(DecodeError):
    """The timestamp is unparseable, naive (by default), or outside the plausible window."""

    code = "bad_timestamp"


# --------------------------------------------------------------------------------------------
# Identifiers and topics
# --------------------------------------------------------------------------------------------

MAX_ID_LENGTH: Final = 128
_ID_RE: Final = re.compile(r"[A-Za-z0-9_.:-]{1,128}")
# "." and ".." pass the character rule but are path-traversal shaped; ids end up in URLs and
# export file names, so they are refused outright.
_DOT_IDS: Final = frozenset({".", ".."})


def _id_problem(value: object) -> str | None:
    """Return why ``value`` is not a valid device/sensor id, or None if it is valid."""
    if type(value) is not str:
        return f"must be a string, got {_json_type(value)}"
    if _ID_RE.fullmatch(value) is not None and value not in _DOT_IDS:
        return None
    if not value:
        return "is empty"
    if len(value) > MAX_ID_LENGTH:
        return f"is {len(value)} characters long, limit is {MAX_ID_LENGTH}"
    if value in _DOT_IDS:
        return f"{value!r} is not allowed"
    bad = next(ch for ch in value if _ID_RE.fullmatch(ch) is None)
    return f"contains {bad!r}; allowed are A-Z a-z 0-9 _ . : -"


def validate_id(value: object, what: str = "id") -> str:
    """Return ``value`` if it is a valid id (``[A-Za-z0-9_.:-]{1,128}``), else raise BadTopic."""
    if type(value) is str and _ID_RE.fullmatch(value) is not None and value not in _DOT_IDS:
        return value
    raise BadTopic(f"{what} {_id_problem(value)}")


class TopicMatch(NamedTuple):
    """Ids extracted from a topic; ``sensor_id`` is None for batch topics."""

    device_id: str
    sensor_id: str | None


_DEVICE: Final = "{device_id}"
_SENSOR: Final = "{sensor_id}"
_PLACEHOLDERS: Final = frozenset({_DEVICE, _SENSOR})


def _compile_topic(template: str, placeholders: frozenset[str]) -> tuple[str, ...]:
    """Split and check a topic template; placeholders must be whole levels, each exactly once."""
    levels = tuple(template.split("/"))
    if any(not level for level in levels):
        raise ValueError(f"topic template {template!r} has an empty level")
    if any(("+" in level or "#" in level) for level in levels):
        raise ValueError(f"topic template {template!r} contains an MQTT wildcard")
    for level in levels:
        if ("{" in level or "}" in level) and level not in placeholders:
            raise ValueError(f"topic template {template!r}: bad placeholder level {level!r}")
    for placeholder in placeholders:
        if levels.count(placeholder) != 1:
            raise ValueError(f"topic template {template!r} needs {placeholder} exactly once")
    return levels


@dataclass(frozen=True, slots=True)
class TopicScheme:
    """Topic templates for single-reading and batch messages (CoAP URI paths work alike)."""

    single: str = "devices/{device_id}/sensors/{sensor_id}/data"
    batch: str | None = "devices/{device_id}/data"
    # Templates grouped by level count, so matching is one dict lookup plus a level compare.
    _by_levels: Mapping[int, tuple[tuple[str, ...], ...]] = field(
        init=False, repr=False, compare=False
    )

    def __post_init__(self) -> None:
        """Compile and validate the templates once."""
        compiled = [_compile_topic(self.single, frozenset({_DEVICE, _SENSOR}))]
        if self.batch is not None:
            compiled.append(_compile_topic(self.batch, frozenset({_DEVICE})))
        # With equal level counts the template with more literal levels is the more specific
        # one and must be tried first ("a/{device_id}/all" before "a/{device_id}/{sensor_id}").
        compiled.sort(key=lambda levels: -sum(level not in _PLACEHOLDERS for level in levels))
        by_levels: dict[int, tuple[tuple[str, ...], ...]] = {}
        for levels in compiled:
            by_levels[len(levels)] = (*by_levels.get(len(levels), ()), levels)
        object.__setattr__(self, "_by_levels", MappingProxyType(by_levels))

    @classmethod
    def with_prefix(cls, prefix: str) -> TopicScheme:
        """Default layout under another root, e.g. ``acme/site1`` instead of ``devices``."""
        prefix = prefix.strip("/")
        return cls(
            single=f"{prefix}/{_DEVICE}/sensors/{_SENSOR}/data",
            batch=f"{prefix}/{_DEVICE}/data",
        )

    def expected_levels(self) -> tuple[int, ...]:
        """Level counts this scheme accepts, for error messages."""
        return tuple(sorted(self._by_levels))


DEFAULT_TOPIC_SCHEME: Final = TopicScheme()


def parse_topic(topic: str, scheme: TopicScheme = DEFAULT_TOPIC_SCHEME) -> TopicMatch:
    """Parse a concrete topic into (device_id, sensor_id or None); raise BadTopic otherwise."""
    if type(topic) is not str:
        raise BadTopic(f"topic must be a string, got {type(topic).__name__}")
    return _parse_topic(topic, scheme)


# A fleet publishes on a stable set of topics, so memoising the (pure) parse removes the
# regex work from the hot path. Only successes are cached; a hostile topic flood evicts
# entries but cannot grow memory beyond maxsize.
@lru_cache(maxsize=16_384)
def _parse_topic(topic: str, scheme: TopicScheme) -> TopicMatch:
    """Uncached body of parse_topic for a str topic."""
    if not topic:
        raise BadTopic("topic is empty")
    # Published topics never contain wildcards; one doing so is a misconfigured bridge.
    if "+" in topic or "#" in topic:
        raise BadTopic(f"topic {_clip(topic)!r} contains an MQTT wildcard")
    levels = topic.split("/")
    if "" in levels:
        raise BadTopic(f"topic {_clip(topic)!r} has an empty level")
    candidates = scheme._by_levels.get(len(levels))
    if candidates is None:
        expected = " or ".join(map(str, scheme.expected_levels()))
        raise BadTopic(f"topic {_clip(topic)!r} has {len(levels)} levels, expected {expected}")
    for template in candidates:
        device_id: str | None = None
        sensor_id: str | None = None
        for want, got in zip(template, levels, strict=True):
            if want == _DEVICE:
                device_id = got
            elif want == _SENSOR:
                sensor_id = got
            elif want != got:
                break
        else:
            return TopicMatch(
                validate_id(device_id, "device_id"),
                None if sensor_id is None else validate_id(sensor_id, "sensor_id"),
            )
    raise BadTopic(f"topic {_clip(topic)!r} does not match the topic scheme")


# --------------------------------------------------------------------------------------------
# JSON paths and payload mappings
# --------------------------------------------------------------------------------------------

PathStep: TypeAlias = str | int
JsonPath: TypeAlias = tuple[PathStep, ...]

_PATH_TOKEN: Final = re.compile(
    r"\.(?P<key>[^.\[\]'\"]+)"
    r"|\[(?P<index>-?\d+)\]"
    r"|\['(?P<sq>[^']*)'\]"
    r"|\[\"(?P<dq>[^\"]*)\"\]"
)


def compile_path(path: str) -> JsonPath:
    """Compile ``data.temp``, ``readings[0].v``, ``$.a.b``, ``$['a.b']`` or ``$`` into steps."""
    if not path:
        raise ValueError("JSON path is empty")
    if path.startswith("$"):
        rest = path[1:]
    elif path.startswith("["):
        rest = path
    else:
        rest = "." + path
    steps: list[PathStep] = []
    pos = 0
    while pos < len(rest):
        match = _PATH_TOKEN.match(rest, pos)
        if match is None:
            raise ValueError(f"invalid JSON path {path!r} at character {pos}")
        index = match["index"]
        if index is not None:
            steps.append(int(index))
        else:
            key = match["key"] or match["sq"] or match["dq"]
            steps.append(key if key is not None else "")
        pos = match.end()
    return tuple(steps)


def _path_text(steps: JsonPath) -> str:
    """Render compiled steps back to the canonical ``$.a[0]`` form for error messages."""
    return "$" + "".join(f"[{s}]" if type(s) is int else f".{s}" for s in steps)


class _Missing:
    """Sentinel type for an absent path target (distinct from JSON null)."""


_MISSING: Final = _Missing()


def _resolve(node: Any, steps: JsonPath | None) -> Any:
    """Follow ``steps`` into parsed JSON; _MISSING if absent, WrongType if a step cannot apply."""
    if steps is None:
        return _MISSING
    for depth, step in enumerate(steps):
        if isinstance(step, str):
            if type(node) is not dict:
                raise WrongType(
                    f"{_path_text(steps[:depth]) or '$'}: expected object, got {_json_type(node)}"
                )
            node = node.get(step, _MISSING)
        else:
            if type(node) is not list:
                raise WrongType(
                    f"{_path_text(steps[:depth]) or '$'}: expected array, got {_json_type(node)}"
                )
            try:
                node = node[step]
            except IndexError:
                return _MISSING
        if node is _MISSING:
            return _MISSING
    return node


EpochUnit = Literal["s", "ms", "us"]
# Microseconds per epoch unit; timedelta(microseconds=int) is exact where float seconds is not.
_EPOCH_US: Final[Mapping[str, int]] = MappingProxyType({"s": 1_000_000, "ms": 1_000, "us": 1})


_ITEM_FIELDS: Final = ("value", "timestamp", "quality", "metadata", "sensor_id")


@dataclass(frozen=True, slots=True)
class PayloadMapping:
    """Where a device's JSON keeps each field; item paths are relative to each batch item."""

    value: str = "value"
    timestamp: str | None = "timestamp"
    quality: str | None = "quality"
    metadata: str | None = "metadata"
    readings: str = "readings"
    sensor_id: str = "sensor_id"
    timestamp_unit: EpochUnit = "ms"
    # Compiled item paths in _ITEM_FIELDS order; None means "the device never sends it".
    _paths: tuple[JsonPath | None, ...] = field(init=False, repr=False, compare=False)
    # The same paths as plain keys when every one is a single key (the common case), so the
    # hot path is a dict.get per field instead of a path walk.
    _flat: tuple[str | None, ...] | None = field(init=False, repr=False, compare=False)
    _readings: JsonPath = field(init=False, repr=False, compare=False)
    _epoch_us: int = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        """Compile every path once so decoding never re-parses path strings."""
        if self.timestamp_unit not in _EPOCH_US:
            raise ValueError(f"timestamp_unit must be one of {sorted(_EPOCH_US)}")
        paths = tuple(
            None if (raw := getattr(self, name)) is None else compile_path(raw)
            for name in _ITEM_FIELDS
        )
        keys: list[str | None] = []
        for path in paths:
            if path is None:
                keys.append(None)
            elif len(path) == 1 and isinstance(path[0], str):
                keys.append(path[0])
        flat = tuple(keys) if len(keys) == len(paths) else None
        setattr_ = object.__setattr__
        setattr_(self, "_paths", paths)
        setattr_(self, "_flat", flat)
        setattr_(self, "_readings", compile_path(self.readings))
        setattr_(self, "_epoch_us", _EPOCH_US[self.timestamp_unit])


DEFAULT_MAPPING: Final = PayloadMapping()


# --------------------------------------------------------------------------------------------
# Options, results
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DecodeOptions:
    """Limits and policies for decoding; the defaults follow the ingestion spec."""

    max_payload_bytes: int = 64 * 1024
    max_batch: int = 10_000
    min_timestamp: datetime = datetime(2000, 1, 1, tzinfo=UTC)
    max_future: timedelta = timedelta(days=1)
    naive_timestamps_utc: bool = False

    def __post_init__(self) -> None:
        """Reject nonsensical limits at configuration time, not on the ingest path."""
        if self.max_payload_bytes <= 0 or self.max_batch <= 0:
            raise ValueError("max_payload_bytes and max_batch must be positive")
        if self.min_timestamp.utcoffset() is None:
            raise ValueError("min_timestamp must be timezone-aware")
        if self.max_future < timedelta(0):
            raise ValueError("max_future must not be negative")
        object.__setattr__(self, "min_timestamp", self.min_timestamp.astimezone(UTC))


DEFAULT_OPTIONS: Final = DecodeOptions()


@dataclass(frozen=True, slots=True)
class RejectedItem:
    """A batch item that failed to decode: its index in the batch and the typed error."""

    index: int
    error: DecodeError

    @property
    def reason(self) -> str:
        """Human-readable reason, as stored in the dead-letter table."""
        return self.error.reason


@dataclass(frozen=True, slots=True)
class BatchResult:
    """Outcome of a batch: the good readings and each rejected item with its reason."""

    readings: tuple[SensorReading, ...]
    rejected: tuple[RejectedItem, ...] = ()


# --------------------------------------------------------------------------------------------
# Field decoders
# --------------------------------------------------------------------------------------------

_JSON_TYPES: Final[Mapping[type, str]] = MappingProxyType(
    {
        dict: "object",
        list: "array",
        str: "string",
        int: "integer",
        float: "number",
        bool: "boolean",
        type(None): "null",
    }
)

_QUALITY: Final[Mapping[str, Quality]] = MappingProxyType({q.value: q for q in Quality})


def _json_type(value: object) -> str:
    """JSON name of a parsed value's type, for error messages."""
    return _JSON_TYPES.get(type(value), type(value).__name__)


def _clip(text: str, limit: int = 80) -> str:
    """Shorten attacker-controlled text before it goes into an error message."""
    return text if len(text) <= limit else text[:limit] + "..."


class _Window(NamedTuple):
    """Plausible timestamp window for one decode call, precomputed once per payload."""

    received_at: datetime
    low: datetime
    high: datetime
    naive_utc: bool


_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)


def _window(received_at: datetime, options: DecodeOptions) -> _Window:
    """Build the timestamp window from the caller's receive time (the only clock we use)."""
    if received_at.tzinfo is not UTC:
        if received_at.utcoffset() is None:
            raise ValueError("received_at must be a timezone-aware datetime")
        received_at = received_at.astimezone(UTC)
    return _Window(
        received_at,
        options.min_timestamp,
        received_at + options.max_future,
        options.naive_timestamps_utc,
    )


def _decode_value(raw: Any, where: str) -> float:
    """Accept JSON numbers only (not bools, not strings) and only finite ones."""
    kind = type(raw)
    if kind is float:
        if isfinite(raw):
            return raw  # type: ignore[no-any-return]
        raise NonFiniteValue(f"{where}: value is {raw!r}, must be finite")
    if kind is int:
        try:
            return float(raw)
        except OverflowError:
            raise NonFiniteValue(f"{where}: integer value too large for a float") from None
    if raw is _MISSING:
        raise MalformedPayload(f"{where}: required field is missing")
    raise WrongType(f"{where}: expected number, got {_json_type(raw)}")


def _decode_timestamp(raw: Any, unit_us: int, window: _Window, where: str | None) -> datetime:
    """Parse ISO-8601 text or epoch number into aware UTC, inside the plausible window."""
    kind = type(raw)
    if raw is _MISSING or raw is None:
        return window.received_at
    if kind is str:
        # ISO-8601 timestamps are ~20-35 chars; the cap keeps hostile strings out of the parser.
        if len(raw) > 64:
            raise BadTimestamp(f"{where}: string too long ({len(raw)} chars)")
        try:
            ts = datetime.fromisoformat(raw)
        except ValueError:
            raise BadTimestamp(f"{where}: {_clip(raw)!r} is not ISO-8601") from None
        if ts.tzinfo is None:
            if not window.naive_utc:
                raise BadTimestamp(f"{where}: {raw!r} has no timezone (use Z or an offset)")
            ts = ts.replace(tzinfo=UTC)
        elif ts.tzinfo is not UTC:
            try:
                ts = ts.astimezone(UTC)
            except OverflowError:
                raise BadTimestamp(f"{where}: {raw!r} is out of range") from None
        if not window.low <= ts <= window.high:
            raise BadTimestamp(
                f"{where}: {ts.isoformat()} outside {window.low.isoformat()} .. "
                f"{window.high.isoformat()}"
            )
        return ts
    if kind is int or kind is float:
        if kind is float and not isfinite(raw):
            raise BadTimestamp(f"{where}: epoch value is {raw!r}")
        try:
            ts = _EPOCH + timedelta(microseconds=raw * unit_us)
        except OverflowError:
            raise BadTimestamp(f"{where}: epoch {raw!r} is out of range") from None
        if not window.low <= ts <= window.high:
            raise BadTimestamp(
                f"{where}: epoch {raw!r} = {ts.isoformat()} outside {window.low.isoformat()} .. "
                f"{window.high.isoformat()}"
            )
        return ts
    raise WrongType(f"{where}: expected ISO-8601 string or epoch number, got {_json_type(raw)}")


def _decode_quality(raw: Any, where: str | None) -> Quality:
    """Map the quality string through a table; absent/null means good."""
    if raw is _MISSING or raw is None:
        return Quality.GOOD
    if type(raw) is not str:
        raise WrongType(f"{where}: expected string, got {_json_type(raw)}")
    quality = _QUALITY.get(raw) or _QUALITY.get(raw.lower())
    if quality is None:
        raise MalformedPayload(f"{where}: {_clip(raw)!r} is not one of good/uncertain/bad")
    return quality


def _string_problem(text: str) -> str | None:
    """Why a metadata string cannot be stored (NUL, lone surrogate), or None."""
    if "\x00" in text:
        return "contains NUL"
    if not text.isascii():
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            return "contains a lone surrogate"
    return None


def _check_metadata(meta: dict[str, Any], where: str | None) -> None:
    """Walk metadata iteratively (it may be ~1000 levels deep) rejecting unstorable values."""
    stack: list[Any] = [meta]
    while stack:
        node = stack.pop()
        kind = type(node)
        if kind is dict:
            for key, child in node.items():
                problem = _string_problem(key)
                if problem is not None:
                    raise MalformedPayload(f"{where}: key {problem}")
                stack.append(child)
        elif kind is list:
            stack.extend(node)
        elif kind is float:
            if not isfinite(node):
                raise NonFiniteValue(f"{where}: contains {node!r}, numbers must be finite")
        elif kind is str:
            problem = _string_problem(node)
            if problem is not None:
                raise MalformedPayload(f"{where}: string {problem}")


def _decode_metadata(raw: Any, where: str | None) -> Mapping[str, Any]:
    """Return metadata as a read-only mapping; absent/null/empty share one empty mapping."""
    if raw is _MISSING or raw is None:
        return EMPTY_METADATA
    if type(raw) is not dict:
        raise WrongType(f"{where}: expected object, got {_json_type(raw)}")
    if not raw:
        return EMPTY_METADATA
    _check_metadata(raw, where)
    # Read-only at the top level only: a deep copy/freeze of nested JSON would double the cost
    # of decoding, and nothing downstream mutates metadata.
    return MappingProxyType(raw)


def _reading(
    node: Any,
    device_id: str,
    sensor_id: str,
    mapping: PayloadMapping,
    window: _Window,
) -> SensorReading:
    """Build one reading from a parsed JSON node (the root, or one batch item)."""
    flat = mapping._flat
    if flat is not None and type(node) is dict:
        # JSON object keys are always str, so get(None) for a disabled field is always missing.
        get = node.get
        raw_value = get(flat[0], _MISSING)
        raw_ts = get(flat[1], _MISSING)
        raw_quality = get(flat[2], _MISSING)
        raw_meta = get(flat[3], _MISSING)
    else:
        paths = mapping._paths
        raw_value = _resolve(node, paths[0])
        raw_ts = _resolve(node, paths[1])
        raw_quality = _resolve(node, paths[2])
        raw_meta = _resolve(node, paths[3])
    # Error messages name the configured path, which is what an operator can grep for.
    value = (
        raw_value
        if type(raw_value) is float and isfinite(raw_value)
        else _decode_value(raw_value, mapping.value)
    )
    timestamp = (
        window.received_at
        if raw_ts is _MISSING or raw_ts is None
        else _decode_timestamp(raw_ts, mapping._epoch_us, window, mapping.timestamp)
    )
    quality = (
        Quality.GOOD if raw_quality is _MISSING else _decode_quality(raw_quality, mapping.quality)
    )
    metadata = (
        EMPTY_METADATA if raw_meta is _MISSING else _decode_metadata(raw_meta, mapping.metadata)
    )
    return SensorReading(device_id, sensor_id, value, timestamp, quality, metadata)


# --------------------------------------------------------------------------------------------
# Payload loading and public decoders
# --------------------------------------------------------------------------------------------

Payload: TypeAlias = bytes | bytearray | memoryview | str


def _load(payload: Payload, limit: int) -> Any:
    """Size-check and parse JSON, turning every parser failure into a DecodeError."""
    if isinstance(payload, str):
        # isascii() is O(1) in CPython, so the common case avoids encoding just to measure.
        size = len(payload) if payload.isascii() else len(payload.encode("utf-8", "replace"))
    elif isinstance(payload, memoryview):
        size = payload.nbytes
        payload = payload.tobytes() if size <= limit else payload
    elif isinstance(payload, bytes | bytearray):
        size = len(payload)
    else:
        raise WrongType(f"payload must be bytes or str, got {type(payload).__name__}")
    if size > limit:
        raise PayloadTooLarge(f"payload is {size} bytes, limit is {limit}")
    if size == 0:
        raise MalformedPayload("payload is empty")
    try:
        return json.loads(payload)  # type: ignore[arg-type]  # memoryview converted above
    except RecursionError:
        raise MalformedPayload("payload nests too deeply") from None
    except UnicodeDecodeError:
        raise MalformedPayload("payload is not valid UTF-8") from None
    except ValueError as exc:
        # JSONDecodeError and int-parsing limits (>4300 digits) are both ValueErrors.
        raise MalformedPayload(f"invalid JSON: {_clip(str(exc), 120)}") from None


def decode_reading(
    payload: Payload,
    *,
    device_id: str,
    sensor_id: str,
    received_at: datetime,
    mapping: PayloadMapping = DEFAULT_MAPPING,
    options: DecodeOptions = DEFAULT_OPTIONS,
) -> SensorReading:
    """Decode a single-reading payload; ``received_at`` stands in for a missing timestamp."""
    validate_id(device_id, "device_id")
    validate_id(sensor_id, "sensor_id")
    window = _window(received_at, options)
    root = _load(payload, options.max_payload_bytes)
    return _reading(root, device_id, sensor_id, mapping, window)


def decode_batch(
    payload: Payload,
    *,
    device_id: str,
    received_at: datetime,
    mapping: PayloadMapping = DEFAULT_MAPPING,
    options: DecodeOptions = DEFAULT_OPTIONS,
) -> BatchResult:
    """Decode a batch payload, keeping good items and reporting each bad one by index.

    Payload-level problems (bad JSON, missing or oversized readings array) raise DecodeError;
    item-level problems land in ``BatchResult.rejected``.
    """
    validate_id(device_id, "device_id")
    window = _window(received_at, options)
    root = _load(payload, options.max_payload_bytes)
    return _batch(root, device_id, mapping, options, window)


def _batch(
    root: Any, device_id: str, mapping: PayloadMapping, options: DecodeOptions, window: _Window
) -> BatchResult:
    """Decode the readings array of an already parsed batch payload."""
    items = _resolve(root, mapping._readings)
    if items is _MISSING:
        raise MalformedPayload(f"{mapping.readings}: required field is missing")
    if type(items) is not list:
        raise WrongType(f"{mapping.readings}: expected array, got {_json_type(items)}")
    if len(items) > options.max_batch:
        raise PayloadTooLarge(f"batch has {len(items)} readings, limit is {options.max_batch}")
    readings: list[SensorReading] = []
    rejected: list[RejectedItem] = []
    sid_path = mapping._paths[4]
    sid_key = None if mapping._flat is None else mapping._flat[4]
    for index, item in enumerate(items):
        try:
            raw_sid = (
                item.get(sid_key, _MISSING)
                if sid_key is not None and type(item) is dict
                else _resolve(item, sid_path)
            )
            problem = _id_problem(raw_sid)
            if problem is not None:
                if raw_sid is _MISSING:
                    raise MalformedPayload(f"{mapping.sensor_id}: required field is missing")
                error_type = WrongType if type(raw_sid) is not str else MalformedPayload
                raise error_type(f"{mapping.sensor_id}: sensor id {problem}")
            readings.append(_reading(item, device_id, raw_sid, mapping, window))
        except DecodeError as exc:
            # Drop the traceback: thousands of rejected items must not pin their frames.
            rejected.append(RejectedItem(index, exc.with_traceback(None)))
    return BatchResult(tuple(readings), tuple(rejected))


def decode_message(
    topic: str,
    payload: Payload,
    *,
    received_at: datetime,
    scheme: TopicScheme = DEFAULT_TOPIC_SCHEME,
    mapping: PayloadMapping = DEFAULT_MAPPING,
    options: DecodeOptions = DEFAULT_OPTIONS,
) -> BatchResult:
    """Route a message by topic to the single or batch decoder and return a BatchResult.

    A bad single-reading payload raises (the payload is the only item); a bad batch item
    is reported in ``rejected``.
    """
    device_id, sensor_id = parse_topic(topic, scheme)
    window = _window(received_at, options)
    root = _load(payload, options.max_payload_bytes)
    if sensor_id is None:
        return _batch(root, device_id, mapping, options, window)
    return BatchResult((_reading(root, device_id, sensor_id, mapping, window),))
