"""Throwaway AS2 identities (2048-bit RSA, self-signed) and partner settings for both ends."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID
from fastapi.testclient import TestClient

from maintainpro.supply.as2.mdn import OutboundMdn
from maintainpro.supply.as2.partners import As2Partner
from maintainpro.supply.as2.receiver import As2Receiver
from supply.as2.as2_world import (
    OUR_ID,
    PARTNER_ID,
    Identity,
    MemoryIds,
    Sink,
    Station,
    lookup,
    receiver_app,
)


def _identity(common_name: str, folder: Path) -> Identity:
    """A key and a self-signed certificate fit for S/MIME signing and key transport."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = dt.datetime.now(dt.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    key_path = folder / f"{common_name}.key.pem"
    cert_path = folder / f"{common_name}.cert.pem"
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    return Identity(key, certificate, key_path, cert_path)


@pytest.fixture(scope="session")
def identities(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Identity]:
    """Us, the partner, and a stranger who is nobody's partner."""
    folder = tmp_path_factory.mktemp("as2-keys")
    return {name: _identity(name, folder) for name in ("us", "partner", "stranger")}


@pytest.fixture
def ours(identities: dict[str, Identity]) -> As2Partner:
    """Our view of the partner: we sign, encrypt with AES-256 and ask for a signed sync MDN."""
    us, partner = identities["us"], identities["partner"]
    return As2Partner(
        our_as2_id=OUR_ID,
        partner_as2_id=PARTNER_ID,
        our_key=us.key,
        our_certificate=us.certificate,
        partner_certificate=partner.certificate,
        url="http://127.0.0.1:9/as2/receive",
    )


@pytest.fixture
def theirs(identities: dict[str, Identity]) -> As2Partner:
    """The partner's view of us (what the partner's side of a test runs with)."""
    us, partner = identities["us"], identities["partner"]
    return As2Partner(
        our_as2_id=PARTNER_ID,
        partner_as2_id=OUR_ID,
        our_key=partner.key,
        our_certificate=partner.certificate,
        partner_certificate=us.certificate,
    )


@pytest.fixture
def station(ours: As2Partner) -> Iterator[Station]:
    """Our AS2 endpoint expecting messages from the partner, with in-memory fakes injected."""
    sink, ids = Sink(), MemoryIds()
    posted: list[tuple[str, OutboundMdn, As2Partner]] = []
    receiver = As2Receiver(
        find_partner=lookup(ours),
        message_ids=ids,
        deliver=sink.deliver,
        archive=sink.archive,
        send_async_mdn=lambda url, mdn, partner: posted.append((url, mdn, partner)),
        receive_mdn=sink.receipt,
    )
    with TestClient(receiver_app(receiver)) as http:
        yield Station(http, receiver, sink, ids, posted)
