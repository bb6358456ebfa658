"""Stock and reservations, including concurrent reservations of the same bin."""

from __future__ import annotations

import threading
from decimal import Decimal

import pytest
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from maintainpro.core.inventory import (
    StockError,
    StockLevel,
    adjust_stock,
    close_reservation,
    reserve,
)
from maintainpro.core.maintenance import open_work_order
from maintainpro.core.work_orders import WorkOrderType
from support import plant


def _order(db: Session, asset_id: int) -> int:
    order, _ = open_work_order(db, asset_id=asset_id, title="x", type=WorkOrderType.CORRECTIVE)
    return order.id


def test_cannot_reserve_more_than_available(db: Session) -> None:
    ids = plant(db)
    order_id = _order(db, ids["pump"])
    reserve(db, work_order_id=order_id, stock_level_id=ids["stock"], quantity=Decimal(4))
    with pytest.raises(StockError, match="only 1"):
        reserve(db, work_order_id=order_id, stock_level_id=ids["stock"], quantity=Decimal(2))
    with pytest.raises(StockError, match="positive"):
        reserve(db, work_order_id=order_id, stock_level_id=ids["stock"], quantity=Decimal(0))


def test_issue_never_takes_reserved_stock(db: Session) -> None:
    ids = plant(db)
    reserve(
        db, work_order_id=_order(db, ids["pump"]), stock_level_id=ids["stock"], quantity=Decimal(3)
    )
    with pytest.raises(StockError, match="reserved"):
        adjust_stock(db, ids["stock"], Decimal(-3))
    stock = adjust_stock(db, ids["stock"], Decimal(-2))
    assert (stock.on_hand, stock.reserved, stock.below_reorder_point) == (3, 3, True)


def test_a_reservation_closes_once(db: Session) -> None:
    ids = plant(db)
    held = reserve(
        db, work_order_id=_order(db, ids["pump"]), stock_level_id=ids["stock"], quantity=Decimal(1)
    )
    close_reservation(db, held, consume=False)
    with pytest.raises(StockError, match="already released"):
        close_reservation(db, held, consume=True)


def test_concurrent_reservations_never_over_reserve(
    engine: Engine, session_factory: sessionmaker[Session]
) -> None:
    with session_factory() as setup, setup.begin():
        ids = plant(setup)
        orders = [_order(setup, ids["pump"]) for _ in range(6)]
    outcomes: list[str] = []
    barrier = threading.Barrier(len(orders))

    def take(order_id: int) -> None:
        barrier.wait()
        try:
            with session_factory() as session, session.begin():
                reserve(
                    session,
                    work_order_id=order_id,
                    stock_level_id=ids["stock"],
                    quantity=Decimal(2),
                )
            outcomes.append("ok")
        except StockError:
            outcomes.append("refused")

    threads = [threading.Thread(target=take, args=(o,)) for o in orders]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    with session_factory() as check:
        stock = check.get(StockLevel, ids["stock"])
        assert stock is not None
        assert stock.reserved <= stock.on_hand
        assert outcomes.count("ok") == 2, outcomes
        assert stock.reserved == 4
