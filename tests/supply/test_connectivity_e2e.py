"""Supplier connectivity end to end, in the running hub (uvicorn on a free port).

The supplier is played by real peers: its AS2 station is a small HTTP server running `openssl
cms` (decrypt and verify our 850 and 997s, sign its MDNs, sign and encrypt its own documents),
and its SFTP server is asyncssh in this process. Time is driven by explicit calls (the outbox's
deliver_pending, the poller's poll_once); nothing waits on a clock.

Done means (issue 8): a PO leaves as an 850 over AS2; the partner's 855 and 856 come back over
AS2 and SFTP; 997s flow both ways; the PO shows acknowledged and shipped with its tracking
number; a 214 marks it delivered; a receipt and the matched 810 let it close. Hostile input
through the same endpoints is refused with a clear reason, archived, and changes nothing.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import itertools
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, sessionmaker

from maintainpro.app import create_app
from maintainpro.config import Settings
from maintainpro.core.db import utcnow
from maintainpro.core.events import OutboxEvent, deliver_pending
from maintainpro.core.users import Role
from maintainpro.runtime import Supervisor
from maintainpro.supply.as2.mime import build_entity, parse_entity
from maintainpro.supply.as2.partners import load_certificate, load_private_key
from maintainpro.supply.edi.archive import As2Message, Direction
from maintainpro.supply.edi.carrier_status_out import carrier_status_content
from maintainpro.supply.edi.functional_ack import (
    AckStatus,
    FunctionalAcknowledgement,
    acknowledge_group,
    functional_ack_content,
)
from maintainpro.supply.edi.invoice_out import invoice_content
from maintainpro.supply.edi.model import Interchange
from maintainpro.supply.edi.order_ack_out import order_ack_content
from maintainpro.supply.edi.orders import PurchaseOrder as X12PurchaseOrder
from maintainpro.supply.edi.partners import TradingPartner
from maintainpro.supply.edi.ship_notice_out import ship_notice_content
from maintainpro.supply.edi.transactions import read_documents
from maintainpro.supply.edi.wiring import SupplierConnectivity
from maintainpro.supply.edi.x12 import parse_interchange
from maintainpro.supply.purchasing import PurchaseOrder, add_line, new_purchase_order
from maintainpro.supply.suppliers import Supplier
from supply.as2.as2_world import OUR_ID, PARTNER_ID, Identity, as2_headers, http_parts, openssl
from supply.edi.edi_world import (
    acknowledgement,
    carrier_status,
    counts,
    edi_supplier,
    from_partner,
    invoice,
    part_id,
    ship_notice,
)
from supply.procurement_world import TODAY, World
from supply.sftp_partner import USERNAME, Partner, public_line, running_partner
from support import bearer

pytestmark = pytest.mark.integration

TRACKING = "1Z999AA10123456784"
# Small enough to test cheaply, larger than the API's limit in the test settings (64 KiB).
AS2_BODY_LIMIT = 512 * 1024
DOCUMENTS = ["850", "855", "856", "810", "214", "997"]


# --- keys, made with OpenSSL the way docs/edi-onboarding.md tells partners to -------------------


def openssl_identity(folder: Path, name: str) -> Identity:
    """A 2048-bit RSA key and self-signed certificate made by `openssl req -x509`."""
    key_path, cert_path = folder / f"{name}.key.pem", folder / f"{name}.cert.pem"
    openssl(
        "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-sha256", "-days", "30",
        "-subj", f"/CN={name}", "-keyout", key_path, "-out", cert_path,
    )  # fmt: skip
    return Identity(
        load_private_key(key_path.read_bytes()),
        load_certificate(cert_path.read_bytes()),
        key_path,
        cert_path,
    )


@dataclass(frozen=True)
class Keys:
    """Our AS2 identity, the supplier's, and a stranger's."""

    hub: Identity
    supplier: Identity
    stranger: Identity


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> Keys:
    """Key pairs for the whole module (RSA generation is the slow part)."""
    folder = tmp_path_factory.mktemp("as2-identities")
    return Keys(*(openssl_identity(folder, name) for name in ("hub", "supplier", "stranger")))


# --- the supplier's AS2 station, played by OpenSSL ----------------------------------------------


def sha256_mic(data: bytes) -> str:
    """A Received-Content-MIC value over exactly these bytes."""
    return base64.b64encode(hashlib.sha256(data).digest()).decode() + ", sha-256"


def edi_entity(payload: bytes, filename: str) -> bytes:
    """The MIME entity an AS2 product wraps an EDI file in before signing."""
    return (
        b"Content-Type: application/EDI-X12\r\nContent-Transfer-Encoding: binary\r\n"
        + f'Content-Disposition: attachment; filename="{filename}"\r\n\r\n'.encode()
        + payload
    )


@dataclass
class Arrival:
    """What the station took from us: the Message-ID and the verified payload."""

    message_id: str
    payload: bytes

    def interchange(self) -> Interchange:
        """The payload read with our own codec."""
        return parse_interchange(self.payload.decode()).interchange


@dataclass
class OpensslStation:
    """The supplier's AS2 station: `openssl cms` decrypts and verifies what we send, signs the
    MDN it answers with, and signs and encrypts what the supplier sends us."""

    folder: Path
    own: Identity
    hub_cert: Path
    arrivals: list[Arrival] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    _counter: Iterator[int] = field(default_factory=itertools.count)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def _work(self, label: str) -> Path:
        with self._lock:
            folder = self.folder / f"{label}-{next(self._counter)}"
        folder.mkdir(parents=True)
        return folder

    def take(self, headers: dict[str, str], body: bytes) -> tuple[dict[str, str], bytes]:
        """Decrypt and verify our message with OpenSSL; answer with an OpenSSL-signed MDN."""
        work = self._work("in")
        (work / "body.der").write_bytes(body)
        signed = openssl(
            "cms", "-decrypt", "-binary", "-inform", "DER", "-in", work / "body.der",
            "-inkey", self.own.key_path, "-recip", self.own.cert_path,
        )  # fmt: skip
        (work / "signed.eml").write_bytes(signed)
        entity = openssl("cms", "-verify", "-in", work / "signed.eml", "-CAfile", self.hub_cert)
        message_id = headers["message-id"]
        self.arrivals.append(Arrival(message_id, parse_entity(entity).body))
        boundary = "mdn-report"
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
                f"Original-Message-ID: {message_id}\r\n"
                f"Received-Content-MIC: {sha256_mic(entity)}\r\n"
                "Disposition: automatic-action/MDN-sent-automatically; processed\r\n\r\n"
                f"--{boundary}--\r\n"
            ).encode(),
        )
        mdn_headers, mdn_body = http_parts(self.sign(report, work))
        mdn_headers |= {
            "AS2-Version": "1.2",
            "AS2-From": f'"{PARTNER_ID}"',
            "AS2-To": OUR_ID,
            "Message-ID": f"<mdn-{work.name}@acme.example>",
        }
        return mdn_headers, mdn_body

    def sign(self, entity: bytes, work: Path, signer: Identity | None = None) -> bytes:
        """OpenSSL's multipart/signed S/MIME of an entity (the supplier's key by default)."""
        who = signer or self.own
        (work / "entity.bin").write_bytes(entity)
        return openssl(
            "cms", "-sign", "-binary", "-crlfeol", "-md", "sha256", "-in", work / "entity.bin",
            "-signer", who.cert_path, "-inkey", who.key_path,
        )  # fmt: skip

    def encrypt(self, content: bytes, work: Path) -> bytes:
        """OpenSSL's enveloped-data S/MIME (AES-256) for the hub's certificate."""
        (work / "inner.bin").write_bytes(content)
        return openssl(
            "cms", "-encrypt", "-binary", "-crlfeol", "-aes256", "-in", work / "inner.bin",
            self.hub_cert,
        )  # fmt: skip

    def message(
        self,
        payload: bytes,
        message_id: str,
        *,
        filename: str = "edi.x12",
        signer: Identity | None = None,
        tamper: tuple[bytes, bytes] | None = None,
    ) -> tuple[dict[str, str], bytes, bytes]:
        """An AS2 request (headers, body) carrying an EDI file, and the entity it signed."""
        work = self._work("out")
        entity = edi_entity(payload, filename)
        signed = self.sign(entity, work, signer)
        if tamper is not None:
            # Changed after signing: what a man in the middle would do to a document.
            assert tamper[0] in signed
            signed = signed.replace(*tamper, 1)
        headers, body = http_parts(self.encrypt(signed, work))
        return {**headers, **as2_headers(message_id)}, body, entity

    def verified_mdn(self, response: httpx.Response) -> bytes:
        """Our MDN checked by OpenSSL against the hub's certificate; the signed report."""
        work = self._work("mdn")
        (work / "mdn.eml").write_bytes(
            build_entity((("Content-Type", response.headers["content-type"]),), response.content)
        )
        return openssl("cms", "-verify", "-in", work / "mdn.eml", "-CAfile", self.hub_cert)


@pytest.fixture
def station(keys: Keys, tmp_path: Path) -> Iterator[tuple[OpensslStation, str]]:
    """The supplier's AS2 station on a free port; yields it and its URL."""
    folder = tmp_path / "station"
    folder.mkdir()
    station = OpensslStation(folder, keys.supplier, keys.hub.cert_path)

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            try:
                headers, answer = station.take(
                    {k.lower(): v for k, v in self.headers.items()}, body
                )
            except AssertionError as exc:
                station.failures.append(str(exc))
                self.send_response(500)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            self.send_response(200)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield station, f"http://127.0.0.1:{server.server_address[1]}/as2"
    server.shutdown()
    server.server_close()


# --- the hub, served by uvicorn ------------------------------------------------------------------


@dataclass
class Hub:
    """The running app: its URL, session factory and connectivity, and an admin's API client."""

    url: str
    factory: sessionmaker[Session]
    connectivity: SupplierConnectivity
    supervisor: Supervisor
    api: httpx.Client

    def drain(self) -> int:
        """Run the outbox until nothing is due; fail on any handler error."""
        delivered = 0
        for _ in range(10):
            done = deliver_pending(self.factory, self.connectivity.outbox_handlers)
            if not done:
                break
            delivered += done
        with self.factory() as session:
            errors = session.scalars(
                select(OutboxEvent.last_error).where(
                    OutboxEvent.delivered_at.is_(None), OutboxEvent.last_error.is_not(None)
                )
            ).all()
        assert not errors, errors
        return delivered

    def order(self, order_id: int) -> dict[str, Any]:
        """GET /purchase-orders/{id}."""
        return self.ok(self.api.get(f"/purchase-orders/{order_id}"))

    @staticmethod
    def ok(response: httpx.Response) -> Any:
        """The JSON of a 2xx answer."""
        assert response.is_success, (response.status_code, response.text)
        return response.json()

    def post_as2(self, headers: dict[str, str], body: bytes) -> httpx.Response:
        """POST to our AS2 endpoint, as the partner's AS2 product does."""
        return httpx.post(f"{self.url}/as2/receive", content=body, headers=headers, timeout=60)


@pytest.fixture
def hub(settings: Settings, engine: Engine, keys: Keys, make_user: Any) -> Iterator[Hub]:
    """create_app with background jobs wired (lifespan off: the test drives every job)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen(64)
    url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    app = create_app(
        settings.model_copy(
            update={
                "run_background_jobs": True,
                "as2_key_file": keys.hub.key_path,
                "as2_cert_file": keys.hub.cert_path,
                "as2_max_body_bytes": AS2_BODY_LIMIT,
                "public_url": url,
            }
        )
    )
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        assert thread.is_alive(), "the hub did not start"
        assert time.monotonic() < deadline, "the hub did not start in time"
        time.sleep(0.02)
    _, token = make_user(Role.ADMIN)
    with httpx.Client(base_url=f"{url}/api/v1", headers=bearer(token), timeout=60) as api:
        yield Hub(
            url,
            app.state.session_factory,
            app.state.supplier_connectivity,
            app.state.supervisor,
            api,
        )
    server.should_exit = True
    thread.join(15)
    sock.close()
    app.state.engine.dispose()  # lifespan off: nothing else closes the app's connections


# --- test data ----------------------------------------------------------------------------------


def draft_order(world: World, supplier: Supplier) -> PurchaseOrder:
    """A draft for 10 bearings (BRG-1, in stock at the storeroom) at 9.00 each."""
    order = new_purchase_order(
        world.db,
        supplier=supplier,
        currency=supplier.currency,
        base_currency="USD",
        rate=world.fx().rate(supplier.currency, "USD", TODAY),
    )
    add_line(
        order,
        part_id=part_id(world, "BRG-1"),
        quantity=Decimal(10),
        unit_price=Decimal("9.00"),
        need_by=utcnow().date() + dt.timedelta(days=10),
    )
    world.db.flush()
    return order


def partner_setup(
    supplier: Supplier, station_url: str, keys: Keys, sftp: Partner | None
) -> dict[str, Any]:
    """POST /edi/partners body: AS2 both ways, and the supplier's SFTP folder we poll."""
    body: dict[str, Any] = {
        # ISA qualifiers left at their default (ZZ): POST /edi/partners answers 409 when both
        # are given, its duplicate check finding the new row itself (reported to the lead).
        "supplier_id": supplier.id,
        "isa_id": f"{supplier.code}EDI",
        "gs_id": f"{supplier.code}EDI",
        "our_isa_id": "MAINTAINPRO",
        "our_gs_id": "MAINTAINPRO",
        "documents": DOCUMENTS,
        "transport": "as2",
        "as2_id": PARTNER_ID,
        "our_as2_id": OUR_ID,
        "as2_url": station_url,
        "partner_cert_pem": keys.supplier.cert_path.read_text(),
        "settings": {"buyer_name": "MaintAInPro Plant 1"},
    }
    if sftp is not None:
        body |= {
            "sftp_host": "127.0.0.1",
            "sftp_port": sftp.port,
            "sftp_username": USERNAME,
            "sftp_host_keys": public_line(sftp.host_key),
            "sftp_outbound_dir": "outbound",
            "sftp_inbound_dir": "inbound",
            "sftp_archive_dir": "archive",
            "secrets": {"sftp_private_key": sftp.client_key.export_private_key().decode()},
        }
    return body


@dataclass
class Scene:
    """One supplier on EDI with a sent order, seen from the test."""

    hub: Hub
    station: OpensslStation
    partner_id: int
    order_id: int
    number: str

    def partner(self) -> TradingPartner:
        """The stored partner (for envelopes the supplier builds)."""
        with self.hub.factory() as session:
            partner = session.get(TradingPartner, self.partner_id)
            assert partner is not None
            session.expunge(partner)
            return partner

    def send(self, payload: bytes, message_id: str) -> tuple[httpx.Response, bytes]:
        """The supplier posts an EDI file to the hub; returns our answer and the signed entity."""
        headers, body, entity = self.station.message(payload, message_id)
        return self.hub.post_as2(headers, body), entity

    def counts(self) -> dict[str, int]:
        """Rows inbound EDI may create (shipments, events, invoices, order history, catalogue)."""
        with self.hub.factory() as session:
            return counts(session)


def disposition(report: bytes) -> str:
    """The Disposition field of a verified MDN report."""
    for line in report.splitlines():
        if line.lower().startswith(b"disposition:"):
            return line.split(b";", 1)[1].strip().decode()
    raise AssertionError("the MDN has no Disposition")


def received_mic(report: bytes) -> str:
    """The Received-Content-MIC of a verified MDN report."""
    for line in report.splitlines():
        if line.lower().startswith(b"received-content-mic:"):
            return line.split(b":", 1)[1].strip().decode()
    raise AssertionError("the MDN has no Received-Content-MIC")


def functional_acks(arrivals: list[Arrival]) -> list[FunctionalAcknowledgement]:
    """The 997s among what the station took from us."""
    found: list[FunctionalAcknowledgement] = []
    for arrival in arrivals:
        found += [
            d
            for d in read_documents(arrival.interchange())
            if isinstance(d, FunctionalAcknowledgement)
        ]
    return found


def open_scene(
    hub: Hub,
    world: World,
    station: tuple[OpensslStation, str],
    keys: Keys,
    sftp: Partner | None,
    code: str = "ACME",
) -> Scene:
    """Supplier, partner (through the API) and an order approved and sent through the API."""
    supplier = edi_supplier(world, code, "USD")
    order = draft_order(world, supplier)
    world.db.commit()
    partner = hub.ok(
        hub.api.post("/edi/partners", json=partner_setup(supplier, station[1], keys, sftp))
    )
    hub.ok(hub.api.post(f"/purchase-orders/{order.id}/approve"))
    hub.ok(hub.api.post(f"/purchase-orders/{order.id}/send"))
    return Scene(hub, station[0], partner["id"], order.id, order.number)


# --- the round trip -----------------------------------------------------------------------------


async def test_an_order_goes_out_over_as2_and_comes_back_acknowledged_shipped_and_closed(
    hub: Hub,
    world: World,
    station: tuple[OpensslStation, str],
    keys: Keys,
    tmp_path: Path,
) -> None:
    async with running_partner(tmp_path / "sftp") as sftp:
        scene = open_scene(hub, world, station, keys, sftp)
        partner, acme = scene.partner(), scene.station

        # The 850 leaves through the outbox: dispatch queues it, the AS2 sender posts it.
        assert hub.drain() >= 2
        (sent,) = acme.arrivals
        (document,) = read_documents(sent.interchange())
        assert isinstance(document, X12PurchaseOrder)
        assert document.po_number == scene.number
        (outbound,) = hub.ok(hub.api.get("/edi/interchanges", params={"direction": "outbound"}))[
            "items"
        ]
        assert (outbound["status"], outbound["sets"], outbound["transport"]) == (
            "sent",
            ["850"],
            "as2",
        )
        assert (outbound["transport_ref"], outbound["ack_state"]) == (sent.message_id, "pending")

        # The supplier's 997 for our 850, over AS2: the interchange is acknowledged.
        ack = acknowledge_group(sent.interchange().groups[0], [])
        response, entity = scene.send(
            from_partner(partner, functional_ack_content(ack), control=1), "<997-1@acme.example>"
        )
        report = acme.verified_mdn(response)
        assert disposition(report) == "processed"
        assert received_mic(report) == sha256_mic(entity)
        outbound = hub.ok(hub.api.get(f"/edi/interchanges/{outbound['id']}"))
        assert outbound["ack_state"] == "accepted"

        # 855 over AS2: the order is acknowledged, and our 997 goes back over AS2.
        answer = acknowledgement(scene.number, ("1", "IA", "10", "9.00"))
        response, _ = scene.send(
            from_partner(partner, order_ack_content(answer), control=2), "<855-1@acme.example>"
        )
        assert disposition(acme.verified_mdn(response)) == "processed"
        assert hub.order(scene.order_id)["status"] == "acknowledged"
        hub.drain()
        assert [(a.functional_id, a.status) for a in functional_acks(acme.arrivals)] == [
            ("PR", AckStatus.ACCEPTED)
        ]

        # 856 dropped in the supplier's SFTP folder: the poller takes it once it has settled.
        shipped = utcnow().date() - dt.timedelta(days=1)
        notice = ship_notice("ASN-1", scene.number, ("1", "10"), tracking=TRACKING, shipped=shipped)
        sftp.drop(
            "ACME_856_3.x12",
            from_partner(partner, ship_notice_content(notice), control=3),
            age=0,
        )
        hub.connectivity.sftp.refresh()
        poller = hub.connectivity.sftp.pollers[scene.partner_id]
        first = await poller.poll_once()
        assert first is not None
        assert first.waiting == ["ACME_856_3.x12"]
        assert hub.order(scene.order_id)["status"] == "acknowledged"
        second = await poller.poll_once()
        assert second is not None
        assert second.delivered == ["ACME_856_3.x12"]
        assert (sftp.archive / "ACME_856_3.x12").exists()
        assert hub.order(scene.order_id)["status"] == "shipped"
        (shipment,) = hub.ok(
            hub.api.get("/shipments", params={"purchase_order_id": scene.order_id})
        )["items"]
        assert (shipment["shipment_number"], shipment["tracking_number"]) == ("ASN-1", TRACKING)
        assert shipment["carrier_scac"] == "UPSN"
        assert shipment["expected_delivery"] is not None
        hub.drain()
        assert [a.functional_id for a in functional_acks(acme.arrivals)] == ["PR", "SH"]

        # 214 over AS2: delivered.
        moment = (utcnow() - dt.timedelta(minutes=5)).replace(second=0, microsecond=0)
        status = carrier_status(TRACKING, ("D1", moment.date(), moment.time(), "UT"))
        response, _ = scene.send(
            from_partner(partner, carrier_status_content(status), control=4),
            "<214-1@acme.example>",
        )
        assert disposition(acme.verified_mdn(response)) == "processed"
        delivered = hub.ok(hub.api.get(f"/shipments/{shipment['id']}"))
        assert delivered["status"] == "delivered"
        assert dt.datetime.fromisoformat(delivered["delivered_at"]) == moment
        hub.drain()

        # Receiving books the goods; the order is received.
        line = hub.order(scene.order_id)["lines"][0]
        receipt = hub.ok(
            hub.api.post(
                f"/purchase-orders/{scene.order_id}/receipts",
                json={
                    "line_id": line["id"],
                    "quantity_received": "10",
                    "stock_level_id": world.ids["stock"],
                },
            )
        )
        assert receipt["order_status"] == "received"

        # 810 over AS2: matched three ways, the order invoiced; then it closes.
        bill = invoice("INV-1", scene.number, ("1", "10", "9.00"), total="90.00")
        response, _ = scene.send(
            from_partner(partner, invoice_content(bill), control=5), "<810-1@acme.example>"
        )
        assert disposition(acme.verified_mdn(response)) == "processed"
        (stored,) = hub.ok(hub.api.get("/invoices", params={"purchase_order_id": scene.order_id}))[
            "items"
        ]
        assert (stored["invoice_number"], stored["status"]) == ("INV-1", "matched")
        assert hub.order(scene.order_id)["status"] == "invoiced"
        hub.drain()
        closed = hub.ok(hub.api.post(f"/purchase-orders/{scene.order_id}/close"))
        assert closed["status"] == "closed"

    # 997s both ways: one in (for our 850), one out for each group the supplier sent us.
    assert [a.functional_id for a in functional_acks(acme.arrivals)] == ["PR", "SH", "QM", "IN"]
    assert all(a.status is AckStatus.ACCEPTED for a in functional_acks(acme.arrivals))
    inbound_acks = hub.ok(
        hub.api.get("/edi/documents", params={"set_id": "997", "direction": "inbound"})
    )["items"]
    assert [d["status"] for d in inbound_acks] == ["applied"]
    outbound_acks = hub.ok(
        hub.api.get("/edi/documents", params={"set_id": "997", "direction": "outbound"})
    )["items"]
    assert sorted(d["status"] for d in outbound_acks) == ["sent"] * 4
    inbound = hub.ok(hub.api.get("/edi/interchanges", params={"direction": "inbound"}))["items"]
    assert sorted((i["transport"], i["status"]) for i in inbound) == [
        ("as2", "applied"),
        ("as2", "applied"),
        ("as2", "applied"),
        ("as2", "applied"),
        ("sftp", "applied"),
    ]
    # Every AS2 message is on the ledger with the MDN that settled it.
    with hub.factory() as session:
        ledger = session.scalars(select(As2Message).order_by(As2Message.id)).all()
    assert sorted((m.direction, m.disposition) for m in ledger) == sorted(
        [(Direction.OUTBOUND, "automatic-action/MDN-sent-automatically; processed")] * 5
        + [(Direction.INBOUND, "automatic-action/MDN-sent-automatically; processed")] * 4
    )
    assert {m.message_id for m in ledger if m.direction is Direction.OUTBOUND} == {
        a.message_id for a in acme.arrivals
    }
    assert all(m.interchange_id is not None for m in ledger)
    assert not acme.failures
    # The wiring put the EDI jobs on the supervisor.
    assert {"edi-overdue-acks", "sftp-inbound"} <= {s.name for s in hub.supervisor.statuses}


# --- hostile input through the running endpoints ------------------------------------------------


def newest_inbound(hub: Hub) -> dict[str, Any]:
    """The newest inbound interchange in the archive, as the API shows it."""
    page = hub.ok(hub.api.get("/edi/interchanges", params={"direction": "inbound", "limit": 1}))
    return dict(page["items"][0])


def codes(interchange: dict[str, Any]) -> list[str]:
    """The error codes of an archived interchange."""
    return [str(e["code"]) for e in interchange["errors"]]


def with_set_count(raw: bytes, delta: int) -> bytes:
    """The interchange with a wrong SE01 (segment count)."""
    head, _, rest = raw.partition(b"\nSE*")
    count, star, tail = rest.partition(b"*")
    return head + b"\nSE*" + str(int(count) + delta).encode() + star + tail


def test_hostile_as2_input_is_refused_archived_and_applies_nothing(
    hub: Hub, world: World, station: tuple[OpensslStation, str], keys: Keys
) -> None:
    scene = open_scene(hub, world, station, keys, None)
    hub.drain()
    acme, partner = scene.station, scene.partner()
    beta = edi_supplier(world, "BETA", "USD")
    world.db.commit()
    beta_setup = partner_setup(beta, station[1], keys, None) | {"as2_id": "BETA AS2"}
    beta_partner = hub.ok(hub.api.post("/edi/partners", json=beta_setup))
    with hub.factory() as session:
        beta_row = session.get(TradingPartner, beta_partner["id"])
        assert beta_row is not None
        session.expunge(beta_row)
    answer = acknowledgement(scene.number, ("1", "IA", "10", "9.00"))
    before = scene.counts()

    def refused(payload: bytes, message_id: str, **options: Any) -> tuple[str, dict[str, Any]]:
        headers, body, _ = acme.message(payload, message_id, **options)
        response = hub.post_as2(headers, body)
        assert response.status_code == 200
        return disposition(acme.verified_mdn(response)), newest_inbound(hub)

    # Cut short: the AS2 layer took it, the EDI layer rejects it with the position.
    whole = from_partner(partner, order_ack_content(answer), control=10)
    mdn, row = refused(whole[: len(whole) // 2], "<cut@acme.example>")
    assert mdn == "processed"
    assert (row["status"], codes(row)) == ("rejected", ["syntax"])
    assert "IEA" in row["errors"][0]["message"]

    # Wrong counts: SE01 off by five (set refused, our 997 rejects it) and IEA01 off by one.
    mdn, row = refused(
        with_set_count(from_partner(partner, order_ack_content(answer), control=11), 5),
        "<se-count@acme.example>",
    )
    assert (mdn, row["status"]) == ("processed", "rejected")
    detail = hub.ok(hub.api.get(f"/edi/interchanges/{row['id']}"))
    (document,) = detail["documents"]
    assert document["status"] == "ignored"
    assert "rejected in our 997: AK5 R" in document["errors"][0]["message"]
    mdn, row = refused(
        from_partner(partner, order_ack_content(answer), control=12).replace(b"IEA*1*", b"IEA*2*"),
        "<iea-count@acme.example>",
    )
    assert row["status"] == "rejected"
    assert any("IEA01" in e["message"] for e in row["errors"])

    # Unknown partners: an AS2 name nobody set up, and ISA ids nobody set up.
    headers, body, _ = acme.message(whole, "<stranger@acme.example>")
    response = hub.post_as2(headers | {"AS2-From": '"STRANGER CO"'}, body)
    assert response.status_code == 403
    assert response.headers["content-type"].startswith("application/problem+json")
    row = newest_inbound(hub)
    assert (row["status"], codes(row), row["partner_id"]) == ("rejected", ["as2_refused"], None)
    assert "no AS2 trading partner" in row["errors"][0]["message"]
    unknown = whole.replace(b"ACMEEDI", b"NOBODY1")
    mdn, row = refused(unknown, "<unknown-isa@acme.example>")
    assert (mdn, row["status"], codes(row)) == ("processed", "rejected", ["unknown_partner"])

    # ACME's authenticated AS2 connection carrying documents in BETA's name.
    mdn, row = refused(
        from_partner(beta_row, order_ack_content(answer), control=1), "<beta@acme.example>"
    )
    assert (mdn, row["status"], codes(row)) == ("processed", "rejected", ["wrong_partner"])
    assert row["partner_id"] == scene.partner_id

    # Tampered after signing (an acceptance turned into a rejection), and a stranger's signature.
    forgeries: list[dict[str, Any]] = [
        {"tamper": (b"BAK*00*AC*", b"BAK*00*RJ*")},
        {"signer": keys.stranger},
    ]
    for number, options in enumerate(forgeries):
        mdn, row = refused(whole, f"<forged-{number}@acme.example>", **options)
        assert mdn == "processed/error: authentication-failed"
        assert (row["status"], codes(row)) == ("rejected", ["as2_failed"])
        assert row["errors"][0]["disposition"].endswith("authentication-failed")
    assert scene.counts() == before
    assert hub.order(scene.order_id)["status"] == "sent"
    # The only answer to all of that: a 997 rejecting the set with the wrong count.
    hub.drain()
    assert [(a.functional_id, a.status) for a in functional_acks(acme.arrivals)] == [
        ("PR", AckStatus.REJECTED)
    ]

    # A replay of a good message (same Message-ID) is answered but applied once.
    headers, body, _ = acme.message(whole, "<replayed@acme.example>")
    first = hub.post_as2(headers, body)
    assert disposition(acme.verified_mdn(first)) == "processed"
    assert hub.order(scene.order_id)["status"] == "acknowledged"
    after_first = scene.counts()
    again = hub.post_as2(headers, body)
    assert disposition(acme.verified_mdn(again)) == "processed/warning: duplicate-document"
    row = newest_inbound(hub)
    assert (row["status"], codes(row)) == ("duplicate", ["as2_duplicate"])
    assert row["transport_ref"] == "<replayed@acme.example>"
    assert scene.counts() == after_first
    applied = hub.ok(
        hub.api.get("/edi/interchanges", params={"direction": "inbound", "status": "applied"})
    )
    assert applied["total"] == 1


async def test_hostile_sftp_files_are_refused_archived_and_apply_nothing(
    hub: Hub, world: World, station: tuple[OpensslStation, str], keys: Keys, tmp_path: Path
) -> None:
    async with running_partner(tmp_path / "sftp") as sftp:
        scene = open_scene(hub, world, station, keys, sftp)
        beta = edi_supplier(world, "BETA", "USD")
        world.db.commit()
        beta_setup = partner_setup(beta, station[1], keys, None) | {"as2_id": "BETA AS2"}
        beta_id = hub.ok(hub.api.post("/edi/partners", json=beta_setup))["id"]
        with hub.factory() as session:
            beta_row = session.get(TradingPartner, beta_id)
            assert beta_row is not None
            session.expunge(beta_row)
        partner = scene.partner()
        notice = ship_notice("ASN-9", scene.number, ("1", "10"), tracking=TRACKING)
        good = from_partner(partner, ship_notice_content(notice), control=20)
        files = {
            "truncated.x12": good[:200],
            "iea.x12": good.replace(b"IEA*1*", b"IEA*3*"),
            "stranger.x12": good.replace(b"ACMEEDI", b"NOBODY1"),
            "beta.x12": from_partner(beta_row, ship_notice_content(notice), control=20),
            "junk.x12": bytes(range(256)),
        }
        before = scene.counts()
        for name, data in files.items():
            sftp.drop(name, data)
        hub.connectivity.sftp.refresh()
        report = await hub.connectivity.sftp.pollers[scene.partner_id].poll_once()
        assert report is not None
        assert sorted(report.delivered) == sorted(files)
        assert sorted(p.name for p in sftp.archive.iterdir()) == sorted(files)

    assert scene.counts() == before
    assert hub.order(scene.order_id)["status"] == "sent"
    items = hub.ok(hub.api.get("/edi/interchanges", params={"direction": "inbound", "limit": 10}))[
        "items"
    ]
    found = {i["transport_ref"]: (i["status"], codes(i)) for i in items}
    assert found["truncated.x12"] == ("rejected", ["syntax"])
    assert found["junk.x12"] == ("rejected", ["syntax"])
    assert found["stranger.x12"] == ("rejected", ["unknown_partner"])
    assert found["beta.x12"] == ("rejected", ["wrong_partner"])
    status, problems = found["iea.x12"]
    assert status == "rejected"
    assert problems
    assert all(i["transport"] == "sftp" for i in items)
    hub.drain()
    assert not scene.station.arrivals[1:]  # no 997 answers an interchange refused whole


def test_as2_endpoint_takes_edi_sized_bodies_and_the_api_keeps_its_limit(
    hub: Hub, station: tuple[OpensslStation, str]
) -> None:
    acme = station[0]
    big = b"x" * (100 * 1024)  # over the API's 64 KiB, under the AS2 endpoint's limit
    refused = hub.api.post("/edi/inbound", content=big)
    assert refused.status_code == 413
    passed = hub.post_as2(as2_headers("<big@acme.example>"), big)
    assert passed.status_code == 403  # through the size check, then: nobody set up
    too_big = hub.post_as2(as2_headers("<huge@acme.example>"), b"x" * (AS2_BODY_LIMIT + 1))
    assert too_big.status_code == 413
    assert not acme.arrivals
