"""An embedded MQTT broker (amqtt) for the demo, used when no broker is configured."""

from __future__ import annotations

import logging
from typing import Any

log = logging.getLogger(__name__)


class EmbeddedBroker:
    """amqtt on one local TCP listener, anonymous, no $SYS topics; MQTT 3.1.1 only."""

    name = "mqtt-broker"

    def __init__(self, host: str, port: int) -> None:
        self.host = host
        self.port = port
        self._broker: Any = None

    @property
    def url(self) -> str:
        """The URL clients connect to."""
        return f"mqtt://{self.host}:{self.port}"

    async def start(self) -> None:
        """Listen; raises OSError when the port is taken."""
        # Imported here: amqtt is an optional (iot) dependency and pulls in websockets.
        from amqtt.broker import Broker
        from amqtt.errors import BrokerError

        config = {
            "listeners": {"default": {"type": "tcp", "bind": f"{self.host}:{self.port}"}},
            # Only anonymous access on loopback: amqtt's default plugins also log every packet
            # and publish $SYS statistics, which a demo does not need.
            "plugins": {
                "amqtt.plugins.authentication.AnonymousAuthPlugin": {"allow_anonymous": True}
            },
        }
        broker = Broker(config)
        try:
            await broker.start()
        except BrokerError as exc:
            # amqtt wraps the bind failure; callers want the OSError to say "port taken".
            if isinstance(exc.__cause__, OSError):
                raise exc.__cause__ from None
            raise
        self._broker = broker
        log.info("embedded MQTT broker listening", extra={"url": self.url})

    async def stop(self) -> None:
        """Close every client session and the listener."""
        broker, self._broker = self._broker, None
        if broker is not None:
            await broker.shutdown()
