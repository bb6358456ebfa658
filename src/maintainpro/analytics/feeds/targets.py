"""Push targets from the settings: validated specs (``Settings.feed_targets``, TOML
``[[feed_targets]]``) and the webhook streams and Power BI clients built from them.

Secrets never sit in the settings: a spec names the environment variable holding each one
(``secret_env``, ``client_secret_env``), read when the targets are built. Error messages name
fields and variables, never values. A target restricted to sites (``sites = [1]``) gets only
those sites' events: the row-level security of ``filters`` with the target as the user.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Annotated, Any, Literal

import httpx
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, model_validator
from pydantic_core import ErrorDetails

from maintainpro.analytics.feeds import powerbi, webhook
from maintainpro.analytics.feeds.events import EVENT_TYPES, EventType
from maintainpro.analytics.feeds.filters import FeedFilter
from maintainpro.analytics.feeds.push import PushTarget
from maintainpro.config import ConfigurationError, Settings
from maintainpro.supply.erp.auth import OAuthClientAuth, OAuthClientCredentials
from maintainpro.supply.erp.http import RetryPolicy

Name = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,63}$")]
EnvName = Annotated[str, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,127}$")]
Url = Annotated[str, Field(pattern=r"^https?://[^\s]+$", max_length=500)]
PowerBiId = Annotated[str, Field(pattern=r"^[A-Za-z0-9-]{1,64}$")]
# A tenant is a GUID or a domain (contoso.onmicrosoft.com).
TenantId = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9.-]{0,252}$")]
TableName = Annotated[str, Field(pattern=r"^[A-Za-z0-9_ -]{1,100}$")]


class _TargetSpec(BaseModel):
    """Fields every push target has."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    name: Name
    sites: list[int] | None = Field(default=None, min_length=1, max_length=100)
    max_attempts: int = Field(default=8, ge=1, le=100)
    timeout_s: float = Field(default=30.0, gt=0, le=300)

    def restricted_to(self) -> frozenset[int] | None:
        """The target's row-level security: its sites, or None for every site."""
        return frozenset(self.sites) if self.sites else None

    def retry(self) -> RetryPolicy:
        """The back-off between attempts of one batch."""
        return RetryPolicy(max_attempts=self.max_attempts, base_delay_s=1.0, max_delay_s=60.0)


class WebhookTargetSpec(_TargetSpec):
    """A generic webhook stream (see ``webhook``)."""

    kind: Literal["webhook"]
    url: Url
    secret_env: EnvName
    types: list[EventType] | None = Field(default=None, min_length=1)
    batch_size: int = Field(default=webhook.BATCH_SIZE, ge=1, le=10_000)
    flush_interval_s: float = Field(default=webhook.FLUSH_INTERVAL_S, gt=0, le=3600)
    max_buffered_events: int = Field(default=10_000, ge=1, le=1_000_000)

    @model_validator(mode="after")
    def _room_for_a_batch(self) -> WebhookTargetSpec:
        if self.max_buffered_events < self.batch_size:
            raise ValueError("max_buffered_events must hold at least one batch")
        return self


class PowerBiTargetSpec(_TargetSpec):
    """A Power BI push dataset (see ``powerbi``)."""

    kind: Literal["powerbi"]
    group_id: PowerBiId
    dataset_id: PowerBiId
    tables: dict[EventType, TableName] = Field(min_length=1)
    tenant_id: TenantId
    client_id: PowerBiId
    client_secret_env: EnvName
    authority: Url = powerbi.AUTHORITY
    api_url: Url = powerbi.API_URL
    scope: str = Field(default=powerbi.SCOPE, max_length=300)
    flush_interval_s: float = Field(default=1.0, gt=0, le=3600)
    max_rows_per_request: int = Field(default=powerbi.MAX_ROWS_PER_REQUEST, ge=1, le=10_000)
    max_requests_per_minute: int = Field(default=powerbi.MAX_REQUESTS_PER_MINUTE, ge=1, le=120)
    max_rows_per_hour: int = Field(default=powerbi.MAX_ROWS_PER_HOUR, ge=1, le=1_000_000)
    max_buffered_rows: int = Field(default=100_000, ge=1, le=1_000_000)


FeedTargetSpec = Annotated[WebhookTargetSpec | PowerBiTargetSpec, Field(discriminator="kind")]


_SPEC: TypeAdapter[WebhookTargetSpec | PowerBiTargetSpec] = TypeAdapter(FeedTargetSpec)
_KINDS = frozenset({"webhook", "powerbi"})


def _field(error: ErrorDetails) -> str:
    """The field an error is about: its location after the kind it was checked as."""
    if error["type"].startswith("union_tag"):
        return "kind"
    loc = error["loc"]
    if loc[:1] and loc[0] in _KINDS:
        loc = loc[1:]
    return ".".join(str(part) for part in loc) or "(entry)"


def parse_targets(raw: list[dict[str, Any]]) -> list[WebhookTargetSpec | PowerBiTargetSpec]:
    """Validate the configured targets; ConfigurationError names the entry and fields to fix."""
    specs: list[WebhookTargetSpec | PowerBiTargetSpec] = []
    for index, item in enumerate(raw):
        label = str(item.get("name", f"#{index + 1}"))[:64] if isinstance(item, dict) else "?"
        try:
            specs.append(_SPEC.validate_python(item))
        except ValidationError as exc:
            # A location starts with the kind it was checked as; the field after it is the news.
            fields = sorted({_field(e) for e in exc.errors()})
            raise ConfigurationError(f"feed target {label}: invalid {', '.join(fields)}") from None
    names = [s.name for s in specs]
    if len(set(names)) != len(names):
        raise ConfigurationError("feed target names must be unique")
    return specs


def _secret(environ: Mapping[str, str], variable: str, name: str) -> str:
    value = environ.get(variable, "")
    if not value:
        raise ConfigurationError(
            f"feed target {name}: the environment variable {variable} is not set"
        )
    return value


def build_target(
    spec: WebhookTargetSpec | PowerBiTargetSpec,
    *,
    environ: Mapping[str, str] | None = None,
    transport: httpx.AsyncBaseTransport | None = None,
    **timing: Any,
) -> PushTarget[Any]:
    """The push target of a spec; ``timing`` (clock, sleep, now, rng) is for tests."""
    env = os.environ if environ is None else environ
    if isinstance(spec, WebhookTargetSpec):
        types = frozenset(spec.types or EVENT_TYPES)
        secret = _secret(env, spec.secret_env, spec.name)
        return webhook.WebhookStream(
            spec.name,
            spec.url,
            FeedFilter(types=types, sites=None, scope=spec.restricted_to()),
            secret=secret,
            client=httpx.AsyncClient(timeout=spec.timeout_s, transport=transport),
            batch_size=spec.batch_size,
            flush_interval_s=spec.flush_interval_s,
            max_buffered=spec.max_buffered_events,
            retry=spec.retry(),
            **timing,
        )
    credentials = OAuthClientCredentials(
        token_url=powerbi.token_url(spec.authority, spec.tenant_id),
        client_id=spec.client_id,
        client_secret=_secret(env, spec.client_secret_env, spec.name),
        scope=spec.scope,
        client_auth="body",
    )
    auth_clock = timing.get("clock")
    return powerbi.PowerBiPush(
        spec.name,
        FeedFilter(types=frozenset(spec.tables), sites=None, scope=spec.restricted_to()),
        group_id=spec.group_id,
        dataset_id=spec.dataset_id,
        tables=spec.tables,
        client=httpx.AsyncClient(timeout=spec.timeout_s, transport=transport),
        auth=OAuthClientAuth(credentials, clock=auth_clock) if auth_clock else credentials.auth(),
        api_url=spec.api_url,
        flush_interval_s=spec.flush_interval_s,
        max_rows_per_request=spec.max_rows_per_request,
        max_requests_per_minute=spec.max_requests_per_minute,
        max_rows_per_hour=spec.max_rows_per_hour,
        max_buffered=spec.max_buffered_rows,
        retry=spec.retry(),
        **timing,
    )


def build_targets(
    settings: Settings, *, environ: Mapping[str, str] | None = None
) -> list[PushTarget[Any]]:
    """Every configured push target, built; ConfigurationError when one is misconfigured."""
    return [build_target(spec, environ=environ) for spec in parse_targets(settings.feed_targets)]
