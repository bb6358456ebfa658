"""The generic webhook stream against a local receiver that checks the published batches:
1,000 events or 5 seconds, HMAC-SHA256 signatures, retries that neither lose nor double an
event, and a bounded buffer while the target is down."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

from analytics.feeds.feed_world import events
from analytics.feeds.powerbi_service import VirtualClock
from analytics.feeds.webhook_receiver import WebhookReceiver
from maintainpro.analytics.feeds.targets import WebhookTargetSpec, build_target
from maintainpro.analytics.feeds.webhook import WebhookStream
from supply.erp.fakes import free_port, serve

SECRET = "feed-secret-for-tests-0123456789"
SECRET_ENV = "FEED_WEBHOOK_SECRET"


class Sleeper:
    """The stream's sleep: records each wait, lets virtual time pass, and can be held shut."""

    def __init__(self, clock: VirtualClock) -> None:
        self.clock = clock
        self.waits: list[float] = []
        self.gate = asyncio.Event()
        self.gate.set()
        self.waiting = asyncio.Event()

    async def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)
        self.clock.advance(seconds)
        self.waiting.set()
        await self.gate.wait()


@pytest.fixture
def clock() -> VirtualClock:
    """Virtual time for the stream."""
    return VirtualClock()


@pytest.fixture
def sleeper(clock: VirtualClock) -> Sleeper:
    """The stream's sleep on virtual time."""
    return Sleeper(clock)


@pytest.fixture
def receiver() -> Iterator[tuple[WebhookReceiver, str]]:
    """The local receiver and its URL."""
    hook = WebhookReceiver(SECRET)
    with serve(hook.app()) as url:
        yield hook, f"{url}/hooks/feed"


@pytest.fixture
async def make_stream(
    receiver: tuple[WebhookReceiver, str], clock: VirtualClock, sleeper: Sleeper
) -> AsyncIterator[Any]:
    """Build webhook streams from specs (to the receiver unless told otherwise)."""
    _, url = receiver
    made: list[WebhookStream] = []

    def make(secret: str = SECRET, **overrides: Any) -> WebhookStream:
        spec = WebhookTargetSpec.model_validate(
            {
                "kind": "webhook",
                "name": "ops-dashboard",
                "url": url,
                "secret_env": SECRET_ENV,
                **overrides,
            }
        )
        target = build_target(spec, environ={SECRET_ENV: secret}, clock=clock, sleep=sleeper)
        assert isinstance(target, WebhookStream)
        made.append(target)
        return target

    yield make
    for target in made:
        await target.aclose()


async def test_batches_leave_at_1000_events_or_after_5_seconds(
    receiver: tuple[WebhookReceiver, str], make_stream: Any, clock: VirtualClock
) -> None:
    hook, _ = receiver
    stream: WebhookStream = make_stream()
    sent = events(2_500)
    for event in sent:
        stream.offer(event)
    assert await stream.drain() == 2
    clock.advance(4.9)
    assert await stream.drain() == 0
    clock.advance(0.1)
    assert await stream.drain() == 1
    assert [len(batch) for batch in hook.accepted.values()] == [1000, 1000, 500]
    assert hook.event_ids() == [e.id for e in sent]
    first = next(iter(hook.accepted.values()))[0]
    assert first == sent[0].as_dict()
    assert hook.refused == []
    status = stream.status()
    assert (status.events_sent, status.batches_sent, status.buffered) == (2_500, 3, 0)


async def test_a_quiet_stream_sends_what_it_has_after_5_seconds(
    receiver: tuple[WebhookReceiver, str], make_stream: Any, clock: VirtualClock
) -> None:
    hook, _ = receiver
    stream: WebhookStream = make_stream()
    for event in events(3):
        stream.offer(event)
    clock.advance(4.999)
    assert await stream.drain() == 0
    clock.advance(0.001)
    assert await stream.drain() == 1
    assert hook.event_ids() == [1, 2, 3]


async def test_the_receiver_refuses_a_wrong_signature_and_the_batch_is_not_retried(
    receiver: tuple[WebhookReceiver, str], make_stream: Any, clock: VirtualClock
) -> None:
    hook, _ = receiver
    stream: WebhookStream = make_stream(secret="another-secret-entirely-0123456789")
    for event in events(3):
        stream.offer(event)
    clock.advance(5.0)
    await stream.drain()
    assert hook.refused == ["bad signature"]
    assert hook.accepted == {}
    assert stream.status().dropped == {"rejected_http_401": 3}


async def test_a_retry_after_500_sends_the_same_batch_and_no_event_twice(
    receiver: tuple[WebhookReceiver, str], make_stream: Any, sleeper: Sleeper
) -> None:
    hook, _ = receiver
    hook.fail_next = [500]
    stream: WebhookStream = make_stream()
    sent = events(1_000)
    for event in sent:
        stream.offer(event)
    assert await stream.drain() == 1
    (first_try, second_try) = hook.attempts
    assert first_try == second_try  # same batch id, same bytes, same signature
    assert hook.event_ids() == [e.id for e in sent]
    assert hook.duplicates == 0
    assert len(sleeper.waits) == 1
    assert sleeper.waits[0] > 0
    status = stream.status()
    assert (status.requests, status.retries, status.errors, status.events_sent) == (2, 1, 1, 1000)


async def test_while_the_target_is_down_the_buffer_stays_bounded_and_nothing_doubles(
    receiver: tuple[WebhookReceiver, str], make_stream: Any, sleeper: Sleeper
) -> None:
    hook, _ = receiver
    hook.fail_next = [503]
    stream: WebhookStream = make_stream(max_buffered_events=2_000)
    for event in events(1_000):
        stream.offer(event)
    sleeper.gate.clear()
    sending = asyncio.create_task(stream.drain())
    await asyncio.wait_for(sleeper.waiting.wait(), 5)  # the first batch failed and waits
    for event in events(5_000, first_id=1_001):
        stream.offer(event)
        assert stream.buffer.held <= 2_000
    status = stream.status()
    assert (status.in_flight, status.buffered) == (1_000, 2_000)
    assert status.dropped == {"buffer_full": 3_000}
    assert status.state == "retrying"
    sleeper.gate.set()
    assert await asyncio.wait_for(sending, 10) == 3
    expected = [*range(1, 1_001), *range(4_001, 6_001)]
    assert hook.event_ids() == expected
    assert hook.duplicates == 0
    status = stream.status()
    assert status.events_sent + sum(status.dropped.values()) == 6_000


async def test_an_unreachable_target_gives_batches_up_after_its_attempts(
    make_stream: Any, sleeper: Sleeper
) -> None:
    stream: WebhookStream = make_stream(
        url=f"http://127.0.0.1:{free_port()}/hooks/feed", max_attempts=2
    )
    for event in events(1_500):
        stream.offer(event)
    assert await stream.drain() == 1
    status = stream.status()
    assert status.dropped == {"gave_up": 1_000}
    assert status.buffered == 500
    assert status.last_error is not None
    assert status.last_error.startswith("ConnectError")
    assert len(sleeper.waits) == 1


async def test_a_target_restricted_to_a_site_and_types_gets_only_those(
    receiver: tuple[WebhookReceiver, str], make_stream: Any, clock: VirtualClock
) -> None:
    hook, _ = receiver
    stream: WebhookStream = make_stream(sites=[1], types=["alert"])
    for event in (
        *events(2, event_type="alert", site_id=1),
        *events(2, first_id=10, event_type="alert", site_id=2),
        *events(2, first_id=20, event_type="alert", site_id=None),
        *events(2, first_id=30, event_type="reading", site_id=1),
    ):
        stream.offer(event)
    clock.advance(5.0)
    await stream.drain()
    assert hook.event_ids() == [1, 2]


async def test_the_running_stream_sends_on_its_own(
    receiver: tuple[WebhookReceiver, str],
) -> None:
    hook, url = receiver
    spec = WebhookTargetSpec.model_validate(
        {
            "kind": "webhook",
            "name": "ops",
            "url": url,
            "secret_env": SECRET_ENV,
            "flush_interval_s": 0.05,
        }
    )
    stream = build_target(spec, environ={SECRET_ENV: SECRET})
    running = asyncio.create_task(stream.run())
    try:
        for event in events(3):
            stream.offer(event)
        assert await asyncio.to_thread(hook.took_a_batch.wait, 5)
    finally:
        running.cancel()
        await asyncio.gather(running, return_exceptions=True)
    assert hook.event_ids() == [1, 2, 3]
