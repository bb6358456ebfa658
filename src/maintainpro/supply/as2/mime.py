"""Byte-exact MIME for AS2: entities, header parameters and multipart bodies.

The standard library's email package rewrites line endings and folds headers, which breaks
signatures and MICs computed over the exact bytes; these helpers never change a byte they were
given and build new entities with CRLF line ends only.
"""

from __future__ import annotations

import base64
import binascii
import quopri
import re
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from maintainpro.supply.as2.errors import MalformedMessage

CRLF = b"\r\n"
MAX_HEADER_BYTES = 64 * 1024
MAX_BOUNDARY_CHARS = 200
# The MIME headers of the outermost entity travel as HTTP headers in AS2.
ENTITY_HEADERS = ("content-type", "content-transfer-encoding", "content-disposition")
_TOKEN = re.compile(r"^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$")
_END_OF_HEADERS = re.compile(rb"\r?\n\r?\n")
_LINE_BREAK = re.compile(r"\r?\n")
_WHITESPACE = re.compile(rb"\s+")
_DELIMITER_FOLLOWERS = (b"-", b" ", b"\t", b"\r", b"\n")


@dataclass(frozen=True, slots=True)
class Entity:
    """A MIME entity: its header fields in order and its body, both exactly as received."""

    headers: tuple[tuple[str, str], ...]
    body: bytes
    raw: bytes

    def header(self, name: str) -> str | None:
        """The first value of a header field, compared case-insensitively."""
        wanted = name.lower()
        for key, value in self.headers:
            if key.lower() == wanted:
                return value
        return None

    @property
    def content_type(self) -> str:
        """The lower-case media type; text/plain when absent, as RFC 2045 says."""
        value = self.header("content-type")
        return parse_header_value(value)[0] if value else "text/plain"

    def param(self, header: str, name: str) -> str | None:
        """A parameter of a structured header (boundary of Content-Type, filename, ...)."""
        value = self.header(header)
        return parse_header_value(value)[1].get(name.lower()) if value else None

    def decoded_body(self) -> bytes:
        """The body with its Content-Transfer-Encoding undone."""
        return decode_transfer(self.body, self.header("content-transfer-encoding"))


def parse_header_block(block: bytes) -> tuple[tuple[str, str], ...]:
    """Header fields of a header block, unfolded; malformed lines are refused."""
    if len(block) > MAX_HEADER_BYTES:
        raise MalformedMessage("a MIME header block is too large")
    # latin-1 maps every byte, so a stray 8-bit byte cannot crash the parser.
    fields: list[tuple[str, str]] = []
    for line in _LINE_BREAK.split(block.decode("latin-1")):
        if not line.strip():
            continue
        if line[0] in " \t":
            if not fields:
                raise MalformedMessage("a MIME header block starts with a continuation line")
            name, value = fields[-1]
            fields[-1] = (name, f"{value} {line.strip()}")
            continue
        name, sep, value = line.partition(":")
        if not sep or not _TOKEN.match(name.strip()):
            raise MalformedMessage("a MIME header line has no field name")
        fields.append((name.strip(), value.strip()))
    return tuple(fields)


def parse_entity(raw: bytes) -> Entity:
    """Split a MIME entity into its header fields and body without touching a byte."""
    if raw.startswith(b"\r\n"):
        return Entity((), raw[2:], raw)
    if raw.startswith(b"\n"):
        return Entity((), raw[1:], raw)
    end = _END_OF_HEADERS.search(raw, 0, MAX_HEADER_BYTES + 4)
    if end is None:
        raise MalformedMessage("a MIME entity has no end to its header block")
    return Entity(parse_header_block(raw[: end.start()]), raw[end.end() :], raw)


def entity_from_http(headers: Mapping[str, str], body: bytes) -> Entity:
    """The outermost entity of an AS2 request: its MIME headers arrive as HTTP headers."""
    lowered = {name.lower(): value for name, value in headers.items()}
    fields = tuple((name, lowered[name]) for name in ENTITY_HEADERS if name in lowered)
    if "content-type" not in lowered:
        raise MalformedMessage("the request has no Content-Type")
    return Entity(fields, body, build_entity(fields, body))


def parse_header_value(value: str) -> tuple[str, dict[str, str]]:
    """Split `type/subtype; name=value; name="quoted"` into the lower-case value and params."""
    main, _, rest = value.partition(";")
    params: dict[str, str] = {}
    i, size = 0, len(rest)
    while i < size:
        while i < size and rest[i] in " \t;":
            i += 1
        equals = rest.find("=", i)
        if i >= size or equals < 0:
            break
        name = rest[i:equals].strip().lower()
        i = equals + 1
        while i < size and rest[i] in " \t":
            i += 1
        if i < size and rest[i] == '"':
            i += 1
            chars: list[str] = []
            while i < size and rest[i] != '"':
                if rest[i] == "\\" and i + 1 < size:
                    i += 1
                chars.append(rest[i])
                i += 1
            i += 1
            param = "".join(chars)
        else:
            stop = rest.find(";", i)
            stop = size if stop < 0 else stop
            param = rest[i:stop].strip()
            i = stop
        if name:
            params.setdefault(name, param)
    return main.strip().lower(), params


def format_header_value(main: str, params: Mapping[str, str] | None = None) -> str:
    """Render a structured header value, quoting parameters that are not plain tokens."""
    text = main
    for name, value in (params or {}).items():
        quoted = value if _TOKEN.match(value) else _quote(value)
        text += f"; {name}={quoted}"
    return text


def _quote(value: str) -> str:
    """A quoted-string for a parameter value."""
    escaped = value.replace("\\", "\\\\").replace('"', '\\"')
    return f'"{escaped}"'


def check_header_value(value: str) -> str:
    """Refuse values that would break out of their header line (CR, LF, other controls)."""
    if any((ord(char) < 0x20 and char != "\t") or ord(char) == 0x7F for char in value):
        raise ValueError("header values must not contain control characters")
    return value


def build_entity(headers: Sequence[tuple[str, str]], body: bytes) -> bytes:
    """A MIME entity with CRLF line ends: the header fields, an empty line, the body."""
    head = "".join(f"{name}: {check_header_value(value)}\r\n" for name, value in headers)
    return head.encode("latin-1") + CRLF + body


def decode_transfer(body: bytes, encoding: str | None) -> bytes:
    """Undo a Content-Transfer-Encoding (binary, 7bit, 8bit, base64, quoted-printable)."""
    name = (encoding or "binary").strip().lower()
    if name in ("binary", "7bit", "8bit"):
        return body
    if name == "base64":
        try:
            return base64.b64decode(_WHITESPACE.sub(b"", body), validate=True)
        except binascii.Error as exc:
            raise MalformedMessage("a base64 body part is damaged or cut short") from exc
    if name == "quoted-printable":
        return quopri.decodestring(body)
    raise MalformedMessage("the Content-Transfer-Encoding is not supported")


def new_boundary() -> str:
    """A multipart boundary that cannot occur in base64, binary EDI or MIME headers by chance."""
    return f"----=_MaintAInPro_{secrets.token_hex(16)}"


def build_multipart(parts: Sequence[bytes], boundary: str) -> bytes:
    """A multipart body: each part between delimiter lines, then the closing delimiter."""
    delimiter = b"--" + boundary.encode("ascii")
    body = bytearray()
    for part in parts:
        body += delimiter + CRLF + part + CRLF
    body += delimiter + b"--" + CRLF
    return bytes(body)


def split_multipart(body: bytes, boundary: str) -> list[bytes]:
    """The parts of a multipart body, byte-exact (RFC 2046: the line end before a delimiter
    belongs to the delimiter); a body without its closing delimiter is refused as cut short."""
    if not boundary or len(boundary) > MAX_BOUNDARY_CHARS:
        raise MalformedMessage("the multipart boundary is missing or too long")
    delimiter = b"--" + boundary.encode("latin-1")
    position = _find_delimiter(body, delimiter, 0)
    if position < 0:
        raise MalformedMessage("the multipart body has no boundary line")
    parts: list[bytes] = []
    while True:
        after = position + len(delimiter)
        if body[after : after + 2] == b"--":
            break
        line_end = body.find(b"\n", after)
        if line_end < 0:
            raise MalformedMessage("the multipart body is cut short")
        start = line_end + 1
        following = _find_delimiter(body, delimiter, line_end)
        if following < 0:
            raise MalformedMessage("the multipart body is cut short: no closing boundary")
        end = following - 1
        if end > start and body[end - 1 : end] == b"\r":
            end -= 1
        parts.append(body[start:end] if end > start else b"")
        position = following
    if not parts:
        raise MalformedMessage("the multipart body has no parts")
    return parts


def _find_delimiter(body: bytes, delimiter: bytes, start: int) -> int:
    """Where the next delimiter line starts at or after `start`, or -1."""
    if start == 0 and body.startswith(delimiter) and _delimiter_ends(body, len(delimiter)):
        return 0
    index = start
    while True:
        hit = body.find(b"\n" + delimiter, index)
        if hit < 0:
            return -1
        if _delimiter_ends(body, hit + 1 + len(delimiter)):
            return hit + 1
        index = hit + 1


def _delimiter_ends(body: bytes, after: int) -> bool:
    """A delimiter must be followed by `--`, padding or the line end, not by more boundary."""
    return after >= len(body) or body[after : after + 1] in _DELIMITER_FOLLOWERS
