"""CMS for AS2: detached signatures, enveloped and RFC 5402 compressed data (bytes in, bytes out).

Signing and encryption use cryptography's PKCS7 builders. Verification, decryption and
compression are done here on asn1crypto structures because cryptography cannot verify, and
decrypts neither 3DES/AES-192 (still sent by older AS2 products and OpenSSL's default) nor
RSA-OAEP key transport.
"""

from __future__ import annotations

import hashlib
import hmac
import zlib
from enum import StrEnum
from typing import Any

from asn1crypto import cms as asn1_cms  # type: ignore[import-untyped]
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.decrepit.ciphers.algorithms import TripleDES
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives import padding as block_padding
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.ciphers import Cipher, CipherAlgorithm, algorithms, modes
from cryptography.hazmat.primitives.serialization import pkcs7

from maintainpro.supply.as2.errors import (
    AuthenticationFailed,
    DecompressionFailed,
    DecryptionFailed,
    MalformedMessage,
)
from maintainpro.supply.as2.mic import normalise_algorithm

# asn1crypto raises these on malformed DER, lazily, when a field is first read.
_ASN1_ERRORS = (ValueError, TypeError, KeyError, IndexError, OverflowError)
_HASHES: dict[str, type[hashes.HashAlgorithm]] = {
    "sha1": hashes.SHA1,
    "sha224": hashes.SHA224,
    "sha256": hashes.SHA256,
    "sha384": hashes.SHA384,
    "sha512": hashes.SHA512,
}
_SIGNING_HASHES: dict[str, type[hashes.SHA256 | hashes.SHA384 | hashes.SHA512]] = {
    "sha-256": hashes.SHA256,
    "sha-384": hashes.SHA384,
    "sha-512": hashes.SHA512,
}


class ContentCipher(StrEnum):
    """Content encryption we send with; decryption also accepts AES-192 and 3DES."""

    AES128_CBC = "aes-128-cbc"
    AES256_CBC = "aes-256-cbc"


def content_kind(der: bytes) -> str:
    """The CMS content type of a ContentInfo (`signed_data`, `enveloped_data`, ...)."""
    try:
        return str(asn1_cms.ContentInfo.load(der)["content_type"].native)
    except _ASN1_ERRORS as exc:
        raise MalformedMessage("an application/pkcs7-mime part is not readable CMS") from exc


def sign_detached(
    content: bytes,
    key: rsa.RSAPrivateKey,
    certificate: x509.Certificate,
    algorithm: str = "sha-256",
) -> bytes:
    """A detached CMS SignedData (DER) over exactly these bytes, with our certificate inside."""
    digest = _SIGNING_HASHES.get(normalise_algorithm(algorithm) or "")
    if digest is None:
        raise ValueError("signatures use SHA-256, SHA-384 or SHA-512")
    builder = pkcs7.PKCS7SignatureBuilder().set_data(content).add_signer(certificate, key, digest())
    # Binary: sign the bytes as given; the MIME entity is already canonical (CRLF) or binary EDI.
    options = [pkcs7.PKCS7Options.DetachedSignature, pkcs7.PKCS7Options.Binary]
    return builder.sign(serialization.Encoding.DER, options)


def verify_detached(signature: bytes, content: bytes, certificate: x509.Certificate) -> str:
    """Check a detached CMS signature against the one certificate we trust for the partner.

    Returns the micalg name of the signer's digest. Certificates carried in the message are
    ignored: only the configured partner certificate is trusted.
    """
    try:
        info = asn1_cms.ContentInfo.load(signature)
        if info["content_type"].native != "signed_data":
            raise AuthenticationFailed("the signature part is not CMS signed-data")
        trusted = _asn1_certificate(certificate)
        signer = next(
            (one for one in info["content"]["signer_infos"] if _identifies(one["sid"], trusted)),
            None,
        )
        if signer is None:
            raise AuthenticationFailed("the message is not signed with the partner's certificate")
        digest_name = str(signer["digest_algorithm"]["algorithm"].native)
        digest = _HASHES.get(digest_name)
        if digest is None:
            raise AuthenticationFailed("the signature uses an unsupported digest algorithm")
        signed_bytes = _signed_bytes(signer, content, digest_name)
        _check_signature(signer, signed_bytes, digest(), certificate)
    except _ASN1_ERRORS as exc:
        raise AuthenticationFailed("the signature cannot be read") from exc
    return normalise_algorithm(digest_name) or digest_name


def _signed_bytes(signer: Any, content: bytes, digest_name: str) -> bytes:
    """What the signature covers: the signed attributes (after checking their digest) or the
    content itself when there are none."""
    attributes = signer["signed_attrs"]
    if attributes.native is None:
        return content
    values = {attribute["type"].native: attribute["values"] for attribute in attributes}
    if "message_digest" not in values or "content_type" not in values:
        raise AuthenticationFailed("the signature lacks its message-digest attribute")
    if values["content_type"][0].native != "data":
        raise AuthenticationFailed("the signature covers an unexpected content type")
    expected = bytes(values["message_digest"][0].native)
    if not hmac.compare_digest(expected, hashlib.new(digest_name, content).digest()):
        raise AuthenticationFailed("the signature does not match the signed content")
    encoded: bytes = attributes.dump()
    # The signature covers the attributes DER-encoded as a SET, not with their [0] tag.
    return b"\x31" + encoded[1:]


def _check_signature(
    signer: Any,
    data: bytes,
    digest: hashes.HashAlgorithm,
    certificate: x509.Certificate,
) -> None:
    """Verify the raw signature value with the partner's public key."""
    algorithm = signer["signature_algorithm"]
    kind = algorithm.signature_algo
    value = bytes(signer["signature"].native)
    public_key = certificate.public_key()
    try:
        if isinstance(public_key, rsa.RSAPublicKey) and kind == "rsassa_pkcs1v15":
            public_key.verify(value, data, padding.PKCS1v15(), digest)
        elif isinstance(public_key, rsa.RSAPublicKey) and kind == "rsassa_pss":
            params = algorithm["parameters"]
            pss_hash = _HASHES[str(params["hash_algorithm"]["algorithm"].native)]()
            mgf_hash = _HASHES[str(params["mask_gen_algorithm"]["parameters"]["algorithm"].native)]
            pss = padding.PSS(
                mgf=padding.MGF1(mgf_hash()), salt_length=params["salt_length"].native
            )
            public_key.verify(value, data, pss, pss_hash)
        elif isinstance(public_key, ec.EllipticCurvePublicKey) and kind == "ecdsa":
            public_key.verify(value, data, ec.ECDSA(digest))
        else:
            raise AuthenticationFailed("the signature algorithm does not fit the partner's key")
    except InvalidSignature as exc:
        raise AuthenticationFailed("the signature does not match the signed content") from exc


def encrypt(content: bytes, certificate: x509.Certificate, cipher: ContentCipher) -> bytes:
    """CMS EnvelopedData (DER) for the partner's certificate, RSA key transport."""
    algorithm = algorithms.AES256 if cipher is ContentCipher.AES256_CBC else algorithms.AES128
    builder = (
        pkcs7.PKCS7EnvelopeBuilder()
        .set_data(content)
        .add_recipient(certificate)
        .set_content_encryption_algorithm(algorithm)
    )
    return builder.encrypt(serialization.Encoding.DER, [pkcs7.PKCS7Options.Binary])


def decrypt(der: bytes, key: rsa.RSAPrivateKey, certificate: x509.Certificate) -> bytes:
    """The content of CMS EnvelopedData addressed to our certificate."""
    try:
        info = asn1_cms.ContentInfo.load(der)
        if info["content_type"].native != "enveloped_data":
            raise DecryptionFailed("the encrypted part is not CMS enveloped-data")
        enveloped = info["content"]
        ours = _asn1_certificate(certificate)
        recipient = next(
            (
                one.chosen
                for one in enveloped["recipient_infos"]
                if one.name == "ktri" and _identifies(one.chosen["rid"], ours)
            ),
            None,
        )
        if recipient is None:
            raise DecryptionFailed("the message is not encrypted for our certificate")
        content_key = _unwrap_key(recipient, key)
        encrypted = enveloped["encrypted_content_info"]
        algorithm = encrypted["content_encryption_algorithm"]
        ciphertext = encrypted["encrypted_content"].native
        if not isinstance(ciphertext, bytes):
            raise DecryptionFailed("the enveloped data carries no content")
        return _decrypt_content(algorithm, content_key, ciphertext)
    except _ASN1_ERRORS as exc:
        raise DecryptionFailed("the enveloped data cannot be read") from exc


def _unwrap_key(recipient: Any, key: rsa.RSAPrivateKey) -> bytes:
    """Decrypt the content-encryption key with our RSA key (PKCS #1 v1.5 or OAEP)."""
    algorithm = recipient["key_encryption_algorithm"]
    name = algorithm["algorithm"].native
    encrypted_key = bytes(recipient["encrypted_key"].native)
    if name in ("rsaes_pkcs1v15", "rsa"):
        scheme: padding.AsymmetricPadding = padding.PKCS1v15()
    elif name == "rsaes_oaep":
        params = algorithm["parameters"]
        oaep_hash = _HASHES[str(params["hash_algorithm"]["algorithm"].native)]
        mgf_hash = _HASHES[str(params["mask_gen_algorithm"]["parameters"]["algorithm"].native)]
        scheme = padding.OAEP(mgf=padding.MGF1(mgf_hash()), algorithm=oaep_hash(), label=None)
    else:
        raise DecryptionFailed("the key transport algorithm is not supported")
    try:
        return key.decrypt(encrypted_key, scheme)
    except ValueError as exc:
        raise DecryptionFailed("the content key cannot be decrypted with our key") from exc


def _decrypt_content(algorithm: Any, key: bytes, ciphertext: bytes) -> bytes:
    """CBC-decrypt and unpad the content (AES-128/192/256 or 3DES)."""
    name = algorithm.encryption_cipher
    if algorithm.encryption_mode != "cbc" or name not in ("aes", "tripledes"):
        raise DecryptionFailed("the content encryption algorithm is not supported")
    if len(key) != algorithm.key_length:
        raise DecryptionFailed("the content key has the wrong length")
    cipher: CipherAlgorithm = algorithms.AES(key) if name == "aes" else TripleDES(key)
    block_bits = algorithm.encryption_block_size * 8
    try:
        decryptor = Cipher(cipher, modes.CBC(bytes(algorithm.encryption_iv))).decryptor()
        padded = decryptor.update(ciphertext) + decryptor.finalize()
        unpadder = block_padding.PKCS7(block_bits).unpadder()
        return unpadder.update(padded) + unpadder.finalize()
    except (ValueError, UnsupportedAlgorithm) as exc:
        raise DecryptionFailed(
            "the content does not decrypt: damaged, cut short or not ours"
        ) from exc


def compress(content: bytes) -> bytes:
    """RFC 3274 CompressedData (zlib) around the content, as RFC 5402 uses it."""
    compressed = asn1_cms.CompressedData(
        {
            "version": "v0",
            "compression_algorithm": {"algorithm": "zlib"},
            "encap_content_info": {"content_type": "data", "content": zlib.compress(content)},
        }
    )
    info = asn1_cms.ContentInfo({"content_type": "compressed_data", "content": compressed})
    encoded: bytes = info.dump()
    return encoded


def decompress(der: bytes, limit: int) -> bytes:
    """Inflate RFC 3274 CompressedData, refusing output beyond `limit` bytes (zip bombs)."""
    try:
        info = asn1_cms.ContentInfo.load(der)
        if info["content_type"].native != "compressed_data":
            raise DecompressionFailed("the compressed part is not CMS compressed-data")
        compressed = info["content"]
        if compressed["compression_algorithm"]["algorithm"].native != "zlib":
            raise DecompressionFailed("the compression algorithm is not zlib")
        data = compressed["encap_content_info"]["content"].native
    except _ASN1_ERRORS as exc:
        raise DecompressionFailed("the compressed data cannot be read") from exc
    if not isinstance(data, bytes):
        raise DecompressionFailed("the compressed data carries no content")
    inflater = zlib.decompressobj()
    try:
        output = inflater.decompress(data, limit + 1)
    except zlib.error as exc:
        raise DecompressionFailed("the compressed data is damaged") from exc
    if len(output) > limit:
        raise DecompressionFailed("the compressed data inflates beyond the size limit")
    if not inflater.eof:
        raise DecompressionFailed("the compressed data is cut short")
    return output


def _asn1_certificate(certificate: x509.Certificate) -> Any:
    """The asn1crypto view of a certificate, for matching signer and recipient identifiers."""
    return asn1_x509.Certificate.load(certificate.public_bytes(serialization.Encoding.DER))


def _identifies(identifier: Any, certificate: Any) -> bool:
    """Whether a SignerIdentifier/RecipientIdentifier names this certificate."""
    if identifier.name == "issuer_and_serial_number":
        chosen = identifier.chosen
        return bool(
            chosen["serial_number"].native == certificate.serial_number
            and chosen["issuer"] == certificate.issuer
        )
    if identifier.name == "subject_key_identifier":
        return bool(identifier.chosen.native == certificate.key_identifier)
    return False
