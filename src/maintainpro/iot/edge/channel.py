"""The MQTT side of remote configuration, shared by the hub and the agent: topics, ack payloads
and a paho client built from MqttOptions."""

from __future__ import annotations

import json
import ssl
import threading
from dataclasses import dataclass
from typing import Any, Final, Literal

from paho.mqtt.client import Client, ConnectFlags
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from maintainpro.iot.connectors.mqtt import MqttOptions

__all__ = [
    "ACK_FILTER",
    "ConfigAck",
    "ack_topic",
    "agent_of_ack_topic",
    "build_client",
    "config_topic",
    "connect_and_wait",
]

ACK_FILTER: Final = "edge/+/config/ack"
"""What the hub subscribes to for acknowledgements of every agent."""
MAX_ERROR_CHARS: Final = 2000
MAX_ACK_BYTES: Final = 8 * 1024


def config_topic(agent_key: str) -> str:
    """The retained configuration topic of one agent."""
    return f"edge/{agent_key}/config"


def ack_topic(agent_key: str) -> str:
    """Where an agent acknowledges (or rejects) a configuration."""
    return f"edge/{agent_key}/config/ack"


def agent_of_ack_topic(topic: str) -> str | None:
    """The agent key of an ack topic, or None for anything else."""
    parts = topic.split("/")
    if len(parts) == 4 and parts[0] == "edge" and parts[2:] == ["config", "ack"] and parts[1]:
        return parts[1]
    return None


@dataclass(frozen=True)
class ConfigAck:
    """An agent's answer to a configuration: applied, or rejected with the reason."""

    version: int | None
    status: Literal["applied", "rejected"]
    error: str | None = None

    def encode(self) -> bytes:
        """The ack as JSON bytes."""
        error = self.error[:MAX_ERROR_CHARS] if self.error is not None else None
        return json.dumps({"version": self.version, "status": self.status, "error": error}).encode()

    @classmethod
    def decode(cls, data: bytes) -> ConfigAck:
        """Parse an ack; raise ValueError for anything malformed."""
        if len(data) > MAX_ACK_BYTES:
            raise ValueError("ack too large")
        body: Any = json.loads(data)
        if not isinstance(body, dict):
            raise ValueError("ack is not a JSON object")
        version = body.get("version")
        status = body.get("status")
        error = body.get("error")
        if version is not None and (not isinstance(version, int) or isinstance(version, bool)):
            raise ValueError("ack version is not an integer")
        if status not in ("applied", "rejected"):
            raise ValueError("ack status must be applied or rejected")
        if error is not None and not isinstance(error, str):
            raise ValueError("ack error is not a string")
        if status == "applied" and version is None:
            raise ValueError("an applied ack names its version")
        return cls(version, status, error[:MAX_ERROR_CHARS] if error else error)


def build_client(options: MqttOptions, client_id: str, *, persistent: bool) -> Client:
    """A paho client with the options' protocol, credentials and TLS (not connected)."""
    v5 = options.protocol == "5"
    client = Client(
        CallbackAPIVersion.VERSION2,
        client_id=client_id,
        clean_session=None if v5 else not persistent,
        protocol=MQTTProtocolVersion.MQTTv5 if v5 else MQTTProtocolVersion.MQTTv311,
    )
    # A callback raising would otherwise unwind through paho's loop and end its thread.
    client.suppress_exceptions = True
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
    return client


def connect_properties(options: MqttOptions, *, persistent: bool) -> Properties | None:
    """MQTT 5 CONNECT properties: keep a persistent session while the client is away."""
    if options.protocol != "5":
        return None
    properties = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
    properties.SessionExpiryInterval = options.session_expiry_s if persistent else 0
    return properties


def connect_async(client: Client, options: MqttOptions, *, persistent: bool) -> None:
    """Start connecting in paho's own thread; paho reconnects by itself after a loss."""
    # paho takes whole seconds; below one it would never wait at all.
    client.reconnect_delay_set(
        max(1, round(options.reconnect_first_s)), max(1, round(options.reconnect_cap_s))
    )
    if options.protocol == "5":
        client.connect_async(
            options.host,
            options.port,
            options.keepalive_s,
            clean_start=not persistent,
            properties=connect_properties(options, persistent=persistent),
        )
    else:
        client.connect_async(options.host, options.port, options.keepalive_s)
    client.loop_start()


def connect_and_wait(client: Client, options: MqttOptions, timeout: float) -> None:
    """Connect a clean-session client, start its loop and wait for a successful CONNACK."""
    done = threading.Event()
    outcome: list[str] = []

    def on_connect(
        client: Client,
        userdata: Any,
        flags: ConnectFlags,
        reason: ReasonCode,
        properties: Properties | None,
    ) -> None:
        if reason.is_failure:
            outcome.append(f"broker refused the connection: {reason}")
        done.set()

    client.on_connect = on_connect
    if options.protocol == "5":
        client.connect(
            options.host,
            options.port,
            options.keepalive_s,
            clean_start=True,
            properties=connect_properties(options, persistent=False),
        )
    else:
        client.connect(options.host, options.port, options.keepalive_s)
    client.loop_start()
    if not done.wait(timeout):
        raise TimeoutError(f"no CONNACK from {options.host}:{options.port} within {timeout} s")
    if outcome:
        raise ConnectionError(outcome[0])
