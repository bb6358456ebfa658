"""The EDI transports over the partner table: AS2 and SFTP settings from a TradingPartner, the
AS2 Message-ID ledger under two workers, partner binding, the SFTP pollers and senders."""

from __future__ import annotations

import asyncio
import datetime as dt
import threading
from collections.abc import AsyncIterator, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.fernet import Fernet
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from maintainpro.config import ConfigurationError, Settings
from maintainpro.core.events import OutboxEvent
from maintainpro.iot.credentials import CredentialBox
from maintainpro.supply.as2.errors import DeliveryFailed
from maintainpro.supply.as2.headers import clean_message_id
from maintainpro.supply.as2.inbound import ReceivedMessage
from maintainpro.supply.as2.mdn import OutboundMdn, ReceivedMdn, processed, processed_with_error
from maintainpro.supply.as2.mic import compute_mic
from maintainpro.supply.as2.partners import MdnMode as As2MdnMode
from maintainpro.supply.as2.smime import ContentCipher
from maintainpro.supply.edi.apply import ApplyOptions
from maintainpro.supply.edi.archive import (
    As2Message,
    Direction,
    EdiInterchange,
    InterchangeStatus,
)
from maintainpro.supply.edi.order_ack_out import order_ack_content
from maintainpro.supply.edi.outbound import EdiSetupError, queue_purchase_order
from maintainpro.supply.edi.partners import EdiTransport, MdnMode, TradingPartner
from maintainpro.supply.edi.transports import (
    As2Gateway,
    As2Identity,
    SftpInbound,
    as2_partner,
    as2_sender,
    load_as2_identity,
    partner_secrets,
    receive_from,
    sftp_config,
    sftp_sender,
    stable_message_id,
    stored_message_id,
)
from maintainpro.supply.purchasing import LineAckStatus, PoStatus
from maintainpro.supply.suppliers import Supplier
from supply.edi.edi_world import (
    acknowledgement,
    counts,
    edi_supplier,
    from_partner,
    sent_order,
    trading_partner,
)
from supply.procurement_world import World
from supply.sftp_partner import Partner, new_key, public_line, running_partner

BOX = CredentialBox(Fernet.generate_key())


def _certificate(key: rsa.RSAPrivateKey, name: str) -> x509.Certificate:
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = dt.datetime.now(dt.UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=30))
        .sign(key, hashes.SHA256())
    )


@pytest.fixture(scope="module")
def identity() -> As2Identity:
    """Our AS2 key and certificate."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return As2Identity(key, _certificate(key, "hub"))


@pytest.fixture(scope="module")
def their_pem() -> str:
    """The partner's certificate as PEM."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return _certificate(key, "acme").public_bytes(serialization.Encoding.PEM).decode()


def transient_partner(**fields: Any) -> TradingPartner:
    """A partner that is never stored (settings mapping needs no database)."""
    values: dict[str, Any] = {
        "id": 7,
        "isa_id": "ACMEEDI",
        "gs_id": "ACMEEDI",
        "our_isa_id": "MAINTAINPRO",
        "our_gs_id": "MAINTAINPRO",
        "as2_sign": True,
        "as2_encrypt": True,
        "as2_compress": False,
        "mdn_mode": MdnMode.SYNC,
        "sftp_port": 22,
        "sftp_outbound_dir": "inbound",
        "sftp_inbound_dir": "outbound",
    }
    values.update(fields)
    partner = TradingPartner(**values)
    partner.supplier = Supplier(code="ACME/1", legal_name="Acme", country="US", currency="USD")
    return partner


# --- our identity from the settings ------------------------------------------------------------


def _write_identity(folder: Path, password: bytes | None = None) -> tuple[Path, Path]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    encryption: serialization.KeySerializationEncryption = (
        serialization.BestAvailableEncryption(password)
        if password
        else serialization.NoEncryption()
    )
    key_path, cert_path = folder / "as2.key", folder / "as2.crt"
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption)
    )
    cert_path.write_bytes(_certificate(key, "hub").public_bytes(serialization.Encoding.PEM))
    return key_path, cert_path


def test_identity_is_optional_but_must_be_complete_and_match(tmp_path: Path) -> None:
    assert load_as2_identity(Settings(secret_key="k" * 40)) is None
    key_path, cert_path = _write_identity(tmp_path, b"pass-phrase-1")
    loaded = load_as2_identity(
        Settings(as2_key_file=key_path, as2_cert_file=cert_path, as2_key_password="pass-phrase-1")
    )
    assert loaded is not None
    assert loaded.certificate.subject.rfc4514_string() == "CN=hub"
    with pytest.raises(ConfigurationError, match="both as2_key_file and as2_cert_file"):
        load_as2_identity(Settings(as2_key_file=key_path))
    with pytest.raises(ConfigurationError, match="as2_key_file cannot be used") as wrong:
        load_as2_identity(
            Settings(as2_key_file=key_path, as2_cert_file=cert_path, as2_key_password="nope")
        )
    assert "nope" not in str(wrong.value)
    other = tmp_path / "other"
    other.mkdir()
    _, foreign_cert = _write_identity(other)
    with pytest.raises(ConfigurationError, match="does not belong"):
        load_as2_identity(
            Settings(
                as2_key_file=key_path, as2_cert_file=foreign_cert, as2_key_password="pass-phrase-1"
            )
        )


# --- settings from the partner row ----------------------------------------------------------------


def test_as2_settings_follow_the_partner_row(identity: As2Identity, their_pem: str) -> None:
    partner = transient_partner(
        as2_id="ACME SUPPLY",
        our_as2_id="MAINTAINPRO",
        as2_url="https://as2.acme.example/receive",
        partner_cert_pem=their_pem,
        as2_encrypt=False,
        as2_compress=True,
        mdn_mode=MdnMode.ASYNC,
    )
    settings = as2_partner(partner, identity, async_mdn_url="https://hub.example/as2/receive")
    assert (settings.partner_as2_id, settings.our_as2_id) == ("ACME SUPPLY", "MAINTAINPRO")
    assert (settings.encryption, settings.compress, settings.sign) == (None, True, True)
    assert (settings.mdn_mode, settings.async_mdn_url) == (
        As2MdnMode.ASYNC,
        "https://hub.example/as2/receive",
    )
    # Signatures are always required from the partner; encryption as agreed.
    assert (settings.require_signed, settings.require_encrypted) == (True, False)
    encrypted = as2_partner(transient_partner(**_as2_fields(their_pem)), identity)
    assert encrypted.encryption is ContentCipher.AES256_CBC
    assert encrypted.mdn_mode is As2MdnMode.SYNC
    assert encrypted.async_mdn_url is None


def _as2_fields(pem: str) -> dict[str, Any]:
    return {"as2_id": "ACME SUPPLY", "our_as2_id": "MAINTAINPRO", "partner_cert_pem": pem}


def test_as2_settings_name_what_is_missing_or_unusable(identity: As2Identity) -> None:
    with pytest.raises(EdiSetupError, match="ACME-1 has no our_as2_id, partner_cert_pem"):
        as2_partner(transient_partner(as2_id="ACME SUPPLY"), identity)
    broken = transient_partner(as2_id="ACME", our_as2_id="US", partner_cert_pem="not a cert")
    with pytest.raises(EdiSetupError, match="certificate of trading partner ACME-1 is unreadable"):
        as2_partner(broken, identity)


def test_sftp_settings_take_the_unsealed_secrets_and_skip_comment_lines() -> None:
    host_key = public_line(new_key())
    partner = transient_partner(
        sftp_host="sftp.acme.example",
        sftp_port=2222,
        sftp_username="maintainpro",
        sftp_host_keys=f"# from the onboarding sheet\n{host_key}\n\n",
        sftp_archive_dir="done",
        secrets=BOX.seal({"sftp_password": "pw-1", "sftp_passphrase": "unused"}),
    )
    config = sftp_config(partner, partner_secrets(partner, BOX))
    assert (config.partner, config.host, config.port, config.username) == (
        "ACME-1",
        "sftp.acme.example",
        2222,
        "maintainpro",
    )
    assert config.host_keys == (host_key,)
    assert (config.password, config.private_key) == ("pw-1", None)
    # Their inbound is our outbound: the columns already say which is which.
    assert (config.outbound_dir, config.inbound_dir, config.archive_dir) == (
        "inbound",
        "outbound",
        "done",
    )
    with pytest.raises(EdiSetupError, match="a password or a private key is required"):
        sftp_config(partner, {})
    with pytest.raises(EdiSetupError, match="no SFTP host"):
        sftp_config(transient_partner(), {"sftp_password": "x"})


def test_sealed_secrets_need_the_key_they_were_sealed_with() -> None:
    partner = transient_partner(secrets=BOX.seal({"sftp_password": "pw"}))
    assert partner_secrets(partner, BOX) == {"sftp_password": "pw"}
    assert partner_secrets(transient_partner(), None) == {}
    with pytest.raises(EdiSetupError, match="no credentials key"):
        partner_secrets(partner, None)
    with pytest.raises(EdiSetupError, match="credentials key changed") as changed:
        partner_secrets(partner, CredentialBox(Fernet.generate_key()))
    assert "pw" not in str(changed.value)


def test_message_ids_are_stable_per_interchange_and_fit_the_ledger() -> None:
    partner = transient_partner(our_as2_id="MAINTAIN PRO")
    first = stable_message_id(partner, "ACME_850_000000001.x12", b"ISA*one")
    assert first == stable_message_id(partner, "ACME_850_000000001.x12", b"ISA*one")
    assert first != stable_message_id(partner, "ACME_850_000000002.x12", b"ISA*two")
    assert clean_message_id(first) == first
    assert first.endswith("@MAINTAIN-PRO>")
    long = "<" + "x" * 400 + "@acme>"
    assert stored_message_id(long).startswith("sha256:")
    assert len(stored_message_id(long)) <= 255
    assert stored_message_id(" <m1@acme> ") == "<m1@acme>"


# --- inbound over AS2 under two workers, and partner binding --------------------------------------


@pytest.fixture
def acme(world: World, their_pem: str) -> TradingPartner:
    """ACME on AS2, committed so the gateway's own sessions see it."""
    partner = trading_partner(
        world.db,
        edi_supplier(world),
        transport=EdiTransport.AS2,
        as2_id="ACME SUPPLY",
        our_as2_id="MAINTAINPRO",
        partner_cert_pem=their_pem,
    )
    world.db.commit()
    return partner


def _received(payload: bytes, message_id: str) -> ReceivedMessage:
    return ReceivedMessage(
        message_id=message_id,
        as2_from="ACME SUPPLY",
        as2_to="MAINTAINPRO",
        payload=payload,
        content_type="application/EDI-X12",
        filename=None,
        subject=None,
        signed=True,
        encrypted=True,
        compressed=False,
        mic=compute_mic(payload, "sha-256"),
    )


def test_two_workers_taking_one_message_apply_it_once(
    world: World,
    acme: TradingPartner,
    identity: As2Identity,
    session_factory: sessionmaker[Session],
) -> None:
    order = sent_order(world, acme.supplier)
    world.db.commit()
    payload = from_partner(
        acme, order_ack_content(acknowledgement(order.number, ("1", "IA", "10", "9.00")))
    )
    gateway = As2Gateway(session_factory, identity)
    settings = gateway.find_partner("ACME SUPPLY", "MAINTAINPRO")
    assert settings is not None
    message = _received(payload, "<m-1@acme.example>")
    assert not gateway.seen("ACME SUPPLY", message.message_id)
    # Both workers passed seen() before either committed; the ledger's constraint decides.
    gateway.deliver(message, settings)
    after_first = counts(world.db)
    gateway.deliver(message, settings)
    assert gateway.seen("ACME SUPPLY", message.message_id)
    assert counts(world.db) == after_first
    world.db.expire_all()
    assert order.status is PoStatus.ACKNOWLEDGED
    assert [line.ack_status for line in order.lines] == [LineAckStatus.ACCEPTED]
    (claim,) = world.db.scalars(select(As2Message)).all()
    applied, copy = world.db.scalars(
        select(EdiInterchange)
        .where(EdiInterchange.direction == Direction.INBOUND)
        .order_by(EdiInterchange.id)
    ).all()
    assert claim.interchange_id == applied.id
    assert claim.mic == str(message.mic)
    assert applied.status is InterchangeStatus.APPLIED
    assert (copy.status, copy.errors[0]["code"], copy.transport) == (
        InterchangeStatus.DUPLICATE,
        "as2_duplicate",
        "as2",
    )


def test_an_interchange_in_another_partners_name_is_refused_whole(
    world: World, acme: TradingPartner
) -> None:
    beta = trading_partner(world.db, edi_supplier(world, "BETA"), sender=("ZZ", "BETAEDI"))
    order = sent_order(world, beta.supplier)
    answer = order_ack_content(acknowledgement(order.number, ("1", "IA", "10", "9.00")))
    raw = from_partner(acme, answer, control=1) + from_partner(beta, answer, control=1)
    before = counts(world.db)
    (result,) = receive_from(
        world.db, raw, [acme.id], transport="sftp", transport_ref="x.edi", options=ApplyOptions()
    )
    row = result.interchange
    assert (row.status, row.partner_id, row.transport_ref) == (
        InterchangeStatus.REJECTED,
        acme.id,
        "x.edi",
    )
    assert row.errors[0]["code"] == "wrong_partner"
    assert "names trading partner BETA" in row.errors[0]["message"]
    assert row.raw == raw
    assert counts(world.db) == before
    assert order.status is PoStatus.SENT
    # Not even ACME's own interchange in the same file was kept, nor a 997 queued.
    assert world.db.scalar(select(func.count()).select_from(EdiInterchange)) == 1
    assert world.db.scalar(select(func.count()).select_from(OutboxEvent)) == 1  # the PO's


# --- SFTP ---------------------------------------------------------------------------------------


@pytest.fixture
async def sftp(tmp_path: Path) -> AsyncIterator[Partner]:
    """A running SFTP partner."""
    async with running_partner(tmp_path / "server") as running:
        yield running


def _sftp_fields(server: Partner) -> dict[str, Any]:
    return {
        "sftp_host": "127.0.0.1",
        "sftp_port": server.port,
        "sftp_username": "acme",
        "sftp_host_keys": public_line(server.host_key),
        "sftp_outbound_dir": "outbound",
        "sftp_inbound_dir": "inbound",
        "secrets": BOX.seal({"sftp_private_key": server.client_key.export_private_key().decode()}),
    }


async def test_pollers_follow_the_partner_table(
    world: World, sftp: Partner, session_factory: sessionmaker[Session]
) -> None:
    acme = trading_partner(world.db, edi_supplier(world), **_sftp_fields(sftp))
    lacking = trading_partner(
        world.db, edi_supplier(world, "NOKEY"), sender=("ZZ", "NOKEY"), sftp_host="h.example"
    )
    trading_partner(
        world.db,
        edi_supplier(world, "OFF"),
        sender=("ZZ", "OFFEDI"),
        active=False,
        **_sftp_fields(sftp),
    )
    world.db.commit()
    inbound = SftpInbound(session_factory, BOX)
    inbound.refresh()
    assert list(inbound.pollers) == [acme.id]
    assert "no SFTP host and user name" in inbound.problems[lacking.id]
    first = inbound.pollers[acme.id]
    inbound.refresh()
    assert inbound.pollers[acme.id] is first  # unchanged settings keep the poller
    acme.sftp_archive_dir = "done"
    world.db.commit()
    inbound.refresh()
    assert inbound.pollers[acme.id] is not first
    assert inbound.pollers[acme.id].config.archive_dir == "done"
    acme.active = False
    world.db.commit()
    inbound.refresh()
    assert inbound.pollers == {}


async def test_sftp_sender_uploads_with_the_sealed_key(world: World, sftp: Partner) -> None:
    partner = trading_partner(world.db, edi_supplier(world), **_sftp_fields(sftp))
    assert partner.supplier.code == "ACME"  # loaded here, not in the worker thread
    send = sftp_sender(BOX)
    path = await asyncio.to_thread(send, partner, "ACME_850_000000001.x12", b"ISA*payload~")
    assert path == "outbound/ACME_850_000000001.x12"
    assert (sftp.outbound / "ACME_850_000000001.x12").read_bytes() == b"ISA*payload~"
    with pytest.raises(EdiSetupError, match="no credentials key"):
        sftp_sender(None)(partner, "ACME_850_000000002.x12", b"ISA")


# --- AS2 sender ----------------------------------------------------------------------------------


@pytest.fixture
def refusing_station() -> Iterator[tuple[str, list[str]]]:
    """An AS2 URL answering 503, recording each request's Message-ID."""
    seen: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers["Content-Length"]))
            seen.append(self.headers["Message-ID"])
            self.send_response(503)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/as2", seen
    server.shutdown()
    server.server_close()


def test_as2_retries_resend_the_same_message_id(
    identity: As2Identity, their_pem: str, refusing_station: tuple[str, list[str]]
) -> None:
    url, seen = refusing_station
    partner = transient_partner(**_as2_fields(their_pem), as2_url=url)
    send = as2_sender(identity)
    for _ in range(2):
        with pytest.raises(DeliveryFailed, match="HTTP 503") as failed:
            send(partner, "ACME_850_000000001.x12", b"ISA*payload~")
        assert failed.value.retryable
    assert len(seen) == 2
    assert (
        seen[0] == seen[1] == stable_message_id(partner, "ACME_850_000000001.x12", b"ISA*payload~")
    )
    with pytest.raises(EdiSetupError, match="as2_key_file and as2_cert_file"):
        as2_sender(None)(partner, "ACME_850_000000001.x12", b"ISA")


# --- asynchronous MDNs ---------------------------------------------------------------------


def test_async_mdns_go_only_to_the_partners_own_host(
    identity: As2Identity, their_pem: str, session_factory: sessionmaker[Session]
) -> None:
    gateway = As2Gateway(session_factory, identity)
    settings = as2_partner(
        transient_partner(**_as2_fields(their_pem), as2_url="https://as2.acme.example/receive"),
        identity,
    )
    mdn = OutboundMdn("<mdn@hub>", "<m@acme>", processed(), {}, b"")
    for url in ("http://169.254.169.254/latest/meta-data", "https://as2.acme.example.evil.test/"):
        with pytest.raises(DeliveryFailed, match="not on the partner's AS2 host"):
            gateway.send_async_mdn(url, mdn, settings)


def test_an_async_mdn_settles_the_message_we_sent(
    world: World,
    acme: TradingPartner,
    identity: As2Identity,
    session_factory: sessionmaker[Session],
) -> None:
    order = sent_order(world, acme.supplier)
    interchange = queue_purchase_order(world.db, order, "purchase_order.sent")
    world.db.add(
        As2Message(
            message_id="<ours-1@hub>",
            direction=Direction.OUTBOUND,
            partner_id=acme.id,
            interchange_id=interchange.id,
            mic="abc=, sha-256",
        )
    )
    world.db.commit()
    gateway = As2Gateway(session_factory, identity)
    settings = gateway.find_partner("ACME SUPPLY", "MAINTAINPRO")
    assert settings is not None
    failed = processed_with_error("decryption-failed")
    gateway.receive_mdn(ReceivedMdn("<r@acme>", "<ours-1@hub>", failed, None, True, ""), settings)
    gateway.receive_mdn(
        ReceivedMdn("<r2@acme>", "<nobody@hub>", processed(), None, True, ""), settings
    )
    world.db.expire_all()
    row = world.db.scalars(select(As2Message)).one()
    assert row.disposition == str(failed)
    assert row.mdn_at is not None
    assert [e["code"] for e in interchange.errors] == ["as2_mdn"]
