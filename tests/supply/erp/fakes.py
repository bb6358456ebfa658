"""Shared pieces of the local ERP servers: uvicorn in a thread, an OAuth2 token endpoint, knobs."""

from __future__ import annotations

import base64
import datetime as dt
import secrets
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

CLIENT_ID = "maintainpro-erp"
CLIENT_SECRET = "client-secret-for-tests"
USER, PASSWORD = "MAINTPRO_API", "basic-password-for-tests"


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextmanager
def serve(app: Starlette) -> Iterator[str]:
    """Serve an ASGI app with uvicorn on a free local port; yield its base URL."""
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(
            app, host="127.0.0.1", port=port, log_level="warning", timeout_graceful_shutdown=1
        )
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.01)
    assert server.started, "the local ERP server did not start"
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=5)


def basic_ok(request: Request) -> bool:
    """Whether the request carries the test user's basic credentials."""
    expected = base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
    return request.headers.get("authorization") == f"Basic {expected}"


@dataclass
class Knobs:
    """Faults a test can arm: 429s with Retry-After, 503s, a held (slow) create."""

    rate_limited: int = 0
    retry_after: str = "7"
    unavailable: int = 0
    hold_next_create: bool = False
    release: threading.Event = field(default_factory=threading.Event)
    requests: list[tuple[str, str]] = field(default_factory=list)

    def fault(self, request: Request) -> Response | None:
        """A 429 or 503 answer when one is armed, else None."""
        self.requests.append((request.method, request.url.path))
        if self.rate_limited:
            self.rate_limited -= 1
            return Response(status_code=429, headers={"Retry-After": self.retry_after})
        if self.unavailable:
            self.unavailable -= 1
            return Response(status_code=503)
        return None


@dataclass
class TokenIssuer:
    """An OAuth2 token endpoint (client credentials) issuing expiring bearer tokens."""

    lifetime_s: int = 3600
    scope: str | None = None
    issued: list[str] = field(default_factory=list)
    valid: dict[str, float] = field(default_factory=dict)

    async def token(self, request: Request) -> Response:
        """POST /oauth2/token: form grant with client id and secret in the body."""
        form = await request.form()
        if form.get("grant_type") != "client_credentials":
            return JSONResponse({"error": "unsupported_grant_type"}, status_code=400)
        if (form.get("client_id"), form.get("client_secret")) != (CLIENT_ID, CLIENT_SECRET):
            return JSONResponse(
                {"error": "invalid_client", "error_description": "bad client credentials"},
                status_code=401,
            )
        if self.scope is not None and form.get("scope") != self.scope:
            return JSONResponse({"error": "invalid_scope"}, status_code=400)
        token = secrets.token_urlsafe(16)
        self.issued.append(token)
        self.valid[token] = time.monotonic() + self.lifetime_s
        return JSONResponse(
            {"access_token": token, "token_type": "Bearer", "expires_in": self.lifetime_s}
        )

    def expire_all(self) -> None:
        """Make every issued token invalid, as a server-side expiry or revocation would."""
        self.valid.clear()

    def authorised(self, request: Request) -> bool:
        """Whether the request carries a live bearer token."""
        header = request.headers.get("authorization", "")
        if not header.startswith("Bearer "):
            return False
        expiry = self.valid.get(header.removeprefix("Bearer "))
        return expiry is not None and time.monotonic() < expiry


def now() -> dt.datetime:
    """The current time in UTC, to the millisecond."""
    moment = dt.datetime.now(dt.UTC)
    return moment.replace(microsecond=moment.microsecond // 1000 * 1000)
