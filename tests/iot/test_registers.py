"""Tests for Modbus register maps: decoding, read planning, block decoding and probing."""

from __future__ import annotations

import itertools
import math
import struct
from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from maintainpro.iot.decode import MalformedPayload, NonFiniteValue
from maintainpro.iot.readings import SensorReading
from maintainpro.iot.registers import (
    MAX_READ_COUNT,
    ByteOrder,
    DataType,
    ReadRequest,
    RegisterFunction,
    RegisterSpec,
    decode_block,
    decode_registers,
    encode_registers,
    interpretations,
    plan_reads,
)

HOLDING = RegisterFunction.HOLDING
INPUT = RegisterFunction.INPUT
COIL = RegisterFunction.COIL
DISCRETE = RegisterFunction.DISCRETE

NUMERIC_TYPES = [t for t in DataType if t is not DataType.BOOL]
STRUCT_FORMAT = {
    DataType.INT16: "h",
    DataType.UINT16: "H",
    DataType.INT32: "i",
    DataType.UINT32: "I",
    DataType.FLOAT32: "f",
    DataType.FLOAT64: "d",
}


def reference_words(data_type: DataType, order: ByteOrder, value: float) -> list[int]:
    """Independent encoder: permute the big-endian bytes as the order name says."""
    raw = struct.pack(">" + STRUCT_FORMAT[data_type], value)
    chunks = [raw[i : i + 2] for i in range(0, len(raw), 2)]
    if order in (ByteOrder.CDAB, ByteOrder.DCBA):
        chunks.reverse()
    if order in (ByteOrder.BADC, ByteOrder.DCBA):
        chunks = [chunk[::-1] for chunk in chunks]
    return [int.from_bytes(chunk, "big") for chunk in chunks]


def as_float32(value: float) -> float:
    """The double nearest to what a float32 register pair can carry."""
    result: float = struct.unpack(">f", struct.pack(">f", value))[0]
    return result


def spec(
    data_type: DataType,
    order: ByteOrder = ByteOrder.ABCD,
    *,
    sensor_id: str = "s",
    function: RegisterFunction = HOLDING,
    address: int = 0,
    scale: float = 1.0,
    offset: float = 0.0,
    bit: int | None = None,
) -> RegisterSpec:
    """Build a RegisterSpec with test-friendly defaults."""
    return RegisterSpec(sensor_id, function, address, data_type, order, scale, offset, bit)


# ------------------------------------------------------------------------------------------
# Known encodings (literal words, not derived from the code under test)
# ------------------------------------------------------------------------------------------

KNOWN = [
    (DataType.FLOAT32, 123.456, ByteOrder.ABCD, (0x42F6, 0xE979)),
    (DataType.FLOAT32, 123.456, ByteOrder.CDAB, (0xE979, 0x42F6)),
    (DataType.FLOAT32, 123.456, ByteOrder.BADC, (0xF642, 0x79E9)),
    (DataType.FLOAT32, 123.456, ByteOrder.DCBA, (0x79E9, 0xF642)),
    (DataType.INT32, -2, ByteOrder.ABCD, (0xFFFF, 0xFFFE)),
    (DataType.INT32, -2, ByteOrder.CDAB, (0xFFFE, 0xFFFF)),
    (DataType.INT32, -2, ByteOrder.BADC, (0xFFFF, 0xFEFF)),
    (DataType.INT32, -2, ByteOrder.DCBA, (0xFEFF, 0xFFFF)),
    (DataType.UINT32, 0x12345678, ByteOrder.ABCD, (0x1234, 0x5678)),
    (DataType.UINT32, 0x12345678, ByteOrder.CDAB, (0x5678, 0x1234)),
    (DataType.UINT32, 0x12345678, ByteOrder.BADC, (0x3412, 0x7856)),
    (DataType.UINT32, 0x12345678, ByteOrder.DCBA, (0x7856, 0x3412)),
    (DataType.FLOAT64, math.pi, ByteOrder.ABCD, (0x4009, 0x21FB, 0x5444, 0x2D18)),
    (DataType.FLOAT64, math.pi, ByteOrder.CDAB, (0x2D18, 0x5444, 0x21FB, 0x4009)),
    (DataType.FLOAT64, math.pi, ByteOrder.BADC, (0x0940, 0xFB21, 0x4454, 0x182D)),
    (DataType.FLOAT64, math.pi, ByteOrder.DCBA, (0x182D, 0x4454, 0xFB21, 0x0940)),
    (DataType.INT16, -2, ByteOrder.ABCD, (0xFFFE,)),
    (DataType.INT16, -2, ByteOrder.CDAB, (0xFFFE,)),
    (DataType.INT16, -2, ByteOrder.BADC, (0xFEFF,)),
    (DataType.INT16, -2, ByteOrder.DCBA, (0xFEFF,)),
    (DataType.UINT16, 0x1234, ByteOrder.ABCD, (0x1234,)),
    (DataType.UINT16, 0x1234, ByteOrder.CDAB, (0x1234,)),
    (DataType.UINT16, 0x1234, ByteOrder.BADC, (0x3412,)),
    (DataType.UINT16, 0x1234, ByteOrder.DCBA, (0x3412,)),
]


@pytest.mark.parametrize(("data_type", "value", "order", "words"), KNOWN)
def test_known_encodings_decode(
    data_type: DataType, value: float, order: ByteOrder, words: tuple[int, ...]
) -> None:
    expected = as_float32(value) if data_type is DataType.FLOAT32 else value
    assert decode_registers(spec(data_type, order), words) == expected
    assert reference_words(data_type, order, value) == list(words)


@pytest.mark.parametrize(("data_type", "value", "order", "words"), KNOWN)
def test_known_encodings_encode(
    data_type: DataType, value: float, order: ByteOrder, words: tuple[int, ...]
) -> None:
    assert encode_registers(data_type, order, value) == words


SAMPLES: dict[DataType, list[float]] = {
    DataType.INT16: [-32768, -1, 0, 1, 32767],
    DataType.UINT16: [0, 1, 0x8000, 65535],
    DataType.INT32: [-(2**31), -70000, -1, 0, 70000, 2**31 - 1],
    DataType.UINT32: [0, 1, 65536, 2**32 - 1],
    DataType.FLOAT32: [0.0, -1.5, as_float32(123.456), as_float32(3.4e38), as_float32(1e-45)],
    DataType.FLOAT64: [0.0, math.pi, -1e300, 5e-324, 1.7976931348623157e308],
}


@pytest.mark.parametrize("order", list(ByteOrder))
@pytest.mark.parametrize("data_type", NUMERIC_TYPES)
def test_every_type_in_every_order(data_type: DataType, order: ByteOrder) -> None:
    for value in SAMPLES[data_type]:
        words = reference_words(data_type, order, value)
        assert decode_registers(spec(data_type, order), words) == value
        assert encode_registers(data_type, order, value) == tuple(words)


@pytest.mark.parametrize("order", list(ByteOrder))
@pytest.mark.parametrize("data_type", NUMERIC_TYPES)
def test_scale_and_offset_apply_to_every_type(data_type: DataType, order: ByteOrder) -> None:
    words = reference_words(data_type, order, 100)
    decoded = decode_registers(spec(data_type, order, scale=0.1, offset=-5.0), words)
    assert decoded == pytest.approx(5.0)
    assert type(decoded) is float


def test_count_matches_data_type() -> None:
    counts = {t: spec(t).count for t in DataType}
    assert counts == {
        DataType.INT16: 1,
        DataType.UINT16: 1,
        DataType.INT32: 2,
        DataType.UINT32: 2,
        DataType.FLOAT32: 2,
        DataType.FLOAT64: 4,
        DataType.BOOL: 1,
    }
    assert spec(DataType.FLOAT64, address=10).end == 14


# ------------------------------------------------------------------------------------------
# Booleans
# ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("function", [COIL, DISCRETE])
@pytest.mark.parametrize(("bit", "expected"), [(True, 1.0), (False, 0.0), (1, 1.0), (0, 0.0)])
def test_bit_functions_decode_bits(function: RegisterFunction, bit: int, expected: float) -> None:
    assert decode_registers(spec(DataType.BOOL, function=function), [bit]) == expected


@pytest.mark.parametrize("bad", [2, -1, 65535])
def test_bit_function_rejects_non_bits(bad: int) -> None:
    with pytest.raises(MalformedPayload, match="not 0/1"):
        decode_registers(spec(DataType.BOOL, function=COIL), [bad])


@pytest.mark.parametrize(
    ("word", "bit", "expected"),
    [(0, None, 0.0), (1, None, 1.0), (0x8000, None, 1.0), (0b1000, 3, 1.0), (0b1000, 2, 0.0)],
)
def test_bool_in_register(word: int, bit: int | None, expected: float) -> None:
    assert decode_registers(spec(DataType.BOOL, bit=bit), [word]) == expected


def test_bool_in_register_rejects_out_of_range_word() -> None:
    with pytest.raises(MalformedPayload):
        decode_registers(spec(DataType.BOOL), [65536])


def test_bool_encodes_to_single_word() -> None:
    assert encode_registers(DataType.BOOL, ByteOrder.ABCD, 1) == (1,)
    assert encode_registers(DataType.BOOL, ByteOrder.ABCD, 0) == (0,)


# ------------------------------------------------------------------------------------------
# Hostile register values
# ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("order", list(ByteOrder))
@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf], ids=["nan", "inf", "-inf"])
@pytest.mark.parametrize("data_type", [DataType.FLOAT32, DataType.FLOAT64])
def test_non_finite_floats_rejected(data_type: DataType, value: float, order: ByteOrder) -> None:
    words = reference_words(data_type, order, value)
    with pytest.raises(NonFiniteValue):
        decode_registers(spec(data_type, order), words)


def test_scaling_overflow_is_non_finite() -> None:
    words = reference_words(DataType.FLOAT64, ByteOrder.ABCD, 1e308)
    with pytest.raises(NonFiniteValue):
        decode_registers(spec(DataType.FLOAT64, scale=10.0), words)


@pytest.mark.parametrize("words", [[], [1], [1, 2, 3]], ids=["none", "too-few", "too-many"])
def test_wrong_word_count(words: list[int]) -> None:
    with pytest.raises(MalformedPayload, match="expected 2"):
        decode_registers(spec(DataType.FLOAT32), words)


@pytest.mark.parametrize("words", [[65536, 0], [-1, 0], [0, 1.5]])
def test_words_outside_16_bits(words: list[int]) -> None:
    with pytest.raises(MalformedPayload, match=r"0\.\.65535"):
        decode_registers(spec(DataType.INT32), words)


@given(words=st.lists(st.integers(0, 0xFFFF), min_size=4, max_size=4))
def test_any_words_decode_or_raise_decode_error(words: list[int]) -> None:
    for data_type in NUMERIC_TYPES:
        for order in ByteOrder:
            s = spec(data_type, order)
            chunk = words[: s.count]
            try:
                value = decode_registers(s, chunk)
            except NonFiniteValue:
                continue
            assert math.isfinite(value)


# ------------------------------------------------------------------------------------------
# Round trips (property based)
# ------------------------------------------------------------------------------------------

VALUES: dict[DataType, st.SearchStrategy[float]] = {
    DataType.INT16: st.integers(-(2**15), 2**15 - 1),
    DataType.UINT16: st.integers(0, 2**16 - 1),
    DataType.INT32: st.integers(-(2**31), 2**31 - 1),
    DataType.UINT32: st.integers(0, 2**32 - 1),
    DataType.FLOAT32: st.floats(width=32, allow_nan=False, allow_infinity=False),
    DataType.FLOAT64: st.floats(allow_nan=False, allow_infinity=False),
}


@pytest.mark.parametrize("order", list(ByteOrder))
@pytest.mark.parametrize("data_type", NUMERIC_TYPES)
@given(data=st.data())
def test_round_trip(data: st.DataObject, data_type: DataType, order: ByteOrder) -> None:
    value = data.draw(VALUES[data_type])
    words = encode_registers(data_type, order, value)
    assert list(words) == reference_words(data_type, order, value)
    assert all(0 <= w <= 0xFFFF for w in words)
    assert decode_registers(spec(data_type, order), words) == value


def test_encode_rejects_values_that_do_not_fit() -> None:
    with pytest.raises(ValueError, match="does not fit"):
        encode_registers(DataType.INT16, ByteOrder.ABCD, 40000)
    with pytest.raises(ValueError, match="does not fit"):
        encode_registers(DataType.FLOAT32, ByteOrder.ABCD, 1e300)


# ------------------------------------------------------------------------------------------
# RegisterSpec validation
# ------------------------------------------------------------------------------------------


def test_spec_accepts_plain_strings_from_config() -> None:
    s = RegisterSpec("flow", "input", 7, "float32", "CDAB", 2.0)  # type: ignore[arg-type]
    assert s.function is RegisterFunction.INPUT
    assert s.data_type is DataType.FLOAT32
    assert s.order is ByteOrder.CDAB


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"data_type": DataType.FLOAT32, "function": COIL}, "must be bool"),
        ({"data_type": DataType.UINT16, "function": DISCRETE}, "must be bool"),
        ({"data_type": DataType.UINT16, "address": -1}, "outside 0..65535"),
        ({"data_type": DataType.UINT16, "address": 65536}, "outside 0..65535"),
        ({"data_type": DataType.FLOAT64, "address": 65533}, "runs past"),
        ({"data_type": DataType.UINT16, "bit": 1}, "bit is only valid"),
        ({"data_type": DataType.BOOL, "function": COIL, "bit": 1}, "bit is only valid"),
        ({"data_type": DataType.BOOL, "bit": 16}, "outside 0..15"),
        ({"data_type": DataType.UINT16, "scale": math.nan}, "finite"),
        ({"data_type": DataType.UINT16, "offset": math.inf}, "finite"),
        ({"data_type": DataType.UINT16, "sensor_id": "bad id"}, "sensor_id"),
        ({"data_type": DataType.UINT16, "sensor_id": ""}, "sensor_id"),
    ],
)
def test_spec_validation(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        spec(**kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "args",
    [("s", "holdings", 0), ("s", "holding", 0, "float16"), ("s", "holding", 0, "int16", "ABDC")],
)
def test_spec_rejects_unknown_enum_strings(args: tuple[object, ...]) -> None:
    with pytest.raises(ValueError, match="RegisterSpec"):
        RegisterSpec(*args)  # type: ignore[arg-type]


def test_float64_fits_at_top_of_address_space() -> None:
    assert spec(DataType.FLOAT64, address=65532).end == 65536


# ------------------------------------------------------------------------------------------
# plan_reads
# ------------------------------------------------------------------------------------------


def _ranges(requests: tuple[ReadRequest, ...]) -> list[tuple[str, int, int]]:
    return [(str(r.function), r.address, r.count) for r in requests]


def test_plan_merges_adjacent_registers() -> None:
    specs = [
        spec(DataType.UINT16, sensor_id="a", address=0),
        spec(DataType.FLOAT32, sensor_id="b", address=1),
        spec(DataType.INT16, sensor_id="c", address=3),
    ]
    (request,) = plan_reads(specs)
    assert (request.function, request.address, request.count) == (HOLDING, 0, 4)
    assert [s.sensor_id for s in request.specs] == ["a", "b", "c"]


@pytest.mark.parametrize(("max_gap", "expected"), [(0, 2), (3, 2), (4, 1), (100, 1)])
def test_plan_respects_max_gap(max_gap: int, expected: int) -> None:
    specs = [
        spec(DataType.UINT16, sensor_id="a", address=0),
        spec(DataType.UINT16, sensor_id="b", address=5),
    ]
    assert len(plan_reads(specs, max_gap=max_gap)) == expected


def test_plan_sorts_unordered_input() -> None:
    specs = [
        spec(DataType.UINT16, sensor_id="c", address=2),
        spec(DataType.UINT16, sensor_id="a", address=0),
        spec(DataType.UINT16, sensor_id="b", address=1),
    ]
    assert _ranges(plan_reads(specs)) == [("holding", 0, 3)]


def test_plan_splits_at_protocol_limit_for_registers() -> None:
    specs = [spec(DataType.UINT16, sensor_id=f"r{i}", address=i) for i in range(130)]
    assert _ranges(plan_reads(specs)) == [("holding", 0, 125), ("holding", 125, 5)]


def test_plan_does_not_split_a_value_across_requests() -> None:
    specs = [spec(DataType.UINT16, sensor_id=f"r{i}", address=i) for i in range(124)]
    specs.append(spec(DataType.FLOAT32, sensor_id="f", address=124))
    assert _ranges(plan_reads(specs)) == [("holding", 0, 124), ("holding", 124, 2)]


def test_plan_splits_at_protocol_limit_for_coils() -> None:
    specs = [spec(DataType.BOOL, sensor_id=f"c{i}", function=COIL, address=i) for i in range(2500)]
    assert _ranges(plan_reads(specs)) == [("coil", 0, 2000), ("coil", 2000, 500)]


def test_plan_separates_functions() -> None:
    specs = [
        spec(DataType.UINT16, sensor_id="h", function=HOLDING, address=0),
        spec(DataType.UINT16, sensor_id="i", function=INPUT, address=1),
        spec(DataType.BOOL, sensor_id="c", function=COIL, address=0),
        spec(DataType.BOOL, sensor_id="d", function=DISCRETE, address=1),
    ]
    assert _ranges(plan_reads(specs, max_gap=10)) == [
        ("holding", 0, 1),
        ("input", 1, 1),
        ("coil", 0, 1),
        ("discrete", 1, 1),
    ]


def test_plan_max_count_caps_but_never_exceeds_protocol() -> None:
    specs = [spec(DataType.UINT16, sensor_id=f"r{i}", address=i) for i in range(30)]
    assert [r.count for r in plan_reads(specs, max_count=10)] == [10, 10, 10]
    many = [spec(DataType.UINT16, sensor_id=f"r{i}", address=i) for i in range(300)]
    assert max(r.count for r in plan_reads(many, max_count=1000)) == 125


def test_plan_overlapping_specs_share_a_request() -> None:
    specs = [
        spec(DataType.FLOAT32, sensor_id="as_float", address=10),
        spec(DataType.UINT32, sensor_id="as_uint", address=10),
        spec(DataType.UINT16, sensor_id="high_word", address=10),
    ]
    assert _ranges(plan_reads(specs)) == [("holding", 10, 2)]


def test_plan_rejects_bad_arguments() -> None:
    one = [spec(DataType.FLOAT64, sensor_id="x")]
    with pytest.raises(ValueError, match="max_gap"):
        plan_reads(one, max_gap=-1)
    with pytest.raises(ValueError, match="max_count"):
        plan_reads(one, max_count=0)
    with pytest.raises(ValueError, match="needs 4 registers"):
        plan_reads(one, max_count=3)
    with pytest.raises(ValueError, match="duplicate"):
        plan_reads([spec(DataType.UINT16, sensor_id="x"), spec(DataType.INT16, sensor_id="x")])


def test_plan_of_nothing_is_empty() -> None:
    assert plan_reads([]) == ()


@st.composite
def register_maps(draw: st.DrawFn) -> list[RegisterSpec]:
    """Random register maps, including overlapping and bit-function specs."""
    size = draw(st.integers(0, 60))
    specs: list[RegisterSpec] = []
    for index in range(size):
        function = draw(st.sampled_from(list(RegisterFunction)))
        if function in (COIL, DISCRETE):
            data_type = DataType.BOOL
        else:
            data_type = draw(st.sampled_from(list(DataType)))
        width = spec(data_type).count
        address = draw(st.integers(0, 0xFFFF - width + 1))
        specs.append(spec(data_type, sensor_id=f"s{index}", function=function, address=address))
    return specs


@settings(max_examples=300)
@given(
    specs=register_maps(),
    max_gap=st.integers(0, 300),
    max_count=st.none() | st.integers(4, 3000),
)
def test_plan_covers_every_spec_once_within_limits(
    specs: list[RegisterSpec], max_gap: int, max_count: int | None
) -> None:
    requests = plan_reads(specs, max_gap=max_gap, max_count=max_count)
    planned = [s.sensor_id for r in requests for s in r.specs]
    assert sorted(planned) == sorted(s.sensor_id for s in specs)
    assert len(planned) == len(set(planned))
    for request in requests:
        limit = MAX_READ_COUNT[request.function]
        if max_count is not None:
            limit = min(limit, max_count)
        assert 1 <= request.count <= limit
        assert request.address >= 0
        assert request.address + request.count <= 0x10000
        for s in request.specs:
            assert s.function is request.function
            assert request.address <= s.address
            assert s.end <= request.address + request.count
    # Greedy packing leaves no two consecutive requests of a function that could be merged.
    for first, second in itertools.pairwise(requests):
        if first.function is not second.function:
            continue
        end = first.address + first.count
        gap = second.specs[0].address - end
        merged = max(end, second.address + second.count) - first.address
        limit = MAX_READ_COUNT[first.function]
        if max_count is not None:
            limit = min(limit, max_count)
        assert gap > max_gap or merged > limit


@st.composite
def laid_out_maps(draw: st.DrawFn) -> tuple[list[RegisterSpec], dict[str, float]]:
    """Non-overlapping holding-register maps with a value for each spec."""
    specs: list[RegisterSpec] = []
    values: dict[str, float] = {}
    address = draw(st.integers(0, 1000))
    for index in range(draw(st.integers(1, 40))):
        data_type = draw(st.sampled_from(NUMERIC_TYPES))
        order = draw(st.sampled_from(list(ByteOrder)))
        s = spec(data_type, order, sensor_id=f"s{index}", address=address)
        specs.append(s)
        values[s.sensor_id] = draw(VALUES[data_type])
        address = s.end + draw(st.integers(0, 20))
    return specs, values


@settings(max_examples=200)
@given(laid_out=laid_out_maps(), max_gap=st.integers(0, 25))
def test_planned_reads_decode_back_to_values(
    laid_out: tuple[list[RegisterSpec], dict[str, float]], max_gap: int
) -> None:
    specs, values = laid_out
    image = [0] * 0x10000
    for s in specs:
        words = encode_registers(s.data_type, s.order, values[s.sensor_id])
        image[s.address : s.end] = words
    decoded: dict[str, float] = {}
    for request in plan_reads(specs, max_gap=max_gap):
        result = request.decode(image[request.address : request.address + request.count])
        assert result.rejected == ()
        decoded.update(result.values)
    assert decoded == values


# ------------------------------------------------------------------------------------------
# decode_block
# ------------------------------------------------------------------------------------------


def test_decode_block_extracts_each_value() -> None:
    specs = [
        spec(DataType.FLOAT32, sensor_id="temp", address=100),
        spec(DataType.INT16, sensor_id="level", address=103, scale=0.5),
    ]
    block = [0x42F6, 0xE979, 0xDEAD, 0xFFFE]
    result = decode_block(specs, 100, block)
    assert result.values == {"temp": as_float32(123.456), "level": -1.0}
    assert result.rejected == ()


def test_decode_block_short_response_keeps_covered_values() -> None:
    specs = [
        spec(DataType.UINT16, sensor_id="before", address=9),
        spec(DataType.UINT16, sensor_id="ok", address=10),
        spec(DataType.FLOAT32, sensor_id="cut", address=11),
    ]
    result = decode_block(specs, 10, [7, 1])
    assert result.values == {"ok": 7.0}
    assert [(r.index, type(r.error)) for r in result.rejected] == [
        (0, MalformedPayload),
        (2, MalformedPayload),
    ]
    assert "does not cover" in result.rejected[1].reason


def test_decode_block_isolates_bad_values() -> None:
    nan_words = reference_words(DataType.FLOAT32, ByteOrder.ABCD, math.nan)
    specs = [
        spec(DataType.FLOAT32, sensor_id="faulted", address=0),
        spec(DataType.UINT16, sensor_id="garbage", address=2),
        spec(DataType.UINT16, sensor_id="fine", address=3),
    ]
    result = decode_block(specs, 0, [*nan_words, 70000, 42])
    assert result.values == {"fine": 42.0}
    assert [(r.index, type(r.error)) for r in result.rejected] == [
        (0, NonFiniteValue),
        (1, MalformedPayload),
    ]
    assert all(r.error.__traceback__ is None for r in result.rejected)


def test_decode_block_coils() -> None:
    specs = [spec(DataType.BOOL, sensor_id=f"c{i}", function=COIL, address=i) for i in range(3)]
    result = decode_block(specs, 0, [True, False, True])
    assert result.values == {"c0": 1.0, "c1": 0.0, "c2": 1.0}


def test_decode_block_rejects_mixed_functions_and_duplicates() -> None:
    mixed = [
        spec(DataType.UINT16, sensor_id="h"),
        spec(DataType.UINT16, sensor_id="i", function=INPUT),
    ]
    with pytest.raises(ValueError, match="single function"):
        decode_block(mixed, 0, [1])
    dupes = [spec(DataType.UINT16, sensor_id="x"), spec(DataType.INT16, sensor_id="x")]
    with pytest.raises(ValueError, match="duplicate"):
        decode_block(dupes, 0, [1])


def test_block_result_to_readings() -> None:
    when = datetime(2026, 11, 27, 10, 0, tzinfo=UTC)
    result = decode_block([spec(DataType.UINT16, sensor_id="rpm", scale=10.0)], 0, [150])
    assert result.readings("pump-1", when) == (SensorReading("pump-1", "rpm", 1500.0, when),)


def test_block_result_values_are_read_only() -> None:
    result = decode_block([spec(DataType.UINT16)], 0, [1])
    with pytest.raises(TypeError):
        result.values["s"] = 2.0  # type: ignore[index]


# ------------------------------------------------------------------------------------------
# interpretations (probe)
# ------------------------------------------------------------------------------------------


def test_interpretations_show_every_type_and_order() -> None:
    rows = interpretations([0x42F6, 0xE979], start=40001)
    table = {(r.address, r.data_type, r.order): r.value for r in rows}
    # Offset 0: 2 one-word types x 2 distinct orders + 3 two-word types x 4 orders; offset 1: 4.
    assert len(rows) == 4 + 12 + 4
    assert table[(40001, DataType.FLOAT32, ByteOrder.ABCD)] == as_float32(123.456)
    assert table[(40001, DataType.UINT32, ByteOrder.CDAB)] == 0xE97942F6
    assert table[(40001, DataType.UINT16, ByteOrder.BADC)] == 0xF642
    assert table[(40002, DataType.INT16, ByteOrder.ABCD)] == 0xE979 - 0x10000
    assert not any(r.data_type is DataType.FLOAT64 for r in rows)
    assert rows[0].words == (0x42F6,)


def test_interpretations_keep_non_finite_for_the_operator() -> None:
    rows = interpretations([0x7FC0, 0x0000])
    value = next(
        r.value for r in rows if r.data_type is DataType.FLOAT32 and r.order is ByteOrder.ABCD
    )
    assert math.isnan(value)


def test_interpretations_of_four_words_include_float64() -> None:
    words = reference_words(DataType.FLOAT64, ByteOrder.DCBA, math.e)
    rows = interpretations(words)
    assert any(
        r.data_type is DataType.FLOAT64 and r.order is ByteOrder.DCBA and r.value == math.e
        for r in rows
    )


@pytest.mark.parametrize("words", [[65536], [-1], [1.0]])
def test_interpretations_reject_bad_words(words: list[int]) -> None:
    with pytest.raises(MalformedPayload):
        interpretations(words)


def test_interpretations_of_nothing() -> None:
    assert interpretations([]) == ()
