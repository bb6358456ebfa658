"""Tests of the X12 codec: separators, tolerance, envelope validation, hostile input."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from maintainpro.supply.edi.errors import (
    ProblemCode,
    X12Error,
    X12SeparatorError,
    X12SerializationError,
    X12SyntaxError,
)
from maintainpro.supply.edi.model import Segment, Separators
from maintainpro.supply.edi.x12 import parse_interchange, read_separators, serialize_interchange

Loader = Callable[[str], bytes]

ISA = (
    "ISA*00*          *00*          *ZZ*SENDER         *ZZ*RECEIVER       "
    "*240102*1230*U*00401*000000042*0*P*>~"
)
VALID = (
    ISA + "GS*PO*SENDER*RECEIVER*20240102*1230*7*X*004010~"
    "ST*850*0001~BEG*00*SA*PO-1**20240102~PO1*1*5*EA*2.5~SE*4*0001~"
    "GE*1*7~IEA*1*000000042~"
)


def codes(data: str | bytes) -> list[ProblemCode]:
    """Parse and return the problem codes in order."""
    return [problem.code for problem in parse_interchange(data).problems]


def test_valid_interchange_has_no_problems() -> None:
    """Valid interchange has no problems."""
    result = parse_interchange(VALID)
    assert result.ok
    interchange = result.interchange
    assert interchange.sender_id == "SENDER"
    assert interchange.receiver_id == "RECEIVER"
    assert interchange.control_number == "000000042"
    assert interchange.version == "00401"
    (group,) = interchange.groups
    assert group.functional_id == "PO"
    assert group.control_number == "7"
    (transaction,) = group.transaction_sets
    assert transaction.set_id == "850"
    assert [s.tag for s in transaction.segments] == ["BEG", "PO1"]
    assert transaction.segments[1].elements == ("1", "5", "EA", "2.5")


def test_isa_is_106_characters_when_written() -> None:
    """ISA is 106 characters when written."""
    text = serialize_interchange(parse_interchange(VALID).interchange)
    assert text.index("GS") == 106
    assert text == VALID


def test_segment_element_accessor_is_one_based_and_total() -> None:
    """Segment element accessor is one based and total."""
    segment = Segment("PO1", ("1", "5"))
    assert segment.element(1) == "1"
    assert segment.element(3) == ""
    assert segment.element(0) == ""
    assert Segment.of("N3", "a", "", "") == Segment("N3", ("a",))


# --- real samples --------------------------------------------------------------------


def test_edinet_850_reports_broken_interchange_envelope(sample: Loader) -> None:
    """EDI.Net 850 reports broken interchange envelope."""
    result = parse_interchange(sample("edinet_850.edi"))
    assert not result.ok
    (problem,) = result.problems
    assert problem.code is ProblemCode.INTERCHANGE_CONTROL_MISMATCH
    assert "000000001" in problem.message
    assert "000000055" in problem.message
    assert problem.position is not None
    assert problem.position.line == 15
    assert problem.position.index == 14
    # The content is still available despite the broken envelope.
    assert result.interchange.groups[0].transaction_sets[0].set_id == "850"


def test_oop_856_tilde_element_star_terminator(sample: Loader) -> None:
    """Inteligenz 856 tilde element star terminator."""
    data = sample("oop_856_tilde.edi")
    assert read_separators(data) == Separators("~", "*", "`", None)
    result = parse_interchange(data)
    assert result.ok, result.problems
    (transaction,) = result.interchange.transaction_sets()
    assert transaction.segments[0] == Segment("BSN", ("00", "123456", "20010420", "1421"))
    assert sum(1 for s in transaction.segments if s.tag == "HL") == 5


def test_staedi_997_version_00501_repetition_separator(sample: Loader) -> None:
    """StAEDI 997 version 00501 repetition separator."""
    result = parse_interchange(sample("staedi_997.edi"))
    assert result.ok
    interchange = result.interchange
    assert interchange.version == "00501"
    assert interchange.separators == Separators("*", "~", ":", "^")
    assert interchange.groups[0].version == "005010X230"
    assert interchange.groups[0].control_number == "000005"


def test_edinet_810a_unpadded_isa_and_tabs(sample: Loader) -> None:
    """EDI.Net 810a unpadded ISA and tabs."""
    data = sample("edinet_810a.edi")
    assert data.index(b"\n") < 106  # the ISA really is unpadded
    result = parse_interchange(data)
    assert result.ok, result.problems
    interchange = result.interchange
    assert interchange.sender_id == "ABCMUSICSUPPLY"
    assert interchange.receiver_id == "ARIBAEDI"
    (transaction,) = interchange.transaction_sets()
    assert transaction.trailer is not None
    assert transaction.trailer.elements == ("64", "0001")
    assert len(transaction.segments) == 62
    # Leading tabs and spaces are layout, not part of the segment identifier.
    assert {s.tag for s in transaction.segments} >= {"BIG", "TDS", "SAC", "IT1", "N1"}
    tds = next(s for s in transaction.segments if s.tag == "TDS")
    assert tds.elements == ("36596",)


def test_edinet_214_newline_inside_isa(sample: Loader) -> None:
    """EDI.Net 214 newline inside ISA."""
    data = sample("edinet_214.edi")
    assert b"\n*160726" in data
    result = parse_interchange(data)
    assert result.ok, result.problems
    interchange = result.interchange
    assert interchange.receiver_id == "MGCTLYST"
    assert interchange.header.element(9) == "160726"
    assert interchange.version == "00403"
    # ISA11 is "U" although 00403 declares a repetition separator there: treated as none,
    # otherwise "CATALYST PAPER (USA) INC" would be split.
    assert interchange.separators.repetition is None


def test_node_x12_850_vics_suffix(sample: Loader) -> None:
    """node-x12 850 VICS suffix."""
    result = parse_interchange(sample("node-x12_850.edi"))
    assert result.ok
    assert result.interchange.version == "00400"
    assert result.interchange.groups[0].version == "004010VICS"


def test_edinet_832_segment_count_is_wrong(sample: Loader) -> None:
    """EDI.Net 832 segment count is wrong."""
    result = parse_interchange(sample("edinet_832.edi"))
    (problem,) = result.problems
    assert problem.code is ProblemCode.SEGMENT_COUNT_MISMATCH
    assert "declares 17" in problem.message
    assert "12 found" in problem.message


@pytest.mark.parametrize(
    "name",
    [
        "edinet_214.edi",
        "edinet_810a.edi",
        "edinet_832.edi",
        "edinet_850.edi",
        "gregarican_856.edi",
        "node-x12_850.edi",
        "node-x12_855.edi",
        "oop_856_tilde.edi",
        "staedi_997.edi",
    ],
)
def test_samples_survive_reserialization(sample: Loader, name: str) -> None:
    """Samples survive reserialization."""
    parsed = parse_interchange(sample(name))
    text = serialize_interchange(parsed.interchange, line_break="\n")
    again = parse_interchange(text)
    assert again.interchange == parsed.interchange
    assert [p.code for p in again.problems] == [p.code for p in parsed.problems]


def test_reserialize_with_other_separators_translates_composites(sample: Loader) -> None:
    """Reserialize with other separators translates composites."""
    parsed = parse_interchange(sample("staedi_997.edi")).interchange
    target = Separators("|", "\n", "}", "!")
    text = serialize_interchange(parsed, separators=target)
    assert text.startswith("ISA|00|")
    assert "|!|00501|" in text
    again = parse_interchange(text)
    assert again.ok
    assert again.interchange.separators == target
    assert again.interchange.groups == parsed.groups


# --- envelope validation -----------------------------------------------------------------


def test_every_envelope_mismatch_is_reported_with_position() -> None:
    """Every envelope mismatch is reported with position."""
    broken = (
        ISA + "GS*PO*SENDER*RECEIVER*20240102*1230*7*X*004010~"
        "ST*850*0001~BEG*00*SA*PO-1**20240102~SE*9*0002~"
        "GE*3*8~IEA*2*000000043~"
    )
    problems = parse_interchange(broken).problems
    found = {p.code for p in problems}
    assert found == {
        ProblemCode.SET_CONTROL_MISMATCH,
        ProblemCode.SEGMENT_COUNT_MISMATCH,
        ProblemCode.GROUP_CONTROL_MISMATCH,
        ProblemCode.SET_COUNT_MISMATCH,
        ProblemCode.INTERCHANGE_CONTROL_MISMATCH,
        ProblemCode.GROUP_COUNT_MISMATCH,
    }
    by_code = {p.code: p for p in problems}
    se = by_code[ProblemCode.SEGMENT_COUNT_MISMATCH].position
    assert se is not None
    assert se.index == 4
    assert se.offset == broken.index("SE*9")
    message = str(by_code[ProblemCode.SEGMENT_COUNT_MISMATCH])
    assert "SE01 declares 9 segments but 3 found" in message


def test_missing_trailers_are_problems_not_exceptions() -> None:
    """Missing trailers are problems not exceptions."""
    data = ISA + "GS*PO*S*R*20240102*1230*7*X*004010~ST*850*0001~BEG*00*SA*1**20240102~IEA*1*42~"
    result = parse_interchange(data)
    assert {p.code for p in result.problems} == {
        ProblemCode.MISSING_SET_TRAILER,
        ProblemCode.MISSING_GROUP_TRAILER,
    }
    transaction = result.interchange.groups[0].transaction_sets[0]
    assert transaction.trailer is None
    assert transaction.segments[0].tag == "BEG"


def test_segments_outside_envelopes_and_after_iea() -> None:
    """Segments outside envelopes and after IEA."""
    data = (
        ISA + "BEG*00~GS*PO*S*R*20240102*1230*7*X*004010~REF*ZZ*X~ST*850*1~SE*2*1~"
        "SE*2*1~GE*1*7~IEA*1*42~GS*PO~"
    )
    assert codes(data) == [
        ProblemCode.UNEXPECTED_SEGMENT,
        ProblemCode.UNEXPECTED_SEGMENT,
        ProblemCode.UNEXPECTED_TRAILER,
        ProblemCode.DATA_AFTER_INTERCHANGE,
    ]


def test_duplicate_control_numbers_and_bad_counts() -> None:
    """Duplicate control numbers and bad counts."""
    data = (
        ISA + "GS*PO*S*R*20240102*1230*7*X*004010~ST*850*1~SE*2*1~ST*850*1~SE*2*1~GE*X*7~IEA*1*42~"
    )
    assert codes(data) == [ProblemCode.DUPLICATE_CONTROL_NUMBER, ProblemCode.INVALID_COUNT]


def test_crlf_and_indentation_between_segments() -> None:
    """CRLF and indentation between segments."""
    text = VALID.replace("~", "~\r\n\t  ")
    result = parse_interchange(text)
    assert result.ok
    assert result.interchange == parse_interchange(VALID).interchange
    positions = [s.position for s in result.interchange.groups[0].transaction_sets[0].segments]
    assert [p.line for p in positions if p is not None] == [4, 5]


@pytest.mark.parametrize(("layout", "terminator"), [("\n", "\n"), ("\r\n", "\r")])
def test_line_break_as_segment_terminator(layout: str, terminator: str) -> None:
    """Line break as segment terminator."""
    result = parse_interchange(VALID.replace("~", layout))
    assert result.ok
    assert result.interchange.separators.segment == terminator
    assert result.interchange.groups == parse_interchange(VALID).interchange.groups


def test_missing_final_terminator_is_reported() -> None:
    """Missing final terminator is reported."""
    assert codes(VALID.removesuffix("~")) == [ProblemCode.MISSING_SEGMENT_TERMINATOR]


def test_bytes_with_bom_and_latin1() -> None:
    """Bytes with BOM and Latin-1."""
    latin = VALID.replace("PO-1", "PO-\xe9").encode("latin-1")
    result = parse_interchange(b"\xef\xbb\xbf" + VALID.encode())
    assert result.ok
    beg = parse_interchange(latin).interchange.groups[0].transaction_sets[0].segments[0]
    assert beg.element(3) == "PO-\xe9"


# --- hostile input -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "fragment"),
    [
        (b"", "empty input"),
        ("   \r\n\t", "empty input"),
        ("GS*PO*S*R~", "does not start with an ISA"),
        (b"\x00\xff\xfe garbage \x01", "does not start with an ISA"),
        ("ISA", "truncated ISA"),
        ("ISA*00*   *00", "truncated ISA"),
        (ISA[:90], "truncated ISA"),
        (ISA[:-2], "truncated ISA"),
        (ISA + "GS*PO*S*R*20240102*1230*7*X*004010~ST*850*0001~BEG*00*SA", "no IEA"),
        (ISA, "no IEA"),
        ("ISA" + "x" * 200, "letter, digit or whitespace"),
        ("ISA*" + "0" * 500, "truncated ISA"),
    ],
)
def test_unreadable_input_raises_typed_error(data: str | bytes, fragment: str) -> None:
    """Unreadable input raises typed error."""
    with pytest.raises(X12SyntaxError, match=fragment):
        parse_interchange(data)


@pytest.mark.parametrize(
    "isa",
    [
        ISA.replace("*>~", "*>G"),  # terminator is a letter
        ISA.replace("*>~", "**~"),  # component separator equals the element separator
        ISA.replace("*>~", "*>*"),  # terminator equals the element separator
        ISA.replace("*>~", "*0~"),  # component separator is a digit
    ],
)
def test_wrong_separators_raise_separator_error(isa: str) -> None:
    """Wrong separators raise separator error."""
    with pytest.raises(X12SeparatorError):
        parse_interchange(isa + "IEA*0*000000042~")


def test_wrong_element_separator_guess_gives_clear_error() -> None:
    """Wrong element separator guess gives clear error."""
    # Someone replaced '*' by '|' after the ISA only: the rest is unreadable structure.
    text = ISA + VALID[len(ISA) :].replace("*", "|")
    with pytest.raises(X12SyntaxError, match="no IEA"):
        parse_interchange(text)


def test_garbage_segments_are_reported() -> None:
    """Garbage segments are reported."""
    data = VALID.replace("PO1*1*5*EA*2.5~", "PO1*1*5*EA*2.5~\x00\x01junk*x~po1*1~")
    assert codes(data) == [
        ProblemCode.INVALID_SEGMENT_ID,
        ProblemCode.INVALID_SEGMENT_ID,
        ProblemCode.SEGMENT_COUNT_MISMATCH,
    ]


def test_huge_element_is_reported() -> None:
    """Huge element is reported."""
    data = VALID.replace("PO-1", "P" * 1_000_000)
    result = parse_interchange(data)
    assert [p.code for p in result.problems] == [ProblemCode.ELEMENT_TOO_LONG]
    assert "1000000 characters" in result.problems[0].message
    assert parse_interchange(data, max_element_length=2_000_000).ok


def test_isa_field_too_long_is_reported() -> None:
    """ISA field too long is reported."""
    data = VALID.replace("*SENDER         *", "*SENDER-WITH-A-VERY-LONG-NAME*")
    result = parse_interchange(data)
    assert [p.code for p in result.problems] == [ProblemCode.INVALID_ISA]
    with pytest.raises(X12SerializationError, match="ISA06"):
        serialize_interchange(result.interchange)


@pytest.mark.parametrize("cut", range(0, len(VALID), 3))
def test_every_truncation_raises_x12_error_or_reports(cut: int) -> None:
    """Every truncation raises X12 error or reports."""
    text = VALID[:cut]
    if "IEA" in text:
        assert not parse_interchange(text).ok
    else:
        with pytest.raises(X12Error):
            parse_interchange(text)


# --- serialization guards --------------------------------------------------------------


def test_serializing_a_value_with_a_delimiter_fails() -> None:
    """Serializing a value with a delimiter fails."""
    interchange = parse_interchange(VALID).interchange
    group = interchange.groups[0]
    transaction = group.transaction_sets[0]
    bad = type(transaction)(transaction.header, (Segment("BEG", ("a~b",)),), transaction.trailer)
    broken = type(interchange)(
        interchange.separators,
        interchange.header,
        (type(group)(group.header, (bad,), group.trailer),),
        interchange.trailer,
    )
    with pytest.raises(X12SerializationError, match="BEG01"):
        serialize_interchange(broken)


def test_separators_must_differ_and_not_be_letters() -> None:
    """Separators must differ and not be letters."""
    with pytest.raises(X12SeparatorError):
        Separators("*", "*", ">")
    with pytest.raises(X12SeparatorError):
        Separators("A", "~", ">")
    with pytest.raises(X12SeparatorError):
        Separators("*", "~", "\n")
    with pytest.raises(X12SerializationError, match="line_break"):
        serialize_interchange(parse_interchange(VALID).interchange, line_break="\t")
