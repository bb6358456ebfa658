"""The outbound side of AS2 over HTTP: POST a message, check the synchronous MDN, post MDNs.

Retries are the outbox's job: every failure is a DeliveryFailed whose `retryable` says whether
sending the *same* OutboundMessage again later can help (resend it unchanged, so the partner's
duplicate detection sees the same Message-ID).
"""

from __future__ import annotations

from dataclasses import dataclass

import httpx

from maintainpro.supply.as2.errors import DeliveryFailed, ReceiptInvalid
from maintainpro.supply.as2.mdn import OutboundMdn, ReceivedMdn, check_receipt, read_mdn
from maintainpro.supply.as2.mic import Mic
from maintainpro.supply.as2.outbound import OutboundMessage
from maintainpro.supply.as2.partners import As2Partner, MdnMode
from maintainpro.supply.as2.receiver import AsyncMdnSender

# Statuses that say "later" rather than "never": timeouts, throttling, server trouble.
RETRYABLE_STATUSES = frozenset({408, 425, 429})


@dataclass(frozen=True)
class SendResult:
    """A message the partner took; `receipt` is the checked sync MDN, None when async or none."""

    message_id: str
    mic: Mic
    status_code: int
    receipt: ReceivedMdn | None
    awaiting_async_mdn: bool


def send_message(message: OutboundMessage, partner: As2Partner, http: httpx.Client) -> SendResult:
    """POST the message to the partner and, for sync MDNs, verify the receipt and its MIC."""
    if not partner.url:
        raise DeliveryFailed("the partner has no AS2 URL", retryable=False)
    response = _post(http, partner.url, message.headers, message.body)
    if partner.mdn_mode is not MdnMode.SYNC:
        return SendResult(
            message.message_id,
            message.mic,
            response.status_code,
            None,
            awaiting_async_mdn=partner.mdn_mode is MdnMode.ASYNC,
        )
    if not response.content:
        # The partner has the message but no receipt came back; a resend meets its duplicate check.
        raise DeliveryFailed(
            "the partner returned no MDN", retryable=True, status_code=response.status_code
        )
    try:
        receipt = read_mdn(dict(response.headers), response.content, partner)
    except ReceiptInvalid as exc:
        raise DeliveryFailed(exc.reason, retryable=False, status_code=response.status_code) from exc
    check_receipt(receipt, message_id=message.message_id, mic=message.mic)
    return SendResult(
        message.message_id, message.mic, response.status_code, receipt, awaiting_async_mdn=False
    )


def post_async_mdn(url: str, mdn: OutboundMdn, http: httpx.Client) -> None:
    """POST an MDN to the URL a sender gave in Receipt-Delivery-Option."""
    if not url.startswith(("https://", "http://")):
        raise DeliveryFailed("the Receipt-Delivery-Option is not an http(s) URL", retryable=False)
    _post(http, url, mdn.headers, mdn.body)


def async_mdn_sender(http: httpx.Client) -> AsyncMdnSender:
    """An AsyncMdnSender for As2Receiver that posts directly (no outbox)."""

    def send(url: str, mdn: OutboundMdn, partner: As2Partner) -> None:
        post_async_mdn(url, mdn, http)

    return send


def _post(http: httpx.Client, url: str, headers: dict[str, str], body: bytes) -> httpx.Response:
    """POST and classify transport failures and HTTP statuses."""
    try:
        response = http.post(url, content=body, headers=headers)
    except httpx.TransportError as exc:
        raise DeliveryFailed("the partner could not be reached", retryable=True) from exc
    status = response.status_code
    if status >= 500 or status in RETRYABLE_STATUSES:
        raise DeliveryFailed(
            f"the partner answered HTTP {status}", retryable=True, status_code=status
        )
    if not 200 <= status < 300:
        raise DeliveryFailed(
            f"the partner refused the message with HTTP {status}",
            retryable=False,
            status_code=status,
        )
    return response
