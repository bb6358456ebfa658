"""What the hub remembers of its ERPs: order links, sync watermarks, receipts already booked."""

from __future__ import annotations

import datetime as dt
import enum
from decimal import Decimal
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, Integer, Numeric, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from maintainpro.core.columns import text_enum
from maintainpro.core.db import Base, UTCDateTime, utcnow


class ErpLink(Base):
    """Our purchase order as it exists in one ERP connection, under the ERP's own id."""

    __tablename__ = "erp_links"
    __table_args__ = (
        UniqueConstraint("order_id", "system"),
        Index("ix_erp_links_system_external_id", "system", "external_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    order_id: Mapped[int] = mapped_column(
        ForeignKey("purchase_orders.id", ondelete="CASCADE"), index=True
    )
    # The configured connection's name (two SAP systems are two systems), see erp_config.
    system: Mapped[str] = mapped_column(String(64))
    external_id: Mapped[str] = mapped_column(String(100))
    pushed_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)


class ErpSyncState(Base):
    """Where the last pull from one ERP connection stopped, and how it went."""

    __tablename__ = "erp_sync_states"
    # Rewritten on every run; the audit log would only fill with watermarks.
    __audit__ = False

    connector: Mapped[str] = mapped_column(String(64), primary_key=True)
    system: Mapped[str] = mapped_column(String(32))
    # Changes strictly after this moment are pulled next; None: from the connection's start.
    watermark: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    last_run_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    last_success_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    last_error: Mapped[str | None] = mapped_column(Text)
    # Records the last successful run changed (status moves, receipts, vendors, items).
    rows: Mapped[int] = mapped_column(Integer, default=0)
    # Counts per kind and the reasons records were skipped, of the last successful run.
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class ErpReceiptStatus(enum.StrEnum):
    """Whether an ERP goods receipt became one of ours."""

    BOOKED = "booked"
    SKIPPED = "skipped"


class ErpReceiptRecord(Base):
    """One ERP goods receipt line seen by the sync: booked once, or skipped with the reason."""

    __tablename__ = "erp_receipts"
    __table_args__ = (UniqueConstraint("connector", "receipt_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    connector: Mapped[str] = mapped_column(String(64))
    # The ERP's id of the receipt line (SAP: year/document/item; BC: receipt/sequence).
    receipt_id: Mapped[str] = mapped_column(String(120))
    purchase_order_id: Mapped[int | None] = mapped_column(
        ForeignKey("purchase_orders.id", ondelete="SET NULL"), index=True
    )
    goods_receipt_id: Mapped[int | None] = mapped_column(
        ForeignKey("goods_receipts.id", ondelete="SET NULL")
    )
    quantity: Mapped[Decimal] = mapped_column(Numeric(14, 3))
    status: Mapped[ErpReceiptStatus] = mapped_column(text_enum(ErpReceiptStatus))
    reason: Mapped[str] = mapped_column(Text, default="")
    recorded_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
