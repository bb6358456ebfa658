"""Portal tables: which supplier company a portal user belongs to, and messages on an order."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import ForeignKey, LargeBinary, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from maintainpro.core.db import Base, UTCDateTime, utcnow


class SupplierUser(Base):
    """Links a user of role supplier to exactly one supplier company."""

    __tablename__ = "supplier_users"

    user_id: Mapped[int] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    supplier_id: Mapped[int] = mapped_column(
        ForeignKey("suppliers.id", ondelete="CASCADE"), index=True
    )


class OrderMessage(Base):
    """A message, optionally with one attachment, between buyer and supplier on an order."""

    __tablename__ = "order_messages"

    id: Mapped[int] = mapped_column(primary_key=True)
    purchase_order_id: Mapped[int] = mapped_column(
        ForeignKey("purchase_orders.id", ondelete="CASCADE"), index=True
    )
    author_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    # Which side wrote it, kept even if the author is deleted later.
    from_supplier: Mapped[bool] = mapped_column(default=False)
    body: Mapped[str] = mapped_column(Text, default="")
    attachment_name: Mapped[str | None] = mapped_column(String(255))
    attachment_type: Mapped[str | None] = mapped_column(String(100))
    # The file itself stays out of the audit log (which would store it as text).
    attachment: Mapped[bytes | None] = mapped_column(LargeBinary, info={"audit": "redact"})
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow, index=True)
