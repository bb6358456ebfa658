"""OData errors: a status, a code and a message, answered as ``{"error": {...}}``."""

from __future__ import annotations

from typing import Any


class ODataError(Exception):
    """A request the feed answers with an OData error body instead of data."""

    def __init__(
        self, status: int, code: str, message: str, headers: dict[str, str] | None = None
    ) -> None:
        """An error with an HTTP status, an OData error code and a message for the client."""
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers or {}

    def body(self) -> dict[str, Any]:
        """The OData JSON error body."""
        return {"error": {"code": self.code, "message": self.message}}


def bad_request(message: str) -> ODataError:
    """A 400 for a query the feed cannot answer (bad syntax, unknown property, wrong type)."""
    return ODataError(400, "BadRequest", message)


def not_implemented(message: str) -> ODataError:
    """A 501 for a valid OData feature this feed does not offer."""
    return ODataError(501, "NotImplemented", message)
