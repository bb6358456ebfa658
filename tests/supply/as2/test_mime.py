"""Byte-exact MIME: entities, parameters and multipart splitting, including cut-short bodies."""

from __future__ import annotations

import pytest

from maintainpro.supply.as2.errors import MalformedMessage
from maintainpro.supply.as2.mime import (
    build_entity,
    build_multipart,
    decode_transfer,
    format_header_value,
    parse_entity,
    parse_header_value,
    split_multipart,
)


def test_entity_keeps_every_byte_of_headers_and_body() -> None:
    raw = b"Content-Type: application/EDI-X12\r\nX-Folded: a\r\n  b\r\n\r\nISA*00~\nGS~\r\n"
    entity = parse_entity(raw)
    assert entity.raw == raw
    assert entity.body == b"ISA*00~\nGS~\r\n"
    assert entity.content_type == "application/edi-x12"
    assert entity.header("x-folded") == "a b"


def test_entity_with_lf_only_header_block() -> None:
    entity = parse_entity(b"Content-Type: text/plain\n\nbody\n")
    assert entity.body == b"body\n"
    assert entity.content_type == "text/plain"


@pytest.mark.parametrize(
    "raw",
    [b"Content-Type: text/plain\r\nno blank line follows", b"not a header line\r\n\r\nbody"],
)
def test_malformed_entities_are_refused(raw: bytes) -> None:
    with pytest.raises(MalformedMessage):
        parse_entity(raw)


def test_header_parameters_quoted_and_plain() -> None:
    value = (
        'multipart/signed; protocol="application/pkcs7-signature"; micalg=sha-256; '
        'boundary="a;b\\"c"'
    )
    main, params = parse_header_value(value)
    assert main == "multipart/signed"
    assert params == {
        "protocol": "application/pkcs7-signature",
        "micalg": "sha-256",
        "boundary": 'a;b"c',
    }
    assert parse_header_value(format_header_value(main, params)) == (main, params)


def test_multipart_round_trip_is_byte_exact_for_crlf_and_bare_lf_content() -> None:
    parts = [b"Content-Type: a/b\r\n\r\nline\nother\r\n", b"Content-Type: c/d\r\n\r\n\x00\xff"]
    body = build_multipart(parts, "XYZ")
    assert split_multipart(body, "XYZ") == parts


def test_multipart_written_with_lf_line_ends_and_a_preamble() -> None:
    body = b"preamble\n--B\nContent-Type: a/b\n\nfirst\n\n--B\nsecond\n--B--\n"
    assert split_multipart(body, "B") == [b"Content-Type: a/b\n\nfirst\n", b"second"]


def test_a_longer_boundary_sharing_the_prefix_is_not_a_delimiter() -> None:
    body = b"--B\r\none\r\n--BX not a delimiter\r\n--B--\r\n"
    assert split_multipart(body, "B") == [b"one\r\n--BX not a delimiter"]


@pytest.mark.parametrize("cut", [10, 30, -8])
def test_a_multipart_body_cut_short_is_refused(cut: int) -> None:
    body = build_multipart([b"Content-Type: a/b\r\n\r\npayload", b"sig"], "BOUNDARY")
    with pytest.raises(MalformedMessage, match=r"cut short|no boundary"):
        split_multipart(body[:cut], "BOUNDARY")


def test_transfer_encodings() -> None:
    assert decode_transfer(b"aGVs\r\nbG8=\r\n", "base64") == b"hello"
    assert decode_transfer(b"caf=C3=A9", "quoted-printable") == "café".encode()
    assert decode_transfer(b"\x00raw", None) == b"\x00raw"
    with pytest.raises(MalformedMessage, match="base64"):
        decode_transfer(b"aGVsbG8", "base64")
    with pytest.raises(MalformedMessage, match="not supported"):
        decode_transfer(b"x", "x-uuencode")


def test_built_headers_refuse_line_breaks() -> None:
    with pytest.raises(ValueError, match="control"):
        build_entity((("Subject", "a\r\nBcc: x"),), b"")
