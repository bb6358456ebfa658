"""Message Disposition Notifications (RFC 3798 as profiled by RFC 4130 §7): build, read, check."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from email.utils import format_datetime

from maintainpro.supply.as2.errors import DeliveryFailed, MessageRejected, ReceiptInvalid
from maintainpro.supply.as2.headers import (
    AS2_VERSION,
    clean_message_id,
    lower_headers,
    new_message_id,
    quote_as2_name,
)
from maintainpro.supply.as2.inbound import verify_signed_entity
from maintainpro.supply.as2.mic import SIGNING_ALGORITHMS, Mic, normalise_algorithm, parse_mic
from maintainpro.supply.as2.mime import (
    CRLF,
    Entity,
    build_entity,
    build_multipart,
    entity_from_http,
    format_header_value,
    new_boundary,
    parse_entity,
    parse_header_block,
    split_multipart,
)
from maintainpro.supply.as2.outbound import Fields, sign_entity
from maintainpro.supply.as2.partners import As2Partner

REPORTING_UA = "MaintAInPro AS2"
AUTOMATIC = "automatic-action/MDN-sent-automatically"
MAX_EXPLANATION = 2000
# A partner's internal error may pass; every other failure needs a person (keys, agreement).
RETRYABLE_FAILURES = frozenset({"unexpected-processing-error"})
_TOKEN = re.compile(r"^[a-z0-9-]{1,64}$")


@dataclass(frozen=True, slots=True)
class Disposition:
    """The Disposition field: `processed`, optionally with `/error: ...` or `/warning: ...`."""

    type: str = "processed"
    modifier: str | None = None
    description: str | None = None
    mode: str = AUTOMATIC

    def __str__(self) -> str:
        """The field value, e.g. `automatic-action/MDN-sent-automatically; processed`."""
        text = f"{self.mode}; {self.type}"
        if self.modifier:
            text += f"/{self.modifier}: {self.description or ''}".rstrip(": ")
        return text

    @property
    def successful(self) -> bool:
        """Processed, possibly with a warning (duplicate-document is a warning)."""
        return self.type == "processed" and self.modifier not in ("error", "failure")


def processed() -> Disposition:
    """The message was processed."""
    return Disposition()


def processed_with_error(description: str) -> Disposition:
    """`processed/error: <description>` (decryption-failed, authentication-failed, ...)."""
    return Disposition(modifier="error", description=description)


def processed_with_warning(description: str) -> Disposition:
    """`processed/warning: <description>` (duplicate-document)."""
    return Disposition(modifier="warning", description=description)


def parse_disposition(text: str) -> Disposition:
    """Read a Disposition field value."""
    mode, sep, rest = text.partition(";")
    kind, _, modifier_text = rest.strip().partition("/")
    modifier, _, description = modifier_text.partition(":")
    if not sep or not kind.strip():
        raise ReceiptInvalid("the MDN's Disposition field is malformed")
    return Disposition(
        type=kind.strip().lower(),
        modifier=modifier.strip().lower() or None,
        description=description.strip().lower() or None,
        mode=mode.strip(),
    )


@dataclass(frozen=True)
class OutboundMdn:
    """An MDN ready to return (sync) or to POST (async)."""

    message_id: str
    original_message_id: str
    disposition: Disposition
    headers: dict[str, str]
    body: bytes


def build_mdn(
    partner: As2Partner,
    *,
    original_message_id: str,
    disposition: Disposition,
    mic: Mic | None,
    signed: bool,
    mic_algorithms: Sequence[str] = (),
    explanation: str | None = None,
    message_id: str | None = None,
    now: dt.datetime | None = None,
) -> OutboundMdn:
    """A multipart/report MDN, signed with our key when the sender asked for a signed receipt."""
    text = explanation or _explain(disposition)
    fields = [
        f"Reporting-UA: {REPORTING_UA}",
        f"Original-Recipient: rfc822; {quote_as2_name(partner.our_as2_id)}",
        f"Final-Recipient: rfc822; {quote_as2_name(partner.our_as2_id)}",
        f"Original-Message-ID: {original_message_id}",
        f"Disposition: {disposition}",
    ]
    if mic is not None:
        fields.append(f"Received-Content-MIC: {mic}")
    boundary = new_boundary()
    seven_bit = ("Content-Transfer-Encoding", "7bit")
    report = build_multipart(
        [
            build_entity(
                (("Content-Type", "text/plain; charset=us-ascii"), seven_bit),
                text.encode("ascii", "replace") + CRLF,
            ),
            build_entity(
                (("Content-Type", "message/disposition-notification"), seven_bit),
                "\r\n".join(fields).encode("latin-1") + CRLF,
            ),
        ],
        boundary,
    )
    report_type = {"report-type": "disposition-notification", "boundary": boundary}
    entity_fields: Fields = (
        ("Content-Type", format_header_value("multipart/report", report_type)),
    )
    body = report
    if signed:
        algorithm = _signing_algorithm(mic_algorithms, partner.digest)
        entity_fields, body = sign_entity(
            build_entity(entity_fields, report), partner.our_key, partner.our_certificate, algorithm
        )
    ident = message_id or new_message_id(partner.our_as2_id)
    headers = {
        "AS2-Version": AS2_VERSION,
        "AS2-From": quote_as2_name(partner.our_as2_id),
        "AS2-To": quote_as2_name(partner.partner_as2_id),
        "Message-ID": ident,
        "Date": format_datetime(now or dt.datetime.now(dt.UTC), usegmt=True),
        "Subject": "AS2 MDN",
        "MIME-Version": "1.0",
        **dict(entity_fields),
    }
    return OutboundMdn(ident, original_message_id, disposition, headers, body)


def _signing_algorithm(requested: Sequence[str], fallback: str) -> str:
    """Sign with the first requested SHA-2 digest, else with the partner's agreed digest."""
    for name in requested:
        algorithm = normalise_algorithm(name)
        if algorithm in SIGNING_ALGORITHMS:
            return algorithm
    return normalise_algorithm(fallback) or "sha-256"


def _explain(disposition: Disposition) -> str:
    """The human-readable part; our own wording only, never text from the message."""
    if disposition.modifier == "warning":
        return (
            f"The AS2 message was received before ({disposition.description}); not applied again."
        )
    if disposition.successful:
        return "The AS2 message was received and processed."
    return f"The AS2 message could not be processed: {disposition.description}."


@dataclass(frozen=True)
class ReceivedMdn:
    """An MDN returned by a partner, its signature checked."""

    message_id: str | None
    original_message_id: str | None
    disposition: Disposition
    mic: Mic | None
    signed: bool
    explanation: str


def is_mdn(headers: Mapping[str, str], body: bytes) -> bool:
    """Whether a request carries an MDN (multipart/report, maybe inside multipart/signed)."""
    try:
        entity = entity_from_http(headers, body)
        if entity.content_type == "multipart/signed":
            first = split_multipart(entity.body, entity.param("content-type", "boundary") or "")[0]
            entity = parse_entity(first)
    except MessageRejected:
        return False
    return entity.content_type == "multipart/report"


def read_mdn(headers: Mapping[str, str], body: bytes, partner: As2Partner) -> ReceivedMdn:
    """Read an MDN from the partner, verifying its signature against the partner certificate."""
    try:
        entity = entity_from_http(headers, body)
        signed = entity.content_type == "multipart/signed"
        if signed:
            entity = parse_entity(verify_signed_entity(entity, partner)[0])
        if partner.require_signed_mdn and not signed:
            raise ReceiptInvalid("the partner agreement requires signed MDNs; this one is not")
        if entity.content_type != "multipart/report":
            raise ReceiptInvalid("the MDN is not a multipart/report")
        boundary = entity.param("content-type", "boundary") or ""
        parts = [parse_entity(part) for part in split_multipart(entity.body, boundary)]
        fields = _notification_fields(parts)
    except MessageRejected as exc:
        raise ReceiptInvalid(f"the MDN is not acceptable: {exc.reason}") from exc
    disposition_text = fields.get("disposition")
    if disposition_text is None:
        raise ReceiptInvalid("the MDN has no Disposition field")
    mic_text = fields.get("received-content-mic")
    return ReceivedMdn(
        message_id=clean_message_id(lower_headers(headers).get("message-id")),
        original_message_id=clean_message_id(fields.get("original-message-id")),
        disposition=parse_disposition(disposition_text),
        mic=parse_mic(mic_text) if mic_text else None,
        signed=signed,
        explanation=_explanation(parts),
    )


def _notification_fields(parts: Sequence[Entity]) -> dict[str, str]:
    """The fields of the message/disposition-notification part."""
    for part in parts:
        if part.content_type == "message/disposition-notification":
            return {name.lower(): value for name, value in parse_header_block(part.decoded_body())}
    raise ReceiptInvalid("the MDN has no message/disposition-notification part")


def _explanation(parts: Sequence[Entity]) -> str:
    """The human-readable text of the report, shortened; for logs and the archive."""
    for part in parts:
        if part.content_type == "text/plain":
            return part.decoded_body().decode("ascii", "replace").strip()[:MAX_EXPLANATION]
    return ""


def check_receipt(mdn: ReceivedMdn, *, message_id: str, mic: Mic) -> None:
    """Accept an MDN for the message we sent, or raise DeliveryFailed saying why not."""
    if mdn.original_message_id != message_id.strip():
        raise DeliveryFailed("the MDN answers a different message", retryable=False)
    if not mdn.disposition.successful:
        # The description is the partner's text: only a plain token goes into our reason.
        description = mdn.disposition.description or ""
        known = description if _TOKEN.match(description) else "failed"
        raise DeliveryFailed(
            f"the partner did not process the message: {known}",
            retryable=mdn.disposition.description in RETRYABLE_FAILURES,
            disposition=str(mdn.disposition),
        )
    if mdn.mic is None and mdn.signed:
        raise DeliveryFailed("the signed MDN does not return the MIC", retryable=False)
    if mdn.mic is not None and mdn.mic != mic:
        raise DeliveryFailed(
            "the MIC in the MDN does not match the message we sent", retryable=False
        )
