"""Sites, locations and assets in a hierarchy."""

from __future__ import annotations

import datetime as dt
import enum

from sqlalchemy import Date, ForeignKey, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from maintainpro.core.columns import Timestamped, text_enum
from maintainpro.core.db import Base


class Criticality(enum.StrEnum):
    """How much the plant suffers when the asset fails."""

    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"
    CRITICAL = "critical"


class AssetStatus(enum.StrEnum):
    """Operating state of an asset as maintenance sees it."""

    OPERATIONAL = "operational"
    DEGRADED = "degraded"
    DOWN = "down"
    STANDBY = "standby"
    RETIRED = "retired"


class LocationKind(enum.StrEnum):
    """What a location is: a production line, an area, a storeroom."""

    AREA = "area"
    LINE = "line"
    STOREROOM = "storeroom"
    BUILDING = "building"


class Site(Timestamped, Base):
    """A plant or facility."""

    __tablename__ = "sites"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(32), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    timezone: Mapped[str] = mapped_column(String(64), default="UTC")
    address: Mapped[str | None] = mapped_column(Text)


class Location(Timestamped, Base):
    """A place inside a site (line, area, storeroom), itself nestable."""

    __tablename__ = "locations"
    __table_args__ = (UniqueConstraint("site_id", "code"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    site_id: Mapped[int] = mapped_column(ForeignKey("sites.id", ondelete="RESTRICT"), index=True)
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("locations.id", ondelete="RESTRICT"))
    code: Mapped[str] = mapped_column(String(32))
    name: Mapped[str] = mapped_column(String(200))
    kind: Mapped[LocationKind] = mapped_column(text_enum(LocationKind), default=LocationKind.AREA)

    site: Mapped[Site] = relationship()


class Asset(Timestamped, Base):
    """A maintainable thing: a pump, a motor, a whole line; assets nest."""

    __tablename__ = "assets"

    id: Mapped[int] = mapped_column(primary_key=True)
    tag: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    site_id: Mapped[int] = mapped_column(ForeignKey("sites.id", ondelete="RESTRICT"), index=True)
    location_id: Mapped[int | None] = mapped_column(
        ForeignKey("locations.id", ondelete="RESTRICT"), index=True
    )
    parent_id: Mapped[int | None] = mapped_column(
        ForeignKey("assets.id", ondelete="RESTRICT"), index=True
    )
    asset_class: Mapped[str] = mapped_column(String(64), default="generic")
    criticality: Mapped[Criticality] = mapped_column(
        text_enum(Criticality), default=Criticality.MEDIUM
    )
    status: Mapped[AssetStatus] = mapped_column(
        text_enum(AssetStatus), default=AssetStatus.OPERATIONAL
    )
    manufacturer: Mapped[str | None] = mapped_column(String(200))
    model: Mapped[str | None] = mapped_column(String(200))
    serial_number: Mapped[str | None] = mapped_column(String(200))
    install_date: Mapped[dt.date | None] = mapped_column(Date)
    description: Mapped[str | None] = mapped_column(Text)

    site: Mapped[Site] = relationship()
    location: Mapped[Location | None] = relationship()
    parent: Mapped[Asset | None] = relationship(remote_side=[id])
