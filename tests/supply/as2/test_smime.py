"""CMS building blocks against each other and against OpenSSL-made structures."""

from __future__ import annotations

import base64
import zlib
from pathlib import Path

import pytest
from asn1crypto import cms as asn1_cms

from maintainpro.supply.as2.errors import (
    AuthenticationFailed,
    DecompressionFailed,
    DecryptionFailed,
)
from maintainpro.supply.as2.smime import (
    ContentCipher,
    compress,
    decompress,
    decrypt,
    encrypt,
    sign_detached,
    verify_detached,
)
from supply.as2.as2_world import EDI_850, Identity, openssl

CONTENT = b"Content-Type: application/EDI-X12\r\n\r\n" + EDI_850


@pytest.mark.parametrize("algorithm", ["sha-256", "sha-384", "sha-512"])
def test_detached_signature_verifies_and_names_its_digest(
    identities: dict[str, Identity], algorithm: str
) -> None:
    us = identities["us"]
    signature = sign_detached(CONTENT, us.key, us.certificate, algorithm)
    assert verify_detached(signature, CONTENT, us.certificate) == algorithm


def test_signature_over_other_bytes_fails(identities: dict[str, Identity]) -> None:
    us = identities["us"]
    signature = sign_detached(CONTENT, us.key, us.certificate)
    with pytest.raises(AuthenticationFailed, match="does not match"):
        verify_detached(signature, CONTENT.replace(b"PO-1001", b"PO-1002"), us.certificate)


def test_signature_value_tampered_fails(identities: dict[str, Identity]) -> None:
    us = identities["us"]
    signature = bytearray(sign_detached(CONTENT, us.key, us.certificate))
    signature[-1] ^= 0x01  # the SignerInfo's signature value is the last field
    with pytest.raises(AuthenticationFailed, match="does not match"):
        verify_detached(bytes(signature), CONTENT, us.certificate)


def test_signature_by_someone_else_is_not_the_partners(identities: dict[str, Identity]) -> None:
    stranger, partner = identities["stranger"], identities["partner"]
    signature = sign_detached(CONTENT, stranger.key, stranger.certificate)
    with pytest.raises(AuthenticationFailed, match="partner's certificate"):
        verify_detached(signature, CONTENT, partner.certificate)


def test_garbage_signature_is_an_authentication_failure(identities: dict[str, Identity]) -> None:
    with pytest.raises(AuthenticationFailed, match="cannot be read"):
        verify_detached(b"\x30\x03\x02\x01", CONTENT, identities["us"].certificate)


@pytest.mark.parametrize("cipher", list(ContentCipher))
def test_encrypt_decrypt_round_trip(identities: dict[str, Identity], cipher: ContentCipher) -> None:
    partner = identities["partner"]
    envelope = encrypt(CONTENT, partner.certificate, cipher)
    assert decrypt(envelope, partner.key, partner.certificate) == CONTENT
    algorithm = asn1_cms.ContentInfo.load(envelope)["content"]["encrypted_content_info"][
        "content_encryption_algorithm"
    ]
    assert algorithm["algorithm"].native == cipher.value.replace("-cbc", "_cbc").replace("-", "")


def test_message_for_another_recipient_cannot_be_decrypted(identities: dict[str, Identity]) -> None:
    envelope = encrypt(CONTENT, identities["stranger"].certificate, ContentCipher.AES256_CBC)
    partner = identities["partner"]
    with pytest.raises(DecryptionFailed, match="not encrypted for our certificate"):
        decrypt(envelope, partner.key, partner.certificate)


@pytest.mark.parametrize(
    ("options", "label"),
    [
        ((), "OpenSSL's default cipher (3DES)"),
        (("-aes192",), "AES-192"),
        (("-aes128", "-keyopt", "rsa_padding_mode:oaep"), "AES-128 with RSA-OAEP key transport"),
        (("-aes256",), "AES-256"),
    ],
)
def test_openssl_enveloped_data_decrypts(
    identities: dict[str, Identity], tmp_path: Path, options: tuple[str, ...], label: str
) -> None:
    partner = identities["partner"]
    source = tmp_path / "content.bin"
    source.write_bytes(CONTENT)
    envelope = openssl(
        "cms", "-encrypt", "-binary", "-in", source, "-outform", "DER",
        "-recip", partner.cert_path, *options,
    )  # fmt: skip
    assert decrypt(envelope, partner.key, partner.certificate) == CONTENT, label


def test_cut_short_envelope_is_a_decryption_failure(identities: dict[str, Identity]) -> None:
    partner = identities["partner"]
    envelope = encrypt(CONTENT, partner.certificate, ContentCipher.AES128_CBC)
    with pytest.raises(DecryptionFailed):
        decrypt(envelope[: len(envelope) // 2], partner.key, partner.certificate)


def test_compressed_data_round_trip_and_structure_openssl_reads(tmp_path: Path) -> None:
    packed = compress(CONTENT)
    assert decompress(packed, limit=10_000) == CONTENT
    # This OpenSSL has no zlib, so it cannot inflate; it must still parse the RFC 3274 structure.
    (tmp_path / "z.der").write_bytes(packed)
    printed = openssl("cms", "-cmsout", "-print", "-inform", "DER", "-in", tmp_path / "z.der")
    assert b"id-smime-ct-compressedData" in printed
    assert b"zlib compression" in printed


def test_decompression_stops_at_the_size_limit() -> None:
    bomb = compress(b"\0" * 5_000_000)
    assert len(bomb) < 10_000
    with pytest.raises(DecompressionFailed, match="size limit"):
        decompress(bomb, limit=1_000_000)


def test_cut_short_compressed_stream_is_refused() -> None:
    stream = zlib.compress(CONTENT)[:-6]
    packed = asn1_cms.ContentInfo(
        {
            "content_type": "compressed_data",
            "content": {
                "version": "v0",
                "compression_algorithm": {"algorithm": "zlib"},
                "encap_content_info": {"content_type": "data", "content": stream},
            },
        }
    ).dump()
    with pytest.raises(DecompressionFailed, match="cut short"):
        decompress(packed, limit=10_000)


def test_openssl_verifies_our_detached_signature(
    identities: dict[str, Identity], tmp_path: Path
) -> None:
    us = identities["us"]
    (tmp_path / "content.bin").write_bytes(CONTENT)
    (tmp_path / "sig.pem").write_bytes(
        b"-----BEGIN CMS-----\n"
        + base64.encodebytes(sign_detached(CONTENT, us.key, us.certificate))
        + b"-----END CMS-----\n"
    )
    verified = openssl(
        "cms", "-verify", "-binary", "-inform", "PEM", "-in", tmp_path / "sig.pem",
        "-content", tmp_path / "content.bin", "-CAfile", us.cert_path,
    )  # fmt: skip
    assert verified == CONTENT


@pytest.mark.parametrize(
    "options",
    [
        ("-md", "sha256"),
        ("-md", "sha1"),
        ("-md", "sha384", "-noattr"),
        ("-md", "sha256", "-keyopt", "rsa_padding_mode:pss"),
    ],
    ids=["sha256", "sha1-legacy-partner", "no-signed-attributes", "rsa-pss"],
)
def test_openssl_signature_variants_verify(
    identities: dict[str, Identity], tmp_path: Path, options: tuple[str, ...]
) -> None:
    partner = identities["partner"]
    (tmp_path / "content.bin").write_bytes(CONTENT)
    signature = openssl(
        "cms", "-sign", "-binary", "-in", tmp_path / "content.bin", "-outform", "DER",
        "-signer", partner.cert_path, "-inkey", partner.key_path, *options,
    )  # fmt: skip
    digest = verify_detached(signature, CONTENT, partner.certificate)
    assert digest == f"sha-{options[1][3:]}"
    with pytest.raises(AuthenticationFailed):
        verify_detached(signature, CONTENT + b" ", partner.certificate)
