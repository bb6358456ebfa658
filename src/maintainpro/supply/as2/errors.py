"""Typed AS2 errors: why an inbound message was refused, why a receipt is bad, why a send failed."""

from __future__ import annotations


class As2Error(Exception):
    """Base of every AS2 error; `reason` is our own wording, never text taken from the input."""

    def __init__(self, reason: str) -> None:
        """Keep the reason, which is safe to log, to archive and to put in an MDN."""
        super().__init__(reason)
        self.reason = reason


class MessageRejected(As2Error):
    """An inbound message cannot be accepted; `modifier` is the RFC 4130 disposition modifier."""

    modifier = "unexpected-processing-error"


class MalformedMessage(MessageRejected):
    """The message is not the MIME/CMS structure it claims to be (cut short, bad nesting)."""


class DecryptionFailed(MessageRejected):
    """The enveloped data cannot be decrypted with our key."""

    modifier = "decryption-failed"


class AuthenticationFailed(MessageRejected):
    """The signature is missing a signer we trust, or does not match the content."""

    modifier = "authentication-failed"


class DecompressionFailed(MessageRejected):
    """The RFC 5402 compressed data cannot be inflated, or inflates beyond the limit."""

    modifier = "decompression-failed"


class InsufficientSecurity(MessageRejected):
    """The partner agreement requires signing or encryption that the message lacks."""

    modifier = "insufficient-message-security"


class ReceiptInvalid(As2Error):
    """A returned MDN cannot be read, or its signature does not verify against the partner."""


class DeliveryFailed(As2Error):
    """A send did not end in a good receipt; `retryable` tells the outbox whether to try again."""

    def __init__(
        self,
        reason: str,
        *,
        retryable: bool,
        status_code: int | None = None,
        disposition: str | None = None,
    ) -> None:
        """Keep the classification next to the reason."""
        super().__init__(reason)
        self.retryable = retryable
        self.status_code = status_code
        self.disposition = disposition
