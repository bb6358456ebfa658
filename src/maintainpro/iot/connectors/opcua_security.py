"""OPC-UA security for the connector: the server trust store and application certificates."""

from __future__ import annotations

import datetime as dt
import ipaddress
import logging
import re
from collections.abc import Sequence
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from maintainpro.core.db import utcnow

log = logging.getLogger(__name__)

CERT_SUFFIXES = (".der", ".pem", ".crt", ".cer")
REJECTED_DIR = "rejected"


class UntrustedServerError(Exception):
    """The server presented a certificate the trust store does not accept."""


def fingerprint(cert: x509.Certificate) -> str:
    """The SHA-256 fingerprint as colon-separated hex, the form certificate tools show."""
    return cert.fingerprint(hashes.SHA256()).hex(":").upper()


def describe(cert: x509.Certificate) -> str:
    """A short human description: subject and fingerprint."""
    return f"{cert.subject.rfc4514_string()} (SHA-256 {fingerprint(cert)})"


def application_uri(cert: x509.Certificate) -> str | None:
    """The application URI from the certificate's subjectAltName, if present."""
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return None
    uris = san.get_values_for_type(x509.UniformResourceIdentifier)
    return uris[0] if uris else None


def load_certificate(data: bytes) -> x509.Certificate:
    """Parse a DER or PEM certificate."""
    if data.lstrip().startswith(b"-----BEGIN"):
        return x509.load_pem_x509_certificate(data)
    return x509.load_der_x509_certificate(data)


def _is_ca(cert: x509.Certificate) -> bool:
    try:
        return bool(cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca)
    except x509.ExtensionNotFound:
        return False


def _safe_name(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]", "_", text)[:100] or "device"


class TrustStore:
    """A directory of trusted server certificates (DER or PEM), read on every check.

    A server certificate is trusted when the very certificate is in the directory, or when a CA
    certificate in the directory issued it. Reading the directory each time means an operator
    who copies a certificate in is heard on the next reconnect, without a restart.
    """

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def certificates(self) -> list[x509.Certificate]:
        """Every certificate in the directory; unreadable files are logged and skipped."""
        certs: list[x509.Certificate] = []
        if not self.directory.is_dir():
            return certs
        for path in sorted(self.directory.iterdir()):
            if not path.is_file() or path.suffix.lower() not in CERT_SUFFIXES:
                continue
            try:
                certs.append(load_certificate(path.read_bytes()))
            except (OSError, ValueError) as exc:
                log.warning(
                    "unreadable certificate in the OPC-UA trust store",
                    extra={"path": str(path), "error": str(exc)},
                )
        return certs

    def is_trusted(self, cert: x509.Certificate) -> bool:
        """Whether the certificate or a CA that issued it is in the store."""
        for trusted in self.certificates():
            if trusted == cert:
                return True
            if _is_ca(trusted) and trusted.subject == cert.issuer:
                try:
                    cert.verify_directly_issued_by(trusted)
                except (InvalidSignature, ValueError, TypeError):
                    continue
                return True
        return False

    def pin_path(self, device_key: str) -> Path:
        """Where trust-on-first-use stores the certificate first seen for a device."""
        return self.directory / f"tofu-{_safe_name(device_key)}.der"

    def check(
        self,
        cert_der: bytes,
        *,
        device_key: str,
        trust_on_first_use: bool = False,
        now: dt.datetime | None = None,
    ) -> x509.Certificate:
        """Accept the server certificate or raise UntrustedServerError saying what to do."""
        cert = load_certificate(cert_der)
        now = now or utcnow()
        if cert.not_valid_after_utc < now:
            raise UntrustedServerError(
                f"server certificate {describe(cert)} expired on "
                f"{cert.not_valid_after_utc.isoformat()}"
            )
        if cert.not_valid_before_utc > now:
            raise UntrustedServerError(
                f"server certificate {describe(cert)} is not valid before "
                f"{cert.not_valid_before_utc.isoformat()}"
            )
        if self.is_trusted(cert):
            return cert
        pin = self.pin_path(device_key)
        if trust_on_first_use and not pin.exists():
            self.directory.mkdir(parents=True, exist_ok=True)
            pin.write_bytes(cert.public_bytes(serialization.Encoding.DER))
            log.warning(
                "OPC-UA server certificate trusted on first use",
                extra={"device": device_key, "certificate": describe(cert), "path": str(pin)},
            )
            return cert
        saved = self._keep_rejected(cert)
        hint = f"; a copy is in {saved}" if saved else ""
        pinned = " (differs from the certificate trusted on first use)" if pin.exists() else ""
        raise UntrustedServerError(
            f"server certificate {describe(cert)} is not trusted{pinned}: it is not in the "
            f"trust store {self.directory} and no CA there issued it{hint}; "
            "copy it into the trust store to trust this server"
        )

    def _keep_rejected(self, cert: x509.Certificate) -> Path | None:
        # Like other OPC-UA clients, keep refused certificates apart so an operator can inspect
        # one and move it into the store, instead of fetching it by other means.
        folder = self.directory / REJECTED_DIR
        path = folder / f"{fingerprint(cert).replace(':', '').lower()}.der"
        try:
            folder.mkdir(parents=True, exist_ok=True)
            path.write_bytes(cert.public_bytes(serialization.Encoding.DER))
        except OSError:
            return None
        return path


def generate_application_certificate(
    cert_path: Path,
    key_path: Path,
    *,
    application_uri: str,
    hostnames: Sequence[str] = ("localhost",),
    common_name: str = "MaintAInPro Integration Hub",
    days: int = 365,
    server: bool = False,
    key_size: int = 2048,
) -> x509.Certificate:
    """Write a self-signed OPC-UA application certificate (DER) and its private key (PEM)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=key_size)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    alt_names: list[x509.GeneralName] = [x509.UniformResourceIdentifier(application_uri)]
    for host in hostnames:
        try:
            alt_names.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            alt_names.append(x509.DNSName(host))
    now = utcnow()
    usages = [ExtendedKeyUsageOID.CLIENT_AUTH]
    if server:
        usages.append(ExtendedKeyUsageOID.SERVER_AUTH)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=days))
        .add_extension(x509.SubjectAlternativeName(alt_names), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=True,
                key_encipherment=True,
                data_encipherment=True,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage(usages), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    cert_path.parent.mkdir(parents=True, exist_ok=True)
    key_path.parent.mkdir(parents=True, exist_ok=True)
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.DER))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    key_path.chmod(0o600)
    return cert
