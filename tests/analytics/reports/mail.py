"""Reading what the SMTP server received: recipients, the text and HTML parts, attachments."""

from __future__ import annotations

import io
import re
from email.message import Message
from typing import Any

import openpyxl

from peers import Inbox


def messages_to(inbox: Inbox) -> dict[str, Message]:
    """Each message by its single recipient."""
    found: dict[str, Message] = {}
    for rcpts, message in inbox.messages:
        (to,) = rcpts
        assert to not in found, f"{to} got the report twice"
        found[to] = message
    return found


def text_of(message: Message) -> str:
    """The plain-text body."""
    for part in message.walk():
        if part.get_content_type() == "text/plain" and not part.get_filename():
            payload = part.get_payload(decode=True)
            assert isinstance(payload, bytes)
            return payload.decode(part.get_content_charset() or "utf-8")
    raise AssertionError("no text part")


def html_of(message: Message) -> str:
    """The HTML alternative of the body."""
    for part in message.walk():
        if part.get_content_type() == "text/html" and not part.get_filename():
            payload = part.get_payload(decode=True)
            assert isinstance(payload, bytes)
            return payload.decode(part.get_content_charset() or "utf-8")
    raise AssertionError("no HTML part")


def attachments(message: Message) -> dict[str, tuple[str, bytes]]:
    """Attachments by extension: (filename, bytes)."""
    found: dict[str, tuple[str, bytes]] = {}
    for part in message.walk():
        name = part.get_filename()
        if name:
            payload = part.get_payload(decode=True)
            assert isinstance(payload, bytes)
            found[name.rsplit(".", 1)[-1]] = (name, payload)
    return found


def sheet_rows(xlsx: bytes, sheet: str) -> list[tuple[Any, ...]]:
    """The rows of one sheet, header first."""
    book = openpyxl.load_workbook(io.BytesIO(xlsx))
    return [tuple(c.value for c in row) for row in book[sheet].iter_rows()]


def summary_of(body: str) -> dict[str, str]:
    """The inline summary's "  label    value" lines as label -> value."""
    found = {}
    for line in body.splitlines():
        if line.startswith("  "):
            parts = re.split(r"\s{2,}", line.strip(), maxsplit=1)
            if len(parts) == 2:
                found[parts[0]] = parts[1]
    return found
