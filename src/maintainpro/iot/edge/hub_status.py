"""Hub side of the edge heartbeat: subscribe to ``edge/+/status`` and update EdgeAgent rows.

Only agents registered (and enabled) on the hub are updated; a status for an unknown key is
ignored, so a broker account cannot create agents. Statuses are retained on the broker, so the
hub learns every agent's last state when it (re)subscribes; the agent's own timestamp in the
message (never later than its arrival) becomes ``last_heartbeat_at``, so an old retained status
does not make a silent agent look alive, and a status older than the stored one is ignored.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import ssl
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any

from paho.mqtt.client import Client, ConnectFlags, MQTTMessage
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from maintainpro.core.audit import SYSTEM, set_actor
from maintainpro.core.db import transaction
from maintainpro.iot.connectors.mqtt import MqttOptions
from maintainpro.iot.edge_agents import EdgeAgent

if TYPE_CHECKING:
    from maintainpro.config import Settings

__all__ = [
    "STATUS_FILTER",
    "EdgeAgentView",
    "EdgeStatusSubscriber",
    "StatusReport",
    "build_edge_status",
    "edge_agents",
    "record_status",
]

log = logging.getLogger(__name__)

STATUS_FILTER = "edge/+/status"
_MAX_PAYLOAD = 256 * 1024
_MAX_DEVICES = 1000
# An agent reports every status_interval_s (10 s by default); three missed reports is silence.
SILENT_AFTER = dt.timedelta(seconds=60)


class StatusReport(BaseModel):
    """The part of an agent's status message the hub keeps."""

    model_config = ConfigDict(extra="ignore")
    agent: str
    online: bool = True
    at: AwareDatetime | None = None
    queue_depth: Annotated[int, Field(ge=0)] = 0
    oldest_unsent_at: AwareDatetime | None = None
    dropped_total: Annotated[int, Field(ge=0)] = 0
    devices: dict[str, dict[str, Any]] = Field(default_factory=dict)


def record_status(
    session: Session, key: str, report: StatusReport, received_at: dt.datetime
) -> bool:
    """Apply one status to the agent's row; False when unknown, disabled, stale or a goodbye."""
    if report.agent != key or not report.online or report.at is None:
        return False
    agent = session.scalar(select(EdgeAgent).where(EdgeAgent.key == key))
    if agent is None or not agent.enabled:
        return False
    at = min(report.at.astimezone(dt.UTC), received_at)
    if agent.last_heartbeat_at is not None and at <= agent.last_heartbeat_at:
        return False
    agent.last_heartbeat_at = at
    agent.queue_depth = report.queue_depth
    agent.oldest_unsent_at = (
        report.oldest_unsent_at.astimezone(dt.UTC) if report.oldest_unsent_at else None
    )
    agent.dropped_total = report.dropped_total
    agent.device_states = dict(list(report.devices.items())[:_MAX_DEVICES])
    return True


def _agent_of(topic: str) -> str | None:
    parts = topic.split("/")
    if len(parts) != 3 or parts[0] != "edge" or parts[2] != "status" or not parts[1]:
        return None
    return parts[1]


class EdgeStatusSubscriber:
    """A service (run by the hub's supervisor) keeping EdgeAgent rows up to date."""

    name = "edge-status"

    def __init__(self, options: MqttOptions, factory: sessionmaker[Session]) -> None:
        """Prepare; nothing connects before run()."""
        self.options = options
        self.factory = factory
        self.applied = 0
        self.ignored = 0

    def _client(self, loop: asyncio.AbstractEventLoop, inbox: asyncio.Queue[Any]) -> Client:
        options = self.options
        v5 = options.protocol == "5"
        client = Client(
            CallbackAPIVersion.VERSION2,
            # Its own id: the hub's ingest session must not be taken over by this client.
            client_id=f"{options.client_id}-edge-status",
            clean_session=None if v5 else True,
            protocol=MQTTProtocolVersion.MQTTv5 if v5 else MQTTProtocolVersion.MQTTv311,
        )
        client.suppress_exceptions = True
        client.reconnect_delay_set(1, 30)
        if options.username is not None:
            client.username_pw_set(options.username, options.password)
        if options.tls:
            context = ssl.create_default_context(
                cafile=str(options.ca_file) if options.ca_file else None
            )
            if options.cert_file is not None:
                context.load_cert_chain(
                    str(options.cert_file), str(options.key_file) if options.key_file else None
                )
            client.tls_set_context(context)

        def on_connect(
            client: Client,
            userdata: Any,
            flags: ConnectFlags,
            reason: ReasonCode,
            properties: Properties | None,
        ) -> None:
            if not reason.is_failure:
                # A status is a snapshot that the next one replaces: QoS 0 is enough.
                client.subscribe(STATUS_FILTER, qos=0)

        def on_message(client: Client, userdata: Any, message: MQTTMessage) -> None:
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(inbox.put_nowait, (message.topic, message.payload))

        client.on_connect = on_connect
        client.on_message = on_message
        return client

    async def run(self) -> None:
        """Receive statuses and write them until cancelled; paho reconnects by itself."""
        loop = asyncio.get_running_loop()
        inbox: asyncio.Queue[tuple[str, bytes]] = asyncio.Queue()
        client = self._client(loop, inbox)
        client.connect_async(self.options.host, self.options.port, self.options.keepalive_s)
        client.loop_start()
        try:
            while True:
                topic, payload = await inbox.get()
                await asyncio.to_thread(self.handle, topic, payload)
        finally:
            with contextlib.suppress(Exception):
                client.disconnect()
            await asyncio.to_thread(client.loop_stop)

    def handle(self, topic: str, payload: bytes) -> bool:
        """Validate one status message and store it; False when ignored."""
        key = _agent_of(topic)
        if key is None or len(payload) > _MAX_PAYLOAD:
            self.ignored += 1
            return False
        try:
            report = StatusReport.model_validate_json(payload)
        except ValidationError as exc:
            self.ignored += 1
            log.warning("edge status refused", extra={"agent": key, "error": str(exc)[:300]})
            return False
        if not report.online:
            log.info("edge agent went offline", extra={"agent": key})
        with transaction(self.factory) as session:
            set_actor(session, SYSTEM)
            applied = record_status(session, key, report, dt.datetime.now(dt.UTC))
        if applied:
            self.applied += 1
        else:
            self.ignored += 1
        return applied


def build_edge_status(
    settings: Settings, factory: sessionmaker[Session]
) -> EdgeStatusSubscriber | None:
    """The subscriber on the hub's broker, or None when the hub has no MQTT."""
    if not settings.mqtt_url:
        return None
    return EdgeStatusSubscriber(MqttOptions.from_settings(settings), factory)


@dataclass(frozen=True)
class EdgeAgentView:
    """An agent as the devices page shows it."""

    key: str
    name: str
    enabled: bool
    last_heartbeat_at: dt.datetime | None
    heartbeat_age: str
    silent: bool
    queue_depth: int | None
    oldest_unsent_at: dt.datetime | None
    oldest_unsent_age: str
    dropped_total: int
    devices_connected: int
    devices_total: int
    config_version: int
    applied_version: int | None


def _age(since: dt.datetime | None, now: dt.datetime) -> str:
    if since is None:
        return "—"
    seconds = max(0, int((now - since).total_seconds()))
    if seconds < 120:
        return f"{seconds} s"
    if seconds < 7200:
        return f"{seconds // 60} min"
    if seconds < 172_800:
        return f"{seconds // 3600} h"
    return f"{seconds // 86_400} d"


def edge_agents(session: Session, now: dt.datetime | None = None) -> list[EdgeAgentView]:
    """Every registered agent for the devices page, by key, with ages worked out."""
    now = now or dt.datetime.now(dt.UTC)
    views = []
    for agent in session.scalars(select(EdgeAgent).order_by(EdgeAgent.key)).all():
        states = agent.device_states or {}
        heartbeat = agent.last_heartbeat_at
        views.append(
            EdgeAgentView(
                key=agent.key,
                name=agent.name,
                enabled=agent.enabled,
                last_heartbeat_at=heartbeat,
                heartbeat_age=_age(heartbeat, now),
                silent=heartbeat is None or now - heartbeat > SILENT_AFTER,
                queue_depth=agent.queue_depth,
                oldest_unsent_at=agent.oldest_unsent_at,
                oldest_unsent_age=_age(agent.oldest_unsent_at, now),
                dropped_total=agent.dropped_total or 0,
                devices_connected=sum(
                    1 for s in states.values() if isinstance(s, dict) and s.get("connected")
                ),
                devices_total=len(states),
                config_version=agent.config_version or 0,
                applied_version=agent.applied_version,
            )
        )
    return views
