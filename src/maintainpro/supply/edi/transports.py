"""The EDI transports bound to the trading-partner table: AS2 and SFTP settings built from a
TradingPartner, the AS2 Message-ID ledger, the outbox's senders, and inbound hand-over.

Whatever carries an interchange in, the partner it arrived from must be the partner its ISA
envelope names: an authenticated AS2 partner (or the owner of an SFTP folder) cannot file
documents in another supplier's name. Everything else is the EDI layer's (inbound.py).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import logging
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import httpx
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import rsa
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, object_session, sessionmaker

from maintainpro.config import ConfigurationError, Settings
from maintainpro.core.audit import SYSTEM, set_actor
from maintainpro.core.db import utcnow
from maintainpro.iot.credentials import CredentialBox, CredentialError
from maintainpro.supply.as2.client import post_async_mdn, send_message
from maintainpro.supply.as2.errors import DeliveryFailed
from maintainpro.supply.as2.inbound import ReceivedMessage
from maintainpro.supply.as2.mdn import OutboundMdn, ReceivedMdn
from maintainpro.supply.as2.outbound import build_message
from maintainpro.supply.as2.partners import (
    DEFAULT_MAX_PAYLOAD_BYTES,
    As2Partner,
    load_certificate,
    load_private_key,
)
from maintainpro.supply.as2.partners import MdnMode as As2MdnMode
from maintainpro.supply.as2.receiver import HANDLER_FAILED, As2Receiver, InboundRecord, Outcome
from maintainpro.supply.as2.smime import ContentCipher
from maintainpro.supply.edi.apply import ApplyOptions
from maintainpro.supply.edi.archive import (
    As2Message,
    Direction,
    EdiInterchange,
    InterchangeStatus,
)
from maintainpro.supply.edi.errors import X12Error
from maintainpro.supply.edi.inbound import InboundResult, error_entry, receive_interchanges
from maintainpro.supply.edi.outbound import EdiSetupError, TransportSender
from maintainpro.supply.edi.partners import MdnMode, TradingPartner
from maintainpro.supply.edi.x12 import parse_interchange
from maintainpro.supply.sftp import SftpConfig, SftpError
from maintainpro.supply.sftp_client import deliver_via_sftp
from maintainpro.supply.sftp_poll import InboundHandler, InboundPoller

log = logging.getLogger(__name__)

# Keys of TradingPartner.secrets (sealed with the credentials key) that the transports read.
SFTP_PASSWORD = "sftp_password"  # noqa: S105 - the name of a secrets entry, not a secret
SFTP_PRIVATE_KEY = "sftp_private_key"
SFTP_PASSPHRASE = "sftp_passphrase"  # noqa: S105 - the name of an entry, not a secret
# Requests nobody authenticated are archived only this far: enough to see what came.
MAX_UNVERIFIED_ARCHIVE = 64 * 1024
MAX_STORED_MESSAGE_ID = 255
_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]")
_DOMAIN = re.compile(r"[^A-Za-z0-9.-]")
HttpFactory = Callable[[], httpx.Client]


def _default_http() -> httpx.Client:
    return httpx.Client(timeout=60.0)


# --- settings from the partner table ---------------------------------------------------------


@dataclass(frozen=True)
class As2Identity:
    """Our AS2 key and certificate, the same for every partner."""

    key: rsa.RSAPrivateKey
    certificate: x509.Certificate


def load_as2_identity(settings: Settings) -> As2Identity | None:
    """Our AS2 key and certificate from the settings' files; None when AS2 is not set up."""
    key_file, cert_file = settings.as2_key_file, settings.as2_cert_file
    if key_file is None and cert_file is None:
        return None
    if key_file is None or cert_file is None:
        raise ConfigurationError("AS2 needs both as2_key_file and as2_cert_file")
    password = settings.as2_key_password
    try:
        key = load_private_key(
            key_file.read_bytes(), password.get_secret_value().encode() if password else None
        )
    except (OSError, ValueError, TypeError) as exc:
        # The message names the setting and the kind of problem, never the key material.
        raise ConfigurationError(
            f"as2_key_file cannot be used ({type(exc).__name__}): an RSA private key in PEM or "
            "DER is needed, encrypted only with as2_key_password"
        ) from None
    try:
        certificate = load_certificate(cert_file.read_bytes())
    except (OSError, ValueError) as exc:
        raise ConfigurationError(
            f"as2_cert_file cannot be used ({type(exc).__name__}): a PEM or DER certificate "
            "is needed"
        ) from None
    public = certificate.public_key()
    if not isinstance(public, rsa.RSAPublicKey) or (
        public.public_numbers() != key.public_key().public_numbers()
    ):
        raise ConfigurationError("as2_cert_file does not belong to the key in as2_key_file")
    return As2Identity(key, certificate)


def partner_code(partner: TradingPartner) -> str:
    """The supplier's code, made safe for file names and logs."""
    return _UNSAFE.sub("-", partner.supplier.code) or f"partner-{partner.id}"


def partner_secrets(partner: TradingPartner, box: CredentialBox | None) -> dict[str, str]:
    """The partner's unsealed secrets; EdiSetupError when they cannot be opened."""
    if partner.secrets is None:
        return {}
    if box is None:
        raise EdiSetupError(
            f"the secrets of trading partner {partner_code(partner)} are sealed but no "
            "credentials key is configured"
        )
    try:
        return box.open(partner.secrets)
    except CredentialError:
        raise EdiSetupError(
            f"the secrets of trading partner {partner_code(partner)} cannot be opened: the "
            "credentials key changed; enter them again"
        ) from None


def as2_partner(
    partner: TradingPartner,
    identity: As2Identity,
    *,
    async_mdn_url: str | None = None,
    max_payload_bytes: int | None = None,
) -> As2Partner:
    """The AS2 relationship of a trading partner; EdiSetupError naming what is missing."""
    code = partner_code(partner)
    missing = [
        name
        for name, value in (
            ("as2_id", partner.as2_id),
            ("our_as2_id", partner.our_as2_id),
            ("partner_cert_pem", partner.partner_cert_pem),
        )
        if not value
    ]
    if missing:
        raise EdiSetupError(f"trading partner {code} has no {', '.join(missing)} for AS2")
    try:
        certificate = load_certificate((partner.partner_cert_pem or "").encode())
    except ValueError:
        raise EdiSetupError(
            f"the AS2 certificate of trading partner {code} is unreadable"
        ) from None
    asynchronous = partner.mdn_mode is MdnMode.ASYNC
    try:
        return As2Partner(
            our_as2_id=partner.our_as2_id or "",
            partner_as2_id=partner.as2_id or "",
            our_key=identity.key,
            our_certificate=identity.certificate,
            partner_certificate=certificate,
            url=partner.as2_url or "",
            sign=partner.as2_sign,
            encryption=ContentCipher.AES256_CBC if partner.as2_encrypt else None,
            compress=partner.as2_compress,
            mdn_mode=As2MdnMode.ASYNC if asynchronous else As2MdnMode.SYNC,
            async_mdn_url=async_mdn_url if asynchronous else None,
            # Without a signature anyone could post in the partner's name: always required.
            require_signed=True,
            require_encrypted=partner.as2_encrypt,
            require_signed_mdn=True,
            max_payload_bytes=max_payload_bytes or DEFAULT_MAX_PAYLOAD_BYTES,
        )
    except ValueError as exc:
        raise EdiSetupError(
            f"the AS2 settings of trading partner {code} are unusable: {exc}"
        ) from None


def sftp_config(partner: TradingPartner, secrets: dict[str, str]) -> SftpConfig:
    """The SFTP settings of a trading partner; EdiSetupError naming what is wrong."""
    code = partner_code(partner)
    if not partner.sftp_host or not partner.sftp_username:
        raise EdiSetupError(f"trading partner {code} has no SFTP host and user name")
    pins = tuple(
        line.strip()
        for line in (partner.sftp_host_keys or "").splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    )
    try:
        return SftpConfig(
            partner=code,
            host=partner.sftp_host,
            port=partner.sftp_port,
            username=partner.sftp_username,
            host_keys=pins,
            password=secrets.get(SFTP_PASSWORD),
            private_key=secrets.get(SFTP_PRIVATE_KEY),
            passphrase=secrets.get(SFTP_PASSPHRASE),
            outbound_dir=partner.sftp_outbound_dir,
            inbound_dir=partner.sftp_inbound_dir,
            archive_dir=partner.sftp_archive_dir,
        )
    except SftpError as exc:
        raise EdiSetupError(f"the SFTP settings of trading partner {code}: {exc}") from None


# --- inbound, whatever the transport ---------------------------------------------------------


def receive_from(
    session: Session,
    raw: bytes,
    allowed: Sequence[int],
    *,
    transport: str,
    transport_ref: str | None,
    options: ApplyOptions,
    now: dt.datetime | None = None,
) -> list[InboundResult]:
    """Receive a payload that a transport authenticated as one of the `allowed` partners.

    An interchange naming any other configured partner undoes the whole payload, which is then
    archived once as REJECTED under the transport's partner.
    """
    when = now or utcnow()
    nested = session.begin_nested()
    results = receive_interchanges(
        session, raw, transport=transport, transport_ref=transport_ref, options=options, now=when
    )
    strangers = [
        r.interchange
        for r in results
        if r.interchange.partner_id is not None and r.interchange.partner_id not in allowed
    ]
    if not strangers:
        nested.commit()
        return results
    named = session.get(TradingPartner, strangers[0].partner_id)
    owner = session.get(TradingPartner, allowed[0]) if allowed else None
    sender_id, receiver_id = strangers[0].sender_id, strangers[0].receiver_id
    message = (
        f"the interchange names trading partner {partner_code(named) if named else '?'} "
        f"(ISA sender {sender_id}) but arrived over {transport} from "
        f"{partner_code(owner) if owner else 'an unknown partner'}; nothing applied"
    )
    nested.rollback()
    row = EdiInterchange(
        partner_id=owner.id if owner else None,
        direction=Direction.INBOUND,
        transport=transport[:16],
        control_number=None,
        sender_id=sender_id,
        receiver_id=receiver_id,
        transport_ref=transport_ref[:255] if transport_ref else None,
        raw=raw,
        status=InterchangeStatus.REJECTED,
        errors=[error_entry("wrong_partner", message)],
        created_at=when,
        processed_at=when,
    )
    session.add(row)
    session.flush()
    log.warning("edi interchange for another partner refused", extra={"interchange_id": row.id})
    return [InboundResult(row)]


# --- AS2 ---------------------------------------------------------------------------------------


def stored_message_id(message_id: str) -> str:
    """A Message-ID as the ledger keeps it: itself, or its SHA-256 when longer than the column."""
    text = message_id.strip()
    if len(text) <= MAX_STORED_MESSAGE_ID:
        return text
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()


def stable_message_id(partner: TradingPartner, filename: str, payload: bytes) -> str:
    """The same Message-ID for every attempt at one interchange, so that an outbox retry meets
    the partner's duplicate check instead of delivering the document twice."""
    digest = hashlib.sha256(
        b"%d\x00%s\x00" % (partner.id, filename.encode()) + payload
    ).hexdigest()[:32]
    domain = _DOMAIN.sub("-", partner.our_as2_id or "maintainpro")
    return f"<{digest}.{_UNSAFE.sub('_', filename)[:80]}@{domain}>"


def _interchange_id(session: Session, partner: TradingPartner, payload: bytes) -> int | None:
    """Our outbound interchange that is this payload (by the ISA13 we wrote into it)."""
    try:
        control = parse_interchange(payload.decode("utf-8")).interchange.control_number
    except (X12Error, UnicodeDecodeError):
        return None
    if not control.strip().isdigit():
        return None
    return session.scalar(
        select(EdiInterchange.id).where(
            EdiInterchange.partner_id == partner.id,
            EdiInterchange.direction == Direction.OUTBOUND,
            EdiInterchange.control_number == int(control),
        )
    )


def as2_sender(
    identity: As2Identity | None,
    *,
    async_mdn_url: str | None = None,
    http: HttpFactory = _default_http,
    clock: Callable[[], dt.datetime] = utcnow,
) -> TransportSender:
    """The outbox's AS2 sender: sign and encrypt, POST, check the MDN, record the message."""

    def send(partner: TradingPartner, filename: str, payload: bytes) -> str:
        if identity is None:
            raise EdiSetupError("AS2 needs as2_key_file and as2_cert_file in the settings")
        settings = as2_partner(partner, identity, async_mdn_url=async_mdn_url)
        message = build_message(
            payload,
            settings,
            filename=filename,
            subject=f"EDI {filename}",
            message_id=stable_message_id(partner, filename, payload),
        )
        with http() as client:
            result = send_message(message, settings, client)
        # The record joins the transaction that marks the interchange sent (the outbox
        # handler's), so either both are stored or the retry sends again.
        session = object_session(partner)
        if session is not None:
            stored = stored_message_id(message.message_id)
            row = session.scalar(
                select(As2Message).where(
                    As2Message.direction == Direction.OUTBOUND, As2Message.message_id == stored
                )
            )
            if row is None:
                row = As2Message(message_id=stored, direction=Direction.OUTBOUND)
                session.add(row)
            row.partner_id = partner.id
            row.interchange_id = _interchange_id(session, partner, payload)
            row.mic = str(message.mic)[:200]
            if result.receipt is not None:
                row.disposition = str(result.receipt.disposition)[:200]
                row.mdn_at = clock()
        log.info(
            "as2 message sent",
            extra={"partner": partner_code(partner), "message_id": message.message_id},
        )
        return message.message_id

    return send


def sftp_sender(box: CredentialBox | None) -> TransportSender:
    """The outbox's SFTP sender: an atomic upload to the partner's folder (blocking)."""

    def send(partner: TradingPartner, filename: str, payload: bytes) -> str:
        config = sftp_config(partner, partner_secrets(partner, box))
        return deliver_via_sftp(config, filename, payload)

    return send


@dataclass
class As2Gateway:
    """Our AS2 endpoint's injected parts over the database: partner lookup, the Message-ID
    ledger, hand-over to the EDI layer, the archive, and MDNs in both directions.

    A Message-ID is claimed in the same transaction that applies its documents, so the unique
    constraint on as2_messages decides when two workers take the same message at once: the
    loser applies nothing and answers like its first delivery (the message was processed).
    """

    factory: sessionmaker[Session]
    identity: As2Identity
    options: ApplyOptions = field(default_factory=ApplyOptions)
    async_mdn_url: str | None = None
    max_payload_bytes: int | None = None
    http: HttpFactory = _default_http
    clock: Callable[[], dt.datetime] = utcnow

    def receiver(self) -> As2Receiver:
        """The As2Receiver for build_as2_router."""
        return As2Receiver(
            find_partner=self.find_partner,
            message_ids=self,
            deliver=self.deliver,
            archive=self.archive,
            send_async_mdn=self.send_async_mdn,
            receive_mdn=self.receive_mdn,
            clock=self.clock,
        )

    def _partners(self, session: Session, as2_from: str, as2_to: str) -> list[TradingPartner]:
        # Several suppliers of one group may share one AS2 connection (same ids, own ISA ids).
        return list(
            session.scalars(
                select(TradingPartner)
                .where(
                    TradingPartner.as2_id == as2_from,
                    TradingPartner.our_as2_id == as2_to,
                    TradingPartner.active.is_(True),
                )
                .order_by(TradingPartner.id)
            )
        )

    def find_partner(self, as2_from: str, as2_to: str) -> As2Partner | None:
        """The AS2 settings of the active partner with these AS2 ids, if usable."""
        with self.factory() as session:
            for partner in self._partners(session, as2_from, as2_to):
                try:
                    return as2_partner(
                        partner,
                        self.identity,
                        async_mdn_url=self.async_mdn_url,
                        max_payload_bytes=self.max_payload_bytes,
                    )
                except EdiSetupError as exc:
                    log.warning("as2 partner unusable", extra={"reason": str(exc)})
        return None

    # MessageIdStore
    def seen(self, as2_from: str, message_id: str) -> bool:
        """Whether the Message-ID was processed (the column is unique whoever sent it)."""
        with self.factory() as session:
            found = session.scalar(
                select(As2Message.id).where(
                    As2Message.direction == Direction.INBOUND,
                    As2Message.message_id == stored_message_id(message_id),
                )
            )
        return found is not None

    def remember(self, as2_from: str, message_id: str, received_at: dt.datetime) -> None:
        """Nothing to do: deliver() claimed the Message-ID with the documents it applied."""

    def deliver(self, message: ReceivedMessage, partner: As2Partner) -> None:
        """Claim the Message-ID and receive the payload, in one transaction."""
        with self.factory() as session, session.begin():
            set_actor(session, SYSTEM)
            when = self.clock()
            allowed = [p.id for p in self._partners(session, message.as2_from, message.as2_to)]
            claim = As2Message(
                message_id=stored_message_id(message.message_id),
                direction=Direction.INBOUND,
                partner_id=allowed[0] if allowed else None,
                mic=str(message.mic)[:200],
                created_at=when,
            )
            try:
                with session.begin_nested():
                    session.add(claim)
                    session.flush()
            except IntegrityError:
                self._archive_copy(session, message, allowed, when)
                return
            results = receive_from(
                session,
                message.payload,
                allowed,
                transport="as2",
                transport_ref=message.message_id,
                options=self.options,
                now=when,
            )
            claim.interchange_id = results[0].interchange.id if results else None

    def _archive_copy(
        self, session: Session, message: ReceivedMessage, allowed: list[int], when: dt.datetime
    ) -> None:
        # Another worker committed this Message-ID after our seen(): it has the documents.
        log.info("as2 message taken by another worker", extra={"message_id": message.message_id})
        self._store(
            session,
            raw=message.payload,
            partner_id=allowed[0] if allowed else None,
            status=InterchangeStatus.DUPLICATE,
            code="as2_duplicate",
            reason="the Message-ID was processed by another worker at the same moment",
            message_id=message.message_id,
            when=when,
        )

    def archive(self, record: InboundRecord) -> None:
        """Every request and what became of it: the MDN of a processed message on its ledger
        row; duplicates, failures and refusals as archived interchanges with the reason."""
        if record.outcome is Outcome.RECEIPT:
            return  # receive_mdn recorded it on the message it answers
        with self.factory() as session, session.begin():
            set_actor(session, SYSTEM)
            if record.outcome is Outcome.PROCESSED:
                self._settle(session, record)
                return
            partner_id = None
            if record.as2_from and record.as2_to:
                partners = self._partners(session, record.as2_from, record.as2_to)
                partner_id = partners[0].id if partners else None
            if record.message is not None:
                raw = record.message.payload  # decrypted and verified: the partner's own file
            else:
                raw = record.body[:MAX_UNVERIFIED_ARCHIVE]
            if record.outcome is Outcome.DUPLICATE:
                status, code = InterchangeStatus.DUPLICATE, "as2_duplicate"
                reason = "the AS2 Message-ID was processed before; nothing applied again"
            elif record.outcome is Outcome.FAILED and record.reason == HANDLER_FAILED:
                status, code = InterchangeStatus.FAILED, "as2_handler"
                reason = "the message was received but could not be handed on; logged"
            else:
                status, code = InterchangeStatus.REJECTED, f"as2_{record.outcome.value}"
                reason = record.reason or "the message was not accepted"
            self._store(
                session,
                raw=raw,
                partner_id=partner_id,
                status=status,
                code=code,
                reason=reason,
                message_id=record.message_id,
                when=record.received_at,
                as2_from=record.as2_from,
                as2_to=record.as2_to,
                disposition=record.disposition,
                size=len(record.body),
            )

    def _settle(self, session: Session, record: InboundRecord) -> None:
        if record.message_id is None:
            return
        row = session.scalar(
            select(As2Message).where(
                As2Message.direction == Direction.INBOUND,
                As2Message.message_id == stored_message_id(record.message_id),
            )
        )
        if row is None or row.mdn_at is not None:
            return
        row.disposition = (record.disposition or "")[:200] or None
        row.mdn_raw = record.mdn.body if record.mdn is not None else None
        row.mdn_at = record.received_at

    def _store(
        self,
        session: Session,
        *,
        raw: bytes,
        partner_id: int | None,
        status: InterchangeStatus,
        code: str,
        reason: str,
        message_id: str | None,
        when: dt.datetime,
        **facts: Any,
    ) -> None:
        # AS2 names and Message-IDs were checked for printable ASCII by the receiver; the
        # reason is the receiver's own wording, never text from the request.
        extra = {
            key: value[:255] if isinstance(value, str) else value
            for key, value in facts.items()
            if value is not None
        }
        if message_id:
            extra["message_id"] = message_id[:255]
        session.add(
            EdiInterchange(
                partner_id=partner_id,
                direction=Direction.INBOUND,
                transport="as2",
                control_number=None,
                transport_ref=message_id[:255] if message_id else None,
                raw=raw,
                status=status,
                errors=[error_entry(code, reason, None, **extra)],
                created_at=when,
                processed_at=when,
            )
        )

    def send_async_mdn(self, url: str, mdn: OutboundMdn, partner: As2Partner) -> None:
        """Post an asynchronous MDN, but only to the host of the partner's own AS2 URL."""
        wanted = urlsplit(url)
        known = urlsplit(partner.url) if partner.url else None
        if known is None or (wanted.hostname or "").lower() != (known.hostname or "").lower():
            # A receipt address on another host could make us post to anyone (SSRF).
            raise DeliveryFailed(
                "the Receipt-Delivery-Option is not on the partner's AS2 host", retryable=False
            )
        with self.http() as client:
            post_async_mdn(url, mdn, client)

    def receive_mdn(self, receipt: ReceivedMdn, partner: As2Partner) -> None:
        """An asynchronous MDN for a message we sent: noted on its ledger row and interchange."""
        if receipt.original_message_id is None:
            log.warning("as2 receipt without Original-Message-ID")
            return
        with self.factory() as session, session.begin():
            set_actor(session, SYSTEM)
            row = session.scalar(
                select(As2Message).where(
                    As2Message.direction == Direction.OUTBOUND,
                    As2Message.message_id == stored_message_id(receipt.original_message_id),
                )
            )
            if row is None:
                log.warning("as2 receipt for a message we did not send")
                return
            row.disposition = str(receipt.disposition)[:200]
            row.mdn_at = self.clock()
            good = receipt.disposition.successful and (
                receipt.mic is None or str(receipt.mic) == row.mic
            )
            interchange = session.get(EdiInterchange, row.interchange_id or -1)
            if not good and interchange is not None:
                entry = error_entry(
                    "as2_mdn",
                    "the partner's receipt reports a failure or another MIC",
                    disposition=str(receipt.disposition)[:200],
                )
                interchange.errors = [*interchange.errors, entry]


# --- SFTP polling ----------------------------------------------------------------------------


@dataclass
class SftpInbound:
    """One InboundPoller per active partner with an SFTP host, kept in step with the table.

    `refresh()` reads the partners (and their sealed secrets) and replaces a poller whose
    settings changed; `run()` does that every `refresh_interval` seconds and keeps every
    poller polling, so a new partner needs no restart.
    """

    factory: sessionmaker[Session]
    box: CredentialBox | None
    options: ApplyOptions = field(default_factory=ApplyOptions)
    refresh_interval: float = 300.0
    pollers: dict[int, InboundPoller] = field(default_factory=dict)
    problems: dict[int, str] = field(default_factory=dict)

    def refresh(self) -> None:
        """Build, replace or drop pollers to match the active partners' SFTP settings."""
        with self.factory() as session:
            partners = session.scalars(
                select(TradingPartner).where(
                    TradingPartner.active.is_(True), TradingPartner.sftp_host.is_not(None)
                )
            ).all()
            configs: dict[int, SftpConfig] = {}
            problems: dict[int, str] = {}
            for partner in partners:
                try:
                    configs[partner.id] = sftp_config(partner, partner_secrets(partner, self.box))
                except EdiSetupError as exc:
                    problems[partner.id] = str(exc)
        for partner_id in set(self.pollers) - set(configs):
            del self.pollers[partner_id]
        for partner_id, config in configs.items():
            current = self.pollers.get(partner_id)
            if current is None or current.config != config:
                self.pollers[partner_id] = InboundPoller(config, self.handler(partner_id))
        self.problems = problems

    def handler(self, partner_id: int) -> InboundHandler:
        """The poller's `handle(name, data)` for one partner: received off the event loop."""

        async def handle(name: str, data: bytes) -> None:
            await asyncio.to_thread(self.receive, partner_id, name, data)

        return handle

    def receive(self, partner_id: int, name: str, data: bytes) -> list[InboundResult]:
        """Receive one file from the partner's folder in its own transaction."""
        with self.factory() as session, session.begin():
            set_actor(session, SYSTEM)
            return receive_from(
                session,
                data,
                [partner_id],
                transport="sftp",
                transport_ref=name,
                options=self.options,
            )

    async def run(self) -> None:
        """Refresh the pollers now and then and keep each polling (a Supervisor service)."""
        tasks: dict[int, tuple[InboundPoller, asyncio.Task[None]]] = {}
        try:
            while True:
                await asyncio.to_thread(self.refresh)
                self._sync_tasks(tasks)
                await asyncio.sleep(self.refresh_interval)
        finally:
            for _, task in tasks.values():
                task.cancel()
            await asyncio.gather(*(task for _, task in tasks.values()), return_exceptions=True)

    def _sync_tasks(self, tasks: dict[int, tuple[InboundPoller, asyncio.Task[None]]]) -> None:
        for partner_id in list(tasks):
            poller, task = tasks[partner_id]
            if self.pollers.get(partner_id) is not poller:
                task.cancel()
                del tasks[partner_id]
        for partner_id, poller in self.pollers.items():
            if partner_id not in tasks:
                task = asyncio.create_task(_keep_polling(poller), name=f"sftp:{partner_id}")
                tasks[partner_id] = (poller, task)


async def _keep_polling(poller: InboundPoller) -> None:
    """poller.run() for ever: an unexpected error is logged and polling resumes."""
    while True:
        try:
            await poller.run()
        except Exception:  # one partner's bug must not stop the others' polling
            log.exception("sftp poller failed", extra={"partner": poller.config.partner})
            await asyncio.sleep(poller.config.poll_interval)
