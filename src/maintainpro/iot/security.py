"""Device security helpers (pure): Mosquitto password hashes, ACL text, keys, certificates."""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
import hmac
import ipaddress
import re
import secrets
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

# mosquitto_passwd (2.0) writes PBKDF2-HMAC-SHA512 with 101 iterations and a 12-byte salt. The
# passwords the hub issues carry 256 random bits, so more iterations would only slow every
# broker CONNECT without making a guess any more likely; callers may still ask for more.
PBKDF2_ITERATIONS = 101
SALT_BYTES = 12
HASH_PREFIX = "$7$"
EDGE_USER_PREFIX = "edge/"
# What may stand in a broker username or a topic level the ACL names: no wildcards, no level
# separator (except in the edge prefix), nothing that breaks a line of the files.
_NAME = re.compile(r"^[A-Za-z0-9_.:-]{1,128}$")


class SecurityFormatError(ValueError):
    """A value cannot be written safely into a broker file."""


# --------------------------------------------------------------------------------------------
# Mosquitto password file ($7$ = PBKDF2-SHA512)
# --------------------------------------------------------------------------------------------


def mosquitto_hash(
    password: str, *, salt: bytes | None = None, iterations: int = PBKDF2_ITERATIONS
) -> str:
    """The `$7$<iterations>$<salt>$<hash>` form mosquitto_passwd writes for a password."""
    if iterations < 1:
        raise SecurityFormatError("iterations must be positive")
    salt = secrets.token_bytes(SALT_BYTES) if salt is None else salt
    digest = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, iterations)
    return (
        f"{HASH_PREFIX}{iterations}${base64.b64encode(salt).decode()}"
        f"${base64.b64encode(digest).decode()}"
    )


def parse_mosquitto_hash(encoded: str) -> tuple[int, bytes, bytes]:
    """Iterations, salt and digest of a `$7$` hash; SecurityFormatError if malformed."""
    parts = encoded.split("$")
    if len(parts) != 5 or parts[0] != "" or parts[1] != "7":
        raise SecurityFormatError("not a Mosquitto $7$ hash")
    try:
        iterations = int(parts[2])
        salt = base64.b64decode(parts[3], validate=True)
        digest = base64.b64decode(parts[4], validate=True)
    except (ValueError, binascii.Error) as exc:
        raise SecurityFormatError("not a Mosquitto $7$ hash") from exc
    if iterations < 1 or len(digest) != hashlib.sha512().digest_size:
        raise SecurityFormatError("not a Mosquitto $7$ hash")
    return iterations, salt, digest


def verify_mosquitto_hash(password: str, encoded: str) -> bool:
    """Whether the password matches a `$7$` hash (constant-time comparison)."""
    try:
        iterations, salt, digest = parse_mosquitto_hash(encoded)
    except SecurityFormatError:
        return False
    candidate = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, iterations)
    return hmac.compare_digest(candidate, digest)


def check_username(username: str) -> str:
    """The username if it can stand in the password and ACL files, else SecurityFormatError."""
    name = username.removeprefix(EDGE_USER_PREFIX)
    if not _NAME.match(name) or ":" in username:
        raise SecurityFormatError(
            f"{username!r} cannot be a broker username (letters, digits, _ . - only)"
        )
    return username


def password_file_text(entries: Mapping[str, str]) -> str:
    """A Mosquitto password file: one `username:$7$...` line per account, sorted."""
    lines = []
    for username in sorted(entries):
        encoded = entries[username]
        parse_mosquitto_hash(encoded)
        lines.append(f"{check_username(username)}:{encoded}")
    return "".join(f"{line}\n" for line in lines)


# --------------------------------------------------------------------------------------------
# ACL file
# --------------------------------------------------------------------------------------------


def agent_username(agent_key: str) -> str:
    """The broker username of an edge agent (cannot collide with a device key)."""
    return f"{EDGE_USER_PREFIX}{agent_key}"


def _topic_level(key: str) -> str:
    if not _NAME.match(key):
        raise SecurityFormatError(f"{key!r} cannot be a topic level in the ACL")
    return key


@dataclass(frozen=True)
class AclPlan:
    """Who may do what on the broker."""

    hub_users: Sequence[str] = ()
    devices: Sequence[str] = ()
    # agent key -> the device keys it forwards for
    agents: Mapping[str, Sequence[str]] | None = None
    device_root: str = "devices"
    edge_root: str = "edge"


def acl_text(plan: AclPlan) -> str:
    """A Mosquitto ACL file: devices write only their own topics, the hub reads them all.

    Anything not granted is denied, so a device publishing to another device's topic is
    dropped by the broker and never reaches a subscriber there.
    """
    root = plan.device_root.strip("/") or "devices"
    edge = plan.edge_root.strip("/") or "edge"
    blocks = ["# Written by MaintAInPro; edits are overwritten. Anything not granted is denied.\n"]
    for user in sorted(set(plan.hub_users)):
        blocks.append(
            f"user {check_username(user)}\ntopic read {root}/#\ntopic readwrite {edge}/#\n"
        )
    for device in sorted(set(plan.devices)):
        level = _topic_level(check_username(device))
        blocks.append(f"user {device}\ntopic write {root}/{level}/#\n")
    for agent, served in sorted((plan.agents or {}).items()):
        level = _topic_level(agent)
        lines = [
            f"user {check_username(agent_username(agent))}",
            f"topic readwrite {edge}/{level}/#",
        ]
        lines += [f"topic write {root}/{_topic_level(d)}/#" for d in sorted(set(served))]
        blocks.append("\n".join(lines) + "\n")
    return "\n".join(blocks)


# --------------------------------------------------------------------------------------------
# Secrets
# --------------------------------------------------------------------------------------------


def generate_password() -> str:
    """A random MQTT password (256 bits, URL-safe)."""
    return secrets.token_urlsafe(32)


def generate_psk() -> tuple[str, str]:
    """A random CoAP DTLS (identity, key in hex): identity 12 bytes, key 32 bytes."""
    return f"psk-{secrets.token_hex(12)}", secrets.token_hex(32)


PROVISIONING_PREFIX = "mpk_"


def generate_provisioning_key() -> str:
    """A new provisioning key (shown once; only its SHA-256 is stored)."""
    return PROVISIONING_PREFIX + secrets.token_urlsafe(32)


def hash_provisioning_key(key: str) -> str:
    """The stored form of a provisioning key: SHA-256 hex (the key has 256 random bits)."""
    return hashlib.sha256(key.encode()).hexdigest()


def key_hint(key: str) -> str:
    """The part of a key people may see to tell keys apart."""
    return key[: len(PROVISIONING_PREFIX) + 4] + "…"


# --------------------------------------------------------------------------------------------
# Certificates
# --------------------------------------------------------------------------------------------


def fingerprint(cert: x509.Certificate) -> str:
    """The SHA-256 fingerprint as colon-separated hex."""
    return cert.fingerprint(hashes.SHA256()).hex(":").upper()


def serial_text(cert: x509.Certificate) -> str:
    """The serial number as hex, the form openssl shows."""
    return format(cert.serial_number, "X")


def key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    """A private key as unencrypted PKCS#8 PEM (write it 0600)."""
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def cert_pem(cert: x509.Certificate) -> bytes:
    """A certificate as PEM."""
    return cert.public_bytes(serialization.Encoding.PEM)


def new_private_key() -> ec.EllipticCurvePrivateKey:
    """A P-256 key: small, fast, and supported by Mosquitto, paho and embedded TLS stacks."""
    return ec.generate_private_key(ec.SECP256R1())


def make_ca(
    common_name: str, *, not_before: dt.datetime, not_after: dt.datetime
) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    """A self-signed CA certificate and its key."""
    key = new_private_key()
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return cert, key


def issue_certificate(
    ca_cert: x509.Certificate,
    ca_key: ec.EllipticCurvePrivateKey,
    common_name: str,
    *,
    not_before: dt.datetime,
    not_after: dt.datetime,
    server_names: Iterable[str] = (),
) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    """A leaf certificate signed by the CA: client auth, plus server auth for server names."""
    key = new_private_key()
    names = list(server_names)
    usages = [ExtendedKeyUsageOID.SERVER_AUTH] if names else [ExtendedKeyUsageOID.CLIENT_AUTH]
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)]))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage(usages), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
            critical=False,
        )
    )
    if names:
        alt: list[x509.GeneralName] = []
        for host in names:
            try:
                alt.append(x509.IPAddress(ipaddress.ip_address(host)))
            except ValueError:
                alt.append(x509.DNSName(host))
        builder = builder.add_extension(x509.SubjectAlternativeName(alt), critical=False)
    return builder.sign(ca_key, hashes.SHA256()), key


def make_crl(
    ca_cert: x509.Certificate,
    ca_key: ec.EllipticCurvePrivateKey,
    revoked: Iterable[tuple[int, dt.datetime]],
    *,
    now: dt.datetime,
    next_update: dt.timedelta = dt.timedelta(days=7),
) -> x509.CertificateRevocationList:
    """A CRL listing (serial, revoked at) pairs."""
    builder = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(ca_cert.subject)
        .last_update(now)
        .next_update(now + next_update)
    )
    for serial, at in revoked:
        builder = builder.add_revoked_certificate(
            x509.RevokedCertificateBuilder().serial_number(serial).revocation_date(at).build()
        )
    return builder.sign(ca_key, hashes.SHA256())
