"""Tests of outbound envelopes and the serialize/parse round trip (property based)."""

from __future__ import annotations

from datetime import datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from maintainpro.supply.edi.envelope import (
    EnvelopeLevel,
    EnvelopeSettings,
    PartyId,
    TransactionContent,
    build_interchange,
    sequential_control_numbers,
)
from maintainpro.supply.edi.errors import X12SerializationError
from maintainpro.supply.edi.model import Segment, Separators
from maintainpro.supply.edi.validation import validate_interchange
from maintainpro.supply.edi.x12 import parse_interchange, serialize_interchange

CREATED = datetime(2024, 3, 5, 7, 8)
SETTINGS = EnvelopeSettings(PartyId("ZZ", "MAINTAINPRO"), PartyId("01", "123456789"))


def content(set_id: str, functional_id: str, count: int) -> TransactionContent:
    """A transaction body with `count` REF segments."""
    segments = tuple(Segment("REF", ("ZZ", str(n))) for n in range(count))
    return TransactionContent(set_id, functional_id, segments)


def test_build_counts_and_control_numbers() -> None:
    """Build counts and control numbers."""
    contents = [content("850", "PO", 2), content("860", "PC", 0), content("850", "PO", 5)]
    interchange = build_interchange(
        contents, SETTINGS, sequential_control_numbers(start=41), CREATED
    )
    assert validate_interchange(interchange) == []
    assert interchange.control_number == "000000041"
    assert interchange.trailer.elements == ("2", "000000041")
    po, pc = interchange.groups
    assert (po.functional_id, po.control_number) == ("PO", "41")
    assert (pc.functional_id, pc.control_number) == ("PC", "42")
    assert po.trailer is not None
    assert po.trailer.elements == ("2", "41")
    assert [t.control_number for t in po.transaction_sets] == ["0041", "0042"]
    trailers = [t.trailer for t in po.transaction_sets]
    assert [t.elements for t in trailers if t is not None] == [("4", "0041"), ("7", "0042")]
    assert po.header.elements[3:5] == ("20240305", "0708")


def test_isa_is_fixed_width() -> None:
    """ISA is fixed width."""
    interchange = build_interchange([content("850", "PO", 1)], SETTINGS, lambda _: 7, CREATED)
    text = serialize_interchange(interchange)
    isa = text[: text.index("~") + 1]
    assert len(isa) == 106
    assert isa == (
        "ISA*00*          *00*          *ZZ*MAINTAINPRO    *01*123456789      "
        "*240305*0708*U*00401*000000007*0*P*>~"
    )


def test_caller_supplies_control_numbers_per_level() -> None:
    """Caller supplies control numbers per level."""
    requested: list[EnvelopeLevel] = []

    def numbers(level: EnvelopeLevel) -> int:
        requested.append(level)
        return 900 + len(requested)

    build_interchange([content("810", "IN", 1)] * 2, SETTINGS, numbers, CREATED)
    assert requested == [
        EnvelopeLevel.INTERCHANGE,
        EnvelopeLevel.GROUP,
        EnvelopeLevel.TRANSACTION_SET,
        EnvelopeLevel.TRANSACTION_SET,
    ]


@pytest.mark.parametrize("number", [0, -1, 1_000_000_000])
def test_control_number_out_of_range(number: int) -> None:
    """Control number out of range."""
    with pytest.raises(X12SerializationError, match="out of range"):
        build_interchange([], SETTINGS, lambda _: number, CREATED)


def test_party_id_too_long() -> None:
    """ISA party id too long raises."""
    bad = EnvelopeSettings(PartyId("ZZ", "X" * 16), PartyId("ZZ", "Y"))
    with pytest.raises(X12SerializationError, match="ISA06"):
        build_interchange([], bad, sequential_control_numbers(), CREATED)


def test_version_00501_writes_repetition_separator() -> None:
    """Version 00501 writes repetition separator."""
    custom = EnvelopeSettings(
        PartyId("ZZ", "A"),
        PartyId("ZZ", "B"),
        version="00501",
        group_version="005010",
        separators=Separators("|", "\n", ":", "^"),
    )
    interchange = build_interchange([content("997", "FA", 1)], custom, lambda _: 1, CREATED)
    text = serialize_interchange(interchange)
    assert text.split("\n")[0].split("|")[11:13] == ["^", "00501"]
    result = parse_interchange(text)
    assert result.ok
    assert result.interchange == interchange


def test_version_00401_drops_repetition_separator() -> None:
    """Version 00401 drops repetition separator."""
    interchange = build_interchange([], SETTINGS, lambda _: 3, CREATED)
    assert interchange.separators.repetition is None
    assert interchange.header.element(11) == "U"


# --- property-based round trip ---------------------------------------------------------

DELIMITERS = "*~>^|!:`\\"
_reserved = {"ISA", "IEA", "GS", "GE", "ST", "SE"}
tags = st.from_regex(r"\A[A-Z][A-Z0-9]{1,2}\Z").filter(lambda tag: tag not in _reserved)


@st.composite
def separator_sets(draw: st.DrawFn) -> Separators:
    """Distinct punctuation characters for the four delimiters."""
    chars = draw(st.permutations(DELIMITERS))
    return Separators(chars[0], chars[1], chars[2], chars[3])


def values(separators: Separators) -> st.SearchStrategy[str]:
    """Element text that contains no delimiter and no line break."""
    banned = "".join(separators.as_set()) + "\r\n"
    return st.text(st.characters(codec="utf-8", exclude_characters=banned), max_size=30)


@st.composite
def interchanges(draw: st.DrawFn) -> tuple[Separators, list[TransactionContent], str]:
    """Random separators, contents and version for build_interchange."""
    separators = draw(separator_sets())
    segment = st.builds(
        lambda tag, elements: Segment(tag, tuple(elements)),
        tags,
        st.lists(values(separators), max_size=6),
    )
    body = st.builds(
        lambda set_id, fid, segments: TransactionContent(set_id, fid, tuple(segments)),
        st.sampled_from(["850", "855", "856", "810"]),
        st.sampled_from(["PO", "PR", "SH", "IN"]),
        st.lists(segment, max_size=8),
    )
    version = draw(st.sampled_from(["00401", "00403", "00501"]))
    return separators, draw(st.lists(body, max_size=4)), version


@given(interchanges(), st.sampled_from(["", "\n", "\r\n"]))
@settings(max_examples=150, deadline=None)
def test_round_trip_preserves_arbitrary_values(
    case: tuple[Separators, list[TransactionContent], str], line_break: str
) -> None:
    """Round trip preserves arbitrary values."""
    separators, contents, version = case
    custom = EnvelopeSettings(
        PartyId("ZZ", "SENDER"), PartyId("ZZ", "RECEIVER"), version=version, separators=separators
    )
    interchange = build_interchange(contents, custom, sequential_control_numbers(), CREATED)
    result = parse_interchange(serialize_interchange(interchange, line_break=line_break))
    assert result.problems == ()
    assert result.interchange == interchange
