"""Edge agents: registration, the configuration the hub pushes to them, and what they report.

The configuration message (GET /edge-agents/{key}/config) is the same bytes the hub publishes
retained on ``edge/{key}/config``. Pulling it needs an API token with devices:read: agents that
pull are given a token of a read-only user, so no second authentication scheme is needed.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Response, status
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from sqlalchemy import select

from maintainpro.api.deps import SessionDep, SettingsDep, require
from maintainpro.api.fields import Name
from maintainpro.api.pagination import Page, WindowDep, paginate
from maintainpro.api.problems import Problem
from maintainpro.config import Settings
from maintainpro.core.assets import Asset
from maintainpro.core.users import Permission
from maintainpro.iot.connectors.mqtt import MqttConfigError, MqttOptions
from maintainpro.iot.devices import Device
from maintainpro.iot.edge.config import (
    CONFIG_FORMAT,
    EdgeSettings,
    config_digest,
    validation_text,
)
from maintainpro.iot.edge.publisher import (
    PublishError,
    config_message,
    config_state,
    publish_config,
    store_config,
)
from maintainpro.iot.edge_agents import EdgeAgent
from maintainpro.iot.registry import DeviceKey, DeviceSpec

log = logging.getLogger(__name__)
router = APIRouter(tags=["edge agents"])
Reader = Depends(require(Permission.DEVICES_READ))
Writer = Depends(require(Permission.DEVICES_WRITE))


class EdgeAgentIn(BaseModel):
    """A new edge agent."""

    model_config = ConfigDict(extra="forbid")
    key: DeviceKey
    name: Name
    enabled: bool = True


class EdgeAgentPatch(BaseModel):
    """Changes to an edge agent."""

    model_config = ConfigDict(extra="forbid")
    name: Name | None = None
    enabled: bool | None = None


class EdgeConfigIn(BaseModel):
    """The devices (and agent-wide settings) an agent is to serve."""

    model_config = ConfigDict(extra="forbid")
    devices: Annotated[list[DeviceSpec], Field(max_length=1000)]
    settings: EdgeSettings = Field(default_factory=EdgeSettings)


class EdgeAgentOut(BaseModel):
    """An edge agent with its configuration state and last report (credentials never shown)."""

    id: int
    key: str
    name: str
    enabled: bool
    config_version: int
    applied_version: int | None
    config_state: str
    config_error: str | None
    config_error_at: dt.datetime | None
    devices: list[str]
    last_heartbeat_at: dt.datetime | None
    queue_depth: int | None
    oldest_unsent_at: dt.datetime | None
    dropped_total: int
    device_states: dict[str, Any]
    has_credentials: bool


class PushOut(BaseModel):
    """Outcome of a configuration push."""

    version: int
    published: bool
    publish_error: str | None
    unregistered_devices: list[str]
    agent: EdgeAgentOut


def edge_agent_out(agent: EdgeAgent) -> EdgeAgentOut:
    """Render an edge agent for the API."""
    devices = (agent.config or {}).get("devices") or []
    return EdgeAgentOut(
        id=agent.id,
        key=agent.key,
        name=agent.name,
        enabled=agent.enabled,
        config_version=agent.config_version or 0,
        applied_version=agent.applied_version,
        config_state=config_state(agent),
        config_error=agent.config_error,
        config_error_at=agent.config_error_at,
        devices=[str(d.get("key")) for d in devices if isinstance(d, dict)],
        last_heartbeat_at=agent.last_heartbeat_at,
        queue_depth=agent.queue_depth,
        oldest_unsent_at=agent.oldest_unsent_at,
        dropped_total=agent.dropped_total or 0,
        device_states=agent.device_states or {},
        has_credentials=agent.credentials is not None,
    )


def mqtt_options(settings: Settings) -> MqttOptions | None:
    """The hub's broker options, or None when MQTT is not configured."""
    if not settings.mqtt_url:
        return None
    try:
        return MqttOptions.from_settings(settings)
    except MqttConfigError:
        return None


def _agent(db: SessionDep, key: str) -> EdgeAgent:
    agent = db.scalar(select(EdgeAgent).where(EdgeAgent.key == key))
    if agent is None:
        raise Problem(404, f"edge agent {key!r} does not exist")
    return agent


@router.get("/edge-agents", dependencies=[Reader])
def list_edge_agents(db: SessionDep, page: WindowDep) -> Page[EdgeAgentOut]:
    """Every edge agent with its configuration state."""
    rows, total = paginate(db, select(EdgeAgent).order_by(EdgeAgent.key), page)
    return Page[EdgeAgentOut](
        items=[edge_agent_out(a) for a in rows], total=total, limit=page.limit, offset=page.offset
    )


@router.post("/edge-agents", status_code=status.HTTP_201_CREATED, dependencies=[Writer])
def create_edge_agent(db: SessionDep, body: EdgeAgentIn) -> EdgeAgentOut:
    """Register an edge agent (its configuration comes with PUT .../config)."""
    if db.scalar(select(EdgeAgent.id).where(EdgeAgent.key == body.key)) is not None:
        raise Problem(409, f"edge agent {body.key!r} exists already")
    agent = EdgeAgent(
        key=body.key, name=body.name, enabled=body.enabled, config={}, config_version=0
    )
    db.add(agent)
    db.commit()
    return edge_agent_out(agent)


@router.get("/edge-agents/{key}", dependencies=[Reader])
def get_edge_agent(db: SessionDep, key: str) -> EdgeAgentOut:
    """One edge agent."""
    return edge_agent_out(_agent(db, key))


@router.get("/edge-agents/{key}/status", dependencies=[Reader])
def edge_agent_status(db: SessionDep, key: str) -> EdgeAgentOut:
    """Configuration versions (wanted, applied), the last rejection, heartbeat and queue state."""
    return edge_agent_out(_agent(db, key))


@router.patch("/edge-agents/{key}", dependencies=[Writer])
def update_edge_agent(db: SessionDep, key: str, body: EdgeAgentPatch) -> EdgeAgentOut:
    """Rename, enable or disable an edge agent."""
    agent = _agent(db, key)
    if body.name is not None:
        agent.name = body.name
    if body.enabled is not None:
        agent.enabled = body.enabled
    db.commit()
    return edge_agent_out(agent)


@router.delete("/edge-agents/{key}", status_code=status.HTTP_204_NO_CONTENT, dependencies=[Writer])
def delete_edge_agent(db: SessionDep, settings: SettingsDep, key: str) -> None:
    """Forget an edge agent and clear its retained configuration on the broker."""
    agent = _agent(db, key)
    had_config = config_message(agent) is not None
    db.delete(agent)
    db.commit()
    options = mqtt_options(settings)
    if options is not None and had_config:
        # An empty retained message removes the old one; the agent ignores empty payloads.
        try:
            publish_config(options, key, b"")
        except PublishError as exc:
            log.warning(
                "retained edge configuration not cleared", extra={"agent": key, "error": str(exc)}
            )


def _publish(settings: Settings, agent: EdgeAgent) -> tuple[bool, str | None]:
    options = mqtt_options(settings)
    message = config_message(agent)
    if options is None or message is None:
        return False, "MQTT is not configured: the agent pulls its configuration over HTTPS"
    try:
        publish_config(options, agent.key, message)
    except PublishError as exc:
        return False, str(exc)
    return True, None


@router.put("/edge-agents/{key}/config", dependencies=[Writer])
def put_edge_config(db: SessionDep, settings: SettingsDep, key: str, body: EdgeConfigIn) -> PushOut:
    """Store the agent's configuration as a new version and publish it (retained, QoS 1).

    The version is committed before it is published; when the broker cannot be reached the
    answer says so, and POST .../config/publish sends the stored version again.
    """
    agent = _agent(db, key)
    for spec in body.devices:
        if spec.credentials is not None:
            raise Problem(
                422,
                f"device {spec.key}: credentials are not distributed in an edge configuration; "
                "provision them on the agent",
            )
    tags = {s.asset for s in body.devices if s.asset is not None}
    if tags:
        known = set(db.scalars(select(Asset.tag).where(Asset.tag.in_(tags))).all())
        missing = sorted(tags - known)
        if missing:
            raise Problem(422, f"asset {missing[0]!r} does not exist")
    try:
        config = store_config(db, agent.key, body.devices, body.settings)
    except ValidationError as exc:
        raise Problem(422, validation_text(exc)) from exc
    db.commit()
    keys = [d.key for d in config.devices]
    registered = set(db.scalars(select(Device.key).where(Device.key.in_(keys))).all())
    published, error = _publish(settings, agent)
    return PushOut(
        version=config.version,
        published=published,
        publish_error=error,
        unregistered_devices=[k for k in keys if k not in registered],
        agent=edge_agent_out(agent),
    )


@router.post("/edge-agents/{key}/config/publish", dependencies=[Writer])
def republish_edge_config(db: SessionDep, settings: SettingsDep, key: str) -> PushOut:
    """Publish the stored configuration again (after a broker outage or a lost retained message)."""
    agent = _agent(db, key)
    if config_message(agent) is None:
        raise Problem(409, f"edge agent {key!r} has no configuration yet")
    published, error = _publish(settings, agent)
    return PushOut(
        version=agent.config_version,
        published=published,
        publish_error=error,
        unregistered_devices=[],
        agent=edge_agent_out(agent),
    )


@router.get("/edge-agents/{key}/config", dependencies=[Reader])
def get_edge_config(db: SessionDep, key: str) -> Response:
    """The configuration message, byte for byte what is published on ``edge/{key}/config``."""
    agent = _agent(db, key)
    message = config_message(agent)
    if message is None:
        raise Problem(404, f"edge agent {key!r} has no configuration yet")
    return Response(
        message,
        media_type="application/json",
        headers={
            "ETag": f'"{config_digest(agent.config)}"',
            "X-Config-Version": str(agent.config_version),
            "X-Config-Format": CONFIG_FORMAT,
            "Cache-Control": "no-store",
        },
    )
