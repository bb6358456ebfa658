"""Suppliers: who we buy from, in which currency and on which terms, and how we reach them."""

from __future__ import annotations

import enum
from typing import Any

from sqlalchemy import JSON, Boolean, String
from sqlalchemy.orm import Mapped, mapped_column

from maintainpro.core.columns import Timestamped, text_enum
from maintainpro.core.db import Base


class ConnectionType(enum.StrEnum):
    """How orders reach the supplier."""

    EDI = "edi"
    API = "api"
    PORTAL = "portal"
    EMAIL = "email"


class SupplierStatus(enum.StrEnum):
    """Whether the supplier may be ordered from; only active ones are."""

    ACTIVE = "active"
    INACTIVE = "inactive"
    PENDING = "pending"
    BLOCKED = "blocked"


class Supplier(Timestamped, Base):
    """A company we buy parts from."""

    __tablename__ = "suppliers"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(64), unique=True)
    legal_name: Mapped[str] = mapped_column(String(200))
    country: Mapped[str] = mapped_column(String(2))
    currency: Mapped[str] = mapped_column(String(3))
    payment_terms: Mapped[str] = mapped_column(String(64), default="NET30")
    incoterms: Mapped[str | None] = mapped_column(String(16))
    contacts: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    connection_type: Mapped[ConnectionType] = mapped_column(
        text_enum(ConnectionType), default=ConnectionType.EMAIL
    )
    capabilities: Mapped[list[str]] = mapped_column(JSON, default=list)
    status: Mapped[SupplierStatus] = mapped_column(
        text_enum(SupplierStatus), default=SupplierStatus.PENDING
    )
    preferred: Mapped[bool] = mapped_column(Boolean, default=False)

    @property
    def orderable(self) -> bool:
        """Whether purchase orders may go to this supplier."""
        return self.status is SupplierStatus.ACTIVE
