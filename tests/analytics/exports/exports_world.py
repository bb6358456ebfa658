"""A second site for export tests: the analytics world's plant is site S1 ("A"); this adds site
S2 ("B") with its own line, asset, work order and user, so that row-level security has rows to
keep out. Also helpers to read the built warehouse and the lineage file."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import duckdb
from sqlalchemy.orm import Session

from analytics.analytics_world import at
from maintainpro.analytics.warehouse import connect
from maintainpro.core.assets import Asset, Location, LocationKind, Site
from maintainpro.core.users import Role, User
from maintainpro.core.work_orders import WorkOrder, WorkOrderStatus, WorkOrderType


def add_site_b(session: Session) -> dict[str, int]:
    """Site S2 with line L2, asset B-1, a completed corrective work order and a planner."""
    site = Site(code="S2", name="Second plant")
    session.add(site)
    session.flush()
    line = Location(site_id=site.id, code="L2", name="Line 2", kind=LocationKind.LINE)
    session.add(line)
    session.flush()
    asset = Asset(tag="B-1", name="Boiler", site_id=site.id, location_id=line.id)
    session.add(asset)
    session.flush()
    order = WorkOrder(
        title="Boiler leak",
        type=WorkOrderType.CORRECTIVE,
        asset_id=asset.id,
        status=WorkOrderStatus.COMPLETED,
        created_at=at(70),
        started_at=at(71),
        completed_at=at(75),
    )
    planner = User(
        username="planner-b", role=Role.MAINTENANCE_MANAGER, password_hash="x", site_id=site.id
    )
    session.add_all([order, planner])
    session.commit()
    return {"site_b": site.id, "asset_b": asset.id, "wo_b": order.id, "planner_b": planner.id}


def add_work_order(session: Session, asset_id: int, created_hours: float) -> int:
    """One more open corrective work order (for incremental exports)."""
    order = WorkOrder(
        title=f"later order at {created_hours}h",
        type=WorkOrderType.CORRECTIVE,
        asset_id=asset_id,
        status=WorkOrderStatus.OPEN,
        created_at=at(created_hours),
    )
    session.add(order)
    session.commit()
    return order.id


def warehouse_rows(
    source: Path | duckdb.DuckDBPyConnection, table: str, key: str, where: str = "TRUE"
) -> list[tuple[Any, ...]]:
    """A warehouse table's rows in key order, from an open connection or the file.

    The file is opened (and closed) as the exporters open it: the warehouse's connect() cannot
    open a file twice in one process, so a test holding a connection passes it instead.
    """
    sql = f"SELECT * FROM {table} WHERE {where} ORDER BY {key}"  # noqa: S608 - test names
    if isinstance(source, duckdb.DuckDBPyConnection):
        return source.execute(sql).fetchall()
    connection = connect(source, read_only=True)
    try:
        return connection.execute(sql).fetchall()
    finally:
        connection.close()


def export_events(lineage_file: Path) -> list[dict[str, Any]]:
    """The export runs' lineage events (the ETL's own are left out)."""
    if not lineage_file.exists():
        return []
    events = [json.loads(line) for line in lineage_file.read_text().splitlines() if line]
    return [e for e in events if e["job"]["name"].startswith("export.")]
