"""Records of device security: provisioning keys, issued certificates, broker accounts."""

from __future__ import annotations

import datetime as dt
import enum

from sqlalchemy import Boolean, ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from maintainpro.core.columns import Timestamped, text_enum
from maintainpro.core.db import Base, UTCDateTime


class ProvisioningKey(Timestamped, Base):
    """A secret a device or edge agent presents once to obtain its credentials."""

    __tablename__ = "provisioning_keys"

    id: Mapped[int] = mapped_column(primary_key=True)
    label: Mapped[str] = mapped_column(String(200))
    key_hash: Mapped[str] = mapped_column(String(64), unique=True, info={"audit": "redact"})
    hint: Mapped[str] = mapped_column(String(16))
    uses_left: Mapped[int | None] = mapped_column(Integer)
    expires_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    revoked_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())


class CredentialKind(enum.StrEnum):
    """What kind of credential was issued."""

    MQTT_PASSWORD = "mqtt_password"  # noqa: S105 - a kind of credential, not one
    CLIENT_CERTIFICATE = "client_certificate"
    COAP_PSK = "coap_psk"
    OPCUA_CERTIFICATE = "opcua_certificate"


class IssuedCredential(Timestamped, Base):
    """A credential the hub issued to a device or edge agent (the secret itself is not kept)."""

    __tablename__ = "issued_credentials"

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[CredentialKind] = mapped_column(text_enum(CredentialKind))
    device_id: Mapped[int | None] = mapped_column(ForeignKey("devices.id", ondelete="CASCADE"))
    edge_agent_id: Mapped[int | None] = mapped_column(
        ForeignKey("edge_agents.id", ondelete="CASCADE")
    )
    username: Mapped[str | None] = mapped_column(String(128))
    # Mosquitto's $7$ PBKDF2 hash for passwords; certificate serial and fingerprint otherwise.
    secret_hash: Mapped[str | None] = mapped_column(Text, info={"audit": "redact"})
    serial: Mapped[str | None] = mapped_column(String(64), index=True)
    fingerprint: Mapped[str | None] = mapped_column(String(128))
    not_after: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    revoked_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    active: Mapped[bool] = mapped_column(Boolean, default=True)
