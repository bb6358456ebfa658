"""Interoperability with OpenSSL playing the trading partner (`openssl cms`).

(a) what we send, OpenSSL decrypts and verifies; (b) what OpenSSL builds, our endpoint accepts,
and the MIC in our signed MDN - itself verified by OpenSSL - equals a digest computed here with
hashlib over the exact entity OpenSSL signed; an MDN signed by OpenSSL passes our receipt check.
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import replace
from pathlib import Path

import pytest

from maintainpro.supply.as2.mdn import check_receipt, read_mdn
from maintainpro.supply.as2.mime import build_entity, parse_entity
from maintainpro.supply.as2.outbound import build_message
from maintainpro.supply.as2.partners import As2Partner
from maintainpro.supply.as2.receiver import Outcome
from maintainpro.supply.as2.smime import ContentCipher
from supply.as2.as2_world import (
    EDI_850,
    OUR_ID,
    PARTNER_ID,
    Identity,
    Station,
    as2_headers,
    http_parts,
    openssl,
    received_mic,
)

ENTITY = (
    b"Content-Type: application/EDI-X12\r\nContent-Transfer-Encoding: binary\r\n"
    b'Content-Disposition: attachment; filename="po1001.edi"\r\n\r\n' + EDI_850
)


def _sha256(data: bytes) -> str:
    return base64.b64encode(hashlib.sha256(data).digest()).decode()


def _sign(entity: bytes, signer: Identity, folder: Path) -> bytes:
    """OpenSSL's multipart/signed S/MIME of an entity; -binary signs the bytes as they are."""
    (folder / "entity.bin").write_bytes(entity)
    return openssl(
        "cms", "-sign", "-binary", "-crlfeol", "-md", "sha256", "-in", folder / "entity.bin",
        "-signer", signer.cert_path, "-inkey", signer.key_path,
    )  # fmt: skip


def _encrypt(content: bytes, recipient: Identity, folder: Path, *cipher: str) -> bytes:
    """OpenSSL's application/pkcs7-mime enveloped-data S/MIME around content."""
    (folder / "inner.bin").write_bytes(content)
    return openssl(
        "cms", "-encrypt", "-binary", "-crlfeol", *cipher, "-in", folder / "inner.bin",
        recipient.cert_path,
    )  # fmt: skip


def _openssl_verified_mdn(
    response_headers: dict[str, str], body: bytes, us: Identity, folder: Path
) -> bytes:
    """Verify our MDN with OpenSSL against our certificate; returns the signed multipart/report."""
    mdn = folder / "mdn.eml"
    mdn.write_bytes(build_entity((("Content-Type", response_headers["content-type"]),), body))
    return openssl("cms", "-verify", "-in", mdn, "-CAfile", us.cert_path)


# --- (a) our messages, OpenSSL as the receiving partner ------------------------------------


@pytest.mark.parametrize("cipher", list(ContentCipher))
def test_openssl_decrypts_and_verifies_what_we_send(
    ours: As2Partner, identities: dict[str, Identity], tmp_path: Path, cipher: ContentCipher
) -> None:
    partner, us = identities["partner"], identities["us"]
    message = build_message(EDI_850, replace(ours, encryption=cipher), filename="po1001.edi")
    (tmp_path / "body.der").write_bytes(message.body)  # AS2 sends the DER itself (binary)
    decrypted = openssl(
        "cms", "-decrypt", "-binary", "-inform", "DER", "-in", tmp_path / "body.der",
        "-inkey", partner.key_path, "-recip", partner.cert_path,
    )  # fmt: skip
    assert parse_entity(decrypted).content_type == "multipart/signed"
    (tmp_path / "signed.eml").write_bytes(decrypted)
    # Without -binary OpenSSL canonicalises to CRLF, which our entity already is.
    signed_entity = openssl(
        "cms", "-verify", "-in", tmp_path / "signed.eml", "-CAfile", us.cert_path
    )
    assert parse_entity(signed_entity).body == EDI_850
    assert parse_entity(signed_entity).header("content-type") == "application/EDI-X12"
    assert message.mic.digest == _sha256(signed_entity)


def test_openssl_rejects_our_message_under_a_wrong_certificate(
    ours: As2Partner, identities: dict[str, Identity], tmp_path: Path
) -> None:
    message = build_message(EDI_850, replace(ours, encryption=None))
    (tmp_path / "signed.eml").write_bytes(
        build_entity((("Content-Type", message.headers["Content-Type"]),), message.body)
    )
    with pytest.raises(AssertionError, match=r"verify error|certificate"):
        openssl(
            "cms", "-verify", "-in", tmp_path / "signed.eml",
            "-CAfile", identities["stranger"].cert_path,
        )  # fmt: skip


# --- (b) OpenSSL's messages, our endpoint receiving ----------------------------------------


@pytest.mark.parametrize(
    ("cipher", "label"),
    [(("-aes256",), "AES-256"), (("-aes128",), "AES-128"), ((), "OpenSSL default, 3DES")],
)
def test_openssl_signed_and_encrypted_message_is_accepted(
    station: Station,
    identities: dict[str, Identity],
    tmp_path: Path,
    cipher: tuple[str, ...],
    label: str,
) -> None:
    partner, us = identities["partner"], identities["us"]
    wire = _encrypt(_sign(ENTITY, partner, tmp_path), us, tmp_path, *cipher)
    headers, body = http_parts(wire)
    response = station.http.post(
        "/as2/receive", content=body, headers={**headers, **as2_headers("<m1@acme>")}
    )
    assert response.status_code == 200, label
    assert [m.payload for m in station.sink.delivered] == [EDI_850]
    delivered = station.sink.delivered[0]
    assert (delivered.signed, delivered.encrypted, delivered.filename) == (True, True, "po1001.edi")
    assert response.headers["as2-from"] == OUR_ID
    assert response.headers["as2-to"] == f'"{PARTNER_ID}"'
    report = _openssl_verified_mdn(dict(response.headers), response.content, us, tmp_path)
    assert b"Disposition: automatic-action/MDN-sent-automatically; processed\r\n" in report
    assert b"Original-Message-ID: <m1@acme>" in report
    # RFC 4130 7.3.1: over the signed entity, headers included - i.e. exactly the file signed.
    assert received_mic(report) == _sha256(ENTITY)
    assert [r.outcome for r in station.sink.archived] == [Outcome.PROCESSED]


def test_openssl_signed_only_message_with_bare_lf_payload(
    station: Station, ours: As2Partner, identities: dict[str, Identity], tmp_path: Path
) -> None:
    station.receiver.find_partner = lambda a, b: replace(ours, require_encrypted=False)
    entity = ENTITY.replace(b"\r\n", b"\n").replace(b"\n\n", b"\r\n\r\n", 1)
    headers, body = http_parts(_sign(entity, identities["partner"], tmp_path))
    response = station.http.post(
        "/as2/receive", content=body, headers={**headers, **as2_headers("<m2@acme>")}
    )
    assert response.status_code == 200
    assert station.sink.delivered[0].payload == EDI_850.replace(b"\r\n", b"\n")
    report = _openssl_verified_mdn(
        dict(response.headers), response.content, identities["us"], tmp_path
    )
    assert received_mic(report) == _sha256(entity)


def test_openssl_encrypted_unsigned_message_mic_covers_the_decrypted_entity(
    station: Station, ours: As2Partner, identities: dict[str, Identity], tmp_path: Path
) -> None:
    station.receiver.find_partner = lambda a, b: replace(ours, require_signed=False)
    headers, body = http_parts(_encrypt(ENTITY, identities["us"], tmp_path, "-aes256"))
    response = station.http.post(
        "/as2/receive", content=body, headers={**headers, **as2_headers("<m3@acme>")}
    )
    assert station.sink.delivered[0].payload == EDI_850
    report = _openssl_verified_mdn(
        dict(response.headers), response.content, identities["us"], tmp_path
    )
    assert received_mic(report) == _sha256(ENTITY)


def test_openssl_compressed_message(
    station: Station, identities: dict[str, Identity], tmp_path: Path
) -> None:
    (tmp_path / "entity.bin").write_bytes(ENTITY)
    try:
        compressed = openssl(
            "cms", "-compress", "-binary", "-crlfeol", "-in", tmp_path / "entity.bin"
        )
    except AssertionError as exc:
        if "unsupported compression algorithm" in str(exc):
            pytest.skip(
                "this OpenSSL is built without zlib: `openssl cms -compress` is unavailable"
            )
        raise
    partner, us = identities["partner"], identities["us"]
    wire = _encrypt(_sign(compressed, partner, tmp_path), us, tmp_path, "-aes256")
    headers, body = http_parts(wire)
    response = station.http.post(
        "/as2/receive", content=body, headers={**headers, **as2_headers("<m4@acme>")}
    )
    assert response.status_code == 200
    assert station.sink.delivered[0].payload == EDI_850
    assert station.sink.delivered[0].compressed


def test_mdn_signed_by_openssl_passes_our_receipt_check(
    ours: As2Partner, identities: dict[str, Identity], tmp_path: Path
) -> None:
    message = build_message(EDI_850, ours)
    boundary = "report-boundary"
    report = build_entity(
        (
            (
                "Content-Type",
                f"multipart/report; report-type=disposition-notification; boundary={boundary}",
            ),
        ),
        (
            f"--{boundary}\r\nContent-Type: text/plain\r\n\r\nReceived.\r\n"
            f"--{boundary}\r\nContent-Type: message/disposition-notification\r\n\r\n"
            f"Reporting-UA: OpenSSL partner\r\nFinal-Recipient: rfc822; {PARTNER_ID}\r\n"
            f"Original-Message-ID: {message.message_id}\r\n"
            f"Received-Content-MIC: {message.mic}\r\n"
            "Disposition: automatic-action/MDN-sent-automatically; processed\r\n\r\n"
            f"--{boundary}--\r\n"
        ).encode(),
    )
    headers, body = http_parts(_sign(report, identities["partner"], tmp_path))
    receipt = read_mdn({**headers, "Message-ID": "<mdn1@acme>"}, body, ours)
    assert receipt.signed
    assert receipt.disposition.successful
    check_receipt(receipt, message_id=message.message_id, mic=message.mic)
