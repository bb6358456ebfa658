"""Push targets from the settings, and how the feeds are wired into the runtime."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import sessionmaker

from maintainpro.analytics.feeds.powerbi import PowerBiPush, token_url
from maintainpro.analytics.feeds.service import build_feeds
from maintainpro.analytics.feeds.targets import build_targets, parse_targets
from maintainpro.analytics.feeds.webhook import WebhookStream
from maintainpro.config import ConfigurationError, Settings
from maintainpro.runtime import Supervisor

WEBHOOK: dict[str, Any] = {
    "kind": "webhook",
    "name": "ops-dashboard",
    "url": "https://hooks.example.com/maintainpro",
    "secret_env": "OPS_HOOK_SECRET",
    "sites": [1],
}
POWERBI: dict[str, Any] = {
    "kind": "powerbi",
    "name": "plant-live",
    "group_id": "f089354e-8366-4e18-aea3-4cb4a3a50b48",
    "dataset_id": "cfafbeb1-8037-4d0c-896e-a46fb27ff229",
    "tables": {"reading": "Readings", "alert": "Alerts"},
    "tenant_id": "contoso.onmicrosoft.com",
    "client_id": "9a6c1ab5-4b31-4f6e-8d3a-0f1e2d3c4b5a",
    "client_secret_env": "PBI_SECRET",
}
ENV = {"OPS_HOOK_SECRET": "hook-secret-value-123", "PBI_SECRET": "pbi-secret-value-456"}


async def test_targets_are_built_from_the_settings() -> None:
    settings = Settings(feed_targets=[WEBHOOK, POWERBI])
    hook, powerbi = build_targets(settings, environ=ENV)
    try:
        assert isinstance(hook, WebhookStream)
        assert (hook.name, hook.secret, hook.buffer.max_items, hook.buffer.max_age_s) == (
            "ops-dashboard",
            "hook-secret-value-123",
            1000,
            5.0,
        )
        assert hook.filter.scope == frozenset({1})
        assert hook.filter.types == frozenset({"reading", "alert", "work_order"})
        assert isinstance(powerbi, PowerBiPush)
        assert powerbi.filter.types == frozenset({"reading", "alert"})
        assert powerbi.filter.scope is None
        assert powerbi.rows_url("Alerts") == (
            "https://api.powerbi.com/v1.0/myorg/groups/f089354e-8366-4e18-aea3-4cb4a3a50b48"
            "/datasets/cfafbeb1-8037-4d0c-896e-a46fb27ff229/tables/Alerts/rows"
        )
        assert (powerbi.requests_window.limit, powerbi.buffer.max_items) == (120, 10_000)
    finally:
        await hook.aclose()
        await powerbi.aclose()
    assert token_url("https://login.microsoftonline.com/", "contoso.onmicrosoft.com") == (
        "https://login.microsoftonline.com/contoso.onmicrosoft.com/oauth2/v2.0/token"
    )


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ({**WEBHOOK, "batch_size": 0}, "feed target ops-dashboard: invalid batch_size"),
        ({**POWERBI, "max_rows_per_request": 20_000}, "invalid max_rows_per_request"),
        ({**POWERBI, "max_requests_per_minute": 500}, "invalid max_requests_per_minute"),
        ({**POWERBI, "tables": {"invoice": "Invoices"}}, "invalid tables.invoice"),
        ({**WEBHOOK, "kind": "kafka"}, "feed target ops-dashboard: invalid kind"),
        ({**WEBHOOK, "url": "ftp://example.com"}, "invalid url"),
        ({**WEBHOOK, "secret": "inline"}, "invalid secret"),
        ({**WEBHOOK, "max_buffered_events": 10}, "invalid (entry)"),
    ],
)
def test_a_misconfigured_target_is_refused_with_the_field_named(
    entry: dict[str, Any], message: str
) -> None:
    with pytest.raises(ConfigurationError, match=message.replace("(", r"\(").replace(")", r"\)")):
        parse_targets([entry])


def test_names_are_unique_and_secrets_must_be_in_the_environment() -> None:
    with pytest.raises(ConfigurationError, match="names must be unique"):
        parse_targets([WEBHOOK, {**POWERBI, "name": "ops-dashboard"}])
    settings = Settings(feed_targets=[WEBHOOK])
    with pytest.raises(ConfigurationError) as missing:
        build_targets(settings, environ={})
    assert str(missing.value) == (
        "feed target ops-dashboard: the environment variable OPS_HOOK_SECRET is not set"
    )


async def test_the_feeds_join_the_outbox_last_and_listen_to_ingest() -> None:
    supervisor = Supervisor()
    settings = Settings(feed_targets=[WEBHOOK])
    feeds = build_feeds(settings, sessionmaker(), supervisor)

    def earlier(topic: str, payload: Any) -> None:
        """Another subscriber of alerts."""

    handlers: dict[str, list[Any]] = {"alert.raised": [earlier], "part.demand": [earlier]}
    listeners: list[Any] = []
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("OPS_HOOK_SECRET", "hook-secret-value-123")
        feeds.connect(supervisor, settings, outbox_handlers=handlers, reading_listeners=listeners)
    try:
        assert handlers["alert.raised"][0] is earlier
        assert len(handlers["alert.raised"]) == 2
        assert handlers["part.demand"] == [earlier]
        assert set(handlers) >= {"work_order.opened", "work_order.status_changed", "alert.cleared"}
        assert listeners == [feeds.stream.on_stored]
        assert [t.name for t in feeds.targets] == ["ops-dashboard"]
        assert feeds.stream.sinks == feeds.targets
        assert [s.name for s in supervisor.statuses] == ["feeds", "feed-target-ops-dashboard"]
    finally:
        for target in feeds.targets:
            await target.aclose()


def test_the_app_serves_feeds_without_background_jobs(client: TestClient) -> None:
    supervisor = client.app.state.supervisor  # type: ignore[attr-defined]
    assert "feeds" in [s.name for s in supervisor.statuses]
    assert client.get("/api/v1/stream").status_code == 401
