"""The IoT side of the runtime: the ingest pipeline plus one connector per device (Modbus,
OPC-UA, CoAP) and the hub-wide ones (MQTT subscriber, CoAP server), kept in step with the
registry so configuration changes apply without a restart."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload, sessionmaker

from maintainpro.config import Settings
from maintainpro.iot.connectors.base import Backoff, Connector, ConnectorStats, DeviceConfig
from maintainpro.iot.credentials import CredentialBox, CredentialError
from maintainpro.iot.devices import Device
from maintainpro.iot.ingest import IngestPipeline
from maintainpro.iot.registry import device_config

log = logging.getLogger(__name__)

DeviceConnectorFactory = Callable[[DeviceConfig], Connector]


class DeviceAware(Protocol):
    """A hub-wide connector that serves many devices (the MQTT subscriber)."""

    def update_devices(self, configs: Sequence[DeviceConfig]) -> None:
        """Take the current configuration of its devices."""


@dataclass
class _Running:
    config: DeviceConfig
    connector: Connector
    task: asyncio.Task[None]


class IotHub:
    """Owns the pipeline and every connector task."""

    def __init__(
        self,
        factory: sessionmaker[Session],
        pipeline: IngestPipeline,
        box: CredentialBox | None,
        *,
        device_factories: Mapping[str, DeviceConnectorFactory],
        hub_connectors: Sequence[Connector] = (),
        refresh_s: float = 5.0,
    ) -> None:
        self.factory = factory
        self.pipeline = pipeline
        self.box = box
        self.device_factories = dict(device_factories)
        self.hub_connectors = list(hub_connectors)
        self.refresh_s = refresh_s
        self._running: dict[str, _Running] = {}
        self._changed = asyncio.Event()
        self._hub_tasks: list[asyncio.Task[None]] = []

    def registry_changed(self) -> None:
        """Apply registry changes now rather than at the next periodic check."""
        self.pipeline.invalidate_registry()
        self._changed.set()

    @property
    def connector_stats(self) -> list[ConnectorStats]:
        """Statistics of every connector, hub-wide first."""
        return [c.stats for c in self.hub_connectors] + [
            r.connector.stats for r in self._running.values()
        ]

    async def run(self) -> None:
        """Run the pipeline and the connectors until cancelled."""
        pipeline_task = asyncio.create_task(self.pipeline.run(), name="ingest")
        self._hub_tasks = [
            asyncio.create_task(self._keep_running(c), name=c.name) for c in self.hub_connectors
        ]
        try:
            while True:
                try:
                    await self.reconcile()
                except Exception:
                    log.exception("device reconciliation failed")
                # asyncio.timeout: wait_for may swallow the supervisor's cancellation (3.11).
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(self.refresh_s):
                        await self._changed.wait()
                self._changed.clear()
        finally:
            # Connectors first, then the pipeline: it stores what they handed over before it ends.
            tasks = [*self._hub_tasks, *(r.task for r in self._running.values())]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            pipeline_task.cancel()
            await asyncio.gather(pipeline_task, return_exceptions=True)
            self._running.clear()

    async def reconcile(self) -> None:
        """Start, stop or restart connectors so they match the enabled devices."""
        configs, problems = await asyncio.to_thread(self._load_configs)
        for key, error in problems.items():
            self.pipeline.connection_state(key, connected=False, error=error)
        for connector in self.hub_connectors:
            if hasattr(connector, "update_devices"):
                protocol = connector.stats.protocol
                connector.update_devices([c for c in configs.values() if c.protocol == protocol])
        wanted = {k: c for k, c in configs.items() if c.protocol in self.device_factories}
        for key in list(self._running):
            running = self._running[key]
            if key not in wanted or wanted[key] != running.config:
                running.task.cancel()
                await asyncio.gather(running.task, return_exceptions=True)
                del self._running[key]
                log.info("device connector stopped", extra={"device": key})
        for key, config in wanted.items():
            if key in self._running:
                continue
            connector = self.device_factories[config.protocol](config)
            task = asyncio.create_task(self._keep_running(connector), name=f"device:{key}")
            self._running[key] = _Running(config, connector, task)
            log.info("device connector started", extra={"device": key, "protocol": config.protocol})

    def _load_configs(self) -> tuple[dict[str, DeviceConfig], dict[str, str]]:
        configs: dict[str, DeviceConfig] = {}
        problems: dict[str, str] = {}
        with self.factory() as session:
            devices = session.scalars(
                select(Device).where(Device.enabled.is_(True)).options(selectinload(Device.sensors))
            ).all()
            for device in devices:
                try:
                    configs[device.key] = device_config(device, self.box)
                except CredentialError as exc:
                    problems[device.key] = str(exc)
        return configs, problems

    async def _keep_running(self, connector: Connector) -> None:
        # Connectors reconnect by themselves; this only catches a connector bug so that one
        # broken device never takes the others down.
        backoff = Backoff(first=1.0, cap=60.0)
        while True:
            try:
                await connector.run(self.pipeline)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                connector.stats.error(f"{type(exc).__name__}: {exc}")
                log.exception("connector crashed; restarting", extra={"connector": connector.name})
            await asyncio.sleep(backoff.next_delay())


def build_iot_hub(
    settings: Settings, factory: sessionmaker[Session], box: CredentialBox | None
) -> IotHub:
    """The hub as the settings describe it; protocol libraries are imported only when used."""
    from maintainpro.iot.connectors.coap_client import CoapDeviceConnector
    from maintainpro.iot.connectors.modbus import ModbusConnector
    from maintainpro.iot.connectors.opcua import OpcUaConnector

    pipeline = IngestPipeline(
        factory,
        batch_size=settings.ingest_batch_size,
        max_delay_s=settings.ingest_max_delay_ms / 1000,
    )
    hub_connectors: list[Connector] = []
    if settings.mqtt_url:
        from maintainpro.iot.connectors.mqtt import MqttConnector, MqttOptions

        hub_connectors.append(MqttConnector(MqttOptions.from_settings(settings)))
    if settings.coap_bind or settings.coaps_bind:
        from maintainpro.iot.connectors.coap_server import CoapServer

        server = CoapServer.from_settings(settings.coap_bind, settings.coaps_bind, ())
        if server is not None:
            hub_connectors.append(server)
    return IotHub(
        factory,
        pipeline,
        box,
        device_factories={
            "modbus": ModbusConnector,
            "opcua": OpcUaConnector,
            "coap": CoapDeviceConnector,
        },
        hub_connectors=hub_connectors,
    )
