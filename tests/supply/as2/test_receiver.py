"""The endpoint under hostile and unusual input: the reason is clear, the payload is not handed
on, and every request is archived with its outcome. OpenSSL plays the partner where it can."""

from __future__ import annotations

import base64
import re
from dataclasses import replace
from pathlib import Path

import httpx
import pytest

from maintainpro.supply.as2.mdn import ReceivedMdn, build_mdn, check_receipt, processed, read_mdn
from maintainpro.supply.as2.mime import build_multipart, parse_entity, split_multipart
from maintainpro.supply.as2.outbound import build_message
from maintainpro.supply.as2.partners import As2Partner, MdnMode
from maintainpro.supply.as2.receiver import Outcome
from supply.as2.as2_world import (
    EDI_850,
    Identity,
    Station,
    as2_headers,
    http_parts,
    openssl,
)

ENTITY = b"Content-Type: application/EDI-X12\r\nContent-Transfer-Encoding: binary\r\n\r\n" + EDI_850


def _signed(entity: bytes, signer: Identity, folder: Path) -> bytes:
    (folder / "entity.bin").write_bytes(entity)
    return openssl(
        "cms", "-sign", "-binary", "-crlfeol", "-md", "sha256", "-in", folder / "entity.bin",
        "-signer", signer.cert_path, "-inkey", signer.key_path,
    )  # fmt: skip


def _encrypted(content: bytes, recipient: Identity, folder: Path) -> bytes:
    (folder / "inner.bin").write_bytes(content)
    return openssl(
        "cms", "-encrypt", "-binary", "-crlfeol", "-aes256", "-in", folder / "inner.bin",
        recipient.cert_path,
    )  # fmt: skip


def _post(station: Station, wire: bytes, message_id: str, **extra: str) -> httpx.Response:
    headers, body = http_parts(wire)
    return station.http.post(
        "/as2/receive", content=body, headers={**headers, **as2_headers(message_id), **extra}
    )


def _receipt(response: httpx.Response, theirs: As2Partner) -> ReceivedMdn:
    """The MDN as the partner reads it: signed by us, verified with our certificate."""
    assert response.status_code == 200
    return read_mdn(dict(response.headers), response.content, theirs)


def _assert_refused(station: Station, modifier: str, reason: str) -> None:
    assert station.sink.delivered == []
    assert station.ids.ids == {}
    [record] = station.sink.archived
    assert record.outcome is Outcome.FAILED
    assert (
        record.disposition
        == f"automatic-action/MDN-sent-automatically; processed/error: {modifier}"
    )
    assert reason in (record.reason or "")
    assert record.body  # the raw request is archived as it came


def _swap_signed_content(signed_smime: bytes, old: bytes, new: bytes) -> bytes:
    """Change the signed content of OpenSSL's multipart/signed while keeping its signature."""
    assert old in signed_smime
    return signed_smime.replace(old, new, 1)


def test_tampered_content_is_an_authentication_failure(
    station: Station, theirs: As2Partner, identities: dict[str, Identity], tmp_path: Path
) -> None:
    signed = _swap_signed_content(
        _signed(ENTITY, identities["partner"], tmp_path), b"PO-1001", b"PO-6666"
    )
    response = _post(station, _encrypted(signed, identities["us"], tmp_path), "<t1@acme>")
    receipt = _receipt(response, theirs)
    assert str(receipt.disposition).endswith("processed/error: authentication-failed")
    assert receipt.mic is None
    _assert_refused(station, "authentication-failed", "does not match the signed content")


def test_tampered_signature_value_is_an_authentication_failure(
    station: Station, theirs: As2Partner, identities: dict[str, Identity], tmp_path: Path
) -> None:
    signed = _signed(ENTITY, identities["partner"], tmp_path)
    entity = parse_entity(signed)
    boundary = entity.param("content-type", "boundary") or ""
    content, signature_part = split_multipart(entity.body, boundary)
    signature_entity = parse_entity(signature_part)
    der = bytearray(signature_entity.decoded_body())
    der[-1] ^= 0xFF
    forged_part = signature_part[
        : len(signature_part) - len(signature_entity.body)
    ] + base64.encodebytes(bytes(der))
    forged = signed[: len(signed) - len(entity.body)] + build_multipart(
        [content, forged_part], boundary
    )
    response = _post(station, _encrypted(forged, identities["us"], tmp_path), "<t2@acme>")
    assert str(_receipt(response, theirs).disposition).endswith("error: authentication-failed")
    _assert_refused(station, "authentication-failed", "does not match")


def test_message_signed_by_a_stranger_posing_as_the_partner(
    station: Station, theirs: As2Partner, identities: dict[str, Identity], tmp_path: Path
) -> None:
    signed = _signed(ENTITY, identities["stranger"], tmp_path)
    response = _post(station, _encrypted(signed, identities["us"], tmp_path), "<t3@acme>")
    assert str(_receipt(response, theirs).disposition).endswith("error: authentication-failed")
    _assert_refused(station, "authentication-failed", "not signed with the partner's certificate")


def test_message_encrypted_for_another_certificate(
    station: Station, theirs: As2Partner, identities: dict[str, Identity], tmp_path: Path
) -> None:
    signed = _signed(ENTITY, identities["partner"], tmp_path)
    response = _post(station, _encrypted(signed, identities["stranger"], tmp_path), "<t4@acme>")
    assert str(_receipt(response, theirs).disposition).endswith("error: decryption-failed")
    _assert_refused(station, "decryption-failed", "not encrypted for our certificate")


def test_replayed_message_id_is_answered_but_not_handed_on_again(
    station: Station, theirs: As2Partner, identities: dict[str, Identity], tmp_path: Path
) -> None:
    wire = _encrypted(_signed(ENTITY, identities["partner"], tmp_path), identities["us"], tmp_path)
    first = _receipt(_post(station, wire, "<t5@acme>"), theirs)
    replay = _receipt(_post(station, wire, "<t5@acme>"), theirs)
    assert str(first.disposition).endswith("; processed")
    assert str(replay.disposition).endswith("processed/warning: duplicate-document")
    # The same MIC both times, so a sender that lost the first MDN can still close the message.
    assert replay.mic == first.mic is not None
    assert len(station.sink.delivered) == 1
    assert [r.outcome for r in station.sink.archived] == [Outcome.PROCESSED, Outcome.DUPLICATE]
    # The same Message-ID from another partner is not a replay of this one.
    assert not station.ids.seen("SOMEONE ELSE", "<t5@acme>")


@pytest.mark.parametrize("keep", [0.5, 0.9])
def test_cut_short_encrypted_body(
    station: Station,
    theirs: As2Partner,
    identities: dict[str, Identity],
    tmp_path: Path,
    keep: float,
) -> None:
    wire = _encrypted(_signed(ENTITY, identities["partner"], tmp_path), identities["us"], tmp_path)
    headers, body = http_parts(wire)
    cut = body[: int(len(body) * keep) // 4 * 4]
    response = station.http.post(
        "/as2/receive", content=cut, headers={**headers, **as2_headers("<t6@acme>")}
    )
    assert str(_receipt(response, theirs).disposition).endswith("error: decryption-failed")
    _assert_refused(station, "decryption-failed", "")
    assert re.search("cut short|not readable CMS", station.sink.archived[0].reason or "")


def test_cut_short_signed_body(
    station: Station,
    ours: As2Partner,
    theirs: As2Partner,
    identities: dict[str, Identity],
    tmp_path: Path,
) -> None:
    station.receiver.find_partner = lambda a, b: replace(ours, require_encrypted=False)
    signed = _signed(ENTITY, identities["partner"], tmp_path)
    response = _post(station, signed[: len(signed) - 200], "<t7@acme>")
    assert str(_receipt(response, theirs).disposition).endswith(
        "error: unexpected-processing-error"
    )
    _assert_refused(station, "unexpected-processing-error", "cut short")


def test_unknown_as2_to_is_refused_without_mdn(
    station: Station, identities: dict[str, Identity], tmp_path: Path
) -> None:
    wire = _encrypted(_signed(ENTITY, identities["partner"], tmp_path), identities["us"], tmp_path)
    response = _post(station, wire, "<t8@acme>", **{"AS2-To": "<script>NOBODY"})
    assert response.status_code == 403
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["detail"] == "no AS2 trading partner is set up for AS2-From and AS2-To"
    assert "script" not in response.text
    assert station.sink.delivered == []
    [record] = station.sink.archived
    assert (record.outcome, record.as2_to) == (Outcome.REFUSED, "<script>NOBODY")


@pytest.mark.parametrize("dropped", ["AS2-From", "AS2-To", "Message-ID"])
def test_missing_as2_headers_are_a_bad_request(
    station: Station, ours: As2Partner, theirs: As2Partner, dropped: str
) -> None:
    message = build_message(EDI_850, theirs)
    headers = {k: v for k, v in message.headers.items() if k != dropped}
    response = station.http.post("/as2/receive", content=message.body, headers=headers)
    assert response.status_code == 400
    assert dropped in response.json()["detail"]
    assert station.sink.delivered == []
    assert [r.outcome for r in station.sink.archived] == [Outcome.REFUSED]


def test_message_id_with_line_breaks_is_refused(station: Station, theirs: As2Partner) -> None:
    message = build_message(EDI_850, theirs)
    headers = {**message.headers, "Message-ID": "<a@b>\tInjected"}
    response = station.http.post("/as2/receive", content=message.body, headers=headers)
    assert response.status_code == 400


def test_unsigned_message_is_insufficiently_secure(station: Station, theirs: As2Partner) -> None:
    message = build_message(EDI_850, replace(theirs, sign=False))
    response = station.http.post("/as2/receive", content=message.body, headers=message.headers)
    receipt = _receipt(response, theirs)
    assert str(receipt.disposition).endswith("error: insufficient-message-security")
    _assert_refused(station, "insufficient-message-security", "requires signed messages")


def test_handler_failure_answers_an_error_and_a_resend_succeeds(
    station: Station, theirs: As2Partner
) -> None:
    message = build_message(EDI_850, theirs)

    def broken(*_: object) -> None:
        raise RuntimeError("database is down")

    station.receiver.deliver = broken
    failed = _receipt(
        station.http.post("/as2/receive", content=message.body, headers=message.headers), theirs
    )
    assert str(failed.disposition).endswith("error: unexpected-processing-error")
    assert "database" not in failed.explanation
    assert station.ids.ids == {}
    station.receiver.deliver = station.sink.deliver
    again = _receipt(
        station.http.post("/as2/receive", content=message.body, headers=message.headers), theirs
    )
    check_receipt(again, message_id=message.message_id, mic=message.mic)
    assert [m.payload for m in station.sink.delivered] == [EDI_850]
    assert [r.outcome for r in station.sink.archived] == [Outcome.FAILED, Outcome.PROCESSED]


def test_without_mdn_request_success_is_an_empty_200_and_failure_a_problem(
    station: Station, theirs: As2Partner
) -> None:
    quiet = replace(theirs, mdn_mode=MdnMode.NONE)
    message = build_message(EDI_850, quiet)
    response = station.http.post("/as2/receive", content=message.body, headers=message.headers)
    assert (response.status_code, response.content) == (200, b"")
    assert len(station.sink.delivered) == 1
    unsigned = build_message(EDI_850, replace(quiet, sign=False))
    response = station.http.post("/as2/receive", content=unsigned.body, headers=unsigned.headers)
    assert response.status_code == 400
    assert response.json()["detail"] == "the partner agreement requires signed messages"


def test_async_mdn_is_posted_to_the_receipt_delivery_option(
    station: Station, theirs: As2Partner
) -> None:
    url = "https://partner.example/as2/mdn"
    message = build_message(EDI_850, replace(theirs, mdn_mode=MdnMode.ASYNC, async_mdn_url=url))
    response = station.http.post("/as2/receive", content=message.body, headers=message.headers)
    assert (response.status_code, response.content) == (200, b"")
    [(posted_to, mdn, partner)] = station.async_mdns
    assert posted_to == url
    assert partner.partner_as2_id == theirs.our_as2_id
    receipt = read_mdn(mdn.headers, mdn.body, theirs)
    check_receipt(receipt, message_id=message.message_id, mic=message.mic)
    assert station.sink.archived[0].mdn == mdn


def test_async_receipt_from_the_partner_is_handed_to_the_receipt_handler(
    station: Station, theirs: As2Partner
) -> None:
    mdn = build_mdn(
        theirs,
        original_message_id="<ours-1@MAINTAINPRO>",
        disposition=processed(),
        mic=None,
        signed=True,
    )
    response = station.http.post("/as2/receive", content=mdn.body, headers=mdn.headers)
    assert (response.status_code, response.content) == (200, b"")
    [receipt] = station.sink.receipts
    assert receipt.original_message_id == "<ours-1@MAINTAINPRO>"
    assert [r.outcome for r in station.sink.archived] == [Outcome.RECEIPT]
    assert station.sink.delivered == []


def test_unsigned_async_receipt_is_refused(station: Station, theirs: As2Partner) -> None:
    mdn = build_mdn(
        theirs,
        original_message_id="<ours-2@MAINTAINPRO>",
        disposition=processed(),
        mic=None,
        signed=False,
    )
    response = station.http.post("/as2/receive", content=mdn.body, headers=mdn.headers)
    assert response.status_code == 400
    assert "requires signed MDNs" in response.json()["detail"]
    assert station.sink.receipts == []
    assert [r.outcome for r in station.sink.archived] == [Outcome.REFUSED]
