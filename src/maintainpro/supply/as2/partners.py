"""AS2 trading-partner settings as a plain, storage-agnostic value; key and certificate loading."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from maintainpro.supply.as2.headers import check_as2_name
from maintainpro.supply.as2.mic import SIGNING_ALGORITHMS, normalise_algorithm
from maintainpro.supply.as2.smime import ContentCipher

DEFAULT_MAX_PAYLOAD_BYTES = 64 * 1024 * 1024


class MdnMode(StrEnum):
    """How the partner should answer our messages."""

    NONE = "none"
    SYNC = "sync"
    ASYNC = "async"


@dataclass(frozen=True)
class As2Partner:
    """One AS2 relationship seen from our side: identities, keys and what each message needs.

    The same value serves both directions: outbound settings (sign, encryption, compress,
    mdn_mode) say what we send; the require_* flags say what we accept from the partner.
    """

    our_as2_id: str
    partner_as2_id: str
    our_key: rsa.RSAPrivateKey
    our_certificate: x509.Certificate
    partner_certificate: x509.Certificate
    url: str = ""
    sign: bool = True
    encryption: ContentCipher | None = ContentCipher.AES256_CBC
    compress: bool = False
    digest: str = "sha-256"
    mdn_mode: MdnMode = MdnMode.SYNC
    mdn_signed: bool = True
    async_mdn_url: str | None = None
    require_signed: bool = True
    require_encrypted: bool = True
    require_signed_mdn: bool = True
    content_type: str = "application/EDI-X12"
    max_payload_bytes: int = DEFAULT_MAX_PAYLOAD_BYTES

    def __post_init__(self) -> None:
        """Refuse settings that could only fail later, on the wire."""
        check_as2_name(self.our_as2_id)
        check_as2_name(self.partner_as2_id)
        if normalise_algorithm(self.digest) not in SIGNING_ALGORITHMS:
            raise ValueError("the signing digest must be sha-256, sha-384 or sha-512")
        if self.mdn_mode is MdnMode.ASYNC and not self.async_mdn_url:
            raise ValueError("asynchronous MDNs need the URL the partner should post them to")
        if self.url and not self.url.startswith(("https://", "http://")):
            raise ValueError("the partner URL must be http(s)")
        if self.max_payload_bytes <= 0:
            raise ValueError("the payload size limit must be positive")


def load_certificate(data: bytes) -> x509.Certificate:
    """A certificate from PEM or DER bytes."""
    if data.lstrip().startswith(b"-----BEGIN"):
        return x509.load_pem_x509_certificate(data)
    return x509.load_der_x509_certificate(data)


def load_private_key(data: bytes, password: bytes | None = None) -> rsa.RSAPrivateKey:
    """An RSA private key from PEM or DER (PKCS #8 or traditional); AS2 encryption needs RSA."""
    if data.lstrip().startswith(b"-----BEGIN"):
        key = serialization.load_pem_private_key(data, password)
    else:
        key = serialization.load_der_private_key(data, password)
    if not isinstance(key, rsa.RSAPrivateKey):
        raise ValueError("AS2 keys must be RSA keys")
    return key
