"""The Power BI push-dataset client against a local service that enforces the published API:
path, bearer token, {"rows": [...]} of at most 10,000 rows, 120 requests per minute."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

from analytics.feeds.feed_world import events
from analytics.feeds.powerbi_service import (
    DATASET,
    GROUP,
    TABLES,
    TENANT,
    PowerBiService,
    VirtualClock,
)
from maintainpro.analytics.feeds.events import make_event
from maintainpro.analytics.feeds.powerbi import SCOPE, PowerBiPush, event_row
from maintainpro.analytics.feeds.targets import PowerBiTargetSpec, build_target
from supply.erp.fakes import CLIENT_ID, CLIENT_SECRET, serve

SECRET_ENV = "PBI_CLIENT_SECRET"


class Sleeper:
    """The client's sleep: records each wait and lets that much virtual time pass at once."""

    def __init__(self, clock: VirtualClock) -> None:
        self.clock = clock
        self.waits: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)
        self.clock.advance(seconds)
        await asyncio.sleep(0)


@pytest.fixture
def clock() -> VirtualClock:
    """Virtual time shared by the client and the service."""
    return VirtualClock()


@pytest.fixture
def service(clock: VirtualClock) -> Iterator[tuple[PowerBiService, str]]:
    """The local Power BI service and its base URL."""
    powerbi = PowerBiService(clock)
    with serve(powerbi.app()) as url:
        yield powerbi, url


@pytest.fixture
def sleeper(clock: VirtualClock) -> Sleeper:
    """The client's sleep on virtual time."""
    return Sleeper(clock)


@pytest.fixture
async def make_client(
    service: tuple[PowerBiService, str], clock: VirtualClock, sleeper: Sleeper
) -> AsyncIterator[Any]:
    """Build clients from specs pointing at the local service; closed after the test."""
    _, url = service
    made: list[PowerBiPush] = []

    def make(**overrides: Any) -> PowerBiPush:
        spec = PowerBiTargetSpec.model_validate(
            {
                "kind": "powerbi",
                "name": "plant-live",
                "group_id": GROUP,
                "dataset_id": DATASET,
                "tables": TABLES,
                "tenant_id": TENANT,
                "client_id": CLIENT_ID,
                "client_secret_env": SECRET_ENV,
                "authority": url,
                "api_url": f"{url}/v1.0/myorg",
                **overrides,
            }
        )
        target = build_target(spec, environ={SECRET_ENV: CLIENT_SECRET}, clock=clock, sleep=sleeper)
        assert isinstance(target, PowerBiPush)
        made.append(target)
        return target

    yield make
    for target in made:
        await target.aclose()


async def test_rows_reach_the_table_in_batches_of_at_most_10000(
    service: tuple[PowerBiService, str], clock: VirtualClock, make_client: Any
) -> None:
    powerbi, _ = service
    client: PowerBiPush = make_client()
    sent = events(25_000)
    for event in sent:
        client.offer(event)
    assert await client.drain() == 2  # two full batches leave at once
    assert await client.drain() == 0  # the rest waits for the flush interval
    clock.advance(1.0)
    assert await client.drain() == 1
    assert powerbi.batches == [("Readings", 10_000), ("Readings", 10_000), ("Readings", 5_000)]
    received = powerbi.rows["Readings"]
    assert [r["event_id"] for r in received] == [e.id for e in sent]
    assert received[42] == event_row(sent[42])
    assert received[42] == {
        "event_id": 43,
        "ts": sent[42].ts.isoformat(),
        "site_id": 1,
        "asset_id": 2,
        "device_id": 3,
        "sensor_id": 7,
        "sensor_key": "temp",
        "unit": "°C",
        "value": 20.043,
        "quality": "good",
    }
    # One token for all three requests, asked for as the Entra ID v2.0 endpoint expects.
    assert powerbi.token_forms == [
        {
            "grant_type": "client_credentials",
            "scope": SCOPE,
            "client_id": CLIENT_ID,
            "client_secret": CLIENT_SECRET,
        }
    ]
    status = client.status()
    assert (status.events_sent, status.batches_sent, status.requests) == (25_000, 3, 3)
    assert (status.errors, status.dropped, status.state) == (0, {}, "ok")
    assert status.last_success_at is not None


async def test_the_client_keeps_to_120_requests_per_minute(
    service: tuple[PowerBiService, str], make_client: Any, sleeper: Sleeper
) -> None:
    powerbi, _ = service
    client: PowerBiPush = make_client(max_rows_per_request=10)
    for event in events(1_250):
        client.offer(event)
    assert await client.drain() == 125
    assert powerbi.throttled == 0
    assert len(powerbi.rows["Readings"]) == 1_250
    times = powerbi.accepted_at
    assert all(later - first >= 60.0 for first, later in zip(times, times[120:], strict=False))
    assert sum(sleeper.waits) >= 60.0  # the client waited for the window, the server never had to


async def test_a_429_waits_as_told_without_using_up_attempts(
    service: tuple[PowerBiService, str], make_client: Any, sleeper: Sleeper
) -> None:
    powerbi, _ = service
    powerbi.limit_per_minute = 5  # stricter than the published limit the client keeps to
    client: PowerBiPush = make_client(max_rows_per_request=10, max_attempts=1)
    sent = events(80)
    for event in sent:
        client.offer(event)
    assert await client.drain() == 8
    assert powerbi.throttled >= 1
    assert [r["event_id"] for r in powerbi.rows["Readings"]] == [e.id for e in sent]
    status = client.status()
    assert status.throttled == powerbi.throttled
    assert status.dropped == {}
    assert status.state == "ok"
    # Each 429 said how long to wait (whole seconds, at most a minute), and the client did.
    assert sleeper.waits
    assert all(1 <= w <= 60 and w == int(w) for w in sleeper.waits)


async def test_server_errors_are_retried_with_back_off_and_rows_arrive_once(
    service: tuple[PowerBiService, str], make_client: Any, sleeper: Sleeper, clock: VirtualClock
) -> None:
    powerbi, _ = service
    powerbi.fail_next = [503, 500]
    client: PowerBiPush = make_client(max_attempts=3)
    sent = events(30)
    for event in sent:
        client.offer(event)
    clock.advance(1.0)
    assert await client.drain() == 1
    assert [r["event_id"] for r in powerbi.rows["Readings"]] == [e.id for e in sent]
    assert len(sleeper.waits) == 2
    assert all(w > 0 for w in sleeper.waits)
    status = client.status()
    assert (status.requests, status.retries, status.errors) == (3, 2, 2)
    assert status.last_error == "HTTP 500"


async def test_a_batch_is_given_up_after_its_attempts_and_counted(
    service: tuple[PowerBiService, str], make_client: Any, clock: VirtualClock
) -> None:
    powerbi, _ = service
    powerbi.fail_next = [503] * 3 + [400]
    client: PowerBiPush = make_client(max_attempts=3)
    for event in events(30):
        client.offer(event)
    clock.advance(1.0)
    await client.drain()
    for event in events(5, first_id=100):
        client.offer(event)
    clock.advance(1.0)
    await client.drain()
    status = client.status()
    assert status.dropped == {"gave_up": 30, "rejected_http_400": 5}
    assert status.state == "failing"
    assert "Readings" not in powerbi.rows


async def test_an_expired_token_is_renewed(
    service: tuple[PowerBiService, str], make_client: Any, clock: VirtualClock
) -> None:
    powerbi, _ = service
    client: PowerBiPush = make_client()
    for event in events(3):
        client.offer(event)
    clock.advance(1.0)
    await client.drain()
    powerbi.issuer.expire_all()
    for event in events(3, first_id=4):
        client.offer(event)
    clock.advance(1.0)
    await client.drain()
    assert len(powerbi.token_forms) == 2
    assert len(powerbi.rows["Readings"]) == 6
    assert client.status().errors == 0


async def test_a_site_restricted_target_gets_its_sites_rows_only(
    service: tuple[PowerBiService, str], make_client: Any, clock: VirtualClock
) -> None:
    powerbi, _ = service
    client: PowerBiPush = make_client(
        sites=[1], tables={"alert": "Alerts", "work_order": "WorkOrders"}
    )
    offered = [
        *events(2, event_type="reading", site_id=1),
        *events(2, first_id=10, event_type="alert", site_id=1),
        *events(2, first_id=20, event_type="alert", site_id=2),
        *events(1, first_id=30, event_type="alert", site_id=None),
        *events(2, first_id=40, event_type="work_order", site_id=1),
    ]
    # A title longer than the 4,000 characters a push-dataset string may hold.
    first_alert = offered[2]
    offered[2] = make_event(
        first_alert.id,
        "alert",
        first_alert.site_id,
        first_alert.ts,
        {**first_alert.data, "title": "x" * 5_000},
    )
    for event in offered:
        client.offer(event)
    clock.advance(1.0)
    assert await client.drain() == 2
    assert [r["event_id"] for r in powerbi.rows["Alerts"]] == [10, 11]
    assert [r["event_id"] for r in powerbi.rows["WorkOrders"]] == [40, 41]
    assert "Readings" not in powerbi.rows
    alert_row = powerbi.rows["Alerts"][0]
    assert alert_row["title"] == "x" * 4_000
    assert alert_row["event"] == "raised"
    assert alert_row["site_id"] == 1
    assert powerbi.rows["WorkOrders"][0]["origin"] == "manual"
