"""X12 codec: read separators from ISA, tokenize, assemble envelopes and serialize."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from maintainpro.supply.edi.errors import (
    EnvelopeProblem,
    ProblemCode,
    SegmentPosition,
    X12SerializationError,
    X12SyntaxError,
)
from maintainpro.supply.edi.model import (
    ISA_WIDTHS,
    FunctionalGroup,
    Interchange,
    Segment,
    Separators,
    TransactionSet,
    is_digits,
    uses_repetition_separator,
)
from maintainpro.supply.edi.validation import validate_interchange

DEFAULT_MAX_ELEMENT_LENGTH = 4096
# A padded ISA is 106 characters; stray line breaks or spaces add a few more. Anything
# far longer means the separators were guessed wrongly, so stop looking.
_MAX_ISA_LENGTH = 256


@dataclass(frozen=True, slots=True)
class ParseResult:
    """A parsed interchange and every envelope or syntax problem found in it."""

    interchange: Interchange
    problems: tuple[EnvelopeProblem, ...]

    @property
    def ok(self) -> bool:
        """True when no problem was found."""
        return not self.problems


@dataclass(frozen=True, slots=True)
class _Isa:
    separators: Separators
    elements: tuple[str, ...]
    start: int
    end: int


def _drop_line_breaks(value: str) -> str:
    return value.replace("\r", "").replace("\n", "")


def _decode(data: str | bytes) -> str:
    if isinstance(data, str):
        text = data
    else:
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            # X12 extended character sets predate UTF-8; Latin-1 never fails and keeps
            # offsets equal to byte offsets.
            text = data.decode("latin-1")
    return text.removeprefix("\ufeff")


def _scan_isa(text: str) -> _Isa:
    start = len(text) - len(text.lstrip())
    if start == len(text):
        raise X12SyntaxError("empty input: an interchange must start with an ISA segment")
    if not text.startswith("ISA", start):
        raise X12SyntaxError(
            f"input does not start with an ISA segment (starts with {text[start : start + 16]!r})"
        )
    if len(text) < start + 4:
        raise X12SyntaxError("truncated ISA segment: no element separator after 'ISA'")
    element = text[start + 3]
    if element.isalnum() or element.isspace():
        raise X12SyntaxError(
            f"ISA element separator {element!r} is a letter, digit or whitespace; "
            "the input is not a valid interchange"
        )
    limit = min(len(text), start + _MAX_ISA_LENGTH)
    # ISA has 16 elements, so 16 element separators come before ISA16.
    pos = start + 3
    for found in range(1, 16):
        pos = text.find(element, pos + 1, limit)
        if pos < 0:
            raise X12SyntaxError(
                f"truncated ISA segment: found {found} of 16 elements separated by {element!r}"
            )
    if pos + 2 >= len(text):
        raise X12SyntaxError("truncated ISA segment: missing ISA16 or the segment terminator")
    component, terminator = text[pos + 1], text[pos + 2]
    raw = text[start + 4 : pos].split(element)
    elements = (*(_drop_line_breaks(value) for value in raw), component)
    version = elements[11].strip()
    repetition_value = elements[10]
    # Many senders keep ISA11 = "U" after 00402; a letter cannot be a delimiter, so treat
    # it as "no repetition separator" rather than splitting names like "USA".
    repetition = (
        repetition_value
        if uses_repetition_separator(version)
        and len(repetition_value) == 1
        and not repetition_value.isalnum()
        and repetition_value not in {element, component, terminator, " "}
        else None
    )
    separators = Separators(element, terminator, component, repetition)
    return _Isa(separators, elements, start, pos + 3)


def read_separators(data: str | bytes) -> Separators:
    """Read the separators declared by the ISA segment at the start of `data`."""
    return _scan_isa(_decode(data)).separators


def _normalize_isa(
    elements: tuple[str, ...], position: SegmentPosition, problems: list[EnvelopeProblem]
) -> tuple[str, ...]:
    normalized: list[str] = []
    for number, (value, width) in enumerate(zip(elements, ISA_WIDTHS, strict=True), start=1):
        if len(value) > width:
            problems.append(
                EnvelopeProblem(
                    ProblemCode.INVALID_ISA,
                    f"ISA{number:02d} is {len(value)} characters long, at most {width} allowed",
                    position,
                )
            )
        if number == 13 and is_digits(value.strip()):
            normalized.append(value.strip().zfill(width))
        else:
            # Unpadded ISAs are common; padding them makes re-serialization stable.
            normalized.append(value.ljust(width))
    for number, label in ((12, "version"), (13, "control number")):
        if not is_digits(elements[number - 1].strip()):
            problems.append(
                EnvelopeProblem(
                    ProblemCode.INVALID_ISA,
                    f"ISA{number:02d} {label} must be numeric, got {elements[number - 1]!r}",
                    position,
                )
            )
    return tuple(normalized)


def _raw_segments(text: str, begin: int, terminator: str) -> Iterator[tuple[str, int, int, bool]]:
    """Yield (segment text, offset, line, terminated) for each segment after the ISA."""
    line, counted_to = 1, 0
    cursor = begin
    end = len(text)
    while cursor < end:
        stop = text.find(terminator, cursor)
        terminated = stop >= 0
        if not terminated:
            stop = end
        chunk = text[cursor:stop]
        body = chunk.lstrip()
        if body:
            offset = cursor + len(chunk) - len(body)
            line += text.count("\n", counted_to, offset)
            counted_to = offset
            yield _drop_line_breaks(body), offset, line, terminated
        cursor = stop + 1


def _valid_tag(tag: str) -> bool:
    return (
        2 <= len(tag) <= 3
        and tag.isascii()
        and tag.isalnum()
        and tag[0].isalpha()
        and tag == tag.upper()
    )


def _tokenize(
    text: str,
    isa: _Isa,
    max_element_length: int,
    problems: list[EnvelopeProblem],
) -> list[Segment]:
    separators = isa.separators
    segments: list[Segment] = []
    for index, (body, offset, line, terminated) in enumerate(
        _raw_segments(text, isa.end, separators.segment), start=1
    ):
        position = SegmentPosition(index, offset, line)
        tag, *elements = body.split(separators.element)
        if not _valid_tag(tag):
            problems.append(
                EnvelopeProblem(
                    ProblemCode.INVALID_SEGMENT_ID,
                    f"{tag[:20]!r} is not a segment identifier (2-3 upper-case letters/digits)",
                    position,
                )
            )
        longest = max((len(value) for value in elements), default=0)
        if longest > max_element_length:
            problems.append(
                EnvelopeProblem(
                    ProblemCode.ELEMENT_TOO_LONG,
                    f"{tag[:20]} has an element of {longest} characters "
                    f"(limit {max_element_length})",
                    position,
                )
            )
        if not terminated:
            problems.append(
                EnvelopeProblem(
                    ProblemCode.MISSING_SEGMENT_TERMINATOR,
                    f"last segment {tag[:20]} is not terminated by {separators.segment!r}",
                    position,
                )
            )
        segments.append(Segment(tag, tuple(elements), position))
    return segments


class _Assembler:
    """Folds a flat segment list into groups and sets, recording structural problems."""

    def __init__(self) -> None:
        self.problems: list[EnvelopeProblem] = []
        self.groups: list[FunctionalGroup] = []
        self.group_header: Segment | None = None
        self.sets: list[TransactionSet] = []
        self.set_header: Segment | None = None
        self.orphan = False
        self.body: list[Segment] = []

    def _report(self, code: ProblemCode, message: str, segment: Segment) -> None:
        self.problems.append(EnvelopeProblem(code, message, segment.position))

    def close_set(self, trailer: Segment | None) -> None:
        if self.set_header is not None and not self.orphan:
            self.sets.append(TransactionSet(self.set_header, tuple(self.body), trailer))
        self.set_header, self.orphan, self.body = None, False, []

    def close_group(self, trailer: Segment | None) -> None:
        self.close_set(None)
        if self.group_header is not None:
            self.groups.append(FunctionalGroup(self.group_header, tuple(self.sets), trailer))
        self.group_header, self.sets = None, []

    def feed(self, segment: Segment) -> None:
        tag = segment.tag
        if tag == "GS":
            self.close_group(None)
            self.group_header = segment
        elif tag == "GE":
            if self.group_header is None:
                self._report(ProblemCode.UNEXPECTED_TRAILER, "GE without a GS header", segment)
            self.close_group(segment)
        elif tag == "ST":
            self.close_set(None)
            self.set_header = segment
            if self.group_header is None:
                self.orphan = True
                self._report(
                    ProblemCode.UNEXPECTED_SEGMENT,
                    "ST outside a functional group; the transaction set is skipped",
                    segment,
                )
        elif tag == "SE":
            if self.set_header is None:
                self._report(ProblemCode.UNEXPECTED_TRAILER, "SE without an ST header", segment)
            self.close_set(segment)
        elif self.set_header is not None:
            self.body.append(segment)
        else:
            self._report(
                ProblemCode.UNEXPECTED_SEGMENT,
                f"{tag[:20]} outside a transaction set is ignored",
                segment,
            )


def parse_interchange(
    data: str | bytes, *, max_element_length: int = DEFAULT_MAX_ELEMENT_LENGTH
) -> ParseResult:
    """Parse one interchange; envelope problems are returned, unreadable input raises X12Error.

    Offsets in problem positions count characters of the decoded text (equal to bytes
    for ASCII and Latin-1 input).
    """
    text = _decode(data)
    isa = _scan_isa(text)
    problems: list[EnvelopeProblem] = []
    isa_position = SegmentPosition(0, isa.start, 1 + text.count("\n", 0, isa.start))
    header = Segment("ISA", _normalize_isa(isa.elements, isa_position, problems), isa_position)
    segments = _tokenize(text, isa, max_element_length, problems)
    assembler = _Assembler()
    trailer: Segment | None = None
    for number, segment in enumerate(segments):
        if segment.tag == "IEA":
            assembler.close_group(None)
            trailer = segment
            extra = segments[number + 1 :]
            if extra:
                problems.append(
                    EnvelopeProblem(
                        ProblemCode.DATA_AFTER_INTERCHANGE,
                        f"{len(extra)} segment(s) after IEA are ignored",
                        extra[0].position,
                    )
                )
            break
        assembler.feed(segment)
    if trailer is None:
        last = segments[-1].position if segments else isa_position
        raise X12SyntaxError("no IEA segment: the interchange is truncated", last)
    interchange = Interchange(isa.separators, header, tuple(assembler.groups), trailer)
    problems += assembler.problems
    problems += validate_interchange(interchange)
    problems.sort(key=lambda problem: problem.position.index if problem.position else -1)
    return ParseResult(interchange, tuple(problems))


class _Encoder:
    """Re-encodes element values from the source separators to the target ones."""

    def __init__(self, source: Separators, target: Separators) -> None:
        self.target = target
        structural = {source.component}
        if source.repetition is not None:
            structural.add(source.repetition)
        # A delimiter of the target that is not structure in the source would be data
        # colliding with a delimiter: X12 has no escape mechanism for that.
        self.forbidden = (target.as_set() | {"\r", "\n"}) - structural
        mapping = {source.component: target.component}
        if source.repetition is not None:
            mapping[source.repetition] = target.repetition or ""
        self.missing_repetition = source.repetition if target.repetition is None else None
        self.table = str.maketrans(mapping)

    def encode(self, value: str, where: str) -> str:
        bad = self.forbidden.intersection(value)
        if bad:
            raise X12SerializationError(
                f"{where} value {value[:40]!r} contains delimiter(s) {sorted(bad)!r}"
            )
        if self.missing_repetition is not None and self.missing_repetition in value:
            raise X12SerializationError(
                f"{where} value {value[:40]!r} uses repetitions but the target has no "
                "repetition separator"
            )
        return value.translate(self.table)


def _isa_text(interchange: Interchange, target: Separators) -> str:
    elements = interchange.header.elements
    if len(elements) != 16:
        raise X12SerializationError(f"ISA must have 16 elements, got {len(elements)}")
    forbidden = target.as_set() | {"\r", "\n"}
    values: list[str] = []
    for number, (value, width) in enumerate(zip(elements[:15], ISA_WIDTHS, strict=False), 1):
        if number == 11 and uses_repetition_separator(elements[11].strip()):
            # "U" is the pre-00402 standards identifier and parses back as "none".
            values.append(target.repetition or "U")
            continue
        if len(value) > width:
            raise X12SerializationError(f"ISA{number:02d} {value!r} is longer than {width}")
        if forbidden.intersection(value):
            raise X12SerializationError(f"ISA{number:02d} {value!r} contains a delimiter")
        values.append(value.ljust(width))
    values.append(target.component)
    return target.element.join(("ISA", *values))


def _envelope_segments(interchange: Interchange) -> Iterator[Segment]:
    for group in interchange.groups:
        yield group.header
        for transaction_set in group.transaction_sets:
            yield transaction_set.header
            yield from transaction_set.segments
            if transaction_set.trailer is not None:
                yield transaction_set.trailer
        if group.trailer is not None:
            yield group.trailer
    yield interchange.trailer


def serialize_segments(
    segments: Sequence[Segment], source: Separators, target: Separators | None = None
) -> list[str]:
    """Render segments (without terminators), re-encoding composites for `target`."""
    encoder = _Encoder(source, target or source)
    element = (target or source).element
    rendered: list[str] = []
    for segment in segments:
        if not _valid_tag(segment.tag):
            raise X12SerializationError(f"invalid segment identifier {segment.tag!r}")
        values = [
            encoder.encode(value, f"{segment.tag}{number:02d}")
            for number, value in enumerate(segment.elements, 1)
        ]
        rendered.append(element.join((segment.tag, *values)))
    return rendered


def serialize_interchange(
    interchange: Interchange,
    *,
    separators: Separators | None = None,
    line_break: str = "",
) -> str:
    """Write an interchange as X12 text; `line_break` ("", LF or CRLF) follows each terminator."""
    if line_break not in {"", "\n", "\r\n"}:
        raise X12SerializationError(f"line_break must be '', '\\n' or '\\r\\n', got {line_break!r}")
    target = separators or interchange.separators
    if not uses_repetition_separator(interchange.version) and target.repetition is not None:
        # Before 00402 ISA11 is a standards identifier, so no repetition can be declared.
        target = Separators(target.element, target.segment, target.component, None)
    lines = [_isa_text(interchange, target)]
    lines += serialize_segments(
        list(_envelope_segments(interchange)), interchange.separators, target
    )
    suffix = target.segment + line_break
    return suffix.join(lines) + suffix
