"""Full round trips over real HTTP: our client sends to the AS2 endpoint served by uvicorn on a
free port (the partner's side runs the same endpoint code), and the sender's error classes."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace

import httpx
import pytest
import uvicorn
from fastapi import FastAPI

from maintainpro.supply.as2.client import async_mdn_sender, send_message
from maintainpro.supply.as2.errors import DeliveryFailed
from maintainpro.supply.as2.mdn import ReceivedMdn, check_receipt
from maintainpro.supply.as2.outbound import build_message
from maintainpro.supply.as2.partners import As2Partner, MdnMode
from maintainpro.supply.as2.receiver import As2Receiver, Outcome
from peers import Hook
from supply.as2.as2_world import EDI_850, Identity, MemoryIds, Sink, lookup, receiver_app


@contextmanager
def serve(app: FastAPI) -> Iterator[str]:
    """Serve the app with uvicorn on a socket that is listening before the thread starts."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen(64)
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(15)
        sock.close()


def _partner_side(theirs: As2Partner, sink: Sink) -> As2Receiver:
    """The partner's endpoint, run with our own receiver code and the partner's settings."""
    return As2Receiver(
        find_partner=lookup(theirs),
        message_ids=MemoryIds(),
        deliver=sink.deliver,
        archive=sink.archive,
    )


def test_round_trip_with_a_synchronous_signed_mdn(ours: As2Partner, theirs: As2Partner) -> None:
    sink = Sink()
    with serve(receiver_app(_partner_side(theirs, sink))) as base, httpx.Client(timeout=20) as http:
        sender = replace(ours, url=f"{base}/as2/receive", compress=True)
        message = build_message(EDI_850, sender, filename="po1001.edi")
        result = send_message(message, sender, http)
        resent = send_message(message, sender, http)
    assert result.receipt is not None
    assert result.receipt.signed
    assert result.receipt.disposition.successful
    assert result.receipt.mic == message.mic
    assert [(m.payload, m.compressed, m.encrypted, m.signed) for m in sink.delivered] == [
        (EDI_850, True, True, True)
    ]
    # A resend of the same message (an outbox retry) meets the duplicate check and still closes.
    assert resent.receipt is not None
    assert resent.receipt.disposition.description == "duplicate-document"
    assert [r.outcome for r in sink.archived] == [Outcome.PROCESSED, Outcome.DUPLICATE]


def test_round_trip_with_an_asynchronous_mdn(ours: As2Partner, theirs: As2Partner) -> None:
    arrived = threading.Event()
    receipts: list[ReceivedMdn] = []
    sink = Sink()

    def on_receipt(mdn: ReceivedMdn, partner: As2Partner) -> None:
        receipts.append(mdn)
        arrived.set()

    with httpx.Client(timeout=20) as mdn_http:
        # One server plays both ends: the partner's endpoint and ours, which takes the MDN.
        receiver = As2Receiver(
            find_partner=lookup(theirs, ours),
            message_ids=MemoryIds(),
            deliver=sink.deliver,
            archive=sink.archive,
            send_async_mdn=async_mdn_sender(mdn_http),
            receive_mdn=on_receipt,
        )
        with serve(receiver_app(receiver)) as base, httpx.Client(timeout=20) as http:
            url = f"{base}/as2/receive"
            sender = replace(ours, url=url, mdn_mode=MdnMode.ASYNC, async_mdn_url=url)
            message = build_message(EDI_850, sender)
            result = send_message(message, sender, http)
            assert result.awaiting_async_mdn
            assert result.receipt is None
            assert arrived.wait(20), "the asynchronous MDN never arrived"
    [receipt] = receipts
    check_receipt(receipt, message_id=message.message_id, mic=message.mic)
    assert [m.payload for m in sink.delivered] == [EDI_850]
    assert sorted(r.outcome for r in sink.archived) == sorted([Outcome.PROCESSED, Outcome.RECEIPT])


def test_partner_that_cannot_authenticate_us_is_a_permanent_failure(
    ours: As2Partner, theirs: As2Partner, identities: dict[str, Identity]
) -> None:
    distrustful = replace(theirs, partner_certificate=identities["stranger"].certificate)
    sink = Sink()
    with serve(receiver_app(_partner_side(distrustful, sink))) as base, httpx.Client() as http:
        sender = replace(ours, url=f"{base}/as2/receive")
        with pytest.raises(DeliveryFailed, match="authentication-failed") as caught:
            send_message(build_message(EDI_850, sender), sender, http)
    assert caught.value.retryable is False
    assert sink.delivered == []


def test_mdn_not_signed_by_the_expected_certificate_is_a_permanent_failure(
    ours: As2Partner, theirs: As2Partner, identities: dict[str, Identity]
) -> None:
    sink = Sink()
    with serve(receiver_app(_partner_side(theirs, sink))) as base, httpx.Client() as http:
        sender = replace(ours, url=f"{base}/as2/receive")
        message = build_message(EDI_850, sender)
        # The MDN is checked against a certificate other than the one that signed it.
        expecting_another = replace(sender, partner_certificate=identities["stranger"].certificate)
        with pytest.raises(DeliveryFailed, match="partner's certificate") as caught:
            send_message(message, expecting_another, http)
    assert caught.value.retryable is False
    assert [m.payload for m in sink.delivered] == [EDI_850]


@pytest.mark.parametrize(
    ("status", "mode", "retryable", "reason"),
    [
        (503, MdnMode.SYNC, True, "HTTP 503"),
        (429, MdnMode.SYNC, True, "HTTP 429"),
        (400, MdnMode.SYNC, False, "refused the message with HTTP 400"),
        (200, MdnMode.SYNC, True, "no MDN"),
    ],
)
def test_http_answers_are_classified(
    ours: As2Partner, status: int, mode: MdnMode, retryable: bool, reason: str
) -> None:
    hook = Hook([status])
    try:
        sender = replace(ours, url=hook.url, mdn_mode=mode)
        with httpx.Client() as http, pytest.raises(DeliveryFailed, match=reason) as caught:
            send_message(build_message(EDI_850, sender), sender, http)
    finally:
        hook.close()
    assert caught.value.retryable is retryable
    [(headers, body)] = hook.calls
    # What was posted is the AS2 message.
    assert headers["as2-to"] == '"ACME SUPPLY"'
    assert body


def test_no_mdn_mode_accepts_a_plain_200(ours: As2Partner) -> None:
    hook = Hook([200])
    try:
        sender = replace(ours, url=hook.url, mdn_mode=MdnMode.NONE)
        with httpx.Client() as http:
            result = send_message(build_message(EDI_850, sender), sender, http)
    finally:
        hook.close()
    assert (result.status_code, result.receipt, result.awaiting_async_mdn) == (200, None, False)


def test_unreachable_partner_is_retryable(ours: As2Partner) -> None:
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    sender = replace(ours, url=f"http://127.0.0.1:{port}/as2/receive")
    with (
        httpx.Client(timeout=5) as http,
        pytest.raises(DeliveryFailed, match="could not be reached") as caught,
    ):
        send_message(build_message(EDI_850, sender), sender, http)
    assert caught.value.retryable is True
