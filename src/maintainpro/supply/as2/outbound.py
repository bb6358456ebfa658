"""Build an outbound AS2 message: payload entity, optional compression, signature, encryption."""

from __future__ import annotations

import base64
import datetime as dt
import re
from dataclasses import dataclass
from email.utils import format_datetime

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import rsa

from maintainpro.supply.as2.headers import (
    AS2_VERSION,
    disposition_options,
    new_message_id,
    quote_as2_name,
)
from maintainpro.supply.as2.mic import Mic, compute_mic, normalise_algorithm
from maintainpro.supply.as2.mime import (
    build_entity,
    build_multipart,
    check_header_value,
    format_header_value,
    new_boundary,
)
from maintainpro.supply.as2.partners import As2Partner, MdnMode
from maintainpro.supply.as2.smime import compress, encrypt, sign_detached

_FILENAME = re.compile(r"[^A-Za-z0-9._-]")
Fields = tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class OutboundMessage:
    """A message ready to POST: HTTP headers, body, and the MIC its receipt must return."""

    message_id: str
    headers: dict[str, str]
    body: bytes
    mic: Mic
    signed: bool
    encrypted: bool
    compressed: bool


def build_message(
    payload: bytes,
    partner: As2Partner,
    *,
    content_type: str | None = None,
    filename: str | None = None,
    subject: str = "AS2 message",
    message_id: str | None = None,
    now: dt.datetime | None = None,
) -> OutboundMessage:
    """Wrap a payload as the partner agreement says (compress, then sign, then encrypt).

    The MIC is what RFC 4130 §7.3.1 says the receiver will compute: over the signed entity
    with its headers when signed, over the entity inside the encryption when only encrypted,
    over the payload alone otherwise.
    """
    media_type = check_header_value(content_type or partner.content_type)
    name = _FILENAME.sub("_", filename) if filename else None
    fields: Fields = (
        ("Content-Type", media_type),
        ("Content-Transfer-Encoding", "binary"),
    )
    if name:
        fields += (("Content-Disposition", format_header_value("attachment", {"filename": name})),)
    body = payload
    mic_algorithm = normalise_algorithm(partner.digest) or "sha-256"
    mic: Mic | None = None
    if partner.compress:
        fields, body = _pkcs7_mime(
            "compressed-data", "smime.p7z", compress(build_entity(fields, body))
        )
    if partner.sign:
        signed_entity = build_entity(fields, body)
        mic = compute_mic(signed_entity, mic_algorithm)
        fields, body = sign_entity(
            signed_entity, partner.our_key, partner.our_certificate, mic_algorithm
        )
    if partner.encryption is not None:
        inner = build_entity(fields, body)
        mic = mic or compute_mic(inner, mic_algorithm)
        envelope = encrypt(inner, partner.partner_certificate, partner.encryption)
        fields, body = _pkcs7_mime("enveloped-data", "smime.p7m", envelope)
    if mic is None:
        # Neither signed nor encrypted: the payload alone, as the receiver sees it (decompressed).
        mic = compute_mic(payload, mic_algorithm)
    ident = message_id or new_message_id(partner.our_as2_id)
    headers = {
        "AS2-Version": AS2_VERSION,
        "AS2-From": quote_as2_name(partner.our_as2_id),
        "AS2-To": quote_as2_name(partner.partner_as2_id),
        "Message-ID": check_header_value(ident),
        "Date": format_datetime(now or dt.datetime.now(dt.UTC), usegmt=True),
        "Subject": check_header_value(subject),
        "MIME-Version": "1.0",
        **dict(fields),
    }
    headers.update(mdn_request_headers(partner, mic_algorithm))
    return OutboundMessage(
        message_id=ident,
        headers=headers,
        body=body,
        mic=mic,
        signed=partner.sign,
        encrypted=partner.encryption is not None,
        compressed=partner.compress,
    )


def mdn_request_headers(partner: As2Partner, mic_algorithm: str) -> dict[str, str]:
    """The headers that ask for the receipt the partner agreement wants."""
    if partner.mdn_mode is MdnMode.NONE:
        return {}
    headers = {"Disposition-Notification-To": partner.async_mdn_url or partner.our_as2_id}
    if partner.mdn_signed:
        headers["Disposition-Notification-Options"] = disposition_options(mic_algorithm)
    if partner.mdn_mode is MdnMode.ASYNC and partner.async_mdn_url:
        headers["Receipt-Delivery-Option"] = partner.async_mdn_url
    return headers


def _pkcs7_mime(smime_type: str, name: str, der: bytes) -> tuple[Fields, bytes]:
    """The fields and body of an application/pkcs7-mime entity (binary: HTTP is 8-bit clean)."""
    media = format_header_value("application/pkcs7-mime", {"smime-type": smime_type, "name": name})
    fields: Fields = (
        ("Content-Type", media),
        ("Content-Transfer-Encoding", "binary"),
        ("Content-Disposition", format_header_value("attachment", {"filename": name})),
    )
    return fields, der


def sign_entity(
    entity: bytes, key: rsa.RSAPrivateKey, certificate: x509.Certificate, algorithm: str
) -> tuple[Fields, bytes]:
    """multipart/signed (fields and body): the entity, headers included, then its signature."""
    signature = sign_detached(entity, key, certificate, algorithm)
    signature_part = build_entity(
        (
            (
                "Content-Type",
                format_header_value("application/pkcs7-signature", {"name": "smime.p7s"}),
            ),
            ("Content-Transfer-Encoding", "base64"),
            ("Content-Disposition", format_header_value("attachment", {"filename": "smime.p7s"})),
        ),
        _base64_lines(signature),
    )
    boundary = new_boundary()
    media = format_header_value(
        "multipart/signed",
        {"protocol": "application/pkcs7-signature", "micalg": algorithm, "boundary": boundary},
    )
    return (("Content-Type", media),), build_multipart([entity, signature_part], boundary)


def _base64_lines(data: bytes) -> bytes:
    """Base64 in 76-character lines, as MIME wants."""
    text = base64.b64encode(data)
    return b"\r\n".join(text[i : i + 76] for i in range(0, len(text), 76))
