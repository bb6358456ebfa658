"""ERP credentials: HTTP basic, and OAuth2 client credentials with a cached, refreshed token."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Generator
from dataclasses import dataclass, field

import httpx

from maintainpro.supply.erp.base import ErpAuthError, ErpRetryableError

# Refresh this long before the token's stated expiry, so a request never leaves with a token
# that dies on its way.
EARLY_REFRESH_S = 30.0
DEFAULT_TOKEN_LIFETIME_S = 3600.0


@dataclass(frozen=True, slots=True)
class BasicCredentials:
    """A user name and password sent as HTTP basic authentication."""

    username: str
    password: str = field(repr=False)

    def auth(self, clock: Callable[[], float] = time.monotonic) -> httpx.Auth:
        """The httpx authentication for these credentials."""
        return httpx.BasicAuth(self.username, self.password)


@dataclass(frozen=True, slots=True)
class OAuthClientCredentials:
    """An OAuth2 client-credentials grant (RFC 6749 section 4.4).

    ``client_auth`` is ``"body"`` (client_secret_post, what Microsoft Entra ID expects) or
    ``"basic"`` (client_secret_basic, what Oracle IDCS and SAP BTP expect).
    """

    token_url: str
    client_id: str
    client_secret: str = field(repr=False)
    scope: str | None = None
    client_auth: str = "body"

    def auth(self, clock: Callable[[], float] = time.monotonic) -> httpx.Auth:
        """The httpx authentication for these credentials."""
        return OAuthClientAuth(self, clock=clock)


Credentials = BasicCredentials | OAuthClientCredentials


class OAuthClientAuth(httpx.Auth):
    """Bearer tokens from a client-credentials grant: cached until expiry, renewed once on 401."""

    requires_response_body = True

    def __init__(
        self, credentials: OAuthClientCredentials, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        if credentials.client_auth not in {"body", "basic"}:
            raise ValueError("client_auth must be 'body' or 'basic'")
        self.credentials = credentials
        self._clock = clock
        self._lock = threading.Lock()
        self._token: str | None = None
        self._expires_at = 0.0
        self.tokens_fetched = 0

    def _valid_token(self) -> str | None:
        with self._lock:
            if self._token is not None and self._clock() < self._expires_at - EARLY_REFRESH_S:
                return self._token
            return None

    def invalidate(self) -> None:
        """Forget the cached token, so the next request fetches a new one."""
        with self._lock:
            self._token = None

    def _token_request(self) -> httpx.Request:
        creds = self.credentials
        form = {"grant_type": "client_credentials"}
        if creds.scope:
            form["scope"] = creds.scope
        headers = {"Accept": "application/json"}
        if creds.client_auth == "basic":
            basic = httpx.BasicAuth(creds.client_id, creds.client_secret)
            request = httpx.Request("POST", creds.token_url, data=form, headers=headers)
            return next(basic.auth_flow(request))
        form |= {"client_id": creds.client_id, "client_secret": creds.client_secret}
        return httpx.Request("POST", creds.token_url, data=form, headers=headers)

    def _store(self, response: httpx.Response) -> str:
        if response.status_code != 200:
            # The token endpoint's own error text (RFC 6749 section 5.2) names the problem.
            detail = _oauth_error(response)
            if response.status_code in {429, 500, 502, 503, 504}:
                raise ErpRetryableError(
                    f"token endpoint unavailable: {detail}", status=response.status_code
                )
            raise ErpAuthError(f"token request refused: {detail}", status=response.status_code)
        try:
            body = response.json()
            token = str(body["access_token"])
            lifetime = float(body.get("expires_in", DEFAULT_TOKEN_LIFETIME_S))
        except (ValueError, KeyError, TypeError) as exc:
            raise ErpAuthError("token endpoint answered without a usable access_token") from exc
        with self._lock:
            self._token = token
            self._expires_at = self._clock() + lifetime
            self.tokens_fetched += 1
        return token

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        """Attach a bearer token; on 401 fetch a fresh one and send the request once more."""
        token = self._valid_token()
        if token is None:
            token = self._store((yield self._token_request()))
        request.headers["Authorization"] = f"Bearer {token}"
        response = yield request
        if response.status_code == 401:
            self.invalidate()
            token = self._store((yield self._token_request()))
            request.headers["Authorization"] = f"Bearer {token}"
            yield request


def _oauth_error(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return f"HTTP {response.status_code}"
    if isinstance(body, dict):
        parts = [str(body.get(key)) for key in ("error", "error_description") if body.get(key)]
        if parts:
            return ": ".join(parts)[:300]
    return f"HTTP {response.status_code}"
