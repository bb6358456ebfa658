"""Agent side of remote configuration: receive, validate, apply, persist and acknowledge.

The agent subscribes to its retained ``edge/{key}/config`` topic; the broker hands it the newest
configuration on every (re)connect. A configuration is applied only when its version is newer
than the one running, and is written to ``state_dir`` only after it was applied, so a restarted
agent starts with the last good configuration even while the hub is unreachable.

Decisions:

* Anything wrong (unreadable JSON, a wrong digest, a schema error, another agent's message, an
  ``apply`` that raises) is answered with a rejection naming the error; the running configuration
  stays. After a failed ``apply`` the last good configuration is applied again, because the
  failure may have left the agent half-way.
* The same version again (the retained message after a reconnect) is not re-applied but
  acknowledged again, so an ack the hub missed is repaired.
* ``apply`` runs on paho's network thread, one message at a time, so configurations are applied
  in order and never concurrently.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, Literal

import httpx
from paho.mqtt.client import Client, MQTTMessage

from maintainpro.iot.connectors.mqtt import MqttOptions
from maintainpro.iot.edge.channel import (
    ConfigAck,
    ack_topic,
    build_client,
    config_topic,
    connect_async,
)
from maintainpro.iot.edge.config import ConfigError, EdgeConfig, decode_config, encode_config

__all__ = ["STATE_FILE", "ConfigReceiver", "Outcome", "fetch_config", "load_last_good"]

log = logging.getLogger(__name__)

STATE_FILE: Final = "edge-config.json"


@dataclass(frozen=True)
class Outcome:
    """What the receiver did with one message."""

    action: Literal["applied", "rejected", "ignored", "reacknowledged"]
    version: int | None
    error: str | None = None


def load_last_good(state_dir: Path) -> EdgeConfig | None:
    """The persisted last good configuration, or None if there is none or it is unusable."""
    path = state_dir / STATE_FILE
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return None
    try:
        return decode_config(data)
    except ConfigError as exc:
        # A corrupt state file must not keep the agent from starting; the hub's retained
        # message (or a pull) brings the configuration back.
        log.error(
            "persisted edge configuration unusable", extra={"path": str(path), "error": str(exc)}
        )
        return None


def _persist(state_dir: Path, config: EdgeConfig) -> None:
    """Write the configuration atomically: a crash leaves the old file or the new, never half."""
    state_dir.mkdir(parents=True, exist_ok=True)
    target = state_dir / STATE_FILE
    temporary = state_dir / f".{STATE_FILE}.tmp"
    flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC
    descriptor = os.open(temporary, flags, 0o600)
    with os.fdopen(descriptor, "wb") as handle:
        handle.write(encode_config(config))
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, target)
    with contextlib.suppress(OSError):  # not every filesystem lets a directory be fsynced
        directory = os.open(state_dir, os.O_RDONLY)
        try:
            os.fsync(directory)
        finally:
            os.close(directory)


class ConfigReceiver:
    """Keeps an agent on the configuration the hub publishes for it."""

    def __init__(
        self,
        client_options: MqttOptions,
        agent_key: str,
        apply: Callable[[EdgeConfig], None],
        state_dir: Path,
    ) -> None:
        self.options = client_options
        self.agent_key = agent_key
        self.apply = apply
        self.state_dir = Path(state_dir)
        self.current: EdgeConfig | None = None
        self.last_outcome: Outcome | None = None
        self.subscribed = threading.Event()
        self._lock = threading.Lock()
        self._client: Client | None = None

    @property
    def applied_version(self) -> int:
        """The version running now (0 before any)."""
        return self.current.version if self.current is not None else 0

    def load(self) -> EdgeConfig | None:
        """Apply the persisted last good configuration, if there is one; return it."""
        config = load_last_good(self.state_dir)
        if config is None or config.agent != self.agent_key:
            return None
        with self._lock:
            try:
                self.apply(config)
            except Exception:
                log.exception("persisted edge configuration could not be applied")
                return None
            self.current = config
        log.info("edge configuration restored", extra={"version": config.version})
        return config

    def start(self) -> None:
        """Restore the last good configuration, then connect and subscribe in the background."""
        if self._client is not None:
            return
        self.load()
        # A client id of its own: sharing the uplink's would make the broker drop one of them.
        client = build_client(self.options, f"{self.options.client_id}-config", persistent=False)
        client.on_connect = self._on_connect
        client.on_subscribe = self._on_subscribe
        client.on_message = self._on_message
        self._client = client
        connect_async(client, self.options, persistent=False)

    def stop(self) -> None:
        """Disconnect and end paho's thread."""
        client, self._client = self._client, None
        if client is None:
            return
        try:
            client.disconnect()
        finally:
            client.loop_stop()
            self.subscribed.clear()

    def __enter__(self) -> ConfigReceiver:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def handle(self, payload: bytes) -> Outcome:
        """Process one configuration message (from MQTT or a pull); never raises."""
        with self._lock:
            outcome = self._handle(payload)
        self.last_outcome = outcome
        return outcome

    def offer(self, payload: bytes) -> Outcome:
        """Process a pulled message like a pushed one, acknowledging it when connected."""
        outcome = self.handle(payload)
        client = self._client
        if client is not None and client.is_connected():
            self._acknowledge(client, outcome)
        return outcome

    def _handle(self, payload: bytes) -> Outcome:
        try:
            config = decode_config(payload)
        except ConfigError as exc:
            return Outcome("rejected", exc.version, str(exc))
        if config.agent != self.agent_key:
            return Outcome(
                "rejected", config.version, f"the configuration is for agent {config.agent!r}"
            )
        if config.version < self.applied_version:
            return Outcome("ignored", config.version)
        if config.version == self.applied_version:
            return Outcome("reacknowledged", config.version)
        try:
            self.apply(config)
        except Exception as exc:
            log.exception("edge configuration not applied", extra={"version": config.version})
            self._restore()
            return Outcome("rejected", config.version, f"not applied: {type(exc).__name__}: {exc}")
        self.current = config
        try:
            _persist(self.state_dir, config)
        except OSError:
            # Running it is what matters; a restart before the next success starts older.
            log.exception("edge configuration applied but not persisted")
        log.info("edge configuration applied", extra={"version": config.version})
        return Outcome("applied", config.version)

    def _restore(self) -> None:
        if self.current is None:
            return
        try:
            self.apply(self.current)
        except Exception:
            log.exception("last good edge configuration could not be re-applied")

    def _acknowledge(self, client: Client, outcome: Outcome) -> None:
        if outcome.action in ("applied", "reacknowledged"):
            ack = ConfigAck(outcome.version, "applied")
        elif outcome.action == "rejected":
            ack = ConfigAck(outcome.version, "rejected", outcome.error)
        else:
            return
        client.publish(ack_topic(self.agent_key), ack.encode(), qos=1)

    def _on_connect(
        self, client: Client, userdata: Any, flags: Any, reason: Any, props: Any
    ) -> None:
        if reason.is_failure:
            log.warning("config receiver refused by the broker", extra={"reason": str(reason)})
            return
        client.subscribe(config_topic(self.agent_key), qos=1)

    def _on_subscribe(
        self, client: Client, userdata: Any, mid: int, codes: Any, props: Any
    ) -> None:
        self.subscribed.set()

    def _on_message(self, client: Client, userdata: Any, message: MQTTMessage) -> None:
        if not message.payload:
            return  # a cleared retained message: nothing to apply
        outcome = self.handle(bytes(message.payload))
        if outcome.action == "rejected":
            log.warning(
                "edge configuration rejected",
                extra={"version": outcome.version, "error": outcome.error},
            )
        self._acknowledge(client, outcome)


def fetch_config(
    base_url: str,
    agent_key: str,
    token: str,
    *,
    verify: bool | str = True,
    timeout: float = 10.0,
) -> bytes:
    """Pull the agent's configuration message over HTTPS (GET /api/v1/edge-agents/{key}/config).

    Hand the bytes to ConfigReceiver.handle(); it checks the digest and the version.
    """
    url = f"{base_url.rstrip('/')}/api/v1/edge-agents/{agent_key}/config"
    response = httpx.get(
        url, headers={"Authorization": f"Bearer {token}"}, verify=verify, timeout=timeout
    )
    response.raise_for_status()
    return response.content
