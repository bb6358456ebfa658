"""The HTTP client every ERP connector shares: retries, back-off, error classification, JSON.

Retries happen here only where they are safe: 429 and 503 (the server says it did not do the
work) on any method, and timeouts, connection errors and 5xx on reads. A create that times out
or fails with another 5xx is raised as an *ambiguous* retryable error instead, so the connector
can look the record up before creating it again (see ``base.push_once``).
"""

from __future__ import annotations

import datetime as dt
import json
import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from email.utils import parsedate_to_datetime
from typing import Any

import httpx

from maintainpro.supply.erp.auth import Credentials
from maintainpro.supply.erp.base import (
    ErpAuthError,
    ErpConflictError,
    ErpError,
    ErpPermanentError,
    ErpRetryableError,
    ErpValidationError,
)

ErrorReader = Callable[[httpx.Response], tuple[str | None, str]]
MAX_ERROR_TEXT = 500
_RATE_LIMITED = frozenset({429, 503})
_SERVER_ERRORS = frozenset({500, 502, 503, 504})


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How often and how long to retry: exponential back-off with jitter, capped.

    A server's Retry-After longer than ``max_retry_after_s`` is not waited out in-process: the
    error is raised with ``retry_after`` so the outbox can reschedule the work instead.
    """

    max_attempts: int = 5
    base_delay_s: float = 0.5
    max_delay_s: float = 30.0
    max_retry_after_s: float = 120.0

    def backoff(self, attempt: int, rng: random.Random) -> float:
        """Delay before retry ``attempt`` (1-based): half fixed, half random ("equal jitter")."""
        ceiling = min(self.max_delay_s, self.base_delay_s * 2 ** (attempt - 1))
        return float(ceiling / 2 + rng.uniform(0, ceiling / 2))


@dataclass(frozen=True, slots=True)
class Connection:
    """Where an ERP lives and how to log in to it."""

    base_url: str
    credentials: Credentials
    timeout_s: float = 30.0
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    verify: bool | str = True


@dataclass(frozen=True, slots=True)
class HttpOptions:
    """Seams for tests and special deployments: how to wait, what time it is, the transport."""

    sleep: Callable[[float], None] = time.sleep
    clock: Callable[[], float] = time.monotonic
    rng: random.Random | None = None
    transport: httpx.BaseTransport | None = None


def retry_after_seconds(value: str | None, now: dt.datetime | None = None) -> float | None:
    """Seconds named by a Retry-After header: delta-seconds or an HTTP-date (RFC 9110 10.2.3)."""
    if not value:
        return None
    text = value.strip()
    if text.isdigit():
        return float(text)
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    return max(0.0, (when - (now or dt.datetime.now(dt.UTC))).total_seconds())


def dumps(value: Any) -> str:
    """JSON text with Decimals written as exact numbers (the json module would need floats)."""
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise ValueError("only finite decimals can be sent")
        return format(value, "f")
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, Mapping):
        items = (f"{json.dumps(str(k), ensure_ascii=False)}:{dumps(v)}" for k, v in value.items())
        return "{" + ",".join(items) + "}"
    if isinstance(value, list | tuple):
        return "[" + ",".join(dumps(v) for v in value) + "]"
    raise TypeError(f"cannot send {type(value).__name__} as JSON")


def loads(response: httpx.Response) -> Any:
    """A response's JSON with numbers as Decimals, never floats."""
    return json.loads(response.content, parse_float=Decimal)


def generic_error(response: httpx.Response) -> tuple[str | None, str]:
    """The error code and message of a response whose format is not known."""
    text = response.text.strip()
    return None, text or response.reason_phrase or f"HTTP {response.status_code}"


class ErpHttp:
    """One ERP's HTTP session (cookies kept), with retries and typed errors."""

    def __init__(
        self,
        erp: str,
        connection: Connection,
        *,
        error_reader: ErrorReader = generic_error,
        headers: Mapping[str, str] | None = None,
        options: HttpOptions | None = None,
    ) -> None:
        opts = options or HttpOptions()
        self.erp = erp
        self.retry = connection.retry
        self._sleep = opts.sleep
        self._rng = opts.rng or random.Random()  # noqa: S311 - jitter, not security
        self._error_reader = error_reader
        self.auth = connection.credentials.auth(opts.clock)
        self.client = httpx.Client(
            base_url=connection.base_url.rstrip("/") + "/",
            auth=self.auth,
            timeout=connection.timeout_s,
            verify=connection.verify,
            headers={"Accept": "application/json", **(headers or {})},
            transport=opts.transport,
        )

    def close(self) -> None:
        """Close the connections."""
        self.client.close()

    def follow(self, link: str) -> str:
        """A next-page link, refused unless it points at the ERP we logged in to.

        Credentials go with every request, so a link to another host is never followed.
        """
        url = self.client.base_url.join(link)
        base = self.client.base_url
        if (url.scheme, url.host, url.port) != (base.scheme, base.host, base.port):
            raise ErpPermanentError("the ERP sent a next-page link to another host", erp=self.erp)
        return str(url)

    def send(
        self,
        method: str,
        url: str,
        *,
        params: Mapping[str, str] | None = None,
        body: Any = None,
        headers: Mapping[str, str] | None = None,
        idempotent: bool | None = None,
    ) -> httpx.Response:
        """Send with retries on rate limits and transient failures; return the last response.

        The response may still be an error (4xx, or a 5xx on a non-idempotent request): callers
        that handle some statuses themselves (SAP's CSRF 403) look first, then ``check``.
        """
        safe = method in {"GET", "HEAD", "OPTIONS"} if idempotent is None else idempotent
        send_headers = dict(headers or {})
        content: str | None = None
        if body is not None:
            content = dumps(body)
            send_headers.setdefault("Content-Type", "application/json")
        attempt = 0
        while True:
            attempt += 1
            last = attempt >= self.retry.max_attempts
            try:
                response = self.client.request(
                    method, url, params=params, content=content, headers=send_headers
                )
            except ErpRetryableError as exc:  # the token endpoint was unavailable
                if last:
                    raise
                self._sleep(exc.retry_after or self.retry.backoff(attempt, self._rng))
                continue
            except ErpError:
                raise
            except httpx.TransportError as exc:
                # A request that never connected was not carried out; any other failure
                # after the body left may have been.
                never_sent = isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout)
                if last or not (safe or never_sent):
                    raise ErpRetryableError(
                        f"{type(exc).__name__} talking to the ERP",
                        erp=self.erp,
                        ambiguous=not never_sent,
                    ) from exc
                self._sleep(self.retry.backoff(attempt, self._rng))
                continue
            status = response.status_code
            if status in _RATE_LIMITED or (safe and status in _SERVER_ERRORS):
                wait = retry_after_seconds(response.headers.get("Retry-After"))
                if last or (wait is not None and wait > self.retry.max_retry_after_s):
                    return response
                self._sleep(wait if wait is not None else self.retry.backoff(attempt, self._rng))
                continue
            return response

    def check(self, response: httpx.Response, *, create: bool = False) -> httpx.Response:
        """Return a successful response; raise the typed error for any other."""
        status = response.status_code
        if status < 400:
            return response
        code, message = self._error_reader(response)
        message = " ".join(message.split())[:MAX_ERROR_TEXT]
        kwargs: dict[str, Any] = {"erp": self.erp, "status": status, "code": code}
        if status in _RATE_LIMITED or status in _SERVER_ERRORS or status == 408:
            raise ErpRetryableError(
                message,
                ambiguous=create and status not in _RATE_LIMITED,
                retry_after=retry_after_seconds(response.headers.get("Retry-After")),
                **kwargs,
            )
        if status in {401, 403}:
            raise ErpAuthError(message, **kwargs)
        if status in {409, 412}:
            raise ErpConflictError(message, **kwargs)
        if status in {400, 422}:
            raise ErpValidationError(message, **kwargs)
        raise ErpPermanentError(message, **kwargs)

    def call(
        self,
        method: str,
        url: str,
        *,
        params: Mapping[str, str] | None = None,
        body: Any = None,
        headers: Mapping[str, str] | None = None,
    ) -> httpx.Response:
        """Send and check; creates (POST) raise ambiguous errors on timeouts and 5xx."""
        response = self.send(method, url, params=params, body=body, headers=headers)
        return self.check(response, create=method == "POST")

    def json(
        self,
        method: str,
        url: str,
        *,
        params: Mapping[str, str] | None = None,
        body: Any = None,
        headers: Mapping[str, str] | None = None,
    ) -> Any:
        """Send, check and decode the JSON answer."""
        response = self.call(method, url, params=params, body=body, headers=headers)
        if not response.content:
            return None
        try:
            return loads(response)
        except ValueError as exc:
            raise ErpRetryableError(
                "the ERP answered with something that is not JSON", erp=self.erp
            ) from exc
