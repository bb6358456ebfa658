"""Helpers for the AS2 tests: identities, OpenSSL as the partner, and in-memory injected stores."""

from __future__ import annotations

import datetime as dt
import subprocess
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import rsa
from fastapi import FastAPI
from fastapi.testclient import TestClient

from maintainpro.supply.as2.endpoint import build_as2_router
from maintainpro.supply.as2.inbound import ReceivedMessage
from maintainpro.supply.as2.mdn import OutboundMdn, ReceivedMdn
from maintainpro.supply.as2.mime import parse_entity
from maintainpro.supply.as2.partners import As2Partner
from maintainpro.supply.as2.receiver import As2Receiver, InboundRecord

OPENSSL = "/usr/bin/openssl"
OUR_ID = "MAINTAINPRO"
PARTNER_ID = "ACME SUPPLY"
EDI_850 = (
    b"ISA*00*          *00*          *ZZ*ACMESUPPLY     *ZZ*MAINTAINPRO    *260101*1200*U*00401"
    b"*000000101*0*P*>~\r\nGS*PO*ACMESUPPLY*MAINTAINPRO*20260101*1200*101*X*004010~\r\n"
    b"ST*850*0001~\r\nBEG*00*SA*PO-1001**20260101~\r\nSE*3*0001~\r\nGE*1*101~\r\nIEA*1*000000101~\r\n"
)


@dataclass(frozen=True)
class Identity:
    """A key, its certificate, and both as PEM files for OpenSSL."""

    key: rsa.RSAPrivateKey
    certificate: x509.Certificate
    key_path: Path
    cert_path: Path


def openssl(*args: str | Path, data: bytes | None = None) -> bytes:
    """Run `openssl` and return stdout; a failure raises with OpenSSL's own message."""
    command = [OPENSSL, *(str(arg) for arg in args)]
    done = subprocess.run(command, input=data, capture_output=True, check=False)  # noqa: S603
    if done.returncode != 0:
        raise AssertionError(f"openssl {args[0]} failed: {done.stderr.decode(errors='replace')}")
    return done.stdout


def http_parts(smime: bytes) -> tuple[dict[str, str], bytes]:
    """Split an S/MIME file written by OpenSSL into HTTP headers (its MIME headers) and body,
    the way an AS2 product puts the outer entity on the wire."""
    entity = parse_entity(smime)
    headers = {name: value for name, value in entity.headers if name.lower() != "mime-version"}
    return headers, entity.body


def as2_headers(message_id: str, *, signed_receipt: bool = True) -> dict[str, str]:
    """The AS2 headers the OpenSSL-played partner adds to its request."""
    headers = {
        "AS2-Version": "1.2",
        "AS2-From": f'"{PARTNER_ID}"',
        "AS2-To": OUR_ID,
        "Message-ID": message_id,
        "Disposition-Notification-To": "edi@acme.example",
    }
    if signed_receipt:
        headers["Disposition-Notification-Options"] = (
            "signed-receipt-protocol=optional, pkcs7-signature; "
            "signed-receipt-micalg=optional, sha-256"
        )
    return headers


@dataclass
class MemoryIds:
    """A MessageIdStore in a dict."""

    ids: dict[tuple[str, str], dt.datetime] = field(default_factory=dict)

    def seen(self, as2_from: str, message_id: str) -> bool:
        """Whether the pair is known."""
        return (as2_from, message_id) in self.ids

    def remember(self, as2_from: str, message_id: str, received_at: dt.datetime) -> None:
        """Store the pair."""
        self.ids[(as2_from, message_id)] = received_at


@dataclass
class Sink:
    """Collects what the receiver hands on and archives."""

    delivered: list[ReceivedMessage] = field(default_factory=list)
    receipts: list[ReceivedMdn] = field(default_factory=list)
    archived: list[InboundRecord] = field(default_factory=list)

    def deliver(self, message: ReceivedMessage, partner: As2Partner) -> None:
        """Keep a delivered payload."""
        self.delivered.append(message)

    def receipt(self, mdn: ReceivedMdn, partner: As2Partner) -> None:
        """Keep a received MDN."""
        self.receipts.append(mdn)

    def archive(self, record: InboundRecord) -> None:
        """Keep an archive record."""
        self.archived.append(record)


@dataclass
class Station:
    """Our receiving end: the HTTP client of a bare app with the AS2 router, and its fakes."""

    http: TestClient
    receiver: As2Receiver
    sink: Sink
    ids: MemoryIds
    async_mdns: list[tuple[str, OutboundMdn, As2Partner]]


def receiver_app(receiver: As2Receiver) -> FastAPI:
    """A bare FastAPI app with only the AS2 router, as the lead mounts it in the real app."""
    app = FastAPI()
    app.include_router(build_as2_router(receiver))
    return app


def lookup(*partners: As2Partner) -> Callable[[str, str], As2Partner | None]:
    """A partner lookup by (AS2-From, AS2-To) over fixed settings."""
    table = {(one.partner_as2_id, one.our_as2_id): one for one in partners}
    return lambda as2_from, as2_to: table.get((as2_from, as2_to))


def received_mic(mdn_entity: bytes) -> str:
    """The base64 digest in a Received-Content-MIC field of a verified multipart/report."""
    for line in mdn_entity.splitlines():
        if line.lower().startswith(b"received-content-mic:"):
            return line.split(b":", 1)[1].split(b",")[0].strip().decode()
    raise AssertionError("the MDN has no Received-Content-MIC")
