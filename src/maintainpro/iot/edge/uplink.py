"""The agent's MQTT uplink to the hub's broker: TLS, per-gateway credentials, QoS 1 with every
PUBACK reported by message id so the queue removes exactly what the broker took.

One paho client per connection: when a connection ends, its client and every message it had in
flight are thrown away and the queue sends those readings again on the next connection. paho's
own resend-on-reconnect is never relied on, so no message can be both resent by paho and by us,
and a PUBACK of an old connection can never acknowledge a message of a new one.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
import threading
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from paho.mqtt.client import Client, ConnectFlags, DisconnectFlags
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode, MQTTProtocolVersion
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from maintainpro.iot.connectors.base import Backoff
from maintainpro.iot.connectors.mqtt import MqttConfigError, MqttOptions

__all__ = ["Uplink", "UplinkOptions"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class UplinkOptions:
    """How the agent reaches the hub's broker."""

    url: str
    client_id: str
    ca_file: Path | None = None
    cert_file: Path | None = None
    key_file: Path | None = None
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    protocol: Literal["5", "3.1.1"] = "5"
    keepalive_s: int = 30
    reconnect_first_s: float = 0.5
    reconnect_cap_s: float = 30.0
    connect_timeout_s: float = 10.0

    def mqtt(self) -> MqttOptions:
        """The URL and TLS settings checked by the hub's own option rules."""
        return MqttOptions.from_url(
            self.url,
            client_id=self.client_id,
            ca_file=self.ca_file,
            cert_file=self.cert_file,
            key_file=self.key_file,
            username=self.username,
            password=self.password,
            protocol=self.protocol,
        )


class Uplink:
    """A QoS 1 publisher whose acknowledgements are read back by message id."""

    def __init__(self, options: UplinkOptions, will: tuple[str, bytes] | None = None) -> None:
        """Check the options; nothing connects before run()."""
        self.options = options
        self.will = will
        self._mqtt = options.mqtt()
        self._client: Client | None = None
        self._generation = 0
        # PUBACKs as (generation, mid), appended by paho's thread, read by the event loop.
        self.acked: deque[tuple[int, int]] = deque()
        self._lost = threading.Event()
        self._up = asyncio.Event()
        self._down = asyncio.Event()
        self._down.set()
        self.wakeup = asyncio.Event()
        self.last_error: str | None = None
        self.connects = 0

    @property
    def connected(self) -> bool:
        """True while a connection is up."""
        return self._up.is_set()

    @property
    def generation(self) -> int:
        """Which connection is current: acks and sends of other generations are void."""
        return self._generation

    async def wait_connected(self) -> None:
        """Wait until a connection is up."""
        await self._up.wait()

    async def wait_disconnected(self) -> None:
        """Wait until the current connection is lost."""
        await self._down.wait()

    def publish(self, topic: str, payload: bytes, *, retain: bool = False) -> int | None:
        """Send at QoS 1 on the current connection; the message id, or None when not sent."""
        client = self._client
        if client is None or not self.connected:
            return None
        info = client.publish(topic, payload, qos=1, retain=retain)
        if info.rc != MQTTErrorCode.MQTT_ERR_SUCCESS:
            self._lost.set()
            return None
        return int(info.mid)

    async def run(self) -> None:
        """Connect and stay connected (back-off between attempts) until cancelled."""
        backoff = Backoff(self.options.reconnect_first_s, self.options.reconnect_cap_s)
        loop = asyncio.get_running_loop()
        while True:
            client = self._build(loop)
            try:
                established = await self._connect(client)
                if established:
                    backoff.reset()
                    await asyncio.to_thread(self._lost.wait)
            except (OSError, ssl.SSLError, MqttConfigError) as exc:
                self._error(f"cannot connect to {self._mqtt.host}:{self._mqtt.port}: {exc}")
            except asyncio.CancelledError:
                self._close(client, stopping=True)
                raise
            finally:
                self._close(client)
            await asyncio.sleep(backoff.next_delay())

    def _error(self, text: str) -> None:
        if text != self.last_error:
            log.warning("uplink down", extra={"error": text})
        self.last_error = text

    def _build(self, loop: asyncio.AbstractEventLoop) -> Client:
        options = self._mqtt
        v5 = options.protocol == "5"
        self._generation += 1
        generation = self._generation
        client = Client(
            CallbackAPIVersion.VERSION2,
            client_id=options.client_id,
            # A clean session: unacknowledged readings are in our queue, not in the session.
            clean_session=None if v5 else True,
            protocol=MQTTProtocolVersion.MQTTv5 if v5 else MQTTProtocolVersion.MQTTv311,
            reconnect_on_failure=False,
        )
        client.suppress_exceptions = True
        # The agent paces itself; paho must neither hold back nor queue on its own.
        client.max_inflight_messages_set(65_535)
        client.max_queued_messages_set(0)
        if options.username is not None:
            client.username_pw_set(options.username, options.password)
        if self.will is not None:
            # Retained, so the hub sees at once that the agent vanished without saying goodbye.
            client.will_set(self.will[0], self.will[1], qos=1, retain=True)
        if options.tls:
            context = ssl.create_default_context(
                cafile=str(options.ca_file) if options.ca_file else None
            )
            if options.cert_file is not None:
                context.load_cert_chain(
                    str(options.cert_file), str(options.key_file) if options.key_file else None
                )
            client.tls_set_context(context)
        acked = self.acked
        lost = self._lost
        lost.clear()

        def wake() -> None:
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(self.wakeup.set)

        def on_connect(
            client: Client,
            userdata: Any,
            flags: ConnectFlags,
            reason: ReasonCode,
            properties: Properties | None,
        ) -> None:
            if reason.is_failure:
                self.last_error = f"broker refused the connection: {reason.getName()}"
                lost.set()
                return
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(self._set_up, generation)

        def on_disconnect(
            client: Client,
            userdata: Any,
            flags: DisconnectFlags,
            reason: ReasonCode,
            properties: Properties | None,
        ) -> None:
            lost.set()
            wake()

        def on_publish(
            client: Client, userdata: Any, mid: int, reason: ReasonCode, properties: Properties
        ) -> None:
            # Called after the broker's PUBACK. A refusal (MQTT 5 reason >= 0x80, e.g. an ACL)
            # is not an acknowledgement: the readings stay queued.
            if reason.is_failure:
                self.last_error = f"broker refused a message: {reason.getName()}"
                return
            acked.append((generation, mid))
            wake()

        client.on_connect = on_connect
        client.on_disconnect = on_disconnect
        client.on_publish = on_publish
        return client

    def _set_up(self, generation: int) -> None:
        if generation != self._generation:
            return
        self.connects += 1
        if self.last_error is not None:
            log.info("uplink connected again", extra={"after": self.last_error})
        self.last_error = None
        self._down.clear()
        self._up.set()
        self.wakeup.set()

    async def _connect(self, client: Client) -> bool:
        options = self._mqtt
        await asyncio.to_thread(
            client.connect, options.host, options.port, self.options.keepalive_s
        )
        self._client = client
        client.loop_start()
        try:
            async with asyncio.timeout(self.options.connect_timeout_s):
                while not self._up.is_set():
                    if self._lost.is_set():
                        self._error(self.last_error or "connection closed during CONNECT")
                        return False
                    await asyncio.sleep(0.02)
        except TimeoutError:
            self._error("no CONNACK from the broker")
            return False
        return True

    def drop_connection(self) -> None:
        """End the current connection (a PUBACK overdue); run() connects again."""
        self._lost.set()

    def _close(self, client: Client, *, stopping: bool = False) -> None:
        # Releases the thread waiting in run() when the task is cancelled.
        self._lost.set()
        was_up = self._up.is_set() and not stopping
        self._up.clear()
        self._down.set()
        self._client = None
        # Void the connection before anything else can publish on it.
        self._generation += 1
        with contextlib.suppress(Exception):
            client.disconnect()
        with contextlib.suppress(Exception):
            client.loop_stop()
        if was_up:
            self._error(self.last_error or "connection lost")
        self.wakeup.set()
