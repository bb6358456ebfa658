"""Read an inbound AS2 message: decrypt, decompress, verify, compute the MIC, return the payload."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from maintainpro.supply.as2.errors import (
    DecompressionFailed,
    DecryptionFailed,
    InsufficientSecurity,
    MalformedMessage,
)
from maintainpro.supply.as2.headers import (
    clean_message_id,
    lower_headers,
    read_mdn_request,
    unquote_as2_name,
)
from maintainpro.supply.as2.mic import Mic, choose_algorithm, compute_mic
from maintainpro.supply.as2.mime import Entity, entity_from_http, parse_entity, split_multipart
from maintainpro.supply.as2.partners import As2Partner
from maintainpro.supply.as2.smime import content_kind, decompress, decrypt, verify_detached

PKCS7_MIME = frozenset({"application/pkcs7-mime", "application/x-pkcs7-mime"})
PKCS7_SIGNATURE = frozenset({"application/pkcs7-signature", "application/x-pkcs7-signature"})
# Encrypted, signed and compressed (twice at most, RFC 5402 allows before and after signing).
MAX_LAYERS = 4


@dataclass(frozen=True)
class ReceivedMessage:
    """A verified, decrypted inbound payload and what protected it on the way."""

    message_id: str
    as2_from: str
    as2_to: str
    payload: bytes
    content_type: str
    filename: str | None
    subject: str | None
    signed: bool
    encrypted: bool
    compressed: bool
    mic: Mic


@dataclass(frozen=True)
class Envelope:
    """The AS2 identity headers of a request, checked for safe characters."""

    as2_from: str
    as2_to: str
    message_id: str


def read_envelope(headers: Mapping[str, str]) -> Envelope | None:
    """AS2-From, AS2-To and Message-ID; None when one is missing or unsafe to echo."""
    fields = lower_headers(headers)
    as2_from = unquote_as2_name(fields.get("as2-from"))
    as2_to = unquote_as2_name(fields.get("as2-to"))
    message_id = clean_message_id(fields.get("message-id"))
    if as2_from is None or as2_to is None or message_id is None:
        return None
    return Envelope(as2_from, as2_to, message_id)


def read_message(headers: Mapping[str, str], body: bytes, partner: As2Partner) -> ReceivedMessage:
    """Unwrap a message from this partner; raises a MessageRejected subclass saying why not."""
    envelope = read_envelope(headers)
    if envelope is None:
        raise MalformedMessage("AS2-From, AS2-To or Message-ID is missing or malformed")
    requested = read_mdn_request(headers).mic_algorithms
    entity = entity_from_http(headers, body)
    signed = encrypted = compressed = False
    mic: Mic | None = None
    for _ in range(MAX_LAYERS + 1):
        media_type = entity.content_type
        if media_type in PKCS7_MIME:
            der, kind = _cms_content(entity)
            if kind == "enveloped_data" and not encrypted:
                inner = decrypt(der, partner.our_key, partner.our_certificate)
                encrypted = True
                if not signed:
                    # RFC 4130 §7.3.1: unsigned but encrypted -> MIC over the decrypted entity.
                    mic = compute_mic(inner, choose_algorithm(requested))
                entity = parse_entity(inner)
            elif kind == "compressed_data":
                entity = parse_entity(decompress(der, partner.max_payload_bytes))
                compressed = True
            else:
                raise MalformedMessage("the CMS content of the message is not supported here")
        elif media_type == "multipart/signed" and not signed:
            signed_raw, digest = verify_signed_entity(entity, partner)
            signed = True
            # RFC 4130 §7.3.1: signed -> MIC over the signed entity, its MIME headers included.
            mic = compute_mic(signed_raw, choose_algorithm(requested, fallback=digest))
            entity = parse_entity(signed_raw)
        else:
            break
    else:
        raise MalformedMessage("the message is nested too deeply")
    if media_type in PKCS7_MIME or media_type.startswith("multipart/"):
        raise MalformedMessage("the message payload is not a single document")
    if partner.require_encrypted and not encrypted:
        raise InsufficientSecurity("the partner agreement requires encrypted messages")
    if partner.require_signed and not signed:
        raise InsufficientSecurity("the partner agreement requires signed messages")
    payload = entity.decoded_body()
    if mic is None:
        # Neither signed nor encrypted: the MIC covers the content without its headers.
        mic = compute_mic(payload, choose_algorithm(requested))
    content_type = entity.header("content-type") or "text/plain"
    return ReceivedMessage(
        message_id=envelope.message_id,
        as2_from=envelope.as2_from,
        as2_to=envelope.as2_to,
        payload=payload,
        content_type=content_type.partition(";")[0].strip(),
        filename=entity.param("content-disposition", "filename"),
        subject=lower_headers(headers).get("subject"),
        signed=signed,
        encrypted=encrypted,
        compressed=compressed,
        mic=mic,
    )


def _cms_content(entity: Entity) -> tuple[bytes, str]:
    """The DER of an application/pkcs7-mime entity and its CMS type; a damaged one is reported
    as the failure of what its smime-type announced (decryption or decompression)."""
    try:
        der = entity.decoded_body()
        return der, content_kind(der)
    except MalformedMessage as exc:
        announced = (entity.param("content-type", "smime-type") or "").lower()
        if announced == "enveloped-data":
            raise DecryptionFailed(exc.reason) from exc
        if announced == "compressed-data":
            raise DecompressionFailed(exc.reason) from exc
        raise


def verify_signed_entity(entity: Entity, partner: As2Partner) -> tuple[bytes, str]:
    """Check a multipart/signed entity against the partner certificate.

    Returns the signed entity exactly as received (headers included) and the signer's digest.
    """
    boundary = entity.param("content-type", "boundary")
    parts = split_multipart(entity.body, boundary or "")
    if len(parts) != 2:
        raise MalformedMessage("a multipart/signed body must have exactly two parts")
    signed_raw, signature_raw = parts
    signature = parse_entity(signature_raw)
    if signature.content_type not in PKCS7_SIGNATURE:
        raise MalformedMessage("the second part of multipart/signed is not a CMS signature")
    digest = verify_detached(signature.decoded_body(), signed_raw, partner.partner_certificate)
    return signed_raw, digest
