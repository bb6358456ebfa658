"""Two sites with preventive and corrective work in February 2026, alerts, an open backlog, spend
for both sites, and the people who receive reports: each site's manager and one at head office.

The report runs on 1 March 2026 at 06:00 Europe/Berlin (05:00 UTC) for the previous month,
1 February to 1 March Berlin time. Every figure the tests expect is worked out from the rows
below, in the tests themselves.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal

from sqlalchemy.orm import Session

from maintainpro.analytics.reports.records import (
    RecipientKind,
    ReportDefinition,
    ReportRecipient,
    ReportSchedule,
)
from maintainpro.core.assets import Asset, Location, LocationKind, Site
from maintainpro.core.inventory import Part, StockLevel
from maintainpro.core.schedules import IntervalUnit, MaintenanceSchedule
from maintainpro.core.users import Role, User
from maintainpro.core.work_orders import WorkOrder, WorkOrderStatus, WorkOrderType
from maintainpro.iot.alerts import Alert, AlertKind, AlertStatus
from maintainpro.supply.fx import AppliedRate
from maintainpro.supply.purchasing import (
    ApprovalPolicy,
    add_line,
    approve_order,
    new_purchase_order,
)
from maintainpro.supply.suppliers import Supplier, SupplierStatus

UTC = dt.UTC
BERLIN = "Europe/Berlin"
RUN_AT = dt.datetime(2026, 3, 1, 5, 0, tzinfo=UTC)  # 06:00 in Berlin
FEB_START = dt.datetime(2026, 1, 31, 23, 0, tzinfo=UTC)  # 1 February 00:00 Berlin
FEB_END = dt.datetime(2026, 2, 28, 23, 0, tzinfo=UTC)  # 1 March 00:00 Berlin
W = WorkOrderStatus
T = WorkOrderType


def feb(day: int, hour: int = 10) -> dt.datetime:
    """A moment in February 2026 (UTC)."""
    return dt.datetime(2026, 2, day, hour, tzinfo=UTC)


@dataclass
class World:
    """Ids of what the tests look at."""

    site_a: int
    site_b: int
    assets: dict[str, int]
    manager_a: int
    manager_b: int
    head_office: int
    admin: int


def _site(session: Session, code: str) -> tuple[int, int]:
    site = Site(code=code, name=f"Site {code}", timezone=BERLIN)
    session.add(site)
    session.flush()
    store = Location(site_id=site.id, code=f"ST-{code}", name="Store", kind=LocationKind.STOREROOM)
    session.add(store)
    session.flush()
    return site.id, store.id


def _asset(session: Session, tag: str, site_id: int) -> int:
    asset = Asset(tag=tag, name=f"Asset {tag}", site_id=site_id)
    session.add(asset)
    session.flush()
    return asset.id


def _plan(session: Session, asset_id: int, name: str) -> int:
    plan = MaintenanceSchedule(
        asset_id=asset_id,
        name=name,
        interval_count=1,
        interval_unit=IntervalUnit.MONTHS,  # grace: 10 % of 30 days = 3 days
        next_due_at=dt.datetime(2026, 3, 10, tzinfo=UTC),
    )
    session.add(plan)
    session.flush()
    return plan.id


def _order(
    session: Session,
    asset_id: int,
    wo_type: WorkOrderType,
    created: dt.datetime,
    status: WorkOrderStatus,
    *,
    schedule_id: int | None = None,
    due_at: dt.datetime | None = None,
    started_at: dt.datetime | None = None,
    completed_at: dt.datetime | None = None,
    title: str | None = None,
) -> int:
    order = WorkOrder(
        title=title or f"{wo_type.value} on {asset_id}",
        type=wo_type,
        asset_id=asset_id,
        status=status,
        created_at=created,
        schedule_id=schedule_id,
        due_at=due_at,
        started_at=started_at,
        completed_at=completed_at,
    )
    session.add(order)
    session.flush()
    return order.id


def _user(session: Session, name: str, role: Role, site_id: int | None) -> int:
    user = User(
        username=name,
        email=f"{name}@plant.example",
        role=role,
        password_hash="x",
        site_id=site_id,
    )
    session.add(user)
    session.flush()
    return user.id


def build(session: Session) -> World:
    """The whole world, committed."""
    site_a, store_a = _site(session, "SA")
    site_b, store_b = _site(session, "SB")
    assets = {
        "PA-1": _asset(session, "PA-1", site_a),
        "PA-2": _asset(session, "PA-2", site_a),
        "PB-1": _asset(session, "PB-1", site_b),
    }
    plan_a1 = _plan(session, assets["PA-1"], "Monthly lube PA-1")
    plan_a2 = _plan(session, assets["PA-2"], "Monthly check PA-2")
    plan_b1 = _plan(session, assets["PB-1"], "Monthly service PB-1")
    # Preventive occurrences due in February (grace 3 days), judged at the end of the period.
    pm = T.PREVENTIVE
    # On time: due 3 Feb, done 4 Feb.
    _order(
        session,
        assets["PA-1"],
        pm,
        feb(1),
        W.COMPLETED,
        schedule_id=plan_a1,
        due_at=feb(3),
        completed_at=feb(4),
    )
    # Late: done 10 days after it was due.
    _order(
        session,
        assets["PA-2"],
        pm,
        feb(8),
        W.CLOSED,
        schedule_id=plan_a2,
        due_at=feb(10),
        completed_at=feb(20),
    )
    # Missed: due 25 Feb, still open when the 3 days of grace ran out.
    _order(session, assets["PA-1"], pm, feb(22), W.OPEN, schedule_id=plan_a1, due_at=feb(25))
    # On time: done the day it was due.
    _order(
        session,
        assets["PB-1"],
        pm,
        feb(10),
        W.COMPLETED,
        schedule_id=plan_b1,
        due_at=feb(12),
        completed_at=feb(12, 15),
    )
    # Pending: due 27 Feb 12:00, its grace runs to 2 March.
    _order(
        session, assets["PB-1"], pm, feb(25), W.ASSIGNED, schedule_id=plan_b1, due_at=feb(27, 12)
    )
    # Due in January: outside the period.
    _order(
        session,
        assets["PB-1"],
        pm,
        dt.datetime(2026, 1, 10, tzinfo=UTC),
        W.COMPLETED,
        schedule_id=plan_b1,
        due_at=dt.datetime(2026, 1, 12, tzinfo=UTC),
        completed_at=dt.datetime(2026, 1, 12, 12, tzinfo=UTC),
    )
    # Failures in February: PA-1 three (one done after 6 h), PA-2 one, PB-1 one (done after 30 h).
    cm = T.CORRECTIVE
    _order(
        session,
        assets["PA-1"],
        cm,
        feb(2),
        W.COMPLETED,
        started_at=feb(2, 12),
        completed_at=feb(2, 16),
    )
    _order(session, assets["PA-1"], cm, feb(14), W.CANCELLED)  # not counted
    _order(
        session,
        assets["PA-1"],
        cm,
        feb(15),
        W.IN_PROGRESS,
        started_at=feb(15, 11),
        title="Seal leak",
    )
    _order(
        session,
        assets["PA-1"],
        T.CONDITION_BASED,
        feb(20),
        W.WAITING_FOR_PARTS,
        title="Bearing noise",
    )
    _order(session, assets["PA-2"], cm, feb(5), W.OPEN, title="Fan belt")
    _order(
        session,
        assets["PB-1"],
        cm,
        feb(6),
        W.COMPLETED,
        started_at=feb(6, 20),
        completed_at=feb(7, 16),
    )
    # An old open corrective order on PB-1, opened 100 days before the run.
    _order(
        session, assets["PB-1"], cm, RUN_AT - dt.timedelta(days=100), W.ON_HOLD, title="Old leak"
    )
    # Alerts in February: PA-2 two, PB-1 three; one on PA-1 in January (outside).
    for asset, day in (("PA-2", 3), ("PA-2", 9), ("PB-1", 4), ("PB-1", 5), ("PB-1", 6)):
        _alert(session, assets[asset], feb(day))
    _alert(session, assets["PA-1"], dt.datetime(2026, 1, 20, tzinfo=UTC))
    # Spend on 10 February: 2 x 35.00 for site A's store, 1 x 5.00 for site B's.
    _spend(session, store_a, store_b)
    manager_a = _user(session, "manager-a", Role.MAINTENANCE_MANAGER, site_a)
    manager_b = _user(session, "manager-b", Role.MAINTENANCE_MANAGER, site_b)
    head_office = _user(session, "head-office", Role.ANALYST, None)
    admin = _user(session, "report-admin", Role.ADMIN, None)
    session.commit()
    return World(site_a, site_b, assets, manager_a, manager_b, head_office, admin)


def _alert(session: Session, asset_id: int, raised: dt.datetime) -> None:
    session.add(
        Alert(
            asset_id=asset_id,
            kind=AlertKind.THRESHOLD,
            severity="warning",
            status=AlertStatus.CLEARED,
            title="Vibration high",
            raised_at=raised,
        )
    )
    session.flush()


def _spend(session: Session, store_a: int, store_b: int) -> None:
    part = Part(number="BRG-9", name="Bearing", unit_cost=Decimal("35.00"))
    session.add(part)
    session.flush()
    level_a = StockLevel(part_id=part.id, location_id=store_a)
    level_b = StockLevel(part_id=part.id, location_id=store_b)
    supplier = Supplier(
        code="ACME",
        legal_name="ACME Ltd",
        country="US",
        currency="USD",
        status=SupplierStatus.ACTIVE,
    )
    session.add_all([level_a, level_b, supplier])
    session.flush()
    day = dt.date(2026, 2, 10)
    rate = AppliedRate("USD", "USD", Decimal(1), day, "identity", day)
    order = new_purchase_order(
        session, supplier=supplier, currency="USD", base_currency="USD", rate=rate
    )
    session.flush()
    add_line(
        order,
        part_id=part.id,
        quantity=Decimal(2),
        unit_price=Decimal("35.00"),
        stock_level_id=level_a.id,
    )
    add_line(
        order,
        part_id=part.id,
        quantity=Decimal(1),
        unit_price=Decimal("5.00"),
        stock_level_id=level_b.id,
    )
    session.flush()
    buyer = User(username="buyer", role=Role.ADMIN, password_hash="x")
    session.add(buyer)
    session.flush()
    approve_order(
        session,
        order,
        approver_id=buyer.id,
        role=Role.ADMIN,
        policy=ApprovalPolicy(),
        now=feb(10),
    )
    session.flush()


def definition(
    session: Session,
    world: World | None,
    source: str = "pm_compliance",
    *,
    name: str = "PM compliance February",
    params: dict[str, object] | None = None,
    formats: tuple[str, ...] = ("pdf", "xlsx"),
    skip_when_empty: bool = False,
    owner_id: int | None = None,
) -> int:
    """A definition owned by the world's administrator or ``owner_id`` (committed); its id."""
    report = ReportDefinition(
        name=name,
        source=source,
        params=params if params is not None else {"period": "previous_month"},
        formats=list(formats),
        skip_when_empty=skip_when_empty,
        owner_id=owner_id if owner_id is not None or world is None else world.admin,
    )
    session.add(report)
    session.commit()
    return report.id


def schedule(
    session: Session,
    definition_id: int,
    next_run_at: dt.datetime | None,
    cron: str = "0 6 1 * *",
    timezone: str = BERLIN,
) -> int:
    """A schedule (committed); its id."""
    row = ReportSchedule(
        definition_id=definition_id, cron=cron, timezone=timezone, next_run_at=next_run_at
    )
    session.add(row)
    session.commit()
    return row.id


def email_recipient(
    session: Session,
    definition_id: int,
    *,
    user_id: int | None = None,
    address: str | None = None,
    site_id: int | None = None,
) -> int:
    """An e-mail recipient (committed); its id."""
    row = ReportRecipient(
        definition_id=definition_id,
        kind=RecipientKind.EMAIL,
        user_id=user_id,
        address=address,
        site_id=site_id,
    )
    session.add(row)
    session.commit()
    return row.id
