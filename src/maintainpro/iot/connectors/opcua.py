"""OPC-UA connector: one server (device) read by subscription or polling, fed to the sink."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from asyncua import ua
from asyncua.client.client import Client
from asyncua.crypto.security_policies import SecurityPolicyBasic256Sha256
from asyncua.ua.attribute_ids import AttributeIds
from asyncua.ua.status_codes import StatusCodes
from asyncua.ua.uaerrors import UaError, UaStatusCodeError

from maintainpro.core.db import utcnow
from maintainpro.iot.connectors.base import (
    MAX_BACKOFF_S,
    Backoff,
    ConnectorStats,
    DeviceConfig,
    ReadingSink,
    Rejected,
    SensorConfig,
)
from maintainpro.iot.connectors.opcua_security import TrustStore, application_uri, load_certificate
from maintainpro.iot.readings import Quality, SensorReading

log = logging.getLogger(__name__)

SOURCE = "opcua"
DEFAULT_APPLICATION_URI = "urn:maintainpro:integration-hub"
MODES = ("subscribe", "poll")
POLICIES = ("None", "Basic256Sha256")
SECURITY_MODES = ("None", "Sign", "SignAndEncrypt")
IDENTITIES = ("anonymous", "username", "certificate")
DEADBANDS = {"none": 0, "absolute": 1, "percent": 2}
TIMESTAMPS = ("source", "server")
MAX_PAYLOAD = 1024
ADDRESS_KEYS = frozenset(
    {"node", "browse_path", "sampling_interval_ms", "deadband_type", "deadband_value"}
)
ROOT_FOLDER = ua.NodeId.from_string("i=84")  # ObjectIds.RootFolder, where browse paths start
HIERARCHICAL = ua.NodeId.from_string("i=33")  # ObjectIds.HierarchicalReferences
# Forward along hierarchical references and their subtypes (Organizes, HasComponent, ...).
FORWARD: dict[str, Any] = {"IsInverse": False, "IncludeSubtypes": True}

# Monitored-item refusals that polling cannot cure: the node is missing or unreadable.
NODE_FAULTS = frozenset(
    {
        StatusCodes.BadNodeIdUnknown,
        StatusCodes.BadNodeIdInvalid,
        StatusCodes.BadAttributeIdInvalid,
        StatusCodes.BadNotReadable,
        StatusCodes.BadUserAccessDenied,
    }
)
# Anything else a server may say to one monitored item (filter unsupported, too many items...)
# is a refusal of the subscription, not of the data: such items are polled instead.


class ConnectionLostError(Exception):
    """The server went away while the connector was using it."""


class SecurityConfigError(Exception):
    """The device's security settings cannot work (missing certificate, no matching endpoint)."""


def _number(settings: Mapping[str, Any], key: str, default: float, *, low: float = 0.0) -> float:
    value = settings.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ValueError(f"setting {key!r} must be a number")
    if value < low:
        raise ValueError(f"setting {key!r} must be at least {low:g}")
    return float(value)


def _choice(settings: Mapping[str, Any], key: str, default: str, allowed: Iterable[str]) -> str:
    value = settings.get(key, default)
    allowed = tuple(allowed)
    if value not in allowed:
        raise ValueError(f"setting {key!r} must be one of {', '.join(allowed)}, not {value!r}")
    return str(value)


def _path(settings: Mapping[str, Any], key: str) -> Path | None:
    value = settings.get(key)
    if value in (None, ""):
        return None
    if not isinstance(value, str):
        raise ValueError(f"setting {key!r} must be a file or directory path")
    return Path(value).expanduser()


@dataclass(frozen=True)
class OpcUaOptions:
    """The device settings the connector understands, validated."""

    mode: str = "subscribe"
    sampling_interval_ms: float = 1000.0
    publishing_interval_ms: float = 1000.0
    poll_interval_ms: float = 1000.0
    queue_size: int = 10
    deadband_type: str = "none"
    deadband_value: float = 0.0
    timestamps: str = "source"
    security_policy: str = "None"
    security_mode: str = "None"
    certificate: Path | None = None
    private_key: Path | None = None
    trust_store: Path | None = None
    trust_on_first_use: bool = False
    identity: str = "anonymous"
    user_certificate: Path | None = None
    user_private_key: Path | None = None
    application_uri: str | None = None
    timeout_s: float = 4.0
    watchdog_interval_s: float = 5.0
    reconnect_max_s: float | None = None

    @classmethod
    def from_device(cls, device: DeviceConfig) -> OpcUaOptions:
        """Parse and check DeviceConfig.settings; ValueError names the bad setting."""
        s = device.settings
        unknown = sorted(set(s) - {f.name for f in fields(cls)})
        if unknown:
            # Refused rather than ignored, so a typo cannot silently change behaviour.
            raise ValueError(f"unknown setting(s): {', '.join(unknown)}")
        if not device.endpoint.startswith("opc.tcp://"):
            raise ValueError(f"endpoint must be an opc.tcp:// URL, not {device.endpoint!r}")
        sampling = _number(s, "sampling_interval_ms", 1000.0)
        policy = _choice(s, "security_policy", "None", POLICIES)
        mode_default = "None" if policy == "None" else "SignAndEncrypt"
        security_mode = _choice(s, "security_mode", mode_default, SECURITY_MODES)
        if (policy == "None") != (security_mode == "None"):
            raise ValueError(
                "security_mode must be None with security_policy None, "
                "and Sign or SignAndEncrypt with Basic256Sha256"
            )
        identity_default = "username" if device.credentials.get("username") else "anonymous"
        deadband_type = _choice(s, "deadband_type", "none", DEADBANDS)
        deadband_value = _number(s, "deadband_value", 0.0)
        if deadband_type == "percent" and deadband_value > 100:
            raise ValueError("setting 'deadband_value' is a percentage (0-100) for percent")
        tofu = s.get("trust_on_first_use", False)
        if not isinstance(tofu, bool):
            raise ValueError("setting 'trust_on_first_use' must be true or false")
        app_uri = s.get("application_uri")
        if app_uri is not None and not isinstance(app_uri, str):
            raise ValueError("setting 'application_uri' must be a string")
        options = cls(
            mode=_choice(s, "mode", "subscribe", MODES),
            sampling_interval_ms=sampling,
            publishing_interval_ms=_number(s, "publishing_interval_ms", max(sampling, 50.0), low=1),
            poll_interval_ms=_number(s, "poll_interval_ms", max(sampling, 50.0), low=10),
            queue_size=int(_number(s, "queue_size", 10, low=1)),
            deadband_type=deadband_type,
            deadband_value=deadband_value,
            timestamps=_choice(s, "timestamps", "source", TIMESTAMPS),
            security_policy=policy,
            security_mode=security_mode,
            certificate=_path(s, "certificate"),
            private_key=_path(s, "private_key"),
            trust_store=_path(s, "trust_store"),
            trust_on_first_use=tofu,
            identity=_choice(s, "identity", identity_default, IDENTITIES),
            user_certificate=_path(s, "user_certificate"),
            user_private_key=_path(s, "user_private_key"),
            application_uri=app_uri or None,
            timeout_s=_number(s, "timeout_s", 4.0, low=0.1),
            watchdog_interval_s=_number(s, "watchdog_interval_s", 5.0, low=0.1),
            reconnect_max_s=(
                _number(s, "reconnect_max_s", MAX_BACKOFF_S, low=0.1)
                if "reconnect_max_s" in s
                else None
            ),
        )
        if options.identity == "username" and not device.credentials.get("username"):
            raise ValueError("identity 'username' needs credentials 'username' and 'password'")
        if options.identity == "certificate" and not (
            options.user_certificate and options.user_private_key
        ):
            raise ValueError("identity 'certificate' needs user_certificate and user_private_key")
        if policy != "None":
            if not (options.certificate and options.private_key):
                raise ValueError(
                    f"security_policy {policy} needs the hub's application certificate: "
                    "settings 'certificate' and 'private_key'"
                )
            if options.trust_store is None:
                raise ValueError(
                    f"security_policy {policy} needs 'trust_store', a directory of trusted "
                    "server certificates"
                )
        return options


@dataclass(frozen=True)
class Target:
    """A sensor bound to an OPC-UA node, with its monitoring parameters."""

    sensor: SensorConfig
    channel: str
    node_id: ua.NodeId
    sampling_interval_ms: float
    deadband_type: str
    deadband_value: float


def parse_browse_path(path: str) -> ua.RelativePath:
    """Turn "0:Objects/2:Pump1/2:Temperature" (from the Root folder) into a RelativePath."""
    segments = [part for part in path.strip().strip("/").split("/") if part]
    if not segments:
        raise ValueError("empty browse path")
    elements = []
    for segment in segments:
        name = ua.QualifiedName.from_string(segment)
        if not name.Name:
            raise ValueError(f"empty name in browse path segment {segment!r}")
        elements.append(
            ua.RelativePathElement(ReferenceTypeId=HIERARCHICAL, TargetName=name, **FORWARD)
        )
    return ua.RelativePath(Elements=elements)


def quality_of(status: ua.StatusCode | None) -> Quality:
    """OPC-UA severity bits (the top two of the status code) as the hub's quality."""
    if status is None:
        return Quality.GOOD
    severity = (int(status.value) >> 30) & 0b11
    if severity == 0:
        return Quality.GOOD
    if severity == 1:
        return Quality.UNCERTAIN
    return Quality.BAD


def _aware(value: Any) -> dt.datetime | None:
    if not isinstance(value, dt.datetime):
        return None
    if value.tzinfo is None:
        # asyncua decodes OPC-UA DateTime (always UTC on the wire) as naive UTC.
        value = value.replace(tzinfo=dt.UTC)
    value = value.astimezone(dt.UTC)
    # OPC-UA encodes "no timestamp" as its epoch (1601); never store that as a time.
    return value if value.year > 1970 else None


def _payload(value: Any) -> bytes:
    return repr(value)[:MAX_PAYLOAD].encode("utf-8", "replace")


def to_reading(
    device_key: str, target: Target, data: ua.DataValue, *, timestamps: str = "source"
) -> SensorReading | Rejected:
    """Convert one DataValue to a reading, or to a Rejected item saying why it cannot be one."""
    status = data.StatusCode
    quality = quality_of(status)
    variant = data.Value
    raw = variant.Value if variant is not None else None

    def refuse(code: str, reason: str) -> Rejected:
        return Rejected(
            source=SOURCE,
            code=code,
            reason=reason,
            payload=_payload(raw),
            device_key=device_key,
            sensor_key=target.sensor.key,
            channel=target.channel,
        )

    if raw is None:
        name = status.name if status is not None else "Good"
        if quality is Quality.GOOD:
            return refuse("non_numeric", f"node {target.channel} has no value")
        return refuse("bad_status", f"node {target.channel} reports {name} without a value")
    if isinstance(raw, bool):
        # Running/stopped and similar flags are worth charting and alerting on as 0/1.
        value = 1.0 if raw else 0.0
    elif isinstance(raw, int | float):
        value = float(raw)
        if not math.isfinite(value):
            return refuse("non_finite", f"node {target.channel} sent {raw!r}")
    else:
        kind = getattr(getattr(variant, "VariantType", None), "name", type(raw).__name__)
        shape = "an array of " if isinstance(raw, list | tuple) else ""
        return refuse(
            "non_numeric", f"node {target.channel} holds {shape}{kind}, not a single number"
        )
    source_ts = _aware(data.SourceTimestamp)
    server_ts = _aware(data.ServerTimestamp)
    first, second = (server_ts, source_ts) if timestamps == "server" else (source_ts, server_ts)
    stamp = first or second or utcnow()
    metadata: Mapping[str, Any] = {}
    if quality is not Quality.GOOD and status is not None:
        metadata = {"opcua_status": status.name}
    if metadata:
        return SensorReading(
            device_key, target.sensor.key, value, stamp, quality=quality, metadata=metadata
        )
    return SensorReading(device_key, target.sensor.key, value, stamp, quality=quality)


def error_text(exc: BaseException) -> str:
    """The error as a user reads it on the device page: type and message."""
    message = str(exc).strip()
    if isinstance(exc, TimeoutError) and not message:
        message = "no answer in time"
    if isinstance(exc, UaStatusCodeError):
        name = ua.StatusCode(exc.code).name
        return f"{name}: {message}" if message and message != name else name
    return f"{type(exc).__name__}: {message}" if message else type(exc).__name__


def _first_certificate(der: bytes) -> bytes:
    # Some servers send their certificate followed by its chain; keep the leading DER SEQUENCE.
    if len(der) < 4 or der[0] != 0x30:
        return der
    length = der[1]
    if length < 0x80:
        return der[: 2 + length]
    count = length & 0x7F
    return der[: 2 + count + int.from_bytes(der[2 : 2 + count], "big")]


@dataclass
class _Link:
    """One connection's state: what the subscription delivered and whether the server left."""

    connector: OpcUaConnector
    timestamps: str
    handles: dict[int, Target] = field(default_factory=dict)
    readings: list[SensorReading] = field(default_factory=list)
    rejected: list[Rejected] = field(default_factory=list)
    values: int = 0
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    lost: BaseException | None = None

    def add(self, target: Target, data: ua.DataValue) -> None:
        """Convert and buffer one value until the next flush."""
        self.values += 1
        result = to_reading(self.connector.device.key, target, data, timestamps=self.timestamps)
        if isinstance(result, SensorReading):
            self.connector.refusals.pop(target.sensor.key, None)
            self.readings.append(result)
        elif self.connector.refusals.get(target.sensor.key) != result.code:
            # A persistent fault is dead-lettered once, not on every poll.
            self.connector.refusals[target.sensor.key] = result.code
            self.rejected.append(result)

    def datachange_notification(self, node: Any, val: Any, data: Any) -> None:
        """asyncua subscription callback: one monitored item changed."""
        target = self.handles.get(data.monitored_item.ClientHandle)
        if target is not None:
            self.add(target, data.monitored_item.Value)
            self.wake.set()

    def status_change_notification(self, status: Any) -> None:
        """asyncua subscription callback: the server ended or timed out the subscription."""
        code = getattr(status, "Status", None)
        if code is not None and not code.is_good():
            self.connection_lost(ConnectionLostError(f"subscription ended: {code.name}"))

    def connection_lost(self, exc: BaseException) -> None:
        """Remember the first reason the connection ended and wake the loop."""
        if self.lost is None:
            self.lost = exc
        self.wake.set()

    async def on_connection_lost(self, exc: Exception) -> None:
        """asyncua client callback when its watchdog sees the server gone."""
        self.connection_lost(exc)


class OpcUaConnector:
    """Reads one OPC-UA server (a device) by subscription or polling and feeds the sink."""

    def __init__(
        self,
        device: DeviceConfig,
        *,
        first_backoff_s: float = 0.5,
        max_backoff_s: float = MAX_BACKOFF_S,
    ) -> None:
        self.device = device
        self.name = f"opcua:{device.key}"
        self.stats = ConnectorStats(name=self.name, protocol=SOURCE)
        self.backoff = Backoff(first=first_backoff_s, cap=max_backoff_s)
        # Sensor key -> how it is read on the current connection ("subscribe" or "poll").
        self.reading_modes: dict[str, str] = {}
        # Sensor key -> code of the last refusal, so a lasting fault is dead-lettered once.
        self.refusals: dict[str, str] = {}
        self._down = False

    async def run(self, sink: ReadingSink) -> None:
        """Connect, receive or poll, feed the sink; reconnect with back-off forever."""
        while True:
            try:
                options = OpcUaOptions.from_device(self.device)
                if options.reconnect_max_s is not None:
                    self.backoff.cap = options.reconnect_max_s
                await self._session(sink, options)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - any failure: report it, back off, retry
                text = error_text(exc)
                self.stats.error(text)
                self.stats.connected = False
                self.reading_modes = {}
                sink.connection_state(self.device.key, connected=False, error=text)
                if not self._down:
                    # Logged once per outage; the sink and stats carry every later attempt.
                    log.warning(
                        "OPC-UA device unavailable",
                        extra={"device": self.device.key, "error": text},
                    )
                self._down = True
            task = asyncio.current_task()
            if task is not None and task.cancelling():
                # asyncua swallows CancelledError in parts of its teardown; stop anyway.
                raise asyncio.CancelledError
            await asyncio.sleep(self.backoff.next_delay())
            self.stats.reconnects += 1

    async def _session(self, sink: ReadingSink, options: OpcUaOptions) -> None:
        client = Client(
            self.device.endpoint,
            timeout=options.timeout_s,
            watchdog_intervall=options.watchdog_interval_s,
            auto_reconnect=False,
        )
        client.name = client.description = "MaintAInPro Integration Hub"
        client.product_uri = "urn:maintainpro"
        client.application_uri = options.application_uri or DEFAULT_APPLICATION_URI
        link = _Link(connector=self, timestamps=options.timestamps)
        connected = False
        try:
            await self._secure(client, options)
            await self._identify(client, options)
            client.connection_lost_callback = link.on_connection_lost
            await asyncio.wait_for(client.connect(), timeout=options.timeout_s * 3)
            connected = True
            self.stats.connected = True
            sink.connection_state(self.device.key, connected=True)
            log.info("OPC-UA device connected", extra={"device": self.device.key})
            self._down = False
            self.refusals = {}
            targets, rejected = await self._resolve(client, options)
            link.rejected.extend(rejected)
            polled = await self._monitor(client, options, link, targets)
            # Reset only once set up, so a server that drops us right after connecting still
            # sees the back-off grow.
            self.backoff.reset()
            await self._loop(sink, client, options, link, polled)
        finally:
            if connected:
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(client.disconnect(), timeout=options.timeout_s)
            else:
                client.disconnect_socket()

    async def _secure(self, client: Client, options: OpcUaOptions) -> None:
        if options.security_policy == "None":
            return
        assert options.certificate
        assert options.private_key
        assert options.trust_store
        hub_cert = load_certificate(await asyncio.to_thread(options.certificate.read_bytes))
        client.application_uri = (
            options.application_uri or application_uri(hub_cert) or DEFAULT_APPLICATION_URI
        )
        endpoints = await asyncio.wait_for(
            client.connect_and_get_server_endpoints(), timeout=options.timeout_s * 2
        )
        mode = getattr(ua.MessageSecurityMode, options.security_mode)
        policy_uri = SecurityPolicyBasic256Sha256.URI
        endpoint = next(
            (e for e in endpoints if e.SecurityMode == mode and e.SecurityPolicyUri == policy_uri),
            None,
        )
        if endpoint is None:
            offered = sorted(
                {
                    f"{e.SecurityPolicyUri.rsplit('#', 1)[-1]}/{e.SecurityMode.name}"
                    for e in endpoints
                }
            )
            raise SecurityConfigError(
                f"server offers no {options.security_policy}/{options.security_mode} endpoint "
                f"(it offers {', '.join(offered) or 'none'})"
            )
        server_der = _first_certificate(bytes(endpoint.ServerCertificate or b""))
        if not server_der:
            raise SecurityConfigError("server sent no certificate with its secure endpoint")
        store = TrustStore(options.trust_store)
        await asyncio.to_thread(
            store.check,
            server_der,
            device_key=self.device.key,
            trust_on_first_use=options.trust_on_first_use,
        )
        # Passing the checked certificate pins it: asyncua refuses a session whose server
        # certificate differs from this one.
        await client.set_security(
            SecurityPolicyBasic256Sha256,
            certificate=str(options.certificate),
            private_key=str(options.private_key),
            private_key_password=self.device.credentials.get("private_key_password") or None,
            server_certificate=server_der,
            mode=mode,
        )

    async def _identify(self, client: Client, options: OpcUaOptions) -> None:
        credentials = self.device.credentials
        if options.identity == "username":
            client.set_user(credentials["username"])
            client.set_password(credentials.get("password", ""))
        elif options.identity == "certificate":
            assert options.user_certificate
            assert options.user_private_key
            await client.load_client_certificate(str(options.user_certificate))
            await client.load_private_key(
                options.user_private_key,
                password=credentials.get("user_private_key_password") or None,
            )

    def _target(self, sensor: SensorConfig, options: OpcUaOptions, node_id: ua.NodeId) -> Target:
        address = sensor.address
        unknown = sorted(set(address) - ADDRESS_KEYS)
        if unknown:
            raise ValueError(f"unknown address key(s): {', '.join(unknown)}")
        channel = str(address.get("node") or address.get("browse_path"))
        deadband_type = str(address.get("deadband_type", options.deadband_type))
        if deadband_type not in DEADBANDS:
            raise ValueError(f"deadband_type must be one of {', '.join(DEADBANDS)}")
        return Target(
            sensor=sensor,
            channel=channel,
            node_id=node_id,
            sampling_interval_ms=_number(
                address, "sampling_interval_ms", options.sampling_interval_ms
            ),
            deadband_type=deadband_type,
            deadband_value=_number(address, "deadband_value", options.deadband_value),
        )

    def _refuse(self, sensor: SensorConfig, code: str, reason: str) -> Rejected:
        return Rejected(
            source=SOURCE,
            code=code,
            reason=reason,
            payload=_payload(dict(sensor.address)),
            device_key=self.device.key,
            sensor_key=sensor.key,
            channel=str(sensor.address.get("node") or sensor.address.get("browse_path") or ""),
        )

    async def _resolve(
        self, client: Client, options: OpcUaOptions
    ) -> tuple[list[Target], list[Rejected]]:
        targets: list[Target] = []
        rejected: list[Rejected] = []
        by_path: list[tuple[SensorConfig, ua.RelativePath]] = []
        for sensor in self.device.sensors:
            node = sensor.address.get("node")
            path = sensor.address.get("browse_path")
            try:
                if isinstance(node, str) and node:
                    targets.append(self._target(sensor, options, ua.NodeId.from_string(node)))
                elif isinstance(path, str) and path:
                    by_path.append((sensor, parse_browse_path(path)))
                else:
                    raise ValueError("address needs 'node' (a NodeId) or 'browse_path'")
            except (ValueError, UaError) as exc:
                rejected.append(self._refuse(sensor, "bad_address", f"bad OPC-UA address: {exc}"))
        if by_path:
            results = await client.translate_browsepaths(ROOT_FOLDER, [p for _, p in by_path])
            for (sensor, _), result in zip(by_path, results, strict=True):
                if not result.StatusCode.is_good() or not result.Targets:
                    rejected.append(
                        self._refuse(
                            sensor,
                            "node_not_found",
                            f"browse path {sensor.address['browse_path']} not found: "
                            f"{result.StatusCode.name}",
                        )
                    )
                    continue
                found = result.Targets[0].TargetId
                node_id = ua.NodeId(found.Identifier, found.NamespaceIndex, found.NodeIdType)
                try:
                    targets.append(self._target(sensor, options, node_id))
                except ValueError as exc:
                    rejected.append(self._refuse(sensor, "bad_address", str(exc)))
        return targets, rejected

    async def _monitor(
        self, client: Client, options: OpcUaOptions, link: _Link, targets: Sequence[Target]
    ) -> list[Target]:
        """Subscribe to what the server lets us; return the targets that must be polled."""
        self.reading_modes = {}
        if options.mode == "poll" or not targets:
            self.reading_modes = {t.sensor.key: "poll" for t in targets}
            return list(targets)
        try:
            subscription = await client.create_subscription(options.publishing_interval_ms, link)
        except UaStatusCodeError as exc:
            log.warning(
                "OPC-UA server refused a subscription; polling instead",
                extra={"device": self.device.key, "error": error_text(exc)},
            )
            self.reading_modes = {t.sensor.key: "poll" for t in targets}
            return list(targets)
        requests = []
        for handle, target in enumerate(targets, start=1):
            link.handles[handle] = target
            requests.append(self._monitor_request(handle, target, options))
        results = await subscription.create_monitored_items(requests)
        polled: list[Target] = []
        for target, result in zip(targets, results, strict=True):
            if not isinstance(result, ua.StatusCode):
                self.reading_modes[target.sensor.key] = "subscribe"
                continue
            if result.value in NODE_FAULTS:
                link.rejected.append(
                    self._refuse(
                        target.sensor,
                        "node_not_found",
                        f"node {target.channel} cannot be read: {result.name}",
                    )
                )
                continue
            log.warning(
                "OPC-UA server refused to monitor a node; polling it instead",
                extra={"device": self.device.key, "node": target.channel, "error": result.name},
            )
            self.reading_modes[target.sensor.key] = "poll"
            polled.append(target)
        return polled

    @staticmethod
    def _monitor_request(
        handle: int, target: Target, options: OpcUaOptions
    ) -> ua.MonitoredItemCreateRequest:
        parameters = ua.MonitoringParameters(
            ClientHandle=handle,
            SamplingInterval=target.sampling_interval_ms,
            QueueSize=options.queue_size,
            DiscardOldest=True,
        )
        if target.deadband_type != "none":
            parameters.Filter = ua.DataChangeFilter(
                Trigger=ua.DataChangeTrigger.StatusValue,
                DeadbandType=DEADBANDS[target.deadband_type],
                DeadbandValue=target.deadband_value,
            )
        return ua.MonitoredItemCreateRequest(
            ItemToMonitor=ua.ReadValueId(NodeId=target.node_id, AttributeId=AttributeIds.Value),
            MonitoringMode=ua.MonitoringMode.Reporting,
            RequestedParameters=parameters,
        )

    async def _loop(
        self,
        sink: ReadingSink,
        client: Client,
        options: OpcUaOptions,
        link: _Link,
        polled: Sequence[Target],
    ) -> None:
        loop = asyncio.get_running_loop()
        interval = options.poll_interval_ms / 1000
        next_poll = loop.time()
        while True:
            if polled and loop.time() >= next_poll:
                await self._poll(client, link, polled)
                # Skip missed cycles instead of bursting after a slow read.
                next_poll = max(next_poll + interval, loop.time())
            timeout = max(0.0, next_poll - loop.time()) if polled else None
            # asyncio.timeout: wait_for may swallow a cancellation on Python 3.11.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(timeout):
                    await link.wake.wait()
            link.wake.clear()
            await self._flush(sink, link)
            if link.lost is not None:
                raise ConnectionLostError(
                    f"connection to {self.device.endpoint} lost: {error_text(link.lost)}"
                ) from link.lost

    async def _poll(self, client: Client, link: _Link, polled: Sequence[Target]) -> None:
        parameters = ua.ReadParameters(
            MaxAge=0,
            TimestampsToReturn=ua.TimestampsToReturn.Both,
            NodesToRead=[
                ua.ReadValueId(NodeId=t.node_id, AttributeId=AttributeIds.Value) for t in polled
            ],
        )
        try:
            values = await client.uaclient.read(parameters)
        except (ConnectionError, OSError, TimeoutError, UaError) as exc:
            link.connection_lost(exc)
            return
        for target, data in zip(polled, values, strict=True):
            link.add(target, data)
        link.wake.set()

    async def _flush(self, sink: ReadingSink, link: _Link) -> None:
        if not (link.readings or link.rejected or link.values):
            return
        readings, link.readings = link.readings, []
        rejected, link.rejected = link.rejected, []
        values, link.values = link.values, 0
        if readings or rejected:
            await sink.submit(readings, rejected)
        self.stats.success(messages=values, readings=len(readings))
