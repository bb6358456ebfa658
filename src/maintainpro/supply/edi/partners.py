"""Trading partners: who we exchange X12 with, under which ids, over which transport."""

from __future__ import annotations

import enum
from typing import Any

from sqlalchemy import JSON, Boolean, ForeignKey, Integer, LargeBinary, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from maintainpro.core.columns import Timestamped, text_enum
from maintainpro.core.db import Base
from maintainpro.supply.suppliers import Supplier


class EdiTransport(enum.StrEnum):
    """How interchanges travel to and from a partner."""

    AS2 = "as2"
    SFTP = "sftp"
    NONE = "none"


class MdnMode(enum.StrEnum):
    """Whether the AS2 receipt comes back on the same connection or later."""

    SYNC = "sync"
    ASYNC = "async"


class TradingPartner(Timestamped, Base):
    """A supplier's EDI profile: envelope ids, versions, transport, certificates, documents."""

    __tablename__ = "trading_partners"

    id: Mapped[int] = mapped_column(primary_key=True)
    supplier_id: Mapped[int] = mapped_column(
        ForeignKey("suppliers.id", ondelete="CASCADE"), unique=True
    )
    # Their ISA05/06 and GS02 when they send; the receiver ids when we send.
    isa_qualifier: Mapped[str] = mapped_column(String(2), default="ZZ")
    isa_id: Mapped[str] = mapped_column(String(15))
    gs_id: Mapped[str] = mapped_column(String(15))
    # Ours, per partner, because partners often assign the id they know us by.
    our_isa_qualifier: Mapped[str] = mapped_column(String(2), default="ZZ")
    our_isa_id: Mapped[str] = mapped_column(String(15))
    our_gs_id: Mapped[str] = mapped_column(String(15))
    x12_version: Mapped[str] = mapped_column(String(5), default="00401")
    gs_version: Mapped[str] = mapped_column(String(12), default="004010")
    usage_indicator: Mapped[str] = mapped_column(String(1), default="P")
    # Transaction sets exchanged, e.g. ["850", "855", "856", "810", "997"].
    documents: Mapped[list[str]] = mapped_column(JSON, default=list)
    transport: Mapped[EdiTransport] = mapped_column(
        text_enum(EdiTransport), default=EdiTransport.NONE
    )
    as2_id: Mapped[str | None] = mapped_column(String(128), index=True)
    our_as2_id: Mapped[str | None] = mapped_column(String(128))
    as2_url: Mapped[str | None] = mapped_column(String(500))
    partner_cert_pem: Mapped[str | None] = mapped_column(Text)
    as2_sign: Mapped[bool] = mapped_column(Boolean, default=True)
    as2_encrypt: Mapped[bool] = mapped_column(Boolean, default=True)
    as2_compress: Mapped[bool] = mapped_column(Boolean, default=False)
    mdn_mode: Mapped[MdnMode] = mapped_column(text_enum(MdnMode), default=MdnMode.SYNC)
    sftp_host: Mapped[str | None] = mapped_column(String(255))
    sftp_port: Mapped[int] = mapped_column(Integer, default=22)
    sftp_username: Mapped[str | None] = mapped_column(String(128))
    sftp_host_keys: Mapped[str | None] = mapped_column(Text)
    sftp_outbound_dir: Mapped[str] = mapped_column(String(255), default="inbound")
    sftp_inbound_dir: Mapped[str] = mapped_column(String(255), default="outbound")
    sftp_archive_dir: Mapped[str | None] = mapped_column(String(255))
    # Passwords and private keys, sealed with the hub's credentials key.
    secrets: Mapped[bytes | None] = mapped_column(LargeBinary, info={"audit": "redact"})
    # A 997 is expected for every group we send within this many minutes.
    ack_deadline_minutes: Mapped[int] = mapped_column(Integer, default=240)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    settings: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)

    supplier: Mapped[Supplier] = relationship()


class EdiControlNumber(Base):
    """The last control number used per partner and envelope level, persistent across restarts."""

    __tablename__ = "edi_control_numbers"

    partner_id: Mapped[int] = mapped_column(
        ForeignKey("trading_partners.id", ondelete="CASCADE"), primary_key=True
    )
    level: Mapped[str] = mapped_column(String(32), primary_key=True)
    last_value: Mapped[int] = mapped_column(Integer, default=0)
