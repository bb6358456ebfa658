"""The configuration the hub pushes to an edge agent: schema, message encoding and its digest.

The message is one JSON object: the :class:`EdgeConfig` fields plus ``sha256``, the SHA-256 of the
canonical JSON of every other field (sorted keys, no spaces, UTF-8). The digest detects corruption
(a truncated file, a broken retained message); it is not a signature. Who may publish a
configuration is decided by the broker's ACL (only the hub writes ``edge/{key}/config``) and by
TLS for the HTTPS pull.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
from typing import Annotated, Any, Final

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
)

from maintainpro.iot.registry import DeviceKey, DeviceSpec

__all__ = [
    "CONFIG_FORMAT",
    "MAX_MESSAGE_BYTES",
    "ConfigError",
    "EdgeConfig",
    "EdgeSettings",
    "canonical_json",
    "config_digest",
    "decode_config",
    "encode_config",
    "validation_text",
]

CONFIG_FORMAT: Final = "maintainpro.edge-config/1"
"""The ``format`` field of every message; a different one is refused, not guessed at."""
MAX_MESSAGE_BYTES: Final = 4 * 1024 * 1024
MAX_DEVICES: Final = 1000
_DIGEST_LENGTH: Final = 64


class ConfigError(ValueError):
    """A configuration message that cannot be used; ``version`` when it could still be read."""

    def __init__(self, message: str, version: int | None = None) -> None:
        super().__init__(message)
        self.version = version


class EdgeSettings(BaseModel):
    """Agent-wide settings that override what the devices say."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    # Poll interval for polled devices (Modbus, OPC-UA reads) without a poll_s of their own.
    poll_s: Annotated[float, Field(gt=0, le=24 * 3600, allow_inf_nan=False)] | None = None
    # How often the agent reports its state to the hub.
    heartbeat_s: Annotated[int, Field(ge=1, le=3600)] | None = None


class EdgeConfig(BaseModel):
    """What one edge agent serves: its devices and sensors, under a version that only grows."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    format: Annotated[str, Field(pattern=f"^{CONFIG_FORMAT}$")] = CONFIG_FORMAT
    agent: DeviceKey
    version: Annotated[int, Field(strict=True, ge=1, le=2**53)]
    issued_at: AwareDatetime
    devices: Annotated[list[DeviceSpec], Field(max_length=MAX_DEVICES)] = Field(
        default_factory=list
    )
    settings: EdgeSettings = Field(default_factory=EdgeSettings)

    @field_validator("issued_at")
    @classmethod
    def _utc(cls, value: dt.datetime) -> dt.datetime:
        return value.astimezone(dt.UTC)

    @field_validator("devices")
    @classmethod
    def _devices(cls, value: list[DeviceSpec]) -> list[DeviceSpec]:
        keys = [d.key for d in value]
        if len(keys) != len(set(keys)):
            raise ValueError("device keys must be unique within a configuration")
        for device in value:
            # A retained message sits in the broker's store in clear text and reaches every
            # client allowed to read the topic: device secrets are provisioned on the agent.
            if device.credentials is not None:
                raise ValueError(
                    f"device {device.key}: credentials are not distributed in an edge "
                    "configuration; provision them on the agent"
                )
        return value

    def payload(self) -> dict[str, Any]:
        """The JSON form of the configuration (without the digest)."""
        return self.model_dump(mode="json", exclude={"devices": {"__all__": {"credentials"}}})


def canonical_json(value: Any) -> bytes:
    """Deterministic JSON bytes: sorted keys, no spaces, UTF-8, no NaN."""
    return json.dumps(
        value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    ).encode()


def config_digest(payload: dict[str, Any]) -> str:
    """The SHA-256 (hex) of a configuration payload's canonical JSON."""
    return hashlib.sha256(canonical_json(payload)).hexdigest()


def encode_config(config: EdgeConfig | dict[str, Any]) -> bytes:
    """The message bytes for a configuration (or its stored JSON form), with its digest."""
    payload = config.payload() if isinstance(config, EdgeConfig) else dict(config)
    payload.pop("sha256", None)
    return canonical_json({**payload, "sha256": config_digest(payload)})


def validation_text(exc: ValidationError) -> str:
    """A pydantic error as one line naming each field and rule (never the rejected input)."""
    return "; ".join(
        f"{'.'.join(str(p) for p in e['loc']) or 'configuration'}: {e['msg']}" for e in exc.errors()
    )


def _version_of(message: dict[str, Any]) -> int | None:
    version = message.get("version")
    return version if isinstance(version, int) and not isinstance(version, bool) else None


def decode_config(data: bytes | str) -> EdgeConfig:
    """Parse, check the digest of and validate a configuration message; raise ConfigError."""
    raw = data.encode() if isinstance(data, str) else data
    if len(raw) > MAX_MESSAGE_BYTES:
        raise ConfigError(f"the message is larger than {MAX_MESSAGE_BYTES} bytes")
    try:
        message = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise ConfigError(f"not valid JSON: {exc}") from None
    if not isinstance(message, dict):
        raise ConfigError("not a configuration: expected a JSON object")
    version = _version_of(message)
    digest = message.pop("sha256", None)
    if not isinstance(digest, str) or len(digest) != _DIGEST_LENGTH:
        raise ConfigError("sha256: missing or not a SHA-256 hex digest", version)
    try:
        expected = config_digest(message)
    except ValueError:  # NaN or infinity smuggled in as a JSON extension
        raise ConfigError("the message contains a non-finite number", version) from None
    if not hmac.compare_digest(expected, digest.lower()):
        raise ConfigError("sha256: digest mismatch, the message is corrupt", version)
    try:
        return EdgeConfig.model_validate(message)
    except ValidationError as exc:
        raise ConfigError(f"invalid configuration: {validation_text(exc)}", version) from None
