"""AS2 HTTP header fields (RFC 4130 §6): names, Message-IDs and what receipt a sender asks for."""

from __future__ import annotations

import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass

AS2_VERSION = "1.2"
MAX_AS2_NAME = 128
MAX_MESSAGE_ID = 998
_AS2_NAME = re.compile(r"^[\x21\x23-\x5b\x5d-\x7e ]+$")
_PRINTABLE = re.compile(r"^[\x21-\x7e][\x20-\x7e]*$")
_ID_DOMAIN = re.compile(r"[^A-Za-z0-9.-]")


def lower_headers(headers: Mapping[str, str]) -> dict[str, str]:
    """Header fields keyed by lower-case name (HTTP field names are case-insensitive)."""
    return {name.lower(): value for name, value in headers.items()}


def check_as2_name(name: str) -> str:
    """An AS2 name: 1 to 128 printable ASCII characters, spaces allowed, no quotes or backslash."""
    if not 0 < len(name) <= MAX_AS2_NAME or not _AS2_NAME.match(name) or name != name.strip():
        raise ValueError("an AS2 name is 1 to 128 printable ASCII characters without quotes")
    return name


def quote_as2_name(name: str) -> str:
    """An AS2 name for a header: quoted when it contains a space (RFC 4130 §6.2)."""
    return f'"{name}"' if " " in check_as2_name(name) else name


def unquote_as2_name(value: str | None) -> str | None:
    """An AS2 name read from a header, without its quotes; None when absent or not a valid name."""
    if value is None:
        return None
    text = value.strip()
    if len(text) >= 2 and text[0] == text[-1] == '"':
        text = text[1:-1]
    try:
        return check_as2_name(text)
    except ValueError:
        return None


def clean_message_id(value: str | None) -> str | None:
    """A Message-ID safe to store and to echo in an MDN header; None when absent or unsafe."""
    if value is None:
        return None
    text = value.strip()
    if not text or len(text) > MAX_MESSAGE_ID or not _PRINTABLE.match(text):
        return None
    return text


def new_message_id(as2_name: str) -> str:
    """A fresh, globally unique Message-ID in angle brackets, `<random@sender>`."""
    domain = _ID_DOMAIN.sub("_", as2_name) or "as2"
    return f"<{secrets.token_hex(16)}@{domain}>"


@dataclass(frozen=True, slots=True)
class MdnRequest:
    """What receipt the sender of a message asked for."""

    requested: bool
    signed: bool
    mic_algorithms: tuple[str, ...]
    async_url: str | None


def read_mdn_request(headers: Mapping[str, str]) -> MdnRequest:
    """Read Disposition-Notification-To/-Options and Receipt-Delivery-Option."""
    fields = lower_headers(headers)
    requested = bool(fields.get("disposition-notification-to", "").strip())
    options = _read_options(fields.get("disposition-notification-options", ""))
    protocols = options.get("signed-receipt-protocol", ())
    async_url = fields.get("receipt-delivery-option", "").strip() or None
    return MdnRequest(
        requested=requested,
        signed=requested and any(value.lower() == "pkcs7-signature" for value in protocols),
        mic_algorithms=options.get("signed-receipt-micalg", ()),
        async_url=async_url if requested else None,
    )


def _read_options(text: str) -> dict[str, tuple[str, ...]]:
    """`name=importance, value, value; ...` -> {name: (value, ...)} (importance dropped)."""
    options: dict[str, tuple[str, ...]] = {}
    for item in text.split(";"):
        name, sep, rest = item.partition("=")
        if not sep:
            continue
        values = [value.strip() for value in rest.split(",")]
        options[name.strip().lower()] = tuple(value for value in values[1:] if value)
    return options


def disposition_options(micalg: str) -> str:
    """The Disposition-Notification-Options value asking for a receipt signed with this digest."""
    return (
        "signed-receipt-protocol=optional, pkcs7-signature; "
        f"signed-receipt-micalg=optional, {micalg}"
    )
