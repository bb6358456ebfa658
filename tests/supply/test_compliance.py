"""Contract compliance: flagged order lines, utilisation, expiry and cap warnings."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from maintainpro.config import Settings
from maintainpro.core.delivery import notification_handlers
from maintainpro.core.events import OutboxEvent, deliver_pending
from maintainpro.core.notifications import Channel, Delivery, Subscription
from maintainpro.core.users import Role, User
from maintainpro.supply.compliance import (
    EXPIRING_TOPIC,
    UTILISATION_TOPIC,
    ContractTerms,
    OrderedLine,
    Reason,
    check_expiring_contracts,
    check_line,
    compliance_findings,
    expiry_threshold,
    expiry_thresholds,
    utilisation,
    utilisation_threshold,
)
from maintainpro.supply.contracts import Contract, ContractStatus
from maintainpro.supply.jobs import contract_watch
from maintainpro.supply.money import Money
from maintainpro.supply.purchasing import (
    PoStatus,
    PurchaseOrder,
    add_line,
    move_order,
    new_purchase_order,
)
from maintainpro.supply.suppliers import Supplier
from supply.procurement_world import TODAY, World

DAY = dt.timedelta(days=1)


def _terms(**changes: object) -> ContractTerms:
    fields: dict[str, object] = {
        "id": 1,
        "number": "C-1",
        "supplier_id": 10,
        "currency": "EUR",
        "valid_from": TODAY - 30 * DAY,
        "valid_to": TODAY + 30 * DAY,
        "active": True,
        "prices": {5: Decimal("8.00")},
    }
    fields.update(changes)
    return ContractTerms(**fields)  # type: ignore[arg-type]


def _line(**changes: object) -> OrderedLine:
    fields: dict[str, object] = {
        "line_id": 100,
        "order_id": 7,
        "line_no": 1,
        "supplier_id": 10,
        "part_id": 5,
        "ordered_on": TODAY,
        "currency": "EUR",
        "quantity": Decimal(3),
        "unit_price": Decimal("10.00"),
        "contract_id": None,
    }
    fields.update(changes)
    return OrderedLine(**fields)  # type: ignore[arg-type]


# --- the pure rule ------------------------------------------------------------------------------


def test_a_line_bought_beside_a_valid_contract_price_is_flagged_with_the_excess() -> None:
    (finding,) = check_line(_line(), [_terms()])
    assert finding.reason is Reason.OFF_CONTRACT_PRICE
    assert finding.contract_price == Decimal("8.00")
    assert finding.excess == Money.of("6.00", "EUR")
    assert "PO-000007 line 1 paid 10 EUR outside contract C-1" in finding.message
    assert "(6.00 EUR more)" in finding.message


@pytest.mark.parametrize(
    ("line", "terms"),
    [
        pytest.param(_line(unit_price=Decimal("8.000000")), _terms(), id="paid the contract price"),
        pytest.param(_line(), _terms(valid_to=TODAY - DAY), id="contract over on the day"),
        pytest.param(_line(), _terms(valid_from=TODAY + DAY), id="contract not yet begun"),
        pytest.param(_line(), _terms(supplier_id=11), id="another supplier's contract"),
        pytest.param(_line(part_id=6), _terms(), id="a part the contract does not price"),
        pytest.param(_line(), _terms(active=False), id="a suspended or closed contract"),
    ],
)
def test_lines_without_an_applicable_contract_price_are_not_flagged(
    line: OrderedLine, terms: ContractTerms
) -> None:
    assert check_line(line, [terms]) == []


def test_the_cheapest_applicable_contract_is_the_one_named() -> None:
    cheap = _terms(id=2, number="C-2", prices={5: Decimal("7.50")})
    (finding,) = check_line(_line(), [_terms(), cheap])
    assert finding.contract.number == "C-2"
    assert finding.excess == Money.of("7.50", "EUR")


def test_a_contract_in_another_currency_flags_without_an_excess() -> None:
    (finding,) = check_line(_line(currency="USD"), [_terms()])
    assert finding.reason is Reason.OFF_CONTRACT_PRICE
    assert finding.excess is None
    assert "8 EUR" in finding.message


def test_a_line_under_a_contract_outside_its_validity_is_flagged() -> None:
    terms = _terms(valid_to=TODAY - 2 * DAY)
    findings = check_line(_line(contract_id=1, unit_price=Decimal(8)), [terms])
    assert [f.reason for f in findings] == [Reason.OUTSIDE_VALIDITY]
    assert f"valid {TODAY - 30 * DAY} to {TODAY - 2 * DAY}" in findings[0].message


def test_a_line_under_a_contract_at_another_price_is_flagged() -> None:
    findings = check_line(_line(contract_id=1), [_terms()])
    assert [f.reason for f in findings] == [Reason.CONTRACT_PRICE_DIFFERS]
    missing = check_line(_line(contract_id=1, part_id=6), [_terms()])
    assert [f.reason for f in missing] == [Reason.CONTRACT_PRICE_DIFFERS]
    assert "no price for the part" in missing[0].message


def test_a_line_at_the_contract_price_within_validity_is_compliant() -> None:
    assert check_line(_line(contract_id=1, unit_price=Decimal(8)), [_terms()]) == []


# --- findings from stored orders ------------------------------------------------------------


def _order(
    world: World,
    supplier: Supplier,
    lines: list[tuple[str, Contract | None]],
    *,
    day: dt.date = TODAY,
    status: PoStatus = PoStatus.APPROVED,
) -> PurchaseOrder:
    order = new_purchase_order(
        world.db,
        supplier=supplier,
        currency=supplier.currency,
        base_currency="USD",
        rate=world.fx().rate(supplier.currency, "USD", day),
    )
    world.db.flush()  # the draft status is the column default, set on insert
    for price, contract in lines:
        add_line(
            order,
            part_id=world.ids["part"],
            quantity=Decimal(2),
            unit_price=Decimal(price),
            contract_id=contract.id if contract else None,
        )
    if status is not PoStatus.DRAFT:
        move_order(order, PoStatus.APPROVED)
    if status is PoStatus.CANCELLED:
        move_order(order, PoStatus.CANCELLED)
    world.db.flush()
    return order


def test_findings_cover_committed_orders_of_the_period_only(world: World) -> None:
    acme = world.supplier("ACME", "USD")
    contract = world.contract(acme, "8.00")
    expired = world.contract(world.supplier("OLD", "USD"), "9.00")
    expired.valid_to = TODAY - 5 * DAY
    off = _order(world, acme, [("10.00", None), ("8.00", None)])
    _order(world, acme, [("8.00", contract)])  # compliant
    late = _order(world, expired.supplier, [("9.00", expired)])
    _order(world, acme, [("11.00", None)], status=PoStatus.DRAFT)
    _order(world, acme, [("12.00", None)], status=PoStatus.CANCELLED)
    _order(world, acme, [("13.00", None)], day=TODAY - 40 * DAY)  # before the contract
    _order(world, acme, [("14.00", None)], day=TODAY + 1 * DAY)  # after the period
    findings = compliance_findings(world.db, TODAY - 60 * DAY, TODAY)
    assert [(f.line.order_id, f.line.line_no, f.reason) for f in findings] == [
        (off.id, 1, Reason.OFF_CONTRACT_PRICE),
        (late.id, 1, Reason.OUTSIDE_VALIDITY),
    ]
    assert findings[0].excess == Money.of("4.00", "USD")
    assert compliance_findings(world.db, TODAY + 2 * DAY, TODAY + 3 * DAY) == []


# --- utilisation ----------------------------------------------------------------------------


def test_utilisation_shows_drawn_against_cap_and_days_left(world: World) -> None:
    contract = world.contract(world.supplier("ACME", "EUR"), "8.00", cap="5000.00")
    contract.drawn = Decimal("4123.45")
    used = utilisation(contract, TODAY)
    assert (used.spend_cap, used.drawn, used.remaining) == (
        Decimal("5000.00"),
        Decimal("4123.45"),
        Decimal("876.55"),
    )
    assert used.pct_used == Decimal("82.5")  # 82.469 rounded half up to one place
    assert (used.days_left, used.state) == (300, "in_force")
    later = utilisation(contract, TODAY + 301 * DAY)
    assert (later.days_left, later.state) == (0, "expired")
    early = utilisation(contract, TODAY - 31 * DAY)
    assert early.state == "not_started"
    contract.spend_cap = None
    contract.valid_to = None
    open_ended = utilisation(contract, TODAY)
    assert (open_ended.pct_used, open_ended.remaining, open_ended.days_left) == (None, None, None)


# --- warnings -------------------------------------------------------------------------------


def test_thresholds_pick_the_tightest_one_reached() -> None:
    assert expiry_thresholds(30) == (30, 7, 1)
    assert expiry_thresholds(5) == (5, 1)
    assert [expiry_threshold(d, 30) for d in (31, 30, 8, 7, 2, 1, 0, -1)] == [
        None,
        30,
        30,
        7,
        7,
        1,
        1,
        None,
    ]
    cap = Decimal(1000)
    assert [utilisation_threshold(Decimal(d), cap) for d in (799, 800, 999, 1000, 1200)] == [
        None,
        80,
        80,
        100,
        100,
    ]
    assert utilisation_threshold(Decimal(10), None) is None
    assert utilisation_threshold(Decimal(0), Decimal(0)) == 100


def _events(db: Session, topic: str) -> list[dict[str, object]]:
    return [
        e.payload
        for e in db.scalars(
            select(OutboxEvent).where(OutboxEvent.topic == topic).order_by(OutboxEvent.id)
        )
    ]


def test_expiring_contracts_are_announced_once_per_threshold(world: World) -> None:
    contract = world.contract(world.supplier("ACME", "EUR"), "8.00")
    contract.valid_to = TODAY + 20 * DAY
    world.contract(world.supplier("FAR", "EUR"), "8.00")  # ends in 300 days: no warning
    assert [e.topic for e in check_expiring_contracts(world.db, TODAY, 30)] == [EXPIRING_TOPIC]
    assert check_expiring_contracts(world.db, TODAY, 30) == []
    assert check_expiring_contracts(world.db, TODAY + 5 * DAY, 30) == []
    (week,) = check_expiring_contracts(world.db, TODAY + 14 * DAY, 30)
    assert check_expiring_contracts(world.db, TODAY + 15 * DAY, 30) == []
    (last,) = check_expiring_contracts(world.db, TODAY + 20 * DAY, 30)
    assert check_expiring_contracts(world.db, TODAY + 21 * DAY, 30) == []  # ended
    payloads = _events(world.db, EXPIRING_TOPIC)
    assert [(p["threshold_days"], p["days_left"], p["severity"]) for p in payloads] == [
        (30, 20, "warning"),
        (7, 6, "warning"),
        (1, 0, "major"),
    ]
    assert payloads[0]["title"] == f"Contract C-ACME ends in 20 days ({TODAY + 20 * DAY})"
    assert payloads[2]["title"] == f"Contract C-ACME ends today ({TODAY + 20 * DAY})"
    assert payloads[0]["supplier_code"] == "ACME"
    assert payloads[0]["url"] == f"/api/v1/contracts/{contract.id}/utilisation"
    assert week.payload["threshold_days"] == 7
    assert last.payload["threshold_days"] == 1
    # Extended, the contract is warned about again as its new end comes close.
    contract.valid_to = TODAY + 50 * DAY
    assert check_expiring_contracts(world.db, TODAY + 19 * DAY, 30) == []  # 31 days left
    (renewed,) = check_expiring_contracts(world.db, TODAY + 25 * DAY, 30)
    assert renewed.payload["valid_to"] == (TODAY + 50 * DAY).isoformat()


def test_inactive_and_open_ended_contracts_raise_no_expiry_warning(world: World) -> None:
    suspended = world.contract(world.supplier("SUS", "EUR"), "8.00")
    suspended.valid_to = TODAY + 2 * DAY
    suspended.status = ContractStatus.SUSPENDED
    open_ended = world.contract(world.supplier("OPEN", "EUR"), "8.00")
    open_ended.valid_to = None
    assert check_expiring_contracts(world.db, TODAY, 30) == []


def test_cap_warnings_at_80_and_100_percent_once_each(world: World) -> None:
    contract = world.contract(world.supplier("ACME", "EUR"), "8.00", cap="1000.00")
    contract.drawn = Decimal("799.99")
    assert check_expiring_contracts(world.db, TODAY, 30) == []
    contract.drawn = Decimal("850.00")
    (first,) = check_expiring_contracts(world.db, TODAY, 30)
    assert check_expiring_contracts(world.db, TODAY, 30) == []
    contract.drawn = Decimal("1000.00")
    (full,) = check_expiring_contracts(world.db, TODAY, 30)
    assert check_expiring_contracts(world.db, TODAY, 30) == []
    assert [e.topic for e in (first, full)] == [UTILISATION_TOPIC, UTILISATION_TOPIC]
    assert (first.payload["threshold_pct"], first.payload["pct_used"]) == (80, "85.0")
    assert (full.payload["threshold_pct"], full.payload["severity"]) == (100, "major")
    assert not {"spend_cap", "drawn", "remaining"} & set(full.payload)  # amounts stay out
    # A larger cap starts the count again.
    contract.spend_cap = Decimal("1200.00")
    (again,) = check_expiring_contracts(world.db, TODAY, 30)
    assert again.payload["threshold_pct"] == 80


def test_contract_watch_job_commits_its_warnings_once(
    session_factory: sessionmaker[Session], settings: Settings, world: World
) -> None:
    contract = world.contract(world.supplier("ACME", "EUR"), "8.00", cap="100.00")
    contract.valid_to = TODAY + 3 * DAY
    contract.drawn = Decimal(100)
    world.db.commit()
    first = contract_watch(session_factory, settings, today=TODAY)
    assert len(first) == 2
    assert contract_watch(session_factory, settings, today=TODAY) == []
    with session_factory() as check:
        topics = sorted(e.topic for e in check.scalars(select(OutboxEvent)))
    assert topics == [EXPIRING_TOPIC, UTILISATION_TOPIC]


def test_contract_warnings_reach_subscribers_by_e_mail(
    session_factory: sessionmaker[Session], settings: Settings, world: World
) -> None:
    contract = world.contract(world.supplier("ACME", "EUR"), "8.00")
    contract.valid_to = TODAY + 10 * DAY
    buyer = User(
        username="buyer", role=Role.PROCUREMENT, password_hash="x", email="buyer@example.com"
    )
    tech = User(username="tech", role=Role.TECHNICIAN, password_hash="x", email="t@example.com")
    world.db.add_all([buyer, tech])
    world.db.flush()
    world.db.add(Subscription(user_id=buyer.id, channel=Channel.EMAIL, topics="contract.*"))
    world.db.add(Subscription(user_id=tech.id, channel=Channel.EMAIL, topics="alert.*"))
    world.db.commit()
    contract_watch(session_factory, settings, today=TODAY)
    handlers = notification_handlers(session_factory, topics=("contract.expiring",))
    assert deliver_pending(session_factory, handlers) == 1
    with session_factory() as check:
        deliveries = check.scalars(select(Delivery)).all()
    assert [(d.topic, d.target) for d in deliveries] == [(EXPIRING_TOPIC, "buyer@example.com")]
