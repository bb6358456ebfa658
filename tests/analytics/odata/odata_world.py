"""Two sites for feed tests: site A is the analytics world (tests/analytics/analytics_world.py),
site B a second plant with its own pump, sensor readings and work orders, so that every fact
with a site holds rows of both sites."""

from __future__ import annotations

from sqlalchemy.orm import Session

from analytics.analytics_world import add_readings, at, seed
from maintainpro.core.assets import Asset, Site
from maintainpro.core.work_orders import WorkOrder, WorkOrderStatus, WorkOrderType
from maintainpro.iot.devices import Device, Protocol, Sensor


def second_site(session: Session) -> dict[str, int]:
    """Site S2 with pump P-2, a pressure sensor read for 5 hours, and two work orders."""
    site = Site(code="S2", name="Second plant")
    session.add(site)
    session.flush()
    pump = Asset(tag="P-2", name="Pump two", site_id=site.id, asset_class="pump")
    session.add(pump)
    session.flush()
    device = Device(key="dev-2", name="Pump two monitor", protocol=Protocol.MQTT, asset_id=pump.id)
    session.add(device)
    session.flush()
    sensor = Sensor(device_id=device.id, key="press", type="pressure", unit="bar")
    sensor.min_value, sensor.max_value = 0.0, 10.0
    session.add(sensor)
    session.flush()
    add_readings(session.connection(), sensor.id, range(5))
    for hours, status in ((3, WorkOrderStatus.COMPLETED), (7, WorkOrderStatus.OPEN)):
        order = WorkOrder(
            title=f"B order at {hours}h",
            type=WorkOrderType.CORRECTIVE,
            asset_id=pump.id,
            status=status,
            created_at=at(hours),
        )
        if status is WorkOrderStatus.COMPLETED:
            order.started_at, order.completed_at = at(hours), at(hours + 2)
        session.add(order)
    session.flush()
    return {"site_b": site.id, "pump_b": pump.id, "sensor_b": sensor.id}


def two_sites(session: Session) -> dict[str, int]:
    """Both sites, committed; ids of site A under the analytics world's names plus site B's."""
    ids = seed(session)
    ids["site_a"] = ids["site"]
    ids.update(second_site(session))
    session.commit()
    return ids
