"""The shared HTTP layer: back-off, Retry-After, error classes, exact JSON, safe paging links.

httpx.MockTransport plays the server here: these are decisions about single responses, where a
socket adds nothing (the connector tests run against real local servers).
"""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Callable
from decimal import Decimal

import httpx
import pytest

from maintainpro.supply.erp.auth import BasicCredentials, OAuthClientAuth, OAuthClientCredentials
from maintainpro.supply.erp.base import (
    ErpAuthError,
    ErpConflictError,
    ErpOrderStatus,
    ErpPermanentError,
    ErpRetryableError,
    ErpStatusUpdate,
    ErpValidationError,
    next_watermark,
    push_once,
)
from maintainpro.supply.erp.http import (
    Connection,
    ErpHttp,
    HttpOptions,
    RetryPolicy,
    dumps,
    retry_after_seconds,
)
from maintainpro.supply.erp.odata import parse_v2_date, parse_v2_time, v2_date_value, v4_error

Handler = Callable[[httpx.Request], httpx.Response]


def client(handler: Handler, sleeps: list[float], attempts: int = 4) -> ErpHttp:
    """An ErpHttp talking to a scripted handler."""
    connection = Connection(
        base_url="https://erp.example.test/api",
        credentials=BasicCredentials("u", "p"),
        retry=RetryPolicy(max_attempts=attempts, base_delay_s=1.0, max_retry_after_s=60),
    )
    options = HttpOptions(
        sleep=sleeps.append, rng=random.Random(1), transport=httpx.MockTransport(handler)
    )
    return ErpHttp("test", connection, error_reader=v4_error, options=options)


def scripted(*responses: httpx.Response | Exception) -> tuple[Handler, list[httpx.Request]]:
    """A handler answering with the given responses (or raising the given errors) in turn."""
    queue = list(responses)
    seen: list[httpx.Request] = []

    def handle(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        item = queue.pop(0)
        if isinstance(item, Exception):
            raise item
        return item

    return handle, seen


def test_backoff_grows_exponentially_with_jitter_and_is_capped() -> None:
    policy = RetryPolicy(base_delay_s=1.0, max_delay_s=8.0)
    rng = random.Random(3)
    for attempt, (low, high) in enumerate([(0.5, 1), (1, 2), (2, 4), (4, 8), (4, 8)], start=1):
        delays = {policy.backoff(attempt, rng) for _ in range(50)}
        assert all(low <= d <= high for d in delays)
        assert len(delays) > 1  # jittered, not fixed


def test_retry_after_reads_seconds_and_http_dates() -> None:
    now = dt.datetime(2026, 3, 2, 8, 0, tzinfo=dt.UTC)
    assert retry_after_seconds("120") == 120.0
    assert retry_after_seconds("Mon, 02 Mar 2026 08:00:30 GMT", now) == 30.0
    assert retry_after_seconds("Mon, 02 Mar 2026 07:00:00 GMT", now) == 0.0
    assert retry_after_seconds("soon") is None
    assert retry_after_seconds(None) is None


def test_json_keeps_decimals_exact() -> None:
    body = {"q": Decimal("0.1"), "p": Decimal("12.500"), "n": 3, "s": 'a"b', "l": [True, None]}
    assert dumps(body) == '{"q":0.1,"p":12.500,"n":3,"s":"a\\"b","l":[true,null]}'
    with pytest.raises(TypeError):
        dumps({"price": 0.1})
    with pytest.raises(ValueError, match="finite"):
        dumps(Decimal("NaN"))


def test_reads_are_retried_on_5xx_and_timeouts() -> None:
    handler, seen = scripted(
        httpx.Response(502),
        httpx.ReadTimeout("slow"),
        httpx.Response(200, json={"value": [1.5]}),
    )
    sleeps: list[float] = []
    http = client(handler, sleeps)
    assert http.json("GET", "things") == {"value": [Decimal("1.5")]}
    assert len(seen) == 3
    assert 0.5 <= sleeps[0] <= 1.0
    assert 1.0 <= sleeps[1] <= 2.0


def test_a_create_is_not_resent_after_a_timeout_but_reported_ambiguous() -> None:
    handler, seen = scripted(httpx.ReadTimeout("slow"))
    http = client(handler, [])
    with pytest.raises(ErpRetryableError) as caught:
        http.json("POST", "orders", body={"n": 1})
    assert caught.value.ambiguous
    assert len(seen) == 1


def test_a_create_that_never_connected_is_resent() -> None:
    handler, seen = scripted(httpx.ConnectError("refused"), httpx.Response(201, json={"id": "7"}))
    http = client(handler, [])
    assert http.json("POST", "orders", body={"n": 1}) == {"id": "7"}
    assert len(seen) == 2


def test_a_5xx_on_a_create_is_ambiguous_and_a_429_is_not() -> None:
    handler, _ = scripted(httpx.Response(500, json={"error": {"code": "X", "message": "boom"}}))
    with pytest.raises(ErpRetryableError) as caught:
        client(handler, []).json("POST", "orders", body={})
    assert caught.value.ambiguous
    assert caught.value.message == "boom"

    handler, seen = scripted(*[httpx.Response(429, headers={"Retry-After": "1"})] * 2)
    with pytest.raises(ErpRetryableError) as limited:
        client(handler, [], attempts=2).json("POST", "orders", body={})
    assert not limited.value.ambiguous
    assert limited.value.retry_after == 1.0
    assert len(seen) == 2


def test_a_retry_after_too_long_to_wait_in_process_is_handed_back() -> None:
    handler, seen = scripted(httpx.Response(503, headers={"Retry-After": "3600"}))
    sleeps: list[float] = []
    with pytest.raises(ErpRetryableError) as caught:
        client(handler, sleeps).json("GET", "things")
    assert caught.value.retry_after == 3600.0
    assert sleeps == []
    assert len(seen) == 1


@pytest.mark.parametrize(
    ("status", "error"),
    [
        (400, ErpValidationError),
        (422, ErpValidationError),
        (401, ErpAuthError),
        (403, ErpAuthError),
        (404, ErpPermanentError),
        (412, ErpConflictError),
    ],
)
def test_client_errors_are_permanent_and_carry_the_erp_message(
    status: int, error: type[ErpPermanentError]
) -> None:
    body = {"error": {"code": "E42", "message": "Field  X\\n is bad"}}
    handler, seen = scripted(httpx.Response(status, json=body))
    with pytest.raises(error) as caught:
        client(handler, []).json("GET", "things")
    assert not caught.value.retryable
    assert (caught.value.status, caught.value.code) == (status, "E42")
    assert "Field X" in caught.value.message
    assert len(seen) == 1


def test_next_links_to_another_host_are_refused() -> None:
    handler, _ = scripted()
    http = client(handler, [])
    assert (
        http.follow("/api/things?$skiptoken=2")
        == "https://erp.example.test/api/things?$skiptoken=2"
    )
    with pytest.raises(ErpPermanentError, match="another host"):
        http.follow("https://attacker.example.test/api/things")


def test_push_once_looks_again_only_after_an_ambiguous_failure() -> None:
    created: list[str] = []
    store: dict[str, str] = {}

    def create_landing_then_timing_out() -> str:
        store["PO-1"] = "ERP-9"
        created.append("PO-1")
        raise ErpRetryableError("timeout", ambiguous=True)

    assert push_once(lambda: store.get("PO-1"), create_landing_then_timing_out) == "ERP-9"
    assert push_once(lambda: store.get("PO-1"), create_landing_then_timing_out) == "ERP-9"
    assert created == ["PO-1"]

    def rate_limited() -> str:
        raise ErpRetryableError("slow down", retry_after=5)

    lookups: list[int] = []

    def find() -> None:
        lookups.append(1)

    with pytest.raises(ErpRetryableError):
        push_once(find, rate_limited)
    assert len(lookups) == 1


def test_watermark_is_the_latest_change_and_never_goes_back() -> None:
    since = dt.datetime(2026, 3, 2, tzinfo=dt.UTC)
    later = since + dt.timedelta(hours=2)
    update = ErpStatusUpdate("1", None, ErpOrderStatus.OPEN, "02", later)
    assert next_watermark(since) == since
    assert next_watermark(since, (update,)) == later
    assert next_watermark(later + dt.timedelta(days=1), (update,)) == later + dt.timedelta(days=1)


def test_odata_v2_dates_and_times() -> None:
    assert parse_v2_date("/Date(1492098664000+0000)/") == dt.datetime(
        2017, 4, 13, 15, 51, 4, tzinfo=dt.UTC
    )
    assert parse_v2_date("/Date(1473638400000)/") == dt.datetime(2016, 9, 12, tzinfo=dt.UTC)
    assert parse_v2_date("") is None
    assert v2_date_value(dt.date(2016, 9, 12)) == "/Date(1473638400000)/"
    assert parse_v2_time("PT14H05M09S") == dt.time(14, 5, 9)
    with pytest.raises(ValueError, match="not an OData v2 date"):
        parse_v2_date("2017-04-13")


def test_oauth_basic_client_auth_renews_once_on_401_then_gives_up() -> None:
    tokens = iter(["t1", "t2", "t3", "t4"])
    seen: list[httpx.Request] = []

    def handle(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if request.url.path == "/token":
            assert request.headers["authorization"] == "Basic Y2lkOnNlY3JldA=="  # cid:secret
            assert b"client_secret" not in request.content
            assert b"scope=urn%3Aerp%3Aapi" in request.content
            return httpx.Response(200, json={"access_token": next(tokens), "expires_in": "3599"})
        if request.headers["authorization"] == "Bearer t2":
            return httpx.Response(200, json={"ok": True})
        return httpx.Response(401)

    credentials = OAuthClientCredentials(
        token_url="https://login.example.test/token",
        client_id="cid",
        client_secret="secret",
        scope="urn:erp:api",
        client_auth="basic",
    )
    connection = Connection(base_url="https://erp.example.test/api", credentials=credentials)
    options = HttpOptions(sleep=[].append, transport=httpx.MockTransport(handle))
    http = ErpHttp("test", connection, error_reader=v4_error, options=options)

    assert http.json("GET", "things") == {"ok": True}  # t1 refused, t2 works
    assert http.json("GET", "things") == {"ok": True}  # t2 still cached
    assert [r.url.path for r in seen] == [
        "/token",
        "/api/things",
        "/token",
        "/api/things",
        "/api/things",
    ]

    seen.clear()
    assert isinstance(http.auth, OAuthClientAuth)
    http.auth.invalidate()  # t3 and t4 are refused: one renewal, then a permanent error
    with pytest.raises(ErpAuthError):
        http.json("GET", "things")
    assert [r.url.path for r in seen].count("/token") == 2
