"""The edge agent's local YAML file: who it is, how it reaches the hub, its queue, its devices."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, model_validator

from maintainpro.iot.connectors.mqtt import MqttConfigError
from maintainpro.iot.edge.uplink import UplinkOptions
from maintainpro.iot.registry import DeviceKey, DeviceSpec

__all__ = ["AgentSettings", "EdgeSettingsError", "LocalMqtt", "QueueSettings", "UplinkSettings"]


class EdgeSettingsError(ValueError):
    """The agent's file cannot be used; the message says where and why."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class UplinkSettings(_Strict):
    """The hub's broker, as this gateway logs in to it."""

    url: Annotated[str, Field(min_length=1)]
    ca_file: Path | None = None
    cert_file: Path | None = None
    key_file: Path | None = None
    username: str | None = None
    password: SecretStr | None = None
    # Kept out of the YAML file so the file can be shared without the secret.
    password_file: Path | None = None
    protocol: Literal["5", "3.1.1"] = "5"
    topic_prefix: str = "devices"
    client_id: str | None = None
    keepalive_s: Annotated[int, Field(ge=5, le=3600)] = 30

    @model_validator(mode="after")
    def _one_password(self) -> UplinkSettings:
        if self.password is not None and self.password_file is not None:
            raise ValueError("give password or password_file, not both")
        return self

    def secret(self) -> str | None:
        """The password, read from password_file when given that way."""
        if self.password_file is not None:
            return self.password_file.read_text().strip()
        return self.password.get_secret_value() if self.password is not None else None


class QueueSettings(_Strict):
    """The durable queue and the drain pacing."""

    path: Path = Path("edge-queue.db")
    max_readings: Annotated[int, Field(ge=1)] = 5_000_000
    max_mb: Annotated[float, Field(gt=0)] | None = 1024
    ttl_hours: Annotated[float, Field(gt=0)] | None = 168
    max_messages_per_s: Annotated[float, Field(gt=0)] = 50.0
    batch_size: Annotated[int, Field(ge=1, le=1000)] = 200
    max_inflight: Annotated[int, Field(ge=1, le=1000)] = 20
    ack_timeout_s: Annotated[float, Field(gt=0)] = 30.0
    journal: bool = False


class LocalMqtt(_Strict):
    """A broker near the machines whose device topics the agent subscribes to."""

    url: Annotated[str, Field(min_length=1)]
    username: str | None = None
    password: SecretStr | None = None
    ca_file: Path | None = None
    protocol: Literal["5", "3.1.1"] = "5"
    client_id: str | None = None


class AgentSettings(_Strict):
    """The whole file."""

    agent: DeviceKey
    uplink: UplinkSettings
    queue: QueueSettings = Field(default_factory=QueueSettings)
    status_interval_s: Annotated[float, Field(gt=0, le=3600)] = 10.0
    local_mqtt: LocalMqtt | None = None
    devices: Annotated[list[DeviceSpec], Field(max_length=1000)] = Field(default_factory=list)
    # Take the device list the hub publishes on edge/{agent}/config (docs/edge.md); the
    # devices above run until the first configuration arrives or a saved one is restored.
    remote_config: bool = False
    state_dir: Path | None = None
    log_level: str = "INFO"
    log_json: bool = True

    @model_validator(mode="after")
    def _unique_devices(self) -> AgentSettings:
        keys = [d.key for d in self.devices]
        if len(keys) != len(set(keys)):
            raise ValueError("device keys must be unique")
        return self

    def uplink_options(self) -> UplinkOptions:
        """The uplink's options; relative paths are already resolved by load()."""
        up = self.uplink
        return UplinkOptions(
            url=up.url,
            client_id=up.client_id or f"maintainpro-edge-{self.agent}",
            ca_file=up.ca_file,
            cert_file=up.cert_file,
            key_file=up.key_file,
            username=up.username,
            password=up.secret(),
            protocol=up.protocol,
            keepalive_s=up.keepalive_s,
        )

    @classmethod
    def load(cls, path: Path) -> AgentSettings:
        """Read and validate the file; relative paths count from the file's directory."""
        try:
            document: Any = yaml.safe_load(path.read_text())
        except (OSError, yaml.YAMLError) as exc:
            raise EdgeSettingsError(f"{path}: {exc}") from None
        try:
            settings = cls.model_validate(document)
        except ValidationError as exc:
            details = "; ".join(
                f"{'.'.join(str(p) for p in e['loc']) or 'file'}: {e['msg']}" for e in exc.errors()
            )
            raise EdgeSettingsError(f"{path}: {details}") from None
        base = path.parent
        up = settings.uplink
        for name in ("ca_file", "cert_file", "key_file", "password_file"):
            value = getattr(up, name)
            if value is not None and not value.is_absolute():
                setattr(up, name, base / value)
        if not settings.queue.path.is_absolute():
            settings.queue.path = base / settings.queue.path
        if settings.state_dir is None:
            settings.state_dir = settings.queue.path.parent
        elif not settings.state_dir.is_absolute():
            settings.state_dir = base / settings.state_dir
        try:
            settings.uplink_options().mqtt()
        except (MqttConfigError, OSError) as exc:
            raise EdgeSettingsError(f"{path}: uplink: {exc}") from None
        return settings
