"""Sites, locations and assets."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

from fastapi import APIRouter, Depends, Query, status
from pydantic import BaseModel, ConfigDict
from sqlalchemy import or_, select

from maintainpro.api.crud import apply_changes, get_or_404, require_exists
from maintainpro.api.deps import SessionDep, require
from maintainpro.api.fields import Code, FreeText, Name, ShortText, contains_pattern
from maintainpro.api.pagination import Page, WindowDep, list_page
from maintainpro.api.problems import Problem
from maintainpro.core.assets import Asset, AssetStatus, Criticality, Location, LocationKind, Site
from maintainpro.core.maintenance import NotFound, check_asset_parent
from maintainpro.core.users import Permission

router = APIRouter(tags=["assets"])
Reader = Depends(require(Permission.ASSETS_READ))
Writer = Depends(require(Permission.ASSETS_WRITE))


class SiteIn(BaseModel):
    """A new site."""

    model_config = ConfigDict(extra="forbid")
    code: Code
    name: Name
    timezone: Code = "UTC"
    address: FreeText | None = None


class SitePatch(BaseModel):
    """Changes to a site."""

    model_config = ConfigDict(extra="forbid")
    name: Name | None = None
    timezone: Code | None = None
    address: FreeText | None = None


class SiteOut(BaseModel):
    """A site."""

    model_config = ConfigDict(from_attributes=True)
    id: int
    code: str
    name: str
    timezone: str
    address: str | None


class LocationIn(BaseModel):
    """A new location."""

    model_config = ConfigDict(extra="forbid")
    site_id: int
    parent_id: int | None = None
    code: Code
    name: Name
    kind: LocationKind = LocationKind.AREA


class LocationOut(BaseModel):
    """A location."""

    model_config = ConfigDict(from_attributes=True)
    id: int
    site_id: int
    parent_id: int | None
    code: str
    name: str
    kind: LocationKind


class AssetIn(BaseModel):
    """A new asset."""

    model_config = ConfigDict(extra="forbid")
    tag: Code
    name: Name
    site_id: int
    location_id: int | None = None
    parent_id: int | None = None
    asset_class: Code = "generic"
    criticality: Criticality = Criticality.MEDIUM
    status: AssetStatus = AssetStatus.OPERATIONAL
    manufacturer: ShortText | None = None
    model: ShortText | None = None
    serial_number: ShortText | None = None
    install_date: dt.date | None = None
    description: FreeText | None = None


class AssetPatch(BaseModel):
    """Changes to an asset."""

    model_config = ConfigDict(extra="forbid")
    name: Name | None = None
    location_id: int | None = None
    parent_id: int | None = None
    asset_class: Code | None = None
    criticality: Criticality | None = None
    status: AssetStatus | None = None
    manufacturer: ShortText | None = None
    model: ShortText | None = None
    serial_number: ShortText | None = None
    install_date: dt.date | None = None
    description: FreeText | None = None


class AssetOut(BaseModel):
    """An asset."""

    model_config = ConfigDict(from_attributes=True)
    id: int
    tag: str
    name: str
    site_id: int
    location_id: int | None
    parent_id: int | None
    asset_class: str
    criticality: Criticality
    status: AssetStatus
    manufacturer: str | None
    model: str | None
    serial_number: str | None
    install_date: dt.date | None
    description: str | None
    created_at: dt.datetime
    updated_at: dt.datetime


@router.get("/sites", dependencies=[Reader])
def list_sites(db: SessionDep, page: WindowDep) -> Page[SiteOut]:
    """List sites."""
    return list_page(db, select(Site).order_by(Site.id), page, SiteOut)


@router.post("/sites", status_code=status.HTTP_201_CREATED, dependencies=[Writer])
def create_site(db: SessionDep, body: SiteIn) -> SiteOut:
    """Create a site."""
    site = Site(**body.model_dump())
    db.add(site)
    db.commit()
    return SiteOut.model_validate(site)


@router.get("/sites/{site_id}", dependencies=[Reader])
def get_site(db: SessionDep, site_id: int) -> SiteOut:
    """One site."""
    return SiteOut.model_validate(get_or_404(db, Site, site_id))


@router.patch("/sites/{site_id}", dependencies=[Writer])
def update_site(db: SessionDep, site_id: int, body: SitePatch) -> SiteOut:
    """Change a site."""
    site = get_or_404(db, Site, site_id)
    apply_changes(site, body)
    db.commit()
    return SiteOut.model_validate(site)


@router.get("/locations", dependencies=[Reader])
def list_locations(
    db: SessionDep,
    page: WindowDep,
    site_id: int | None = None,
    kind: LocationKind | None = None,
) -> Page[LocationOut]:
    """List locations, optionally of one site or kind."""
    stmt = select(Location).order_by(Location.id)
    if site_id is not None:
        stmt = stmt.where(Location.site_id == site_id)
    if kind is not None:
        stmt = stmt.where(Location.kind == kind)
    return list_page(db, stmt, page, LocationOut)


@router.post("/locations", status_code=status.HTTP_201_CREATED, dependencies=[Writer])
def create_location(db: SessionDep, body: LocationIn) -> LocationOut:
    """Create a location."""
    require_exists(db, Site, body.site_id, "site")
    if body.parent_id is not None:
        parent = db.get(Location, body.parent_id)
        if parent is None:
            raise Problem(422, f"parent location {body.parent_id} does not exist")
        if parent.site_id != body.site_id:
            raise Problem(422, "a location's parent must be on the same site")
    location = Location(**body.model_dump())
    db.add(location)
    db.commit()
    return LocationOut.model_validate(location)


@router.get("/assets", dependencies=[Reader])
def list_assets(
    db: SessionDep,
    page: WindowDep,
    site_id: int | None = None,
    location_id: int | None = None,
    parent_id: int | None = None,
    status: AssetStatus | None = None,
    criticality: Criticality | None = None,
    asset_class: str | None = None,
    q: Annotated[str | None, Query(max_length=100, description="search tag and name")] = None,
) -> Page[AssetOut]:
    """List assets with filters."""
    stmt = select(Asset).order_by(Asset.id)
    filters = {
        Asset.site_id: site_id,
        Asset.location_id: location_id,
        Asset.parent_id: parent_id,
        Asset.status: status,
        Asset.criticality: criticality,
        Asset.asset_class: asset_class,
    }
    for column, value in filters.items():
        if value is not None:
            stmt = stmt.where(column == value)
    if q:
        pattern = contains_pattern(q)
        stmt = stmt.where(or_(Asset.tag.ilike(pattern), Asset.name.ilike(pattern)))
    return list_page(db, stmt, page, AssetOut)


def _check_refs(
    db: SessionDep, asset_id: int | None, site_id: int, body: AssetIn | AssetPatch
) -> None:
    require_exists(db, Location, body.location_id, "location")
    location = db.get(Location, body.location_id) if body.location_id is not None else None
    if location is not None and location.site_id != site_id:
        raise Problem(422, "an asset's location must be on the asset's site")
    try:
        check_asset_parent(db, asset_id, body.parent_id)
    except (ValueError, NotFound) as exc:
        raise Problem(422, str(exc), title="Invalid hierarchy") from exc


@router.post("/assets", status_code=status.HTTP_201_CREATED, dependencies=[Writer])
def create_asset(db: SessionDep, body: AssetIn) -> AssetOut:
    """Create an asset."""
    require_exists(db, Site, body.site_id, "site")
    _check_refs(db, None, body.site_id, body)
    asset = Asset(**body.model_dump())
    db.add(asset)
    db.commit()
    return AssetOut.model_validate(asset)


@router.get("/assets/{asset_id}", dependencies=[Reader])
def get_asset(db: SessionDep, asset_id: int) -> AssetOut:
    """One asset."""
    return AssetOut.model_validate(get_or_404(db, Asset, asset_id))


@router.patch("/assets/{asset_id}", dependencies=[Writer])
def update_asset(db: SessionDep, asset_id: int, body: AssetPatch) -> AssetOut:
    """Change an asset."""
    asset = get_or_404(db, Asset, asset_id)
    _check_refs(db, asset_id, asset.site_id, body)
    apply_changes(asset, body)
    db.commit()
    return AssetOut.model_validate(asset)
