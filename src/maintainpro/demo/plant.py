"""Seed a believable plant: a site, lines, about twenty assets with parts, meters and schedules."""

from __future__ import annotations

import datetime as dt
import math
import random
import secrets
from dataclasses import dataclass
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.orm import Session

from maintainpro.core.assets import Asset, AssetStatus, Criticality, Location, LocationKind, Site
from maintainpro.core.audit import Actor, set_actor
from maintainpro.core.db import utcnow
from maintainpro.core.inventory import Part, StockLevel
from maintainpro.core.maintenance import PartNeed, open_work_order, transition_work_order
from maintainpro.core.schedules import (
    Anchor,
    IntervalUnit,
    MaintenanceSchedule,
    Meter,
    MeterKind,
    MeterReading,
    add_interval,
)
from maintainpro.core.users import Role, User, hash_password
from maintainpro.core.work_orders import Priority, WorkOrderStatus, WorkOrderType

SITE_CODE = "RIV"


@dataclass(frozen=True)
class AssetSeed:
    """One asset of the demo plant."""

    tag: str
    name: str
    line: str
    asset_class: str
    criticality: Criticality
    manufacturer: str
    model: str


LINES = (
    ("L1", "Line 1 · Bottling", LocationKind.LINE),
    ("L2", "Line 2 · Packaging", LocationKind.LINE),
    ("UT", "Utilities", LocationKind.AREA),
    ("ST", "Main storeroom", LocationKind.STOREROOM),
)

C = Criticality
ASSETS = (
    AssetSeed("P-101", "Product transfer pump", "L1", "pump", C.HIGH, "Grundfos", "CR 10-4"),
    AssetSeed("M-101", "Pump P-101 motor", "L1", "motor", C.HIGH, "ABB", "M3BP 132"),
    AssetSeed("P-102", "CIP supply pump", "L1", "pump", C.MEDIUM, "Alfa Laval", "LKH-20"),
    AssetSeed("F-101", "Rotary filler", "L1", "filler", C.CRITICAL, "Krones", "Modulfill"),
    AssetSeed("M-102", "Filler main drive", "L1", "motor", C.CRITICAL, "Siemens", "1LE1 160"),
    AssetSeed("CV-101", "Infeed conveyor", "L1", "conveyor", C.MEDIUM, "Interroll", "RM 8310"),
    AssetSeed("CV-102", "Outfeed conveyor", "L1", "conveyor", C.MEDIUM, "Interroll", "RM 8310"),
    AssetSeed("CP-101", "Capper", "L1", "capper", C.HIGH, "Arol", "Euro PK"),
    AssetSeed("LB-201", "Labeller", "L2", "labeller", C.HIGH, "Krones", "Ergomodul"),
    AssetSeed("CV-201", "Case conveyor", "L2", "conveyor", C.MEDIUM, "Hytrol", "E24EZ"),
    AssetSeed("M-201", "Case conveyor motor", "L2", "motor", C.MEDIUM, "WEG", "W22 IE3"),
    AssetSeed("CP-201", "Case packer", "L2", "packer", C.HIGH, "Douglas", "Contour"),
    AssetSeed("PL-201", "Palletiser", "L2", "palletiser", C.HIGH, "FANUC", "M-410iC"),
    AssetSeed("SW-201", "Stretch wrapper", "L2", "wrapper", C.LOW, "Lantech", "Q-300"),
    AssetSeed("AC-301", "Air compressor 1", "UT", "compressor", C.CRITICAL, "Atlas Copco", "GA 37"),
    AssetSeed("AC-302", "Air compressor 2", "UT", "compressor", C.HIGH, "Atlas Copco", "GA 37"),
    AssetSeed("AD-301", "Air dryer", "UT", "dryer", C.MEDIUM, "Atlas Copco", "FD 120"),
    AssetSeed("CH-301", "Process chiller", "UT", "chiller", C.CRITICAL, "Carrier", "30RB 162"),
    AssetSeed("P-301", "Chilled-water pump", "UT", "pump", C.HIGH, "KSB", "Etanorm 65"),
    AssetSeed("M-301", "Chilled-water pump motor", "UT", "motor", C.HIGH, "ABB", "M3BP 160"),
    AssetSeed("BL-301", "Boiler", "UT", "boiler", C.CRITICAL, "Bosch", "UT-L 18"),
)
# Motors are components of the machine they drive.
PARENTS = {"M-101": "P-101", "M-102": "F-101", "M-201": "CV-201", "M-301": "P-301"}

PARTS = (
    ("BRG-6205", "Deep-groove ball bearing 6205-2RS", "bearings", "EA", "8.40", 24, 8, 40),
    ("BRG-6308", "Deep-groove ball bearing 6308-2Z", "bearings", "EA", "21.90", 6, 4, 16),
    ("SEAL-M37", "Mechanical seal 35 mm", "seals", "EA", "145.00", 3, 2, 6),
    ("BELT-XPA", "V-belt XPA 1250", "belts", "EA", "17.50", 10, 4, 20),
    ("FLT-AIR37", "Compressor air filter GA37", "filters", "EA", "62.00", 2, 2, 6),
    ("FLT-OIL37", "Compressor oil filter GA37", "filters", "EA", "38.00", 4, 2, 8),
    ("OIL-RS8K", "Roto-Inject fluid 20 l", "lubricants", "EA", "310.00", 2, 1, 4),
    ("GRS-EP2", "Bearing grease EP2 400 g", "lubricants", "EA", "9.80", 30, 10, 60),
    ("CHN-08B", "Roller chain 08B-1 5 m", "chains", "EA", "54.00", 4, 2, 8),
    ("SNS-PT100", "PT100 temperature sensor", "instruments", "EA", "88.00", 5, 2, 10),
    ("CNT-3RT", "Contactor 3RT2026", "electrical", "EA", "74.00", 0, 2, 6),
    ("GLU-LB", "Label glue 25 kg", "consumables", "EA", "120.00", 1, 2, 6),
)

SCHEDULES = (
    ("P-101", "Pump inspection and greasing", 4, IntervalUnit.WEEKS, Anchor.FIXED, None),
    ("F-101", "Filler valve overhaul", 3, IntervalUnit.MONTHS, Anchor.FIXED, None),
    ("CV-101", "Conveyor belt and chain check", 2, IntervalUnit.WEEKS, Anchor.FLOATING, None),
    ("LB-201", "Labeller glue system clean", 1, IntervalUnit.WEEKS, Anchor.FIXED, None),
    ("PL-201", "Palletiser gripper inspection", 1, IntervalUnit.MONTHS, Anchor.FIXED, None),
    ("AC-301", "Compressor 2,000 h service", 6, IntervalUnit.MONTHS, Anchor.FIXED, 2000.0),
    ("AC-302", "Compressor 2,000 h service", 6, IntervalUnit.MONTHS, Anchor.FIXED, 2000.0),
    ("M-101", "Motor 500 h bearing greasing", None, None, Anchor.FIXED, 500.0),
    ("CH-301", "Chiller condenser clean", 3, IntervalUnit.MONTHS, Anchor.FLOATING, None),
    ("BL-301", "Boiler statutory inspection", 12, IntervalUnit.MONTHS, Anchor.FIXED, None),
)

DEMO_USERS = (
    ("admin", "Alex Admin", Role.ADMIN),
    ("manager", "Maria Manager", Role.MAINTENANCE_MANAGER),
    ("tech", "Tomás Technician", Role.TECHNICIAN),
    ("buyer", "Priya Procurement", Role.PROCUREMENT),
    ("analyst", "Ana Analyst", Role.ANALYST),
)


def demo_password() -> str:
    """A fresh random password for the demo users, printed at start."""
    return "demo-" + secrets.token_urlsafe(9)


def seed_demo_plant(session: Session, password: str, *, now: dt.datetime | None = None) -> bool:
    """Create the demo plant if it is missing and set the demo users' password.

    Returns True when the plant was created, False when it already existed. Running it again
    only resets the demo passwords, so the data people entered in the demo survives restarts.
    """
    when = now or utcnow()
    set_actor(session, Actor(user_id=None, name="demo-seed"))
    users = _upsert_users(session, password)
    if session.scalar(select(Site).where(Site.code == SITE_CODE)) is not None:
        return False
    rng = random.Random(42)  # noqa: S311 - demo data, not security
    site = Site(code=SITE_CODE, name="Riverside Beverage Plant", timezone="Europe/Amsterdam")
    session.add(site)
    session.flush()
    locations = {}
    for code, name, kind in LINES:
        location = Location(site_id=site.id, code=code, name=name, kind=kind)
        session.add(location)
        locations[code] = location
    session.flush()
    assets = {}
    for seed in ASSETS:
        asset = Asset(
            tag=seed.tag,
            name=seed.name,
            site_id=site.id,
            location_id=locations[seed.line].id,
            asset_class=seed.asset_class,
            criticality=seed.criticality,
            manufacturer=seed.manufacturer,
            model=seed.model,
            serial_number=f"{seed.manufacturer[:3].upper()}-{rng.randint(100000, 999999)}",
            install_date=dt.date(2015 + rng.randint(0, 9), rng.randint(1, 12), rng.randint(1, 28)),
        )
        session.add(asset)
        assets[seed.tag] = asset
    session.flush()
    for child, parent in PARENTS.items():
        assets[child].parent_id = assets[parent].id
    assets["CP-201"].status = AssetStatus.DEGRADED
    assets["AC-302"].status = AssetStatus.STANDBY
    parts = {}
    for number, name, category, unit, cost, on_hand, reorder, maximum in PARTS:
        part = Part(
            number=number,
            name=name,
            category=category,
            unit=unit,
            unit_cost=Decimal(cost),
            currency="EUR",
        )
        session.add(part)
        session.flush()
        session.add(
            StockLevel(
                part_id=part.id,
                location_id=locations["ST"].id,
                on_hand=Decimal(on_hand),
                reorder_point=Decimal(reorder),
                max_level=Decimal(maximum),
            )
        )
        parts[number] = part
    session.flush()
    meters = _seed_meters(session, assets, rng, when)
    _seed_schedules(session, assets, meters, when)
    _seed_work_orders(session, assets, parts, users, when)
    return True


def _upsert_users(session: Session, password: str) -> dict[str, User]:
    hashed = hash_password(password)
    users = {}
    for username, full_name, role in DEMO_USERS:
        user = session.scalar(select(User).where(User.username == username))
        if user is None:
            user = User(username=username, full_name=full_name, role=role, password_hash=hashed)
            session.add(user)
        else:
            user.password_hash = hashed
            user.active = True
        users[username] = user
    session.flush()
    return users


def _seed_meters(
    session: Session, assets: dict[str, Asset], rng: random.Random, now: dt.datetime
) -> dict[str, Meter]:
    meters = {}
    for tag, start, per_day in (
        ("AC-301", 1650.0, 20.0),
        ("AC-302", 820.0, 4.0),
        ("M-101", 380.0, 16.0),
    ):
        meter = Meter(asset_id=assets[tag].id, name="Runtime", unit="h", kind=MeterKind.COUNTER)
        session.add(meter)
        session.flush()
        value = start
        for days_ago in range(30, -1, -1):
            # Weekends run shorter shifts; the noise keeps the chart believable.
            day = now - dt.timedelta(days=days_ago)
            weekend = day.weekday() >= 5
            value += per_day * (0.4 if weekend else 1.0) * (0.9 + 0.2 * rng.random())
            session.add(
                MeterReading(meter_id=meter.id, value=round(value, 1), read_at=day, source="demo")
            )
        meter.current_value = round(value, 1)
        meter.read_at = now
        meters[tag] = meter
    cycles = Meter(
        asset_id=assets["CP-101"].id, name="Capping cycles", unit="cycles", kind=MeterKind.COUNTER
    )
    session.add(cycles)
    session.flush()
    total = 0.0
    for days_ago in range(30, -1, -1):
        total += 40000 * (1 + 0.1 * math.sin(days_ago))
        session.add(
            MeterReading(
                meter_id=cycles.id,
                value=round(total),
                read_at=now - dt.timedelta(days=days_ago),
                source="demo",
            )
        )
    cycles.current_value = round(total)
    cycles.read_at = now
    session.flush()
    return meters


def _seed_schedules(
    session: Session, assets: dict[str, Asset], meters: dict[str, Meter], now: dt.datetime
) -> None:
    for index, (tag, name, count, unit, anchor, meter_every) in enumerate(SCHEDULES):
        # Spread the start dates so that some work is due this week and some later.
        start = now - dt.timedelta(days=3 + 5 * index)
        schedule = MaintenanceSchedule(
            asset_id=assets[tag].id,
            name=name,
            description=f"Standard job plan for {assets[tag].asset_class}s.",
            interval_count=count,
            interval_unit=unit,
            anchor=anchor,
            lead_days=2 if count else 0,
            starts_at=start,
            next_due_at=add_interval(start, count, unit) if count and unit else None,
        )
        if meter_every is not None:
            meter = meters[tag]
            schedule.meter_id = meter.id
            schedule.meter_interval = meter_every
            schedule.meter_lead = meter_every * 0.05
            current = meter.current_value or 0.0
            schedule.next_due_meter = (math.floor(current / meter_every) + 1) * meter_every
        session.add(schedule)
    session.flush()


def _seed_work_orders(
    session: Session,
    assets: dict[str, Asset],
    parts: dict[str, Part],
    users: dict[str, User],
    now: dt.datetime,
) -> None:
    tech = users["tech"].id
    manager = users["manager"].id
    closed, _ = open_work_order(
        session,
        asset_id=assets["CV-101"].id,
        title="Belt tracking off on infeed conveyor",
        type=WorkOrderType.CORRECTIVE,
        priority=Priority.HIGH,
        description="Operators report the belt drifting to the drive side.",
        created_by_id=manager,
    )
    for status, minutes in (
        (WorkOrderStatus.ASSIGNED, 10),
        (WorkOrderStatus.IN_PROGRESS, 60),
        (WorkOrderStatus.COMPLETED, 150),
        (WorkOrderStatus.CLOSED, 200),
    ):
        transition_work_order(
            session,
            closed,
            status,
            assignee_id=tech,
            now=now - dt.timedelta(days=6, minutes=-minutes),
        )
    seal, _ = open_work_order(
        session,
        asset_id=assets["P-102"].id,
        title="Replace leaking mechanical seal",
        type=WorkOrderType.CORRECTIVE,
        priority=Priority.URGENT,
        description="Drip under the CIP pump; seal faces worn.",
        parts=[PartNeed(parts["SEAL-M37"].id, Decimal(1))],
        created_by_id=manager,
    )
    transition_work_order(session, seal, WorkOrderStatus.ASSIGNED, assignee_id=tech)
    transition_work_order(session, seal, WorkOrderStatus.IN_PROGRESS)
    contactor, _ = open_work_order(
        session,
        asset_id=assets["M-201"].id,
        title="Contactor chatter on case conveyor motor",
        type=WorkOrderType.CORRECTIVE,
        priority=Priority.MEDIUM,
        parts=[PartNeed(parts["CNT-3RT"].id, Decimal(1))],
        created_by_id=manager,
    )
    transition_work_order(
        session, contactor, WorkOrderStatus.WAITING_FOR_PARTS, reason="No 3RT2026 in stock"
    )
    open_work_order(
        session,
        asset_id=assets["CH-301"].id,
        title="Quarterly chiller inspection",
        type=WorkOrderType.INSPECTION,
        priority=Priority.LOW,
        due_at=now + dt.timedelta(days=5),
        created_by_id=manager,
    )
    open_work_order(
        session,
        asset_id=assets["CP-201"].id,
        title="Case packer glue nozzles blocking",
        type=WorkOrderType.CORRECTIVE,
        priority=Priority.HIGH,
        created_by_id=users["tech"].id,
    )
