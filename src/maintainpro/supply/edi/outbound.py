"""Outbound X12: envelope documents for a partner, archive them, and hand them to its transport.

Queuing and sending are two steps joined by the outbox. `queue_interchange` runs in the caller's
transaction: persistent control numbers, the archive row (QUEUED, ack PENDING) and an
"edi.outbound" event commit together. The event's handler then calls the transport sender
injected for the partner's EdiTransport; a failure raises, so the outbox tries again with
back-off and an unreachable partner never loses a document.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from maintainpro.core.audit import SYSTEM, set_actor
from maintainpro.core.db import utcnow
from maintainpro.core.events import Handler, emit
from maintainpro.supply.edi.archive import (
    AckState,
    Direction,
    DocumentStatus,
    EdiDocument,
    EdiInterchange,
    InterchangeStatus,
)
from maintainpro.supply.edi.control_numbers import PartnerControlNumbers
from maintainpro.supply.edi.envelope import (
    EnvelopeSettings,
    PartyId,
    TransactionContent,
    build_interchange,
)
from maintainpro.supply.edi.errors import X12SerializationError
from maintainpro.supply.edi.json_form import json_form
from maintainpro.supply.edi.model import is_digits
from maintainpro.supply.edi.order_documents import (
    Buyer,
    change_content,
    change_document,
    order_content,
    order_document,
)
from maintainpro.supply.edi.partners import EdiTransport, TradingPartner
from maintainpro.supply.edi.x12 import serialize_interchange
from maintainpro.supply.order_changes import CHANGED_TOPIC
from maintainpro.supply.purchasing import PurchaseOrder

log = logging.getLogger(__name__)

OUTBOUND_TOPIC = "edi.outbound"
DEFAULT_BUYER = "MaintAInPro"
TransportSender = Callable[[TradingPartner, str, bytes], str]
"""Delivers one interchange file to a partner; returns the transport's reference (AS2
Message-ID, remote path); raises when the partner cannot take it now."""
_UNSAFE_NAME = re.compile(r"[^A-Za-z0-9_.-]")
_MAX_TRANSPORT_ERRORS = 20


class EdiSetupError(RuntimeError):
    """The supplier's trading-partner setup does not allow the exchange (the outbox retries)."""


class EdiTransportError(RuntimeError):
    """No transport sender is wired for the partner's transport."""


@dataclass(frozen=True)
class OutboundDocument:
    """One transaction set to send, with its archive facts."""

    content: TransactionContent
    parsed: Any
    reference: str | None = None
    purchase_order_id: int | None = None


def envelope_settings(partner: TradingPartner) -> EnvelopeSettings:
    """ISA/GS identities and versions of our interchanges to this partner."""
    return EnvelopeSettings(
        sender=PartyId(partner.our_isa_qualifier, partner.our_isa_id),
        receiver=PartyId(partner.isa_qualifier, partner.isa_id),
        application_sender=partner.our_gs_id,
        application_receiver=partner.gs_id,
        version=partner.x12_version,
        group_version=partner.gs_version,
        usage_indicator=partner.usage_indicator,
    )


def buyer_of(partner: TradingPartner, default: str = DEFAULT_BUYER) -> Buyer:
    """How we name ourselves to this partner (its settings' "buyer_name", else ``default``)."""
    name = partner.settings.get("buyer_name") if partner.settings else None
    return Buyer(name=str(name or default), identifier=partner.our_gs_id)


def partner_for_supplier(session: Session, supplier_id: int) -> TradingPartner:
    """The supplier's active trading partner; EdiSetupError when there is none."""
    partner = session.scalar(
        select(TradingPartner).where(TradingPartner.supplier_id == supplier_id)
    )
    if partner is None:
        raise EdiSetupError(f"supplier {supplier_id} has no EDI trading partner set up")
    if not partner.active:
        raise EdiSetupError(
            f"the EDI trading partner of supplier {partner.supplier.code} is inactive"
        )
    return partner


def _check_document(partner: TradingPartner, set_id: str) -> None:
    if partner.documents and set_id not in partner.documents:
        raise EdiSetupError(
            f"the trading partner {partner.supplier.code} is not set up for {set_id} "
            f"(documents: {', '.join(partner.documents)})"
        )


def _group_members(
    documents: Sequence[OutboundDocument],
) -> dict[str, list[OutboundDocument]]:
    # build_interchange makes one group per functional identifier, in order of first use.
    groups: dict[str, list[OutboundDocument]] = {}
    for document in documents:
        groups.setdefault(document.content.functional_id, []).append(document)
    return groups


def queue_interchange(
    session: Session,
    partner: TradingPartner,
    documents: Sequence[OutboundDocument],
    *,
    expect_ack: bool = True,
    now: dt.datetime | None = None,
) -> EdiInterchange:
    """Envelope, archive (QUEUED) and queue documents for the partner in the caller's transaction.

    With `expect_ack` the interchange waits for a 997 until now + the partner's deadline (the
    deadline is counted again from the moment the transport takes it).
    """
    when = now or utcnow()
    if not documents:
        raise ValueError("an interchange needs at least one document")
    numbers = PartnerControlNumbers(session, partner.id)
    try:
        interchange = build_interchange(
            [d.content for d in documents], envelope_settings(partner), numbers, when
        )
        text = serialize_interchange(interchange)
    except X12SerializationError as exc:
        raise EdiSetupError(f"the interchange cannot be written as X12: {exc}") from exc
    deadline = dt.timedelta(minutes=partner.ack_deadline_minutes)
    row = EdiInterchange(
        partner_id=partner.id,
        direction=Direction.OUTBOUND,
        transport=partner.transport.value,
        control_number=int(interchange.control_number),
        sender_id=partner.our_isa_id,
        receiver_id=partner.isa_id,
        raw=text.encode("utf-8"),
        status=InterchangeStatus.QUEUED,
        errors=[],
        ack_state=AckState.PENDING if expect_ack else AckState.NOT_REQUESTED,
        ack_due_at=when + deadline if expect_ack else None,
        created_at=when,
    )
    members = _group_members(documents)
    for group in interchange.groups:
        control = group.control_number
        for transaction_set, document in zip(
            group.transaction_sets, members[group.functional_id], strict=True
        ):
            row.documents.append(
                EdiDocument(
                    set_id=transaction_set.set_id,
                    group_control=int(control) if is_digits(control) else None,
                    set_control=transaction_set.control_number,
                    status=DocumentStatus.PENDING,
                    parsed=json_form(document.parsed),
                    errors=[],
                    reference=document.reference,
                    purchase_order_id=document.purchase_order_id,
                    attempts=0,
                )
            )
    session.add(row)
    session.flush()
    emit(session, OUTBOUND_TOPIC, {"interchange_id": row.id, "partner_id": partner.id})
    return row


def queue_purchase_order(
    session: Session,
    order: PurchaseOrder,
    topic: str,
    *,
    now: dt.datetime | None = None,
    buyer_name: str = DEFAULT_BUYER,
) -> EdiInterchange:
    """Queue the 850 for a sent order, or the 860 of its current revision for a change."""
    when = now or utcnow()
    partner = partner_for_supplier(session, order.supplier_id)
    buyer = buyer_of(partner, buyer_name)
    if topic == CHANGED_TOPIC:
        _check_document(partner, "860")
        change = change_document(session, order, buyer, now=when)
        document = OutboundDocument(
            change_content(session, order, buyer, now=when), change, order.number, order.id
        )
    else:
        _check_document(partner, "850")
        document = OutboundDocument(
            order_content(session, order, buyer),
            order_document(session, order, buyer),
            order.number,
            order.id,
        )
    return queue_interchange(session, partner, [document], now=when)


def edi_order_sender(
    clock: Callable[[], dt.datetime] = utcnow, *, buyer: str = DEFAULT_BUYER
) -> Callable[[Session, PurchaseOrder, str], str]:
    """The dispatch channel for EDI suppliers: queue the 850/860; returns the history note."""

    def send(session: Session, order: PurchaseOrder, topic: str) -> str:
        row = queue_purchase_order(session, order, topic, now=clock(), buyer_name=buyer)
        sets = " ".join(d.set_id for d in row.documents)
        return f"EDI {sets} queued as interchange {row.control_number:09d} ({row.transport})"

    return send


def file_name(partner: TradingPartner, interchange: EdiInterchange) -> str:
    """The file name: supplier code, set ids and ISA13, e.g. ACME_850_000000042.x12."""
    code = _UNSAFE_NAME.sub("-", partner.supplier.code)
    sets = "-".join(sorted({d.set_id for d in interchange.documents})) or "x12"
    return f"{code}_{sets}_{interchange.control_number or 0:09d}.x12"


def send_interchange(
    session: Session,
    interchange_id: int,
    senders: Mapping[EdiTransport, TransportSender],
    *,
    now: dt.datetime | None = None,
) -> EdiInterchange | None:
    """Hand a queued interchange to its partner's transport; None when nothing is to be sent.

    A partner on transport "none" collects its files itself (a VAN mailbox): the interchange
    stays QUEUED. Raises EdiSetupError/EdiTransportError or the sender's error to retry later.
    """
    row = session.get(EdiInterchange, interchange_id, with_for_update=True)
    if row is None or row.direction is not Direction.OUTBOUND:
        return None
    if row.status is not InterchangeStatus.QUEUED:
        return None  # sent already: the event was delivered again
    partner = session.get(TradingPartner, row.partner_id) if row.partner_id else None
    if partner is None:
        log.warning("outbound interchange without partner", extra={"interchange_id": row.id})
        return None
    if not partner.active:
        raise EdiSetupError(f"the trading partner {partner.supplier.code} is inactive")
    if partner.transport is EdiTransport.NONE:
        log.info("interchange waits for pickup", extra={"interchange_id": row.id})
        return None
    sender = senders.get(partner.transport)
    if sender is None:
        raise EdiTransportError(f"no {partner.transport.value} sender is wired")
    reference = sender(partner, file_name(partner, row), row.raw)
    when = now or utcnow()
    row.status = InterchangeStatus.SENT
    row.transport = partner.transport.value
    row.transport_ref = str(reference)[:255] if reference else None
    row.processed_at = when
    if row.ack_state is AckState.PENDING:
        row.ack_due_at = when + dt.timedelta(minutes=partner.ack_deadline_minutes)
    for document in row.documents:
        document.status = DocumentStatus.SENT
        document.processed_at = when
        document.attempts += 1
    return row


def record_transport_failure(
    factory: sessionmaker[Session], interchange_id: int, error: BaseException
) -> None:
    """Note a failed hand-over on the interchange, in its own transaction (kept on retry)."""
    with factory() as session, session.begin():
        set_actor(session, SYSTEM)
        row = session.get(EdiInterchange, interchange_id)
        if row is None:
            return
        entry = {
            "code": "transport",
            "message": f"{type(error).__name__}: {error}"[:500],
            "at": utcnow().isoformat(),
        }
        row.errors = [*row.errors, entry][-_MAX_TRANSPORT_ERRORS:]


def outbound_handlers(
    factory: sessionmaker[Session], senders: Mapping[EdiTransport, TransportSender]
) -> dict[str, list[Handler]]:
    """The outbox handler sending queued interchanges through the injected transport senders."""
    chosen = dict(senders)

    def handle(topic: str, payload: Mapping[str, Any]) -> None:
        try:
            interchange_id = int(payload["interchange_id"])
        except (KeyError, TypeError, ValueError):
            log.warning("edi.outbound event without an interchange id")
            return
        try:
            with factory() as session, session.begin():
                set_actor(session, SYSTEM)
                send_interchange(session, interchange_id, chosen)
        except Exception as exc:
            record_transport_failure(factory, interchange_id, exc)
            raise

    return {OUTBOUND_TOPIC: [handle]}
