"""The inbound side of AS2 without a web framework: from raw request to reply, MDN and archive.

Everything that touches storage or the rest of the system is injected, so the lead can bind
it to the trading-partner table, the EDI layer and the outbox, and tests can pass plain fakes.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Protocol

from maintainpro.supply.as2.errors import As2Error, MessageRejected, ReceiptInvalid
from maintainpro.supply.as2.headers import MdnRequest, lower_headers, read_mdn_request
from maintainpro.supply.as2.inbound import ReceivedMessage, read_envelope, read_message
from maintainpro.supply.as2.mdn import (
    Disposition,
    OutboundMdn,
    ReceivedMdn,
    build_mdn,
    is_mdn,
    processed,
    processed_with_error,
    processed_with_warning,
    read_mdn,
)
from maintainpro.supply.as2.mic import Mic
from maintainpro.supply.as2.partners import As2Partner

log = logging.getLogger(__name__)

DUPLICATE = "duplicate-document"
HANDLER_FAILED = "the document was received but could not be handed on"


class MessageIdStore(Protocol):
    """Message-IDs already processed, per sending partner (back it with a unique constraint)."""

    def seen(self, as2_from: str, message_id: str) -> bool:
        """Whether this partner's message was processed before."""
        ...

    def remember(self, as2_from: str, message_id: str, received_at: dt.datetime) -> None:
        """Record that this partner's message has been processed."""
        ...


PartnerLookup = Callable[[str, str], As2Partner | None]
PayloadHandler = Callable[[ReceivedMessage, As2Partner], None]
ReceiptHandler = Callable[[ReceivedMdn, As2Partner], None]
AsyncMdnSender = Callable[[str, OutboundMdn, As2Partner], None]


class Outcome(StrEnum):
    """What became of an inbound request."""

    PROCESSED = "processed"
    DUPLICATE = "duplicate"
    FAILED = "failed"
    REFUSED = "refused"
    RECEIPT = "receipt"


@dataclass(frozen=True)
class InboundRecord:
    """Everything that arrived and what we did with it, for the archive."""

    received_at: dt.datetime
    headers: dict[str, str]
    body: bytes
    outcome: Outcome
    reason: str | None = None
    as2_from: str | None = None
    as2_to: str | None = None
    message_id: str | None = None
    disposition: str | None = None
    mic: Mic | None = None
    message: ReceivedMessage | None = None
    mdn: OutboundMdn | None = None
    receipt: ReceivedMdn | None = None


@dataclass(frozen=True)
class Reply:
    """The HTTP answer: a sync MDN, an empty 200, or a problem (status + detail)."""

    status: int
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    problem: str | None = None
    async_mdn: tuple[str, OutboundMdn, As2Partner] | None = None


def _utcnow() -> dt.datetime:
    """The current time, aware UTC."""
    return dt.datetime.now(dt.UTC)


@dataclass
class As2Receiver:
    """Processes inbound AS2 requests with the injected lookup, store, handlers and archive."""

    find_partner: PartnerLookup
    message_ids: MessageIdStore
    deliver: PayloadHandler
    archive: Callable[[InboundRecord], None]
    send_async_mdn: AsyncMdnSender | None = None
    receive_mdn: ReceiptHandler | None = None
    clock: Callable[[], dt.datetime] = _utcnow
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)
    _in_flight: set[tuple[str, str]] = field(default_factory=set, init=False, repr=False)

    def handle(self, headers: Mapping[str, str], body: bytes) -> Reply:
        """Process one request; the payload is handed on only if everything checked out."""
        fields = lower_headers(headers)
        start = InboundRecord(self.clock(), fields, body, Outcome.REFUSED)
        envelope = read_envelope(fields)
        if envelope is None:
            return self._refuse(
                start, 400, "AS2-From, AS2-To or Message-ID is missing or malformed"
            )
        start = replace(
            start,
            as2_from=envelope.as2_from,
            as2_to=envelope.as2_to,
            message_id=envelope.message_id,
        )
        partner = self.find_partner(envelope.as2_from, envelope.as2_to)
        if partner is None:
            return self._refuse(
                start, 403, "no AS2 trading partner is set up for AS2-From and AS2-To"
            )
        if is_mdn(fields, body):
            return self._take_receipt(start, partner)
        request = read_mdn_request(fields)
        try:
            message = read_message(fields, body, partner)
        except MessageRejected as exc:
            failed = processed_with_error(exc.modifier)
            return self._answer(start, partner, request, Outcome.FAILED, failed, None, exc.reason)
        return self._apply(start, partner, request, message)

    def _apply(
        self,
        start: InboundRecord,
        partner: As2Partner,
        request: MdnRequest,
        message: ReceivedMessage,
    ) -> Reply:
        """Hand the payload on once per partner and Message-ID."""
        key = (message.as2_from, message.message_id)
        with self._lock:
            # A concurrent retry of a message still being processed is a duplicate too.
            busy = key in self._in_flight
            self._in_flight.add(key)
        try:
            if busy or self.message_ids.seen(*key):
                warning = processed_with_warning(DUPLICATE)
                return self._answer(
                    start,
                    partner,
                    request,
                    Outcome.DUPLICATE,
                    warning,
                    message.mic,
                    "the Message-ID was processed before",
                    message,
                )
            try:
                self.deliver(message, partner)
            except Exception:  # any handler failure becomes an error MDN; logged with its trace
                log.exception("as2 payload handler failed for message from %s", message.as2_from)
                failed = processed_with_error("unexpected-processing-error")
                return self._answer(
                    start,
                    partner,
                    request,
                    Outcome.FAILED,
                    failed,
                    message.mic,
                    HANDLER_FAILED,
                    message,
                )
            self.message_ids.remember(*key, start.received_at)
            return self._answer(
                start, partner, request, Outcome.PROCESSED, processed(), message.mic, None, message
            )
        finally:
            if not busy:
                with self._lock:
                    self._in_flight.discard(key)

    def _answer(
        self,
        start: InboundRecord,
        partner: As2Partner,
        request: MdnRequest,
        outcome: Outcome,
        disposition: Disposition,
        mic: Mic | None,
        reason: str | None,
        message: ReceivedMessage | None = None,
    ) -> Reply:
        """Archive the outcome and answer with the MDN the sender asked for."""
        mdn = None
        if request.requested:
            mdn = build_mdn(
                partner,
                original_message_id=start.message_id or "",
                disposition=disposition,
                mic=mic,
                signed=request.signed,
                mic_algorithms=request.mic_algorithms,
                now=self.clock(),
            )
        self.archive(
            replace(
                start,
                outcome=outcome,
                reason=reason,
                disposition=str(disposition),
                mic=mic,
                message=message,
                mdn=mdn,
            )
        )
        if mdn is None:
            if disposition.successful:
                return Reply(200)
            # Without an MDN the HTTP status is the only way to tell the sender.
            status = 503 if outcome is Outcome.FAILED and reason == HANDLER_FAILED else 400
            return Reply(status, problem=reason or "the message was not processed")
        if request.async_url and self.send_async_mdn is not None:
            return Reply(200, async_mdn=(request.async_url, mdn, partner))
        return Reply(200, dict(mdn.headers), mdn.body)

    def _take_receipt(self, start: InboundRecord, partner: As2Partner) -> Reply:
        """An asynchronous MDN answering a message we sent."""
        if self.receive_mdn is None:
            return self._refuse(start, 400, "this endpoint does not take asynchronous MDNs")
        try:
            receipt = read_mdn(start.headers, start.body, partner)
        except ReceiptInvalid as exc:
            return self._refuse(start, 400, exc.reason)
        try:
            self.receive_mdn(receipt, partner)
        except Exception:  # the partner retries on 5xx; logged with its trace
            log.exception("as2 receipt handler failed for MDN from %s", start.as2_from)
            return self._refuse(start, 503, "the receipt could not be recorded", receipt)
        self.archive(replace(start, outcome=Outcome.RECEIPT, receipt=receipt))
        return Reply(200)

    def _refuse(
        self, start: InboundRecord, status: int, reason: str, receipt: ReceivedMdn | None = None
    ) -> Reply:
        """Archive a request no MDN can answer and reply with a problem."""
        outcome = Outcome.FAILED if status >= 500 else Outcome.REFUSED
        self.archive(replace(start, outcome=outcome, reason=reason, receipt=receipt))
        return Reply(status, problem=reason)

    def post_async_mdn(self, url: str, mdn: OutboundMdn, partner: As2Partner) -> None:
        """Send an asynchronous MDN after the response went out; failures are logged only,
        so an injected sender that must not lose MDNs should queue them in the outbox."""
        if self.send_async_mdn is None:
            return
        try:
            self.send_async_mdn(url, mdn, partner)
        except As2Error as exc:
            log.warning("as2 async MDN to %s failed: %s", partner.partner_as2_id, exc.reason)
