"""A small plant for warehouse tests: hierarchy, sensors with readings, alerts, work orders with
status history and costs, a preventive schedule, and one purchase order through to its invoice.

Times are fixed so that every KPI can be worked out by hand (see KPI_PERIOD and the comments on
each work order). The figures the tests expect are derived in the tests, from these inputs.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from sqlalchemy import Connection, insert
from sqlalchemy.orm import Session

from maintainpro.core.assets import Location, LocationKind
from maintainpro.core.events import OutboxEvent
from maintainpro.core.inventory import Part, Reservation, ReservationStatus, StockLevel
from maintainpro.core.schedules import IntervalUnit, MaintenanceSchedule
from maintainpro.core.users import Role, User
from maintainpro.core.work_orders import (
    Origin,
    WorkOrder,
    WorkOrderNote,
    WorkOrderStatus,
    WorkOrderType,
)
from maintainpro.iot.alerts import Alert, AlertKind, AlertStatus
from maintainpro.iot.devices import Device, Protocol, Sensor
from maintainpro.iot.rollups import hour_rollups
from maintainpro.iot.timeseries import ReadingRow, to_ms, write_readings
from maintainpro.supply.fx import AppliedRate
from maintainpro.supply.invoices import InvoiceStatus, SupplierInvoice, SupplierInvoiceLine
from maintainpro.supply.purchasing import PoStatus, add_line, move_order, new_purchase_order
from maintainpro.supply.rates import ExchangeRate
from maintainpro.supply.receiving import GoodsReceipt
from maintainpro.supply.suppliers import Supplier, SupplierStatus
from support import plant

T0 = dt.datetime(2026, 1, 5, tzinfo=dt.UTC)
EUR_USD = Decimal("1.0800")
KPI_PERIOD = (T0, T0 + dt.timedelta(hours=100))
S = WorkOrderStatus


def at(hours: float) -> dt.datetime:
    """T0 plus some hours."""
    return T0 + dt.timedelta(hours=hours)


def build_plant(session: Session) -> dict[str, int]:
    """plant() (site S1, line L1 under a new area A1, pump P-1, motor M-1, part BRG-1 at 10 USD),
    a EUR part, a technician, a device on the pump with a °F temperature and a vibration sensor,
    and the EUR/USD rate."""
    ids = plant(session)
    area = Location(site_id=ids["site"], code="A1", name="Area 1", kind=LocationKind.AREA)
    session.add(area)
    session.flush()
    line = session.get(Location, ids["line"])
    assert line is not None
    line.parent_id = area.id
    seal = Part(number="SEAL-EU", name="Seal", unit_cost=Decimal("100.00"), currency="EUR")
    tech = User(username="tech", role=Role.TECHNICIAN, password_hash="x", site_id=ids["site"])
    session.add_all([seal, tech])
    session.flush()
    seal_stock = StockLevel(part_id=seal.id, location_id=ids["store"], on_hand=Decimal(3))
    device = Device(key="dev-1", name="Pump monitor", protocol=Protocol.MQTT, asset_id=ids["pump"])
    session.add_all([seal_stock, device])
    session.flush()
    temp = Sensor(device_id=device.id, key="temp", type="Temperature", unit="degF")
    temp.min_value, temp.max_value = 32.0, 212.0
    vib = Sensor(device_id=device.id, key="vib", type="vibration", unit="mm/s")
    vib.min_value, vib.max_value = 0.0, 50.0
    session.add_all([temp, vib])
    session.add(ExchangeRate(day=T0.date(), currency="USD", per_eur=EUR_USD, source="ECB"))
    session.flush()
    ids.update(
        area=area.id,
        seal=seal.id,
        seal_stock=seal_stock.id,
        tech=tech.id,
        device=device.id,
        temp=temp.id,
        vib=vib.id,
    )
    return ids


def add_readings(connection: Connection, sensor_id: int, hours: range, per_hour: int = 4) -> int:
    """Readings through the real write path (rollups merged): value = hour + minute / 100."""
    rows = [
        ReadingRow(sensor_id, to_ms(at(h) + dt.timedelta(minutes=m * 10)), h + m / 100, 0)
        for h in hours
        for m in range(per_hour)
    ]
    return write_readings(connection, rows)


def add_broken_rollup(connection: Connection, sensor_id: int, hour: int) -> None:
    """An hourly rollup holding an infinite value (a corrupt bucket the ETL must drop)."""
    connection.execute(
        insert(hour_rollups).values(
            sensor_id=sensor_id,
            bucket=to_ms(at(hour)),
            reading_count=1,
            value_sum=float("inf"),
            value_min=1.0,
            value_max=float("inf"),
            last_ts=to_ms(at(hour)),
            last_value=1.0,
        )
    )


def _order(
    session: Session,
    asset_id: int,
    wo_type: WorkOrderType,
    created: float,
    moves: list[tuple[float, WorkOrderStatus]],
    **extra: Any,
) -> WorkOrder:
    """A work order created at T0 + ``created`` h that went through ``moves`` (hours, status),
    with the status-change events the services write for each move."""
    order = WorkOrder(
        title=f"{wo_type.value} at {created}h",
        type=wo_type,
        asset_id=asset_id,
        status=S.OPEN,
        created_at=at(created),
        **extra,
    )
    session.add(order)
    session.flush()
    previous = S.OPEN
    for hours, target in moves:
        when = at(hours)
        if target is S.IN_PROGRESS and order.started_at is None:
            order.started_at = when
        if target is S.COMPLETED:
            order.completed_at = when
        if target is S.CLOSED:
            order.closed_at = when
        order.status = target
        session.add(
            OutboxEvent(
                topic="work_order.status_changed",
                payload={"work_order_id": order.id, "from": previous.value, "to": target.value},
                created_at=when,
                available_at=when,
            )
        )
        previous = target
    session.flush()
    return order


def _consume(session: Session, order: WorkOrder, stock_level_id: int, quantity: str) -> None:
    session.add(
        Reservation(
            work_order_id=order.id,
            stock_level_id=stock_level_id,
            quantity=Decimal(quantity),
            status=ReservationStatus.CONSUMED,
            closed_at=order.completed_at,
        )
    )


def maintenance_history(session: Session, ids: dict[str, int]) -> dict[str, int]:
    """Work orders on the pump and the motor over KPI_PERIOD (T0 .. T0 + 100 h).

    Pump (P-1):
      wo1 corrective, created 10 h, waiting for parts 10.5-12 h, in progress 12 h, completed
          14 h: downtime 4 h, waiting 1.5 h, 2 x BRG-1 at 10 USD + 1 x SEAL-EU at 100 EUR
          consumed, 2.5 labour hours
      wo2 corrective, created 50 h, in progress 50 h, completed 52 h: downtime 2 h
      wo3 preventive from the schedule, due 30 h, started 31 h, completed 33 h: planned
          downtime 2 h, on time
      wo4 preventive from the schedule, created 55 h, due 60 h, still open: missed at the
          period end (due + 1 day grace = 84 h < 100 h), backlog age 45 h
    Motor (M-1): two failures on one stoppage
      wo5 corrective created 20 h, completed 30 h; wo6 corrective created 25 h, completed
          28 h: merged downtime 10 h (20-30 h)
    """
    schedule = MaintenanceSchedule(
        asset_id=ids["pump"],
        name="Monthly lubrication",
        interval_count=1,
        interval_unit=IntervalUnit.DAYS,
        next_due_at=at(84),
    )
    session.add(schedule)
    session.flush()
    pump, motor = ids["pump"], ids["motor"]
    c, p = WorkOrderType.CORRECTIVE, WorkOrderType.PREVENTIVE
    wo1 = _order(
        session,
        pump,
        c,
        10,
        [(10.5, S.WAITING_FOR_PARTS), (12, S.IN_PROGRESS), (14, S.COMPLETED)],
        assignee_id=ids["tech"],
    )
    wo2 = _order(session, pump, c, 50, [(50, S.IN_PROGRESS), (52, S.COMPLETED)])
    planned = {"origin": Origin.SCHEDULE, "schedule_id": schedule.id}
    wo3 = _order(
        session, pump, p, 29, [(31, S.IN_PROGRESS), (33, S.COMPLETED)], due_at=at(30), **planned
    )
    wo4 = _order(session, pump, p, 55, [], due_at=at(60), **planned)
    wo5 = _order(session, motor, c, 20, [(20, S.IN_PROGRESS), (30, S.COMPLETED)])
    wo6 = _order(session, motor, c, 25, [(25, S.IN_PROGRESS), (28, S.COMPLETED)])
    _consume(session, wo1, ids["stock"], "2")
    _consume(session, wo1, ids["seal_stock"], "1")
    session.add_all(
        [
            WorkOrderNote(work_order_id=wo1.id, body="bearing out", hours=Decimal("1.5")),
            WorkOrderNote(work_order_id=wo1.id, body="bearing in", hours=Decimal("1.0")),
        ]
    )
    session.flush()
    return {
        "schedule": schedule.id,
        "wo1": wo1.id,
        "wo2": wo2.id,
        "wo3": wo3.id,
        "wo4": wo4.id,
        "wo5": wo5.id,
        "wo6": wo6.id,
    }


def alert_history(session: Session, ids: dict[str, int]) -> int:
    """One alert on the temperature sensor, raised at 10 h, acknowledged 12 minutes later."""
    alert = Alert(
        sensor_id=ids["temp"],
        device_id=ids["device"],
        asset_id=ids["pump"],
        kind=AlertKind.THRESHOLD,
        severity="HIGH",
        status=AlertStatus.ACKNOWLEDGED,
        title="Hot bearing",
        raised_at=at(10),
        acknowledged_at=at(10.2),
    )
    session.add(alert)
    session.flush()
    return alert.id


def purchasing_history(session: Session, ids: dict[str, int]) -> dict[str, int]:
    """A EUR order priced at 1.08 USD/EUR: 2 x BRG-1 at 12.50 EUR (25.00 EUR = 27.00 USD),
    received at 40 h against need-by T0 + 1 day, invoiced (matched); a second, rejected
    invoice that is no spend."""
    supplier = Supplier(
        code="EUROBEAR",
        legal_name="Eurobear GmbH",
        country="DE",
        currency="EUR",
        status=SupplierStatus.ACTIVE,
    )
    session.add(supplier)
    session.flush()
    rate = AppliedRate("EUR", "USD", EUR_USD, T0.date(), "ECB", T0.date())
    order = new_purchase_order(
        session, supplier=supplier, currency="EUR", base_currency="USD", rate=rate, now=at(1)
    )
    session.flush()  # the draft status is the column default, set on flush
    line = add_line(
        order,
        part_id=ids["part"],
        quantity=Decimal(2),
        unit_price=Decimal("12.50"),
        need_by=(T0 + dt.timedelta(days=1)).date(),
    )
    move_order(order, PoStatus.APPROVED, now=at(2))
    move_order(order, PoStatus.SENT, now=at(3))
    order.sent_at = at(3)
    session.flush()
    receipt = GoodsReceipt(
        purchase_order_line_id=line.id,
        stock_level_id=ids["stock"],
        quantity_received=Decimal(2),
        received_at=at(40),
    )
    line.received_quantity = Decimal(2)
    move_order(order, PoStatus.RECEIVED, now=at(40))
    session.add(receipt)
    session.flush()
    invoices = []
    for number, status in (("INV-1", InvoiceStatus.MATCHED), ("INV-2", InvoiceStatus.REJECTED)):
        invoice = SupplierInvoice(
            supplier_id=supplier.id,
            purchase_order_id=order.id,
            invoice_number=number,
            invoice_date=(T0 + dt.timedelta(days=2)).date(),
            currency="EUR",
            total=Decimal("25.00"),
            tax=Decimal(0),
            status=status,
        )
        invoice.lines = [
            SupplierInvoiceLine(
                line_no=1,
                purchase_order_line_id=line.id,
                quantity=Decimal(2),
                unit_price=Decimal("12.50"),
                line_total=Decimal("25.00"),
            )
        ]
        session.add(invoice)
        invoices.append(invoice)
    session.flush()
    return {
        "supplier": supplier.id,
        "po": order.id,
        "po_line": line.id,
        "receipt": receipt.id,
        "invoice": invoices[0].id,
        "rejected_invoice": invoices[1].id,
    }


def seed(session: Session) -> dict[str, int]:
    """The whole world, committed: plant, readings (0-5 h on both sensors, one corrupt bucket
    at 6 h on vibration), alerts, maintenance and purchasing."""
    ids = build_plant(session)
    add_readings(session.connection(), ids["temp"], range(6))
    add_readings(session.connection(), ids["vib"], range(6))
    add_broken_rollup(session.connection(), ids["vib"], 6)
    ids["alert"] = alert_history(session, ids)
    ids.update(maintenance_history(session, ids))
    ids.update(purchasing_history(session, ids))
    session.commit()
    return ids
