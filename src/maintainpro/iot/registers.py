"""Pure Modbus register maps: read planning and decoding of 16-bit words to engineering values.

Byte/word order names describe where the bytes of the big-endian value ``A B C D`` land in the
registers, as in most device manuals and gateways:

* ``ABCD``: big-endian words in big-endian order (Modbus default),
* ``CDAB``: word-swapped (low word first), the usual "little-endian" PLC float,
* ``BADC``: bytes swapped inside each word, words in big-endian order,
* ``DCBA``: fully little-endian.

For 64-bit types the rule is the same over four words (``CDAB`` reverses all four words,
``BADC`` swaps bytes inside each). For 16-bit types only the byte swap matters, so ``CDAB``
decodes like ``ABCD`` and ``DCBA`` like ``BADC``.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from math import isfinite
from types import MappingProxyType
from typing import Final, NamedTuple

from maintainpro.iot.decode import (
    DecodeError,
    MalformedPayload,
    NonFiniteValue,
    RejectedItem,
    validate_id,
)
from maintainpro.iot.readings import Quality, SensorReading

__all__ = [
    "MAX_READ_COUNT",
    "BlockResult",
    "ByteOrder",
    "DataType",
    "Interpretation",
    "ReadRequest",
    "RegisterFunction",
    "RegisterSpec",
    "decode_block",
    "decode_registers",
    "encode_registers",
    "interpretations",
    "plan_reads",
]


class RegisterFunction(StrEnum):
    """Modbus data table a value is read from (function codes 3, 4, 1 and 2)."""

    HOLDING = "holding"
    INPUT = "input"
    COIL = "coil"
    DISCRETE = "discrete"


class DataType(StrEnum):
    """How the register words of one value are interpreted."""

    INT16 = "int16"
    UINT16 = "uint16"
    INT32 = "int32"
    UINT32 = "uint32"
    FLOAT32 = "float32"
    FLOAT64 = "float64"
    BOOL = "bool"


class ByteOrder(StrEnum):
    """Placement of the value's big-endian bytes ``ABCD`` in the registers (see module doc)."""

    ABCD = "ABCD"
    CDAB = "CDAB"
    BADC = "BADC"
    DCBA = "DCBA"


MAX_READ_COUNT: Final[Mapping[RegisterFunction, int]] = MappingProxyType(
    {
        # Modbus application protocol spec v1.1b3: quantity limits of FC 3/4 and FC 1/2.
        RegisterFunction.HOLDING: 125,
        RegisterFunction.INPUT: 125,
        RegisterFunction.COIL: 2000,
        RegisterFunction.DISCRETE: 2000,
    }
)
"""Largest quantity one read request may ask for, per function."""

_BIT_FUNCTIONS: Final = frozenset({RegisterFunction.COIL, RegisterFunction.DISCRETE})

# struct format character and word count of every numeric type.
_FORMATS: Final[Mapping[DataType, tuple[str, int]]] = MappingProxyType(
    {
        DataType.INT16: ("h", 1),
        DataType.UINT16: ("H", 1),
        DataType.INT32: ("i", 2),
        DataType.UINT32: ("I", 2),
        DataType.FLOAT32: ("f", 2),
        DataType.FLOAT64: ("d", 4),
    }
)

# (reverse the word list, byte order of each word) that turns registers back into ABCD bytes.
_ORDERS: Final[Mapping[ByteOrder, tuple[bool, str]]] = MappingProxyType(
    {
        ByteOrder.ABCD: (False, ">"),
        ByteOrder.CDAB: (True, ">"),
        ByteOrder.BADC: (False, "<"),
        ByteOrder.DCBA: (True, "<"),
    }
)

_FLOAT_TYPES: Final = frozenset({DataType.FLOAT32, DataType.FLOAT64})

# Orders that are distinct for one-word types; the others duplicate them.
_WORD_ORDERS: Final = (ByteOrder.ABCD, ByteOrder.BADC)


class _Codec(NamedTuple):
    """Precompiled structs converting between register words and one value."""

    words: struct.Struct
    value: struct.Struct
    reverse: bool
    size: int


_CODECS: Final[Mapping[tuple[DataType, ByteOrder], _Codec]] = MappingProxyType(
    {
        (data_type, order): _Codec(
            struct.Struct(f"{byte_order}{count}H"), struct.Struct(f">{fmt}"), reverse, count
        )
        for data_type, (fmt, count) in _FORMATS.items()
        for order, (reverse, byte_order) in _ORDERS.items()
    }
)


@dataclass(frozen=True, slots=True)
class RegisterSpec:
    """Where and how one sensor value lives in a device's Modbus map.

    ``bit`` selects one bit of a holding/input register for BOOL values (None: nonzero is true).
    Enum fields also accept their string values, so specs can be loaded from plain config.
    """

    sensor_id: str
    function: RegisterFunction
    address: int
    data_type: DataType = DataType.UINT16
    order: ByteOrder = ByteOrder.ABCD
    scale: float = 1.0
    offset: float = 0.0
    bit: int | None = None
    _codec: _Codec | None = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        """Coerce config strings to enums and reject maps no device could have."""
        setattr_ = object.__setattr__
        try:
            validate_id(self.sensor_id, "sensor_id")
            setattr_(self, "function", RegisterFunction(self.function))
            setattr_(self, "data_type", DataType(self.data_type))
            setattr_(self, "order", ByteOrder(self.order))
        except ValueError as exc:  # DecodeError is a ValueError; config errors stay plain
            raise ValueError(f"RegisterSpec {self.sensor_id!r}: {exc}") from None
        # BOOL has no struct codec (None); everything else is decoded through a shared one.
        setattr_(self, "_codec", _CODECS.get((self.data_type, self.order)))
        problem = self._problem()
        if problem is not None:
            raise ValueError(f"RegisterSpec {self.sensor_id!r}: {problem}")

    def _problem(self) -> str | None:
        """Why this spec is inconsistent, or None."""
        is_bits = self.function in _BIT_FUNCTIONS
        if type(self.address) is not int or not 0 <= self.address <= 0xFFFF:
            return f"address {self.address!r} outside 0..65535"
        if self.address + self.count - 1 > 0xFFFF:
            return f"{self.data_type} at {self.address} runs past address 65535"
        if is_bits and self.data_type is not DataType.BOOL:
            return f"{self.function} values are bits; data_type must be bool"
        if self.bit is not None and (is_bits or self.data_type is not DataType.BOOL):
            return "bit is only valid for bool values in holding/input registers"
        if self.bit is not None and not 0 <= self.bit <= 15:
            return f"bit {self.bit} outside 0..15"
        if not (isfinite(self.scale) and isfinite(self.offset)):
            return "scale and offset must be finite"
        return None

    @property
    def count(self) -> int:
        """Registers (or bits) this value occupies."""
        return 1 if self._codec is None else self._codec.size

    @property
    def end(self) -> int:
        """First address after this value."""
        return self.address + self.count


def _bad_words(words: Sequence[int], spec: RegisterSpec) -> MalformedPayload:
    """Build the error for register words that are not 16-bit unsigned integers."""
    return MalformedPayload(
        f"{spec.sensor_id}: registers {list(words)!r} are not all integers in 0..65535"
    )


def _raw_value(spec: RegisterSpec, words: Sequence[int]) -> float:
    """Decode exactly ``spec.count`` words/bits to the raw (unscaled) value."""
    if len(words) != spec.count:
        raise MalformedPayload(
            f"{spec.sensor_id}: expected {spec.count} register(s), got {len(words)}"
        )
    codec = spec._codec
    if codec is not None:
        try:
            packed = codec.words.pack(*(reversed(words) if codec.reverse else words))
        except struct.error:
            raise _bad_words(words, spec) from None
        return float(codec.value.unpack(packed)[0])
    word = words[0]
    if spec.function in _BIT_FUNCTIONS:
        # pymodbus hands bits back as bools; 0/1 ints are accepted too.
        if word not in (0, 1):
            raise MalformedPayload(f"{spec.sensor_id}: bit value {word!r} is not 0/1")
        return float(word)
    if type(word) not in (int, bool) or not 0 <= word <= 0xFFFF:
        raise _bad_words(words, spec)
    if spec.bit is None:
        return 1.0 if word else 0.0
    return float((word >> spec.bit) & 1)


def decode_registers(spec: RegisterSpec, words: Sequence[int]) -> float:
    """Decode one value's registers to the engineering value ``raw * scale + offset``.

    Raises MalformedPayload for a wrong word count or words outside 0..65535, and
    NonFiniteValue for NaN/Inf (devices often signal a sensor fault with a NaN float).
    """
    value = _raw_value(spec, words) * spec.scale + spec.offset
    if not isfinite(value):
        raise NonFiniteValue(f"{spec.sensor_id}: decoded value is {value!r}")
    return value


def encode_registers(data_type: DataType, order: ByteOrder, value: float) -> tuple[int, ...]:
    """Encode a raw value into register words (for simulators and commissioning tests)."""
    if data_type is DataType.BOOL:
        return (1 if value else 0,)
    codec = _CODECS[(DataType(data_type), ByteOrder(order))]
    raw = float(value) if data_type in _FLOAT_TYPES else int(value)
    try:
        words: tuple[int, ...] = codec.words.unpack(codec.value.pack(raw))
    except (struct.error, OverflowError) as exc:
        raise ValueError(f"{value!r} does not fit {data_type}: {exc}") from None
    return words[::-1] if codec.reverse else words


# --------------------------------------------------------------------------------------------
# Block reads
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class BlockResult:
    """Values decoded from one block read, plus the specs that could not be decoded."""

    values: Mapping[str, float]
    rejected: tuple[RejectedItem, ...] = ()

    def readings(
        self, device_id: str, timestamp: datetime, quality: Quality = Quality.GOOD
    ) -> tuple[SensorReading, ...]:
        """Turn the decoded values into readings stamped with the poll time."""
        return tuple(
            SensorReading(device_id, sensor_id, value, timestamp, quality)
            for sensor_id, value in self.values.items()
        )


def _check_unique(specs: Iterable[RegisterSpec]) -> None:
    """Refuse duplicate sensor ids: they would silently overwrite each other's readings."""
    seen: set[str] = set()
    for spec in specs:
        if spec.sensor_id in seen:
            raise ValueError(f"duplicate sensor_id {spec.sensor_id!r} in register map")
        seen.add(spec.sensor_id)


def decode_block(
    specs: Sequence[RegisterSpec], start: int, registers: Sequence[int]
) -> BlockResult:
    """Extract every spec's value from ``registers`` read from address ``start`` onwards.

    All specs must use one function. A spec the block does not cover (e.g. a short response)
    or whose words do not decode is reported in ``rejected`` by its index in ``specs``; the
    other values are still returned.
    """
    if len({spec.function for spec in specs}) > 1:
        raise ValueError("decode_block needs specs of a single function")
    _check_unique(specs)
    values: dict[str, float] = {}
    rejected: list[RejectedItem] = []
    available = len(registers)
    for index, spec in enumerate(specs):
        begin = spec.address - start
        end = begin + spec.count
        try:
            if begin < 0 or end > available:
                raise MalformedPayload(
                    f"{spec.sensor_id}: block {start}..{start + available - 1} does not cover "
                    f"{spec.address}..{spec.end - 1}"
                )
            values[spec.sensor_id] = decode_registers(spec, registers[begin:end])
        except DecodeError as exc:
            rejected.append(RejectedItem(index, exc.with_traceback(None)))
    return BlockResult(MappingProxyType(values), tuple(rejected))


@dataclass(frozen=True, slots=True)
class ReadRequest:
    """One Modbus read (function, start address, quantity) and the specs it serves."""

    function: RegisterFunction
    address: int
    count: int
    specs: tuple[RegisterSpec, ...]

    def decode(self, registers: Sequence[int]) -> BlockResult:
        """Decode this request's response."""
        return decode_block(self.specs, self.address, registers)


def plan_reads(
    specs: Iterable[RegisterSpec], max_gap: int = 0, max_count: int | None = None
) -> tuple[ReadRequest, ...]:
    """Group specs into as few read requests as possible.

    Specs of one function whose addresses are at most ``max_gap`` unused registers (or bits)
    apart share a request, as long as it stays within ``max_count`` (default and upper bound:
    the protocol limit, 125 registers or 2000 bits). ``max_gap`` defaults to 0 because some
    devices answer "illegal data address" when a read spans unmapped registers. Greedy packing
    in address order, which is optimal for non-overlapping specs.
    """
    if max_gap < 0:
        raise ValueError("max_gap must not be negative")
    if max_count is not None and max_count < 1:
        raise ValueError("max_count must be positive")
    specs = tuple(specs)
    _check_unique(specs)
    requests: list[ReadRequest] = []
    for function in RegisterFunction:
        group = sorted(
            (spec for spec in specs if spec.function is function),
            key=lambda spec: (spec.address, spec.count),
        )
        if not group:
            continue
        limit = MAX_READ_COUNT[function]
        if max_count is not None:
            limit = min(limit, max_count)
        members: list[RegisterSpec] = []
        block_start = block_end = 0
        for spec in group:
            if spec.count > limit:
                raise ValueError(f"{spec.sensor_id} needs {spec.count} registers, limit is {limit}")
            new_end = max(block_end, spec.end)
            if members and spec.address - block_end <= max_gap and new_end - block_start <= limit:
                members.append(spec)
                block_end = new_end
                continue
            if members:
                requests.append(
                    ReadRequest(function, block_start, block_end - block_start, tuple(members))
                )
            members = [spec]
            block_start, block_end = spec.address, spec.end
        requests.append(ReadRequest(function, block_start, block_end - block_start, tuple(members)))
    return tuple(requests)


# --------------------------------------------------------------------------------------------
# Commissioning probe
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Interpretation:
    """One way to read the words at ``address``: type, order and raw value (int for int types)."""

    address: int
    data_type: DataType
    order: ByteOrder
    value: float
    words: tuple[int, ...]


def interpretations(registers: Sequence[int], start: int = 0) -> tuple[Interpretation, ...]:
    """Every numeric type in every distinct order at every offset, for the ``probe`` command.

    Values are raw (unscaled) and NaN/Inf floats are kept: the operator is looking for the
    plausible reading among them. Raises MalformedPayload for words outside 0..65535.
    """
    words = tuple(registers)
    if any(type(word) is not int or not 0 <= word <= 0xFFFF for word in words):
        raise MalformedPayload(f"registers {list(words)!r} are not all integers in 0..65535")
    result: list[Interpretation] = []
    for offset in range(len(words)):
        for data_type, (_, size) in _FORMATS.items():
            chunk = words[offset : offset + size]
            if len(chunk) < size:
                continue
            for order in _WORD_ORDERS if size == 1 else tuple(ByteOrder):
                codec = _CODECS[(data_type, order)]
                packed = codec.words.pack(*(reversed(chunk) if codec.reverse else chunk))
                value = codec.value.unpack(packed)[0]
                result.append(Interpretation(start + offset, data_type, order, value, chunk))
    return tuple(result)
