"""Shipments: what a supplier sent against an order, with which carrier, and where it is."""

from __future__ import annotations

import datetime as dt
import enum
from decimal import Decimal

from sqlalchemy import ForeignKey, Numeric, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from maintainpro.core.columns import Timestamped, text_enum
from maintainpro.core.db import Base, UTCDateTime, utcnow
from maintainpro.supply.purchasing import PurchaseOrder, PurchaseOrderLine


class ShipmentStatus(enum.StrEnum):
    """Normalised carrier states, whatever the carrier or document calls them."""

    INFO_RECEIVED = "info_received"
    IN_TRANSIT = "in_transit"
    OUT_FOR_DELIVERY = "out_for_delivery"
    DELIVERED = "delivered"
    EXCEPTION = "exception"


class DocumentSource(enum.StrEnum):
    """Where a supplier document (ship notice, invoice, acknowledgement) came from."""

    MANUAL = "manual"
    API = "api"
    EDI = "edi"
    PORTAL = "portal"
    ERP = "erp"
    CARRIER = "carrier"


class Shipment(Timestamped, Base):
    """One ship notice: goods on their way for one order."""

    __tablename__ = "shipments"
    __table_args__ = (UniqueConstraint("supplier_id", "shipment_number"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    purchase_order_id: Mapped[int] = mapped_column(
        ForeignKey("purchase_orders.id", ondelete="CASCADE"), index=True
    )
    supplier_id: Mapped[int] = mapped_column(
        ForeignKey("suppliers.id", ondelete="RESTRICT"), index=True
    )
    # The supplier's own id for the notice (EDI 856 BSN02), unique per supplier.
    shipment_number: Mapped[str] = mapped_column(String(64))
    source: Mapped[DocumentSource] = mapped_column(
        text_enum(DocumentSource), default=DocumentSource.MANUAL
    )
    carrier_scac: Mapped[str | None] = mapped_column(String(8))
    carrier_name: Mapped[str | None] = mapped_column(String(120))
    tracking_number: Mapped[str | None] = mapped_column(String(64), index=True)
    shipped_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
    expected_delivery: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    delivered_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    status: Mapped[ShipmentStatus] = mapped_column(
        text_enum(ShipmentStatus), default=ShipmentStatus.INFO_RECEIVED, index=True
    )

    order: Mapped[PurchaseOrder] = relationship()
    lines: Mapped[list[ShipmentLine]] = relationship(
        back_populates="shipment", cascade="all, delete-orphan", order_by="ShipmentLine.id"
    )
    events: Mapped[list[ShipmentEvent]] = relationship(
        back_populates="shipment", cascade="all, delete-orphan", order_by="ShipmentEvent.id"
    )


class ShipmentLine(Base):
    """Quantity of one order line in a shipment."""

    __tablename__ = "shipment_lines"

    id: Mapped[int] = mapped_column(primary_key=True)
    shipment_id: Mapped[int] = mapped_column(
        ForeignKey("shipments.id", ondelete="CASCADE"), index=True
    )
    purchase_order_line_id: Mapped[int] = mapped_column(
        ForeignKey("purchase_order_lines.id", ondelete="CASCADE"), index=True
    )
    quantity: Mapped[Decimal] = mapped_column(Numeric(14, 3))

    shipment: Mapped[Shipment] = relationship(back_populates="lines")
    line: Mapped[PurchaseOrderLine] = relationship()


class ShipmentEvent(Base):
    """One carrier status report (EDI 214, webhook, portal) normalised to a ShipmentStatus."""

    __tablename__ = "shipment_events"

    id: Mapped[int] = mapped_column(primary_key=True)
    shipment_id: Mapped[int] = mapped_column(
        ForeignKey("shipments.id", ondelete="CASCADE"), index=True
    )
    status: Mapped[ShipmentStatus] = mapped_column(text_enum(ShipmentStatus))
    occurred_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    location: Mapped[str | None] = mapped_column(String(200))
    source: Mapped[DocumentSource] = mapped_column(text_enum(DocumentSource))
    # The carrier's own code (e.g. AT7 status code "D1"), kept for audit.
    raw_code: Mapped[str | None] = mapped_column(String(32))
    note: Mapped[str] = mapped_column(Text, default="")
    recorded_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)

    shipment: Mapped[Shipment] = relationship(back_populates="events")
