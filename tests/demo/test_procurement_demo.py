"""The procurement demo: valid master data, a history through the whole order lifecycle, stored
rates, and at least 90 % of today's requisition lines ordered with no human step."""

from __future__ import annotations

import datetime as dt
import itertools
from decimal import Decimal

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from maintainpro.api.routes.supply import CatalogItemIn, ContractIn, SupplierIn
from maintainpro.core.db import utcnow
from maintainpro.core.events import deliver_pending
from maintainpro.demo.plant import seed_demo_plant
from maintainpro.demo.procurement import (
    DemoProcurement,
    automation_report,
    run_automatic_purchasing,
    seed_demo_procurement,
)
from maintainpro.demo.procurement_data import CONTRACT_NUMBER
from maintainpro.supply.catalogs import CatalogItem
from maintainpro.supply.contracts import Contract
from maintainpro.supply.fx import ECB_SOURCE, MANUAL_SOURCE, load_bundled_ecb_rates
from maintainpro.supply.purchasing import PoStatus, PurchaseOrder
from maintainpro.supply.rates import ExchangeRate, stored_converter
from maintainpro.supply.receiving import GoodsReceipt
from maintainpro.supply.requisitions import (
    RequisitionLine,
    RequisitionLineStatus,
    part_demand_handler,
)
from maintainpro.supply.suppliers import ConnectionType, Supplier, SupplierStatus

PASSWORD = "demo-password-123"


def seed(factory: sessionmaker[Session], *, purchase_today: bool) -> DemoProcurement:
    with factory() as session, session.begin():
        seed_demo_plant(session, PASSWORD)
        seeded = seed_demo_procurement(session, purchase_today=purchase_today)
    assert seeded is not None
    return seeded


def test_demo_data_orders_at_least_90_percent_of_requisition_lines_automatically(
    session_factory: sessionmaker[Session],
) -> None:
    seed(session_factory, purchase_today=False)
    # Work-order shortages reach purchasing the way they do in the running hub: the outbox.
    handlers = {"part.demand": [part_demand_handler(session_factory)]}
    while deliver_pending(session_factory, handlers):
        pass
    today = utcnow().date()
    with session_factory() as session, session.begin():
        result = run_automatic_purchasing(session, base_currency="USD", today=today)
        report = automation_report(session, result, today)
    assert report.considered >= 20  # enough lines for the share to mean something
    assert report.rate is not None
    assert report.rate >= Decimal("0.90")
    assert sum(report.by_rule.values()) == report.ordered
    assert all(count > 0 for count in report.by_rule.values()), report.by_rule
    assert report.left, "the demo shows what a buyer still decides"
    assert all(line.reason for line in report.left)
    with session_factory() as session:
        lines = session.scalars(select(RequisitionLine)).all()
        sources = {
            line.source.value for line in lines if line.status is RequisitionLineStatus.ORDERED
        }
        assert {"work_order", "reorder_point"} <= sources
        still_open = {line.id for line in lines if line.status is RequisitionLineStatus.OPEN}
        assert still_open == {line.line_id for line in report.left}
        drafts = session.scalars(
            select(PurchaseOrder).where(PurchaseOrder.status == PoStatus.DRAFT)
        ).all()
        assert len(drafts) == len(result.orders)
        for order in drafts:
            assert order.automatic
            for line in order.lines:
                assert line.requisition_line_id is not None
                assert line.explanation


def test_every_demo_supplier_catalogue_item_and_contract_is_valid(
    session_factory: sessionmaker[Session],
) -> None:
    seed(session_factory, purchase_today=False)
    with session_factory() as session:
        suppliers = session.scalars(select(Supplier)).all()
        for supplier in suppliers:
            SupplierIn.model_validate(
                {
                    "code": supplier.code,
                    "legal_name": supplier.legal_name,
                    "country": supplier.country,
                    "currency": supplier.currency,
                    "payment_terms": supplier.payment_terms,
                    "incoterms": supplier.incoterms,
                    "contacts": supplier.contacts,
                    "connection_type": supplier.connection_type,
                    "capabilities": supplier.capabilities,
                    "status": supplier.status,
                    "preferred": supplier.preferred,
                }
            )
        assert 4 <= len(suppliers) <= 6
        assert {s.currency for s in suppliers} == {"EUR", "USD"}
        assert {ConnectionType.EMAIL, ConnectionType.EDI, ConnectionType.PORTAL} <= {
            s.connection_type for s in suppliers
        }
        assert [s.code for s in suppliers if s.preferred] == ["NORDLAGER"]
        assert [s.code for s in suppliers if s.status is SupplierStatus.BLOCKED] == ["MWI"]
        by_id = {s.id: s for s in suppliers}
        items = session.scalars(select(CatalogItem)).all()
        assert items
        for item in items:
            breaks = [(b.min_quantity, b.unit_price) for b in item.price_breaks]
            CatalogItemIn.model_validate(
                {
                    "supplier_id": item.supplier_id,
                    "supplier_part_number": item.supplier_part_number,
                    "part_id": item.part_id,
                    "description": item.description,
                    "unit": item.unit,
                    "pack_size": item.pack_size,
                    "currency": item.currency,
                    "valid_from": item.valid_from,
                    "valid_to": item.valid_to,
                    "lead_time_days": item.lead_time_days,
                    "landed_cost_pct": item.landed_cost_pct,
                    "price_breaks": [{"min_quantity": q, "unit_price": p} for q, p in breaks],
                }
            )
            assert item.currency == by_id[item.supplier_id].currency
            # The smallest break is one whole pack; larger ones are whole packs and cheaper.
            assert breaks[0][0] == item.pack_size, item.supplier_part_number
            for (low_q, low_p), (high_q, high_p) in itertools.pairwise(breaks):
                assert high_q > low_q
                assert high_q % item.pack_size == 0
                assert 0 < high_p < low_p
        contract = session.scalars(select(Contract)).one()
        ContractIn.model_validate(
            {
                "number": contract.number,
                "supplier_id": contract.supplier_id,
                "kind": contract.kind,
                "currency": contract.currency,
                "valid_from": contract.valid_from,
                "valid_to": contract.valid_to,
                "spend_cap": contract.spend_cap,
                "terms": contract.terms,
                "prices": [
                    {"part_id": p.part_id, "unit_price": p.unit_price} for p in contract.prices
                ],
            }
        )
        assert contract.usable_on(utcnow().date())


def test_demo_history_takes_orders_through_the_lifecycle_with_late_and_rejected_goods(
    session_factory: sessionmaker[Session],
) -> None:
    seeded = seed(session_factory, purchase_today=True)
    assert seeded.today is not None
    with session_factory() as session:
        past = session.scalars(
            select(PurchaseOrder).where(PurchaseOrder.id.in_(seeded.past_orders))
        ).all()
        states = {order.status for order in past}
        assert {
            PoStatus.CLOSED,
            PoStatus.INVOICED,
            PoStatus.RECEIVED,
            PoStatus.PARTIALLY_RECEIVED,
            PoStatus.SHIPPED,
            PoStatus.SENT,
            PoStatus.CANCELLED,
        } <= states
        late = on_time = 0
        for receipt in session.scalars(select(GoodsReceipt)):
            due = receipt.line.promised_date
            assert due is not None
            if receipt.received_at.date() > due:
                late += 1
            else:
                on_time += 1
        assert late > 0
        assert on_time > 0
        rejected = session.scalars(
            select(GoodsReceipt).where(GoodsReceipt.quantity_rejected > 0)
        ).all()
        assert rejected
        assert all(r.rejection_reason for r in rejected)
        # The contract carries what its approved, uncancelled orders drew.
        contract = session.scalars(select(Contract).where(Contract.number == CONTRACT_NUMBER)).one()
        committed = sum(
            (
                line.line_total
                for order in past
                if order.status not in (PoStatus.DRAFT, PoStatus.CANCELLED)
                for line in order.lines
                if line.contract_id == contract.id
            ),
            Decimal(0),
        )
        assert committed > 0
        assert contract.drawn == committed
        drafts = session.scalar(
            select(func.count())
            .select_from(PurchaseOrder)
            .where(PurchaseOrder.status == PoStatus.DRAFT)
        )
        assert drafts == len(seeded.today.orders) > 0


def test_seeding_again_adds_nothing(session_factory: sessionmaker[Session]) -> None:
    seed(session_factory, purchase_today=True)
    with session_factory() as session:
        counts = [
            session.scalar(select(func.count()).select_from(table))
            for table in (Supplier, CatalogItem, PurchaseOrder, RequisitionLine, ExchangeRate)
        ]
    with session_factory() as session, session.begin():
        seed_demo_plant(session, PASSWORD)
        assert seed_demo_procurement(session) is None
    with session_factory() as session:
        assert counts == [
            session.scalar(select(func.count()).select_from(table))
            for table in (Supplier, CatalogItem, PurchaseOrder, RequisitionLine, ExchangeRate)
        ]


def test_stored_rates_are_the_bundled_ecb_rates_and_never_stale(
    session_factory: sessionmaker[Session],
) -> None:
    seed(session_factory, purchase_today=False)
    today = utcnow().date()
    bundled = load_bundled_ecb_rates()
    with session_factory() as session:
        rows = session.scalars(select(ExchangeRate).where(ExchangeRate.currency == "USD")).all()
        converter = stored_converter(session)
    ecb = [row for row in rows if row.source == ECB_SOURCE]
    assert ecb, "the window overlaps the bundled history"
    for row in ecb:
        publication = next(p for p in bundled.publications if p.day == row.day)
        assert row.per_eur == publication.rates["USD"]
    carried = [row for row in rows if row.source == MANUAL_SOURCE]
    # Rates after the bundled history are its last rate, carried forward on weekdays only.
    assert all(row.day > bundled.last_day and row.day.weekday() < 5 for row in carried)
    last_published = next(p for p in reversed(bundled.publications) if p.day <= today)
    assert {row.per_eur for row in carried} <= {last_published.rates["USD"]}
    # Every day of the last three months converts with a rate from within the last few days.
    for back in range(90):
        day = today - dt.timedelta(days=back)
        applied = converter.rate("EUR", "USD", day)
        assert day - applied.rate_date <= dt.timedelta(days=4)
        assert applied.source in (ECB_SOURCE, MANUAL_SOURCE)


@pytest.mark.parametrize("base", ["EUR", "GBP"])
def test_demo_purchasing_works_in_another_base_currency(
    session_factory: sessionmaker[Session], base: str
) -> None:
    with session_factory() as session, session.begin():
        seed_demo_plant(session, PASSWORD)
        seeded = seed_demo_procurement(session, base_currency=base)
        assert seeded is not None
        assert seeded.today is not None
        assert seeded.today.ordered > 0
        assert {order.base_currency for order in seeded.today.orders} == {base}
