"""The scheduled reorder-point check: requisitions, automatic draft orders, settings, wiring."""

from __future__ import annotations

import contextlib
import datetime as dt
import threading
from decimal import Decimal

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from maintainpro.app import create_app
from maintainpro.config import Settings
from maintainpro.core.inventory import StockLevel
from maintainpro.supply import jobs, requisitions
from maintainpro.supply.jobs import reorder_check
from maintainpro.supply.purchasing import PoStatus, PurchaseOrder
from maintainpro.supply.requisitions import (
    RequisitionLine,
    RequisitionLineStatus,
    RequisitionSource,
)
from supply.procurement_world import TODAY, World

NOW = dt.datetime.combine(TODAY, dt.time(6, 0), tzinfo=dt.UTC)


@pytest.fixture
def low_stock(world: World) -> World:
    """The bearing at 1 on hand (reorder point 2, maximum 10), sold by ACME in packs of 5."""
    stock = world.db.get(StockLevel, world.ids["stock"])
    assert stock is not None
    stock.on_hand = Decimal(1)
    stock.max_level = Decimal(10)
    world.item(world.supplier("ACME", "USD"), [("5", "4.00")], pack="5")
    world.db.commit()
    return world


def _lines(factory: sessionmaker[Session]) -> list[tuple[RequisitionSource, Decimal, str]]:
    with factory() as session:
        return [
            (line.source, line.quantity, line.status.value)
            for line in session.scalars(select(RequisitionLine).order_by(RequisitionLine.id))
        ]


def test_stock_below_its_reorder_point_is_requisitioned_and_ordered(
    session_factory: sessionmaker[Session], settings: Settings, low_stock: World
) -> None:
    run = reorder_check(session_factory, settings, now=NOW)
    assert len(run.requisition_lines) == 1
    assert (run.considered, run.ordered, run.left_for_buyer) == (1, 1, [])
    assert _lines(session_factory) == [(RequisitionSource.REORDER_POINT, Decimal(9), "ordered")]
    with session_factory() as session:
        (order,) = session.scalars(select(PurchaseOrder)).all()
        assert order.id == run.orders[0]
        assert (order.status, order.automatic, order.supplier.code) == (
            PoStatus.DRAFT,
            True,
            "ACME",
        )
        (line,) = order.lines
        # 9 up to the maximum, rounded to whole packs of 5, explained on the line.
        assert (line.quantity, line.unit_price, line.stock_level_id) == (
            Decimal(10),
            Decimal(4),
            low_stock.ids["stock"],
        )
        assert "9 needed, 10 ordered" in line.explanation
        assert order.fx_requested_date == TODAY


def test_a_second_run_orders_nothing_twice(
    session_factory: sessionmaker[Session], settings: Settings, low_stock: World
) -> None:
    reorder_check(session_factory, settings, now=NOW)
    again = reorder_check(session_factory, settings, now=NOW + dt.timedelta(minutes=15))
    assert (again.requisition_lines, again.orders, again.considered) == ([], [], 0)
    with session_factory() as session:
        assert len(session.scalars(select(PurchaseOrder)).all()) == 1


def test_without_automatic_orders_only_requisitions_are_raised(
    session_factory: sessionmaker[Session], settings: Settings, low_stock: World
) -> None:
    manual = settings.model_copy(update={"auto_purchase_orders": False})
    run = reorder_check(session_factory, manual, now=NOW)
    assert len(run.requisition_lines) == 1
    assert (run.orders, run.considered) == ([], 0)
    assert _lines(session_factory) == [(RequisitionSource.REORDER_POINT, Decimal(9), "open")]


def test_a_line_without_catalogue_data_is_left_for_a_buyer_with_the_reason(
    session_factory: sessionmaker[Session], settings: Settings, world: World
) -> None:
    seal = world.part("SEAL-1")
    stock = world.db.scalars(select(StockLevel).where(StockLevel.part_id == seal)).one()
    stock.reorder_point = Decimal(4)
    world.db.commit()
    run = reorder_check(session_factory, settings, now=NOW)
    assert (run.ordered, run.orders, len(run.left_for_buyer)) == (0, [], 1)
    with session_factory() as session:
        line = session.get(RequisitionLine, run.left_for_buyer[0])
        assert line is not None
        assert line.status is RequisitionLineStatus.OPEN
        assert line.sourcing_note == "no contract and no valid catalogue price for this part"


def test_requisitions_survive_a_failing_sourcing_run(
    session_factory: sessionmaker[Session],
    settings: Settings,
    low_stock: World,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def broken(*_args: object, **_kwargs: object) -> None:
        raise RuntimeError("rate service down")

    monkeypatch.setattr(jobs, "generate_purchase_orders", broken)
    with pytest.raises(RuntimeError, match="rate service down"):
        reorder_check(session_factory, settings, now=NOW)
    assert _lines(session_factory) == [(RequisitionSource.REORDER_POINT, Decimal(9), "open")]


def test_the_settings_have_documented_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("AUTO_PURCHASE_ORDERS", "REORDER_CHECK_INTERVAL_S", "CONTRACT_WARN_DAYS"):
        monkeypatch.delenv(f"MAINTAINPRO_{name}", raising=False)
    defaults = Settings()
    assert (
        defaults.reorder_check_interval_s,
        defaults.auto_purchase_orders,
        defaults.contract_warn_days,
    ) == (900.0, True, 30)
    monkeypatch.setenv("MAINTAINPRO_AUTO_PURCHASE_ORDERS", "false")
    monkeypatch.setenv("MAINTAINPRO_REORDER_CHECK_INTERVAL_S", "60")
    monkeypatch.setenv("MAINTAINPRO_CONTRACT_WARN_DAYS", "45")
    changed = Settings()
    assert (
        changed.reorder_check_interval_s,
        changed.auto_purchase_orders,
        changed.contract_warn_days,
    ) == (60.0, False, 45)
    monkeypatch.setenv("MAINTAINPRO_CONTRACT_WARN_DAYS", "0")
    with pytest.raises(ValueError, match="contract_warn_days"):
        Settings()


def test_the_app_schedules_both_procurement_jobs(settings: Settings) -> None:
    app = create_app(settings.model_copy(update={"run_background_jobs": True}))
    names = {status.name for status in app.state.supervisor.statuses}
    assert {"reorder-check", "contract-watch"} <= names
    quiet = create_app(settings)
    assert not {"reorder-check", "contract-watch"} & {
        status.name for status in quiet.state.supervisor.statuses
    }


def test_two_processes_checking_at_once_requisition_the_shortfall_once(
    session_factory: sessionmaker[Session],
    settings: Settings,
    low_stock: World,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Each check waits (briefly) after reading what is on order until the other has read too.
    # Without the lock both read "nothing on order" and both requisition the 9; with it the
    # second only reads once the first has committed, and the first's wait simply times out.
    both_read = threading.Barrier(2)
    on_order_for = requisitions.on_order_for

    def read_then_wait(session: Session, stock_level_id: int) -> Decimal:
        quantity = on_order_for(session, stock_level_id)
        with contextlib.suppress(threading.BrokenBarrierError):
            both_read.wait(timeout=2)
        return quantity

    monkeypatch.setattr(requisitions, "on_order_for", read_then_wait)
    manual = settings.model_copy(update={"auto_purchase_orders": False})
    errors: list[BaseException] = []

    def check() -> None:
        try:
            reorder_check(session_factory, manual, now=NOW)
        except BaseException as exc:  # noqa: BLE001 - reported by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=check) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == []
    assert _lines(session_factory) == [(RequisitionSource.REORDER_POINT, Decimal(9), "open")]
