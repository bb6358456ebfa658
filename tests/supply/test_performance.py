"""Supplier scorecards: each metric's rule, weights and grades, recommendations, the loader."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from maintainpro.core.events import OutboxEvent
from maintainpro.core.maintenance import PartNeed, open_work_order
from maintainpro.core.users import Role
from maintainpro.core.work_orders import WorkOrderType
from maintainpro.supply.contracts import ContractStatus
from maintainpro.supply.performance import (
    DEFAULT_WEIGHTS,
    NO_DATA,
    LineFact,
    Metric,
    MetricKey,
    OrderFact,
    Period,
    ReceiptFact,
    RecommendationKind,
    ScorecardRules,
    SupplierFacts,
    compute_scorecard,
    grade_for,
    scorecards,
    weighted_score,
)
from maintainpro.supply.purchasing import (
    ApprovalPolicy,
    LineAckStatus,
    PurchaseOrder,
    approve_order,
    cancel_order,
    send_order,
)
from maintainpro.supply.receiving import receive
from maintainpro.supply.requisitions import manual_requisition, requisition_from_part_demand
from supply.procurement_world import TODAY, World

UTC = dt.UTC
NOV = Period(dt.date(2026, 11, 1), dt.date(2026, 12, 1))
AS_OF = dt.datetime(2026, 12, 15, tzinfo=UTC)
SENT = dt.datetime(2026, 11, 2, 8, 0, tzinfo=UTC)


def at(day: int, hour: int = 12, month: int = 11) -> dt.datetime:
    """A moment in 2026 (November unless told)."""
    return dt.datetime(2026, month, day, hour, tzinfo=UTC)


def facts(*orders: OrderFact) -> SupplierFacts:
    """One supplier with these orders."""
    return SupplierFacts(1, "ACME", "Acme Ltd", orders)


def order(*lines: LineFact, sent: dt.datetime | None = SENT, **fields: object) -> OrderFact:
    """A sent order with these lines."""
    return OrderFact("PO-1", sent, lines=lines, **fields)  # type: ignore[arg-type]


def line(
    ordered: str = "10",
    *receipts: ReceiptFact,
    need_by: dt.date | None = dt.date(2026, 11, 10),
    **fields: object,
) -> LineFact:
    """A line of 10 at 5.00, due 10 November unless told."""
    return LineFact(
        1,
        Decimal(ordered),
        Decimal(fields.pop("unit_price", "5.00")),  # type: ignore[arg-type]
        need_by=need_by,
        receipts=receipts,
        **fields,  # type: ignore[arg-type]
    )


def got(moment: dt.datetime, accepted: str, rejected: str = "0") -> ReceiptFact:
    """A receipt."""
    return ReceiptFact(moment, Decimal(accepted), Decimal(rejected))


def card(*orders: OrderFact, rules: ScorecardRules | None = None, period: Period = NOV):  # type: ignore[no-untyped-def]
    """The scorecard of one supplier with these orders in November."""
    return compute_scorecard(facts(*orders), period, as_of=AS_OF, rules=rules)


# --- periods and empty data --------------------------------------------------------------


def test_a_period_needs_its_start_before_its_end() -> None:
    with pytest.raises(ValueError, match="before its end"):
        Period(dt.date(2026, 11, 1), dt.date(2026, 11, 1))
    assert NOV.previous() == Period(dt.date(2026, 10, 2), dt.date(2026, 11, 1))
    assert NOV.days == 30
    assert NOV.holds(dt.datetime(2026, 11, 30, 23, 59, tzinfo=UTC))
    assert not NOV.holds(dt.datetime(2026, 12, 1, tzinfo=UTC))
    # A moment is placed by its UTC day, whatever zone it is written in.
    assert NOV.holds(dt.datetime(2026, 12, 1, 0, 30, tzinfo=dt.timezone(dt.timedelta(hours=1))))


@pytest.mark.parametrize(
    "orders",
    [
        (),
        # Activity entirely outside November: sent, received and due in January.
        (
            order(
                line("10", got(at(5, month=1), "10"), need_by=dt.date(2026, 1, 9)),
                sent=dt.datetime(2026, 1, 2, tzinfo=UTC),
                acknowledged_at=dt.datetime(2026, 1, 2, 5, tzinfo=UTC),
            ),
        ),
    ],
    ids=["no orders", "activity in another period"],
)
def test_a_period_without_activity_has_no_data_never_zero(orders: tuple[OrderFact, ...]) -> None:
    result = card(*orders)
    assert [m.value for m in result.metrics] == [None] * 7
    assert [m.score for m in result.metrics] == [None] * 7
    assert {m.display for m in result.metrics} == {NO_DATA}
    assert (result.score, result.grade, result.weights_used) == (None, None, {})
    assert result.recommendations == ()


# --- on-time delivery ---------------------------------------------------------------------


def test_on_time_counts_receipts_against_the_promise_else_the_need_date() -> None:
    promised = line(
        "10",
        got(at(12), "5"),  # after need-by, but on the promised day: on time
        got(at(13), "5"),  # a day after the promise: late
        promised_date=dt.date(2026, 11, 12),
    )
    needed = line("4", got(at(10, 23), "4"))  # late in the evening of the need-by day
    undated = line("1", got(at(3), "1"), need_by=None)
    metric = card(order(promised, needed, undated)).metric(MetricKey.ON_TIME)
    assert metric.value == Decimal("66.7")
    assert metric.basis == 3
    assert metric.detail["on_time"] == 2
    assert metric.detail["late"] == 1
    assert metric.detail["mean_days_late"] == Decimal("1.00")
    assert metric.detail["without_due_date"] == 1
    assert "1 receipt(s) on lines with neither a promised nor a need-by date" in metric.note


def test_receipts_only_on_undated_lines_give_no_data_and_say_why() -> None:
    metric = card(order(line("1", got(at(3), "1"), need_by=None))).metric(MetricKey.ON_TIME)
    assert metric.value is None
    assert metric.display == NO_DATA
    assert "are not counted" in metric.note


# --- on time in full -----------------------------------------------------------------------


def test_otif_needs_the_full_accepted_quantity_by_the_due_date() -> None:
    in_full = line("10", got(at(8), "4"), got(at(10), "6"))
    late_rest = line("10", got(at(8), "4"), got(at(11), "6"))
    rejected = line("10", got(at(8), "9", "1"))  # rejected goods do not fill the line
    not_due = line("10", need_by=dt.date(2026, 11, 30))  # AS_OF is later: missed
    result = card(order(in_full, late_rest, rejected, not_due))
    metric = result.metric(MetricKey.OTIF)
    assert metric.value == Decimal("25.0")
    assert (metric.detail["in_full_on_time"], metric.detail["missed"]) == (1, 3)


def test_otif_waits_for_lines_not_yet_due_and_skips_declined_ones() -> None:
    future = line("10", need_by=dt.date(2026, 11, 28))
    declined = line("10", declined=True)
    metric = compute_scorecard(facts(order(future, declined)), NOV, as_of=at(20)).metric(
        MetricKey.OTIF
    )
    assert metric.value is None
    assert metric.detail["not_yet_due"] == 1
    assert metric.note == "1 line(s) not yet due and not yet in full"


def test_otif_allows_the_receipt_tolerance() -> None:
    short = line("100", got(at(9), "98"))
    strict = card(order(short)).metric(MetricKey.OTIF)
    lenient = card(order(short), rules=ScorecardRules(tolerance_pct=Decimal(2))).metric(
        MetricKey.OTIF
    )
    assert (strict.value, lenient.value) == (Decimal("0.0"), Decimal("100.0"))


# --- lead time -----------------------------------------------------------------------------


def test_lead_time_is_mean_and_spread_of_days_from_sending_to_each_receipt() -> None:
    sent = at(2, 8)
    result = card(
        order(
            line(
                "10", got(sent + dt.timedelta(days=4), "5"), got(sent + dt.timedelta(days=6), "5")
            ),
            line("2", got(sent + dt.timedelta(days=8), "2")),
            sent=sent,
        )
    )
    metric = result.metric(MetricKey.LEAD_TIME)
    # 4, 6, 8 days: mean 6, population standard deviation sqrt(8/3) = 1.633
    assert metric.value == Decimal("6.00")
    assert metric.detail["std_dev_days"] == Decimal("1.63")
    assert (metric.detail["min_days"], metric.detail["max_days"]) == (Decimal(4), Decimal(8))
    assert metric.basis == 3
    # consistency: 100 x (1 - 1.633 / 6) = 72.8
    assert metric.score == Decimal("72.8")
    assert metric.display == "6.00 days"


def test_one_receipt_gives_a_lead_time_but_no_consistency_score() -> None:
    metric = card(order(line("1", got(SENT + dt.timedelta(hours=36), "1")))).metric(
        MetricKey.LEAD_TIME
    )
    assert metric.value == Decimal("1.50")
    assert metric.detail["std_dev_days"] == Decimal("0.00")
    assert metric.score is None


def test_a_receipt_dated_before_sending_is_left_out_of_lead_time() -> None:
    metric = card(order(line("2", got(at(1), "1"), got(at(5, 8), "1")), sent=at(2, 8))).metric(
        MetricKey.LEAD_TIME
    )
    assert metric.value == Decimal("3.00")
    assert metric.detail["before_sent"] == 1
    assert "before sending" in metric.note


# --- quality and accuracy -----------------------------------------------------------------


def test_quality_is_the_accepted_share_of_delivered_quantity() -> None:
    metric = card(order(line("20", got(at(5), "9", "1"), got(at(6), "8", "2")))).metric(
        MetricKey.QUALITY
    )
    assert metric.value == Decimal("85.0")
    assert metric.detail["rejection_rate_pct"] == Decimal("15.0")
    assert metric.detail["rejected_quantity"] == Decimal(3)


def test_accuracy_judges_finished_lines_by_delivered_against_ordered() -> None:
    exact = line("10", got(at(5), "10"))
    replaced = line("10", got(at(5), "9", "1"), got(at(6), "1"))  # 11 delivered for 10
    short = line("10", got(at(5), "8"))  # finished only because the order's receiving is over
    still_open = line("10", got(at(5), "3"))
    open_order = order(exact, replaced, still_open)
    finished = order(short, receiving_finished=True)
    metric = card(open_order, finished).metric(MetricKey.ACCURACY)
    assert (metric.detail["accurate"], metric.detail["over"], metric.detail["short"]) == (1, 1, 1)
    assert metric.value == Decimal("33.3")
    tolerant = card(open_order, finished, rules=ScorecardRules(tolerance_pct=Decimal(10))).metric(
        MetricKey.ACCURACY
    )
    assert tolerant.value == Decimal("66.7")


def test_accuracy_is_placed_in_the_period_of_the_last_receipt() -> None:
    straddles = line("10", got(at(28), "5"), got(at(2, month=12), "5"))
    assert card(order(straddles)).metric(MetricKey.ACCURACY).value is None
    december = Period(dt.date(2026, 12, 1), dt.date(2027, 1, 1))
    assert card(order(straddles), period=december).metric(MetricKey.ACCURACY).value == Decimal(
        "100.0"
    )


# --- acknowledgement and price compliance ------------------------------------------------


def test_acknowledgement_hours_and_the_share_within_target() -> None:
    prompt = order(line(), acknowledged_at=SENT + dt.timedelta(hours=6))
    slow = order(line(), sent=at(3, 8), acknowledged_at=at(3, 8) + dt.timedelta(hours=66))
    silent = order(line(), sent=at(4, 8))  # never acknowledged, long past the target
    waiting = order(line(), sent=AS_OF - dt.timedelta(hours=2))  # sent outside November anyway
    metric = card(prompt, slow, silent, waiting).metric(MetricKey.ACKNOWLEDGEMENT)
    assert metric.value == Decimal("36.0")
    assert metric.display == "36.0 h"
    assert metric.score == Decimal("33.3")
    assert metric.detail["unacknowledged_past_target"] == 1
    assert metric.detail["max_hours"] == Decimal("66.0")


def test_an_order_still_within_its_acknowledgement_window_is_not_judged() -> None:
    metric = compute_scorecard(facts(order(line(), sent=at(20, 8))), NOV, as_of=at(21, 8)).metric(
        MetricKey.ACKNOWLEDGEMENT
    )
    assert (metric.value, metric.score, metric.detail["awaiting"]) == (None, None, 1)


def test_price_compliance_counts_lines_with_a_contract_price() -> None:
    at_price = line(unit_price="5.00", contract_price=Decimal("5.00"))
    below = line(unit_price="4.90", contract_price=Decimal("5.00"))
    above = line(unit_price="5.10", contract_price=Decimal("5.00"))
    no_contract = line(unit_price="9.00")
    metric = card(order(at_price, below, above, no_contract)).metric(MetricKey.PRICE_COMPLIANCE)
    assert metric.value == Decimal("66.7")
    assert (metric.detail["at_contract_price"], metric.detail["above_contract_price"]) == (2, 1)


# --- weights and grades ------------------------------------------------------------------


def _metric(key: MetricKey, score: str | None) -> Metric:
    value = None if score is None else Decimal(score)
    return Metric(key, value, "%", value, 1)


def test_weights_are_renormalised_over_metrics_with_data() -> None:
    metrics = [
        _metric(MetricKey.ON_TIME, "50"),  # weight 0.25
        _metric(MetricKey.QUALITY, "100"),  # weight 0.20
        _metric(MetricKey.OTIF, None),  # no data: its 0.15 is shared out
    ]
    score, used = weighted_score(metrics, DEFAULT_WEIGHTS)
    # (0.25 x 50 + 0.20 x 100) / 0.45 = 72.2
    assert score == Decimal("72.2")
    assert used == {MetricKey.ON_TIME: Decimal("0.5556"), MetricKey.QUALITY: Decimal("0.4444")}
    assert sum(DEFAULT_WEIGHTS.values()) == 1


def test_a_zero_weight_metric_does_not_count() -> None:
    weights = {MetricKey.ON_TIME: Decimal(1), MetricKey.QUALITY: Decimal(0)}
    metrics = [_metric(MetricKey.ON_TIME, "40"), _metric(MetricKey.QUALITY, "100")]
    assert weighted_score(metrics, weights) == (Decimal("40.0"), {MetricKey.ON_TIME: Decimal(1)})
    assert weighted_score([_metric(MetricKey.QUALITY, "100")], weights) == (None, {})


@pytest.mark.parametrize(
    ("score", "grade"),
    [
        ("100", "A"),
        ("90.0", "A"),
        ("89.9", "B"),
        ("80", "B"),
        ("79.9", "C"),
        ("70", "C"),
        ("69.9", "D"),
        ("60", "D"),
        ("59.9", "F"),
        ("0", "F"),
    ],
)
def test_grade_thresholds(score: str, grade: str) -> None:
    assert grade_for(Decimal(score)) == grade


@pytest.mark.parametrize(
    ("weights", "message"),
    [
        ({MetricKey.ON_TIME: Decimal(-1), MetricKey.QUALITY: Decimal(2)}, "non-negative"),
        ({MetricKey.ON_TIME: Decimal(0)}, "positive"),
        ({"speed": Decimal(1)}, "unknown metric"),
        ({MetricKey.ON_TIME: Decimal("NaN")}, "non-negative"),
    ],
)
def test_bad_weights_are_refused(weights: dict[MetricKey, Decimal], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        ScorecardRules(weights=weights)


def test_custom_weights_change_the_score() -> None:
    orders = (order(line("10", got(at(12), "5"), got(at(9), "4", "1"))),)
    default = card(*orders)
    only_quality = card(*orders, rules=ScorecardRules(weights={MetricKey.QUALITY: Decimal(1)}))
    assert default.metric(MetricKey.QUALITY).score == Decimal("90.0")
    assert only_quality.score == Decimal("90.0")
    assert only_quality.grade == "A"
    assert default.score != only_quality.score


# --- recommendations ---------------------------------------------------------------------


def _deliveries(sent_days: list[int], lead: int, month: int) -> list[OrderFact]:
    return [
        order(
            line("1", got(at(d, 8, month) + dt.timedelta(days=lead), "1"), need_by=None),
            sent=at(d, 8, month),
            acknowledged_at=at(d, 9, month),
        )
        for d in sent_days
    ]


def test_lead_time_drifting_up_is_recommended_with_its_figures() -> None:
    october = _deliveries([3, 10], 5, 10)  # 5 days in the previous period
    november = _deliveries([3, 10], 8, 11)  # 8 days now
    result = card(*october, *november)
    (advice,) = [r for r in result.recommendations if r.kind is RecommendationKind.LEAD_TIME_DRIFT]
    assert advice.figures["previous_mean_days"] == Decimal("5.00")
    assert advice.figures["current_mean_days"] == Decimal("8.00")
    assert advice.figures["change_pct"] == Decimal("60.0")
    assert (advice.figures["previous_receipts"], advice.figures["current_receipts"]) == (2, 2)
    assert "from 5.00 to 8.00 days" in advice.message


@pytest.mark.parametrize(
    ("before", "now", "earlier_orders"),
    [
        (5, 5, [3, 10]),  # no change
        (10, 11, [3, 10]),  # +10 %, below the 20 % ratio
        (2, 2, [3, 10]),  # equal
        (5, 8, [3]),  # one receipt before: too few to compare
    ],
)
def test_lead_time_drift_needs_enough_rise_and_receipts(
    before: int, now: int, earlier_orders: list[int]
) -> None:
    result = card(*_deliveries(earlier_orders, before, 10), *_deliveries([3, 10], now, 11))
    assert RecommendationKind.LEAD_TIME_DRIFT not in {r.kind for r in result.recommendations}


def test_a_small_absolute_rise_is_not_drift() -> None:
    # 0.5 -> 0.75 days is +50 % but under the one-day minimum.
    def quick(days: list[int], hours: int, month: int) -> list[OrderFact]:
        return [
            order(
                line("1", got(at(d, 0, month) + dt.timedelta(hours=hours), "1"), need_by=None),
                sent=at(d, 0, month),
            )
            for d in days
        ]

    result = card(*quick([3, 10], 12, 10), *quick([3, 10], 18, 11))
    assert RecommendationKind.LEAD_TIME_DRIFT not in {r.kind for r in result.recommendations}


def test_rejections_lateness_and_slow_acknowledgement_are_recommended() -> None:
    result = card(
        order(
            line("10", got(at(12), "8", "2")),  # late and 20 % rejected
            sent=SENT,
            acknowledged_at=SENT + dt.timedelta(hours=72),
        )
    )
    advice = {r.kind: r for r in result.recommendations}
    assert set(advice) == {
        RecommendationKind.HIGH_REJECTION,
        RecommendationKind.LATE_DELIVERIES,
        RecommendationKind.SLOW_ACKNOWLEDGEMENT,
    }
    assert advice[RecommendationKind.HIGH_REJECTION].figures["rejection_rate_pct"] == Decimal(
        "20.0"
    )
    assert advice[RecommendationKind.LATE_DELIVERIES].figures["mean_days_late"] == Decimal("2.00")
    assert advice[RecommendationKind.SLOW_ACKNOWLEDGEMENT].figures["mean_hours"] == Decimal("72.0")


def test_a_good_supplier_gets_no_recommendations() -> None:
    result = card(
        order(
            line("10", got(at(9), "10"), contract_price=Decimal("5.00")),
            acknowledged_at=SENT + dt.timedelta(hours=2),
        )
    )
    assert result.recommendations == ()
    assert result.grade == "A"


# --- properties --------------------------------------------------------------------------

START = dt.datetime(2026, 9, 1, tzinfo=UTC)


@st.composite
def receipt_facts(draw: st.DrawFn, sent: dt.datetime) -> ReceiptFact:
    """A receipt some time after sending."""
    delay = draw(st.integers(min_value=0, max_value=60 * 24 * 60))
    accepted = draw(st.integers(min_value=0, max_value=20))
    rejected = draw(st.integers(min_value=0 if accepted else 1, max_value=5))
    return ReceiptFact(sent + dt.timedelta(minutes=delay), Decimal(accepted), Decimal(rejected))


@st.composite
def order_facts(draw: st.DrawFn) -> OrderFact:
    """A sent order with random lines, receipts, dates and acknowledgement."""
    sent = START + dt.timedelta(hours=draw(st.integers(min_value=0, max_value=24 * 120)))
    dates = st.none() | st.dates(dt.date(2026, 9, 1), dt.date(2027, 2, 1))
    lines = draw(
        st.lists(
            st.builds(
                LineFact,
                line_no=st.just(1),
                ordered=st.integers(min_value=1, max_value=30).map(Decimal),
                unit_price=st.sampled_from([Decimal("4.00"), Decimal("5.00"), Decimal("6.00")]),
                need_by=dates,
                promised_date=dates,
                contract_price=st.none() | st.just(Decimal("5.00")),
                declined=st.booleans(),
                receipts=st.lists(receipt_facts(sent), max_size=4).map(tuple),
            ),
            min_size=1,
            max_size=4,
        )
    )
    ack = draw(st.none() | st.integers(min_value=0, max_value=24 * 10 * 60))
    return OrderFact(
        "PO-x",
        sent,
        None if ack is None else sent + dt.timedelta(minutes=ack),
        draw(st.booleans()),
        tuple(lines),
    )


supplier_facts = st.lists(order_facts(), max_size=6).map(lambda orders: facts(*orders))
weights = st.dictionaries(
    st.sampled_from(list(MetricKey)),
    st.integers(min_value=0, max_value=10).map(Decimal),
    min_size=1,
).filter(lambda w: sum(w.values()) > 0)


@settings(max_examples=150, deadline=None)
@given(supplier=supplier_facts, weights=weights)
def test_scores_stay_within_their_metrics_and_grades_follow(
    supplier: SupplierFacts, weights: dict[MetricKey, Decimal]
) -> None:
    result = compute_scorecard(supplier, NOV, as_of=AS_OF, rules=ScorecardRules(weights=weights))
    counted = [m.score for m in result.metrics if m.score is not None and weights.get(m.key, 0)]
    for metric in result.metrics:
        assert metric.score is None or Decimal(0) <= metric.score <= Decimal(100)
    if not counted:
        assert (result.score, result.grade) == (None, None)
        return
    assert result.score is not None
    assert min(counted) - Decimal("0.05") <= result.score <= max(counted) + Decimal("0.05")
    assert result.grade == grade_for(result.score)
    assert abs(sum(result.weights_used.values()) - 1) <= Decimal("0.0005") * len(counted)


@settings(max_examples=100, deadline=None)
@given(supplier=supplier_facts, weights=weights, factor=st.integers(min_value=2, max_value=7))
def test_scaling_every_weight_changes_nothing(
    supplier: SupplierFacts, weights: dict[MetricKey, Decimal], factor: int
) -> None:
    scaled = {k: v * factor for k, v in weights.items()}
    one = compute_scorecard(supplier, NOV, as_of=AS_OF, rules=ScorecardRules(weights=weights))
    other = compute_scorecard(supplier, NOV, as_of=AS_OF, rules=ScorecardRules(weights=scaled))
    assert (one.score, one.grade, one.weights_used) == (
        other.score,
        other.grade,
        other.weights_used,
    )


@settings(max_examples=100, deadline=None)
@given(supplier=supplier_facts)
def test_receipts_in_the_period_are_each_counted_once(supplier: SupplierFacts) -> None:
    result = compute_scorecard(supplier, NOV, as_of=AS_OF)
    in_period = [
        (ln, r)
        for o in supplier.orders
        for ln in o.lines
        for r in ln.receipts
        if NOV.holds(r.received_at)
    ]
    on_time = result.metric(MetricKey.ON_TIME)
    parts = (on_time.detail["on_time"], on_time.detail["late"], on_time.detail["without_due_date"])
    assert sum(p for p in parts if isinstance(p, int)) == len(in_period)
    quality = result.metric(MetricKey.QUALITY)
    assert quality.basis == len(in_period)
    assert (quality.value is None) == (not in_period)


@settings(max_examples=60, deadline=None)
@given(supplier=supplier_facts)
def test_a_period_before_any_order_is_no_data(supplier: SupplierFacts) -> None:
    result = compute_scorecard(
        supplier, Period(dt.date(2025, 1, 1), dt.date(2025, 6, 1)), as_of=AS_OF
    )
    assert all(m.value is None and m.score is None for m in result.metrics)
    assert (result.score, result.grade, result.recommendations) == (None, None, ())


# --- the loader, on both databases -------------------------------------------------------

APPROVED = dt.datetime(2026, 11, 27, 9, 0, tzinfo=UTC)
SENT_AT = dt.datetime(2026, 11, 27, 10, 0, tzinfo=UTC)
NEED_BY = dt.date(2026, 12, 7)
WINTER = Period(dt.date(2026, 11, 1), dt.date(2027, 1, 1))
AFTER = dt.datetime(2027, 1, 1, tzinfo=UTC)


def eur_contract_order(world: World) -> PurchaseOrder:
    """A work order short of 4 bearings -> requisition -> PO in EUR on contract, approved, sent."""
    eurobear = world.supplier("EUROBEAR", "EUR")
    world.contract(eurobear, "30.00")
    world.item(eurobear, [("1", "36.00")])
    _, shortages = open_work_order(
        world.db,
        asset_id=world.ids["pump"],
        title="Replace bearings",
        type=WorkOrderType.CORRECTIVE,
        parts=[PartNeed(world.ids["part"], Decimal(9))],
        due_at=dt.datetime.combine(NEED_BY, dt.time(12), tzinfo=UTC),
    )
    assert [s.missing for s in shortages] == [Decimal(4)]
    event = world.db.scalars(select(OutboxEvent).where(OutboxEvent.topic == "part.demand")).one()
    requisition_from_part_demand(world.db, event.payload)
    (po,) = world.auto()
    assert (po.currency, po.base_currency, po.lines[0].contract_id is not None) == (
        "EUR",
        "USD",
        True,
    )
    approve_order(
        world.db,
        po,
        approver_id=world.user(),
        role=Role.ADMIN,
        policy=ApprovalPolicy(),
        now=APPROVED,
    )
    send_order(po, now=SENT_AT)
    world.db.flush()
    return po


def two_deliveries_one_late(world: World) -> PurchaseOrder:
    """The EUR order acknowledged after 6 h, then 2 bearings after 6 days and 2 after 12.

    Sent 27 November 10:00, needed by 7 December: the receipt of 3 December is on time, the
    one of 9 December two days late; lead times 6 and 12 days.
    """
    po = eur_contract_order(world)
    line = po.lines[0]
    po.acknowledged_at = SENT_AT + dt.timedelta(hours=6)
    receive(world.db, line, quantity=Decimal(2), received_at=SENT_AT + dt.timedelta(days=6))
    receive(world.db, line, quantity=Decimal(2), received_at=SENT_AT + dt.timedelta(days=12))
    world.db.flush()
    return po


def test_end_to_end_two_partial_deliveries_one_late(world: World) -> None:
    two_deliveries_one_late(world)
    (result,) = scorecards(world.db, WINTER, as_of=AFTER)
    assert result.code == "EUROBEAR"
    on_time = result.metric(MetricKey.ON_TIME)
    # Receipts on 3 December (on time) and 9 December (two days after the 7 December need date).
    assert (on_time.value, on_time.detail["on_time"], on_time.detail["late"]) == (
        Decimal("50.0"),
        1,
        1,
    )
    assert on_time.detail["mean_days_late"] == Decimal("2.00")
    lead = result.metric(MetricKey.LEAD_TIME)
    assert (lead.value, lead.detail["std_dev_days"]) == (Decimal("9.00"), Decimal("3.00"))
    assert (lead.detail["min_days"], lead.detail["max_days"]) == (Decimal(6), Decimal(12))
    assert lead.score == Decimal("66.7")
    assert result.metric(MetricKey.OTIF).value == Decimal("0.0")
    assert result.metric(MetricKey.ACCURACY).value == Decimal("100.0")
    assert result.metric(MetricKey.QUALITY).value == Decimal("100.0")
    assert result.metric(MetricKey.ACKNOWLEDGEMENT).value == Decimal("6.0")
    assert result.metric(MetricKey.PRICE_COMPLIANCE).value == Decimal("100.0")
    # 0.25 x 50 + 0.15 x 0 + 0.20 x 100 + 0.10 x (100 + 66.7 + 100 + 100) = 69.2
    assert (result.score, result.grade) == (Decimal("69.2"), "D")
    assert [r.kind for r in result.recommendations] == [RecommendationKind.LATE_DELIVERIES]


def test_the_loader_skips_unsent_and_cancelled_orders_and_declined_lines(world: World) -> None:
    po = eur_contract_order(world)
    po.lines[0].ack_status = LineAckStatus.REJECTED
    # Another order from the same supplier, approved but never sent, then one cancelled.
    manual_requisition(world.db, part_id=world.ids["part"], quantity=Decimal(2))
    (unsent,) = world.auto()
    approve_order(
        world.db, unsent, approver_id=world.user(), role=Role.ADMIN, policy=ApprovalPolicy()
    )
    manual_requisition(world.db, part_id=world.ids["part"], quantity=Decimal(3))
    (cancelled,) = world.auto()
    approve_order(
        world.db, cancelled, approver_id=world.user(), role=Role.ADMIN, policy=ApprovalPolicy()
    )
    send_order(cancelled, now=SENT_AT)
    cancel_order(world.db, cancelled)
    world.supplier("IDLE", "USD")
    world.db.flush()

    cards = {c.code: c for c in scorecards(world.db, WINTER, as_of=AFTER)}
    assert set(cards) == {"EUROBEAR", "IDLE"}
    eurobear = cards["EUROBEAR"]
    # Only the sent order counts for acknowledgement (silent, 5 weeks past the target) ...
    ack = eurobear.metric(MetricKey.ACKNOWLEDGEMENT)
    assert (ack.basis, ack.detail["unacknowledged_past_target"]) == (1, 1)
    # ... and its only line was declined, so nothing was due or priced on it.
    assert eurobear.metric(MetricKey.OTIF).basis == 0
    assert eurobear.metric(MetricKey.PRICE_COMPLIANCE).value is None
    assert cards["IDLE"].score is None
    only = scorecards(world.db, WINTER, supplier_ids=[eurobear.supplier_id], as_of=AFTER)
    assert [c.code for c in only] == ["EUROBEAR"]


def test_price_compliance_uses_the_contract_valid_on_the_order_day(world: World) -> None:
    po = eur_contract_order(world)
    po.lines[0].unit_price = Decimal("31.00")  # bought above the agreed 30.00
    world.db.flush()
    (result,) = scorecards(world.db, WINTER, as_of=AFTER)
    assert result.metric(MetricKey.PRICE_COMPLIANCE).value == Decimal("0.0")
    contract = po.lines[0].contract
    assert contract is not None
    contract.valid_from = TODAY + dt.timedelta(days=1)  # not yet valid when the order was priced
    world.db.flush()
    (later,) = scorecards(world.db, WINTER, as_of=AFTER)
    assert later.metric(MetricKey.PRICE_COMPLIANCE).value is None
    contract.valid_from = TODAY
    contract.status = ContractStatus.SUSPENDED
    world.db.flush()
    (suspended,) = scorecards(world.db, WINTER, as_of=AFTER)
    assert suspended.metric(MetricKey.PRICE_COMPLIANCE).value is None
