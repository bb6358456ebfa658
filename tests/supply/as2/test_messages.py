"""The pure message layer: outbound messages read back, MIC rules, MDNs and receipt checks."""

from __future__ import annotations

import base64
import hashlib
import re
from dataclasses import replace

import pytest

from maintainpro.supply.as2.errors import (
    DeliveryFailed,
    InsufficientSecurity,
    MalformedMessage,
    ReceiptInvalid,
)
from maintainpro.supply.as2.headers import lower_headers, read_mdn_request
from maintainpro.supply.as2.inbound import read_message
from maintainpro.supply.as2.mdn import (
    Disposition,
    ReceivedMdn,
    build_mdn,
    check_receipt,
    parse_disposition,
    processed,
    processed_with_error,
    processed_with_warning,
    read_mdn,
)
from maintainpro.supply.as2.mic import Mic, compute_mic, parse_mic
from maintainpro.supply.as2.mime import parse_entity, split_multipart
from maintainpro.supply.as2.outbound import build_message
from maintainpro.supply.as2.partners import As2Partner, MdnMode
from maintainpro.supply.as2.smime import ContentCipher
from supply.as2.as2_world import EDI_850, OUR_ID, PARTNER_ID, Identity


def _sha256(data: bytes) -> str:
    return base64.b64encode(hashlib.sha256(data).digest()).decode()


@pytest.mark.parametrize("sign", [True, False])
@pytest.mark.parametrize("encryption", [None, ContentCipher.AES128_CBC, ContentCipher.AES256_CBC])
@pytest.mark.parametrize("compress", [False, True])
def test_every_combination_reads_back_with_the_same_mic(
    ours: As2Partner,
    theirs: As2Partner,
    sign: bool,
    encryption: ContentCipher | None,
    compress: bool,
) -> None:
    sender = replace(ours, sign=sign, encryption=encryption, compress=compress)
    receiver = replace(theirs, require_signed=sign, require_encrypted=encryption is not None)
    message = build_message(EDI_850, sender, filename="po 1001.edi")
    received = read_message(lower_headers(message.headers), message.body, receiver)
    assert received.payload == EDI_850
    assert received.content_type == "application/EDI-X12"
    assert received.filename == "po_1001.edi"
    assert (received.signed, received.encrypted, received.compressed) == (
        sign,
        encryption is not None,
        compress,
    )
    assert received.mic == message.mic
    assert (received.as2_from, received.as2_to, received.message_id) == (
        OUR_ID,
        PARTNER_ID,
        message.message_id,
    )


def test_signed_message_mic_covers_the_signed_entity_with_its_headers(ours: As2Partner) -> None:
    message = build_message(EDI_850, replace(ours, encryption=None))
    boundary = parse_entity(
        b"Content-Type: " + message.headers["Content-Type"].encode() + b"\r\n\r\n"
    ).param("content-type", "boundary")
    signed_entity = split_multipart(message.body, boundary or "")[0]
    assert signed_entity.startswith(b"Content-Type: application/EDI-X12\r\n")
    assert message.mic.digest == _sha256(signed_entity)
    assert "micalg=sha-256" in message.headers["Content-Type"]


def test_unsigned_unencrypted_mic_covers_the_payload_only(ours: As2Partner) -> None:
    message = build_message(EDI_850, replace(ours, encryption=None, sign=False))
    assert message.body == EDI_850
    assert message.mic.digest == _sha256(EDI_850)


def test_outbound_headers_ask_for_the_agreed_receipt(ours: As2Partner) -> None:
    sync = build_message(EDI_850, ours).headers
    assert sync["AS2-Version"] == "1.2"
    assert sync["AS2-From"] == OUR_ID
    assert sync["AS2-To"] == f'"{PARTNER_ID}"'
    assert re.fullmatch(rf"<[0-9a-f]{{32}}@{OUR_ID}>", sync["Message-ID"])
    assert sync["Content-Type"].startswith("application/pkcs7-mime; smime-type=enveloped-data")
    request = read_mdn_request(sync)
    assert (request.requested, request.signed, request.async_url) == (True, True, None)
    assert request.mic_algorithms == ("sha-256",)

    later = replace(ours, mdn_mode=MdnMode.ASYNC, async_mdn_url="https://us.example/as2/receive")
    assert build_message(EDI_850, later).headers["Receipt-Delivery-Option"] == (
        "https://us.example/as2/receive"
    )
    silent = build_message(EDI_850, replace(ours, mdn_mode=MdnMode.NONE)).headers
    assert "Disposition-Notification-To" not in silent
    assert build_message(EDI_850, ours).message_id != build_message(EDI_850, ours).message_id


@pytest.mark.parametrize(
    ("sign", "encryption", "reason"),
    [(False, ContentCipher.AES256_CBC, "signed"), (True, None, "encrypted")],
)
def test_missing_required_protection_is_insufficient_security(
    ours: As2Partner,
    theirs: As2Partner,
    sign: bool,
    encryption: ContentCipher | None,
    reason: str,
) -> None:
    message = build_message(EDI_850, replace(ours, sign=sign, encryption=encryption))
    with pytest.raises(InsufficientSecurity, match=reason) as caught:
        read_message(lower_headers(message.headers), message.body, theirs)
    assert caught.value.modifier == "insufficient-message-security"


def test_message_without_as2_identity_is_malformed(ours: As2Partner, theirs: As2Partner) -> None:
    message = build_message(EDI_850, ours)
    headers = {k: v for k, v in message.headers.items() if k != "Message-ID"}
    with pytest.raises(MalformedMessage, match="Message-ID"):
        read_message(headers, message.body, theirs)


def test_requested_mic_algorithm_is_used(ours: As2Partner, theirs: As2Partner) -> None:
    message = build_message(EDI_850, replace(ours, encryption=None, digest="sha-512"))
    assert message.mic.algorithm == "sha-512"
    received = read_message(message.headers, message.body, replace(theirs, require_encrypted=False))
    assert received.mic == message.mic


def test_signed_mdn_round_trip_and_check(ours: As2Partner, theirs: As2Partner) -> None:
    mic = compute_mic(b"the signed entity", "sha-256")
    mdn = build_mdn(
        theirs, original_message_id="<1@us>", disposition=processed(), mic=mic, signed=True
    )
    assert mdn.headers["AS2-From"] == f'"{PARTNER_ID}"'
    assert mdn.headers["Content-Type"].startswith("multipart/signed")
    receipt = read_mdn(mdn.headers, mdn.body, ours)
    assert receipt.signed
    assert receipt.original_message_id == "<1@us>"
    assert receipt.mic == mic
    assert str(receipt.disposition) == "automatic-action/MDN-sent-automatically; processed"
    assert "received and processed" in receipt.explanation
    check_receipt(receipt, message_id="<1@us>", mic=mic)


def test_mdn_signed_by_a_stranger_is_invalid(
    ours: As2Partner, theirs: As2Partner, identities: dict[str, Identity]
) -> None:
    stranger = identities["stranger"]
    forged = replace(theirs, our_key=stranger.key, our_certificate=stranger.certificate)
    mdn = build_mdn(
        forged, original_message_id="<1@us>", disposition=processed(), mic=None, signed=True
    )
    with pytest.raises(ReceiptInvalid, match="partner's certificate"):
        read_mdn(mdn.headers, mdn.body, ours)


def test_unsigned_mdn_refused_when_signed_mdns_are_required(
    ours: As2Partner, theirs: As2Partner
) -> None:
    mdn = build_mdn(
        theirs, original_message_id="<1@us>", disposition=processed(), mic=None, signed=False
    )
    with pytest.raises(ReceiptInvalid, match="requires signed MDNs"):
        read_mdn(mdn.headers, mdn.body, ours)
    receipt = read_mdn(mdn.headers, mdn.body, replace(ours, require_signed_mdn=False))
    assert not receipt.signed


def _receipt(
    theirs: As2Partner,
    ours: As2Partner,
    *,
    original_message_id: str,
    disposition: Disposition,
    mic: Mic | None,
) -> ReceivedMdn:
    """An MDN from the partner as we read it."""
    mdn = build_mdn(
        theirs,
        original_message_id=original_message_id,
        disposition=disposition,
        mic=mic,
        signed=True,
    )
    return read_mdn(mdn.headers, mdn.body, ours)


def test_receipt_checks_classify_failures(ours: As2Partner, theirs: As2Partner) -> None:
    mic = compute_mic(b"entity", "sha-256")
    other = compute_mic(b"another entity", "sha-256")
    error = processed_with_error
    cases = [
        (("<2@us>", processed(), mic), "different message", False),
        (("<1@us>", processed(), other), "MIC", False),
        (("<1@us>", processed(), None), "does not return the MIC", False),
        (("<1@us>", error("authentication-failed"), None), "authentication-failed", False),
        (("<1@us>", error("unexpected-processing-error"), None), "unexpected-processing", True),
    ]
    for (original, disposition, returned), reason, retryable in cases:
        receipt = _receipt(
            theirs, ours, original_message_id=original, disposition=disposition, mic=returned
        )
        with pytest.raises(DeliveryFailed, match=reason) as caught:
            check_receipt(receipt, message_id="<1@us>", mic=mic)
        assert caught.value.retryable is retryable
    duplicate = _receipt(
        theirs,
        ours,
        original_message_id="<1@us>",
        disposition=processed_with_warning("duplicate-document"),
        mic=mic,
    )
    check_receipt(duplicate, message_id="<1@us>", mic=mic)


def test_disposition_and_mic_fields_parse() -> None:
    parsed = parse_disposition(
        "automatic-action/MDN-sent-automatically; processed/Error: decryption-failed"
    )
    assert (parsed.type, parsed.modifier, parsed.description) == (
        "processed",
        "error",
        "decryption-failed",
    )
    assert not parsed.successful
    assert str(processed_with_error("decryption-failed")).endswith(
        "processed/error: decryption-failed"
    )
    assert parse_mic("abc=, SHA256") == Mic("abc=", "sha-256")
    assert parse_mic("abc=, md5") is None
    with pytest.raises(ReceiptInvalid):
        parse_disposition("processed")
