"""Hub side of remote configuration: store and push an agent's configuration, record its acks.

Decisions:

* ``push_config`` commits the new version *before* publishing it. Publishing first could put a
  version on the broker that a failed commit never stored; the next push would reuse that number
  and the agent would ignore it as not newer. A version stored but not published (broker away)
  is harmless: ``publish_config`` sends it again, and agents can pull it over HTTPS.
* The configuration is published retained at QoS 1, so an agent that connects later (or restarts)
  receives the newest one at once. Each publish is its own short clean-session connection: pushes
  are rare, and the hub's ingest connection must not depend on them.
* The ack listener keeps a persistent session, so acknowledgements sent while the hub was down
  are delivered when it returns. A rejection is stored as ``config_error`` prefixed with the
  rejected version ("version 7: ..."), because the table has no column of its own for it.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import threading
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from paho.mqtt.client import Client, MQTTMessage
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from maintainpro.core.audit import SYSTEM, set_actor
from maintainpro.core.db import utcnow
from maintainpro.iot.connectors.mqtt import MqttOptions
from maintainpro.iot.edge.channel import (
    ACK_FILTER,
    ConfigAck,
    agent_of_ack_topic,
    build_client,
    config_topic,
    connect_and_wait,
    connect_async,
)
from maintainpro.iot.edge.config import EdgeConfig, EdgeSettings, encode_config
from maintainpro.iot.edge_agents import EdgeAgent
from maintainpro.iot.registry import DeviceSpec

if TYPE_CHECKING:
    from maintainpro.config import Settings

__all__ = [
    "ConfigAckListener",
    "ConfigStatus",
    "EdgeAgentNotFound",
    "PublishError",
    "ack_listener",
    "config_message",
    "config_state",
    "config_statuses",
    "publish_config",
    "push_config",
    "record_ack",
    "store_config",
]

log = logging.getLogger(__name__)

PUBLISH_TIMEOUT_S = 10.0


class EdgeAgentNotFound(LookupError):
    """No edge agent has that key."""


class PublishError(RuntimeError):
    """The configuration was stored but could not be handed to the broker."""


def store_config(
    session: Session,
    agent_key: str,
    devices: Sequence[DeviceSpec],
    settings: EdgeSettings | None = None,
    now: dt.datetime | None = None,
) -> EdgeConfig:
    """Bump the agent's config_version and store the new configuration (flushed, not committed)."""
    agent = session.scalar(select(EdgeAgent).where(EdgeAgent.key == agent_key).with_for_update())
    if agent is None:
        raise EdgeAgentNotFound(f"edge agent {agent_key!r} does not exist")
    # Validated as a whole (unique device keys, no credentials) before anything changes.
    config = EdgeConfig(
        agent=agent.key,
        version=(agent.config_version or 0) + 1,
        issued_at=now or utcnow(),
        devices=list(devices),
        settings=settings or EdgeSettings(),
    )
    agent.config = config.payload()
    agent.config_version = config.version
    session.flush()
    return config


def config_state(agent: EdgeAgent) -> str:
    """none, applied, pending (not acknowledged yet) or rejected."""
    if not agent.config_version:
        return "none"
    if agent.config_error is not None and (agent.applied_version or 0) < agent.config_version:
        return "rejected"
    if agent.applied_version == agent.config_version:
        return "applied"
    return "pending"


@dataclass(frozen=True)
class ConfigStatus:
    """Where an agent's configuration stands, for pages."""

    state: str
    config_version: int
    applied_version: int | None
    error: str | None
    error_at: dt.datetime | None


def config_statuses(session: Session) -> dict[str, ConfigStatus]:
    """The configuration state of every agent, by key."""
    return {
        agent.key: ConfigStatus(
            config_state(agent),
            agent.config_version or 0,
            agent.applied_version,
            agent.config_error,
            agent.config_error_at,
        )
        for agent in session.scalars(select(EdgeAgent))
    }


def config_message(agent: EdgeAgent) -> bytes | None:
    """The message of the agent's current configuration (None before the first push)."""
    if not agent.config or not agent.config_version:
        return None
    return encode_config(agent.config)


def publish_config(
    options: MqttOptions, agent_key: str, message: bytes, timeout: float = PUBLISH_TIMEOUT_S
) -> None:
    """Publish a configuration retained at QoS 1 and wait for the broker's PUBACK (blocking)."""
    client = build_client(
        options, f"{options.client_id}-config-{uuid.uuid4().hex[:8]}", persistent=False
    )
    try:
        connect_and_wait(client, options, timeout)
        info = client.publish(config_topic(agent_key), message, qos=1, retain=True)
        info.wait_for_publish(timeout)
        if not info.is_published():
            raise PublishError(f"the broker did not acknowledge the configuration in {timeout} s")
    except PublishError:
        raise
    except Exception as exc:
        raise PublishError(
            f"cannot publish to {options.host}:{options.port}: {type(exc).__name__}: {exc}"
        ) from exc
    finally:
        try:
            client.disconnect()
        finally:
            client.loop_stop()


def push_config(
    session: Session,
    agent_key: str,
    devices: Sequence[DeviceSpec],
    options: MqttOptions | None,
    settings: EdgeSettings | None = None,
) -> int:
    """Store a new configuration version, commit it, then publish it; return the version.

    Without MQTT options the version is only stored (agents pull it). Raises PublishError after
    the commit when the broker cannot be reached: the version exists and can be republished.
    """
    config = store_config(session, agent_key, devices, settings)
    session.commit()
    if options is not None:
        publish_config(options, agent_key, encode_config(config))
    return config.version


def record_ack(
    session: Session, agent_key: str, ack: ConfigAck, now: dt.datetime | None = None
) -> bool:
    """Record an agent's ack on its row (flushed, not committed); False if it changed nothing."""
    agent = session.scalar(select(EdgeAgent).where(EdgeAgent.key == agent_key))
    if agent is None:
        return False
    applied = agent.applied_version or 0
    if ack.status == "applied":
        assert ack.version is not None  # ConfigAck.decode guarantees it
        changed = False
        if ack.version > applied:
            agent.applied_version = ack.version
            changed = True
        # The agent runs the newest configuration: an older rejection no longer matters.
        if ack.version >= agent.config_version and agent.config_error is not None:
            agent.config_error = None
            agent.config_error_at = None
            changed = True
        session.flush()
        return changed
    if ack.version is not None and ack.version <= applied:
        return False  # a late rejection of something older than what already runs
    which = f"version {ack.version}" if ack.version is not None else "unreadable version"
    agent.config_error = f"{which}: {ack.error or 'rejected without a reason'}"
    agent.config_error_at = now or utcnow()
    session.flush()
    return True


def ack_listener(settings: Settings, factory: sessionmaker[Session]) -> ConfigAckListener | None:
    """The hub's ack listener, or None when MQTT is not configured."""
    if not settings.mqtt_url:
        return None
    return ConfigAckListener(factory, MqttOptions.from_settings(settings))


class ConfigAckListener:
    """Subscribes the hub to ``edge/+/config/ack`` and records every ack (a supervised service)."""

    def __init__(self, factory: sessionmaker[Session], options: MqttOptions) -> None:
        self.factory = factory
        self.options = options
        self.client_id = f"{options.client_id}-edge-acks"
        self.received = 0
        self.refused = 0
        self.subscribed = threading.Event()

    async def run(self) -> None:
        """Run until cancelled (the paho loop runs in paho's own thread)."""
        client = self.start()
        try:
            await asyncio.Event().wait()
        finally:
            self.stop(client)

    def start(self) -> Client:
        """Connect and subscribe in the background; returns the client for stop()."""
        client = build_client(self.options, self.client_id, persistent=True)
        client.on_connect = self._on_connect
        client.on_subscribe = self._on_subscribe
        client.on_message = self._on_message
        connect_async(client, self.options, persistent=True)
        return client

    def stop(self, client: Client) -> None:
        """Disconnect and end paho's thread."""
        try:
            client.disconnect()
        finally:
            client.loop_stop()
            self.subscribed.clear()

    def _on_connect(
        self, client: Client, userdata: Any, flags: Any, reason: Any, props: Any
    ) -> None:
        if reason.is_failure:
            log.warning("edge ack listener refused by the broker", extra={"reason": str(reason)})
            return
        # Subscribed again on every connection: a session the broker dropped has none.
        client.subscribe(ACK_FILTER, qos=1)

    def _on_subscribe(
        self, client: Client, userdata: Any, mid: int, codes: Any, props: Any
    ) -> None:
        self.subscribed.set()

    def _on_message(self, client: Client, userdata: Any, message: MQTTMessage) -> None:
        agent_key = agent_of_ack_topic(message.topic)
        try:
            if agent_key is None:
                raise ValueError("not an ack topic")
            ack = ConfigAck.decode(bytes(message.payload))
        except ValueError as exc:
            self.refused += 1
            log.warning(
                "edge config ack refused", extra={"topic": message.topic, "error": str(exc)}
            )
            return
        try:
            with self.factory() as session, session.begin():
                set_actor(session, SYSTEM)
                record_ack(session, agent_key, ack)
            self.received += 1
        except Exception:
            # paho acknowledges the message after this returns; the agent re-acks a retained
            # configuration whenever it reconnects, so a lost ack is repaired then.
            log.exception("edge config ack not recorded", extra={"agent": agent_key})
