"""The EDI archive: every interchange in or out, raw and parsed, with its status and errors."""

from __future__ import annotations

import datetime as dt
import enum
from typing import Any

from sqlalchemy import JSON, ForeignKey, Integer, LargeBinary, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from maintainpro.core.columns import text_enum
from maintainpro.core.db import Base, UTCDateTime, utcnow


class Direction(enum.StrEnum):
    """Whether we received or sent the interchange."""

    INBOUND = "inbound"
    OUTBOUND = "outbound"


class InterchangeStatus(enum.StrEnum):
    """Where an interchange stands."""

    RECEIVED = "received"
    APPLIED = "applied"
    PARTIALLY_APPLIED = "partially_applied"
    FAILED = "failed"
    REJECTED = "rejected"
    DUPLICATE = "duplicate"
    QUEUED = "queued"
    SENT = "sent"


class AckState(enum.StrEnum):
    """The 997 state of an outbound interchange's groups."""

    NOT_REQUESTED = "not_requested"
    PENDING = "pending"
    ACCEPTED = "accepted"
    ACCEPTED_WITH_ERRORS = "accepted_with_errors"
    REJECTED = "rejected"
    OVERDUE = "overdue"


class DocumentStatus(enum.StrEnum):
    """Where one transaction set stands: applied, or in the error queue."""

    PENDING = "pending"
    APPLIED = "applied"
    FAILED = "failed"
    IGNORED = "ignored"
    SENT = "sent"


class EdiInterchange(Base):
    """One ISA...IEA envelope as it crossed the wire, kept whole."""

    __tablename__ = "edi_interchanges"
    __table_args__ = (UniqueConstraint("partner_id", "direction", "control_number"),)
    __audit__ = False

    id: Mapped[int] = mapped_column(primary_key=True)
    partner_id: Mapped[int | None] = mapped_column(
        ForeignKey("trading_partners.id", ondelete="SET NULL"), index=True
    )
    direction: Mapped[Direction] = mapped_column(text_enum(Direction))
    transport: Mapped[str] = mapped_column(String(16), default="manual")
    # ISA13; NULL when the envelope could not be read at all.
    control_number: Mapped[int | None] = mapped_column(Integer)
    sender_id: Mapped[str | None] = mapped_column(String(32))
    receiver_id: Mapped[str | None] = mapped_column(String(32))
    # AS2 Message-ID or SFTP file name the interchange came in or went out as.
    transport_ref: Mapped[str | None] = mapped_column(String(255), index=True)
    raw: Mapped[bytes] = mapped_column(LargeBinary)
    status: Mapped[InterchangeStatus] = mapped_column(text_enum(InterchangeStatus), index=True)
    errors: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    ack_state: Mapped[AckState] = mapped_column(
        text_enum(AckState), default=AckState.NOT_REQUESTED, index=True
    )
    ack_due_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    acknowledged_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow, index=True)
    processed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())

    documents: Mapped[list[EdiDocument]] = relationship(
        back_populates="interchange", cascade="all, delete-orphan", order_by="EdiDocument.id"
    )


class EdiDocument(Base):
    """One transaction set of an interchange: parsed form, what it was applied to, errors."""

    __tablename__ = "edi_documents"
    __audit__ = False

    id: Mapped[int] = mapped_column(primary_key=True)
    interchange_id: Mapped[int] = mapped_column(
        ForeignKey("edi_interchanges.id", ondelete="CASCADE"), index=True
    )
    set_id: Mapped[str] = mapped_column(String(3), index=True)
    group_control: Mapped[int | None] = mapped_column(Integer)
    set_control: Mapped[str | None] = mapped_column(String(9))
    status: Mapped[DocumentStatus] = mapped_column(text_enum(DocumentStatus), index=True)
    parsed: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    errors: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    # The business document it concerns, e.g. our PO number from BEG03/BAK03/PRF01/BIG04.
    reference: Mapped[str | None] = mapped_column(String(64), index=True)
    purchase_order_id: Mapped[int | None] = mapped_column(
        ForeignKey("purchase_orders.id", ondelete="SET NULL"), index=True
    )
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    processed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())

    interchange: Mapped[EdiInterchange] = relationship(back_populates="documents")


class As2Message(Base):
    """One AS2 message in or out: its Message-ID (replays are refused), MIC and receipt."""

    __tablename__ = "as2_messages"
    __table_args__ = (UniqueConstraint("direction", "message_id"),)
    __audit__ = False

    id: Mapped[int] = mapped_column(primary_key=True)
    message_id: Mapped[str] = mapped_column(String(255))
    direction: Mapped[Direction] = mapped_column(text_enum(Direction))
    partner_id: Mapped[int | None] = mapped_column(
        ForeignKey("trading_partners.id", ondelete="SET NULL"), index=True
    )
    interchange_id: Mapped[int | None] = mapped_column(
        ForeignKey("edi_interchanges.id", ondelete="SET NULL"), index=True
    )
    mic: Mapped[str | None] = mapped_column(String(200))
    # processed, or processed/error: <reason>, from the MDN we sent or received.
    disposition: Mapped[str | None] = mapped_column(String(200))
    mdn_raw: Mapped[bytes | None] = mapped_column(LargeBinary)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
    mdn_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
