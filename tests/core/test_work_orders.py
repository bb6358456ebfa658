"""The work-order status machine, as pure rules."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given
from hypothesis import strategies as st

from maintainpro.core.work_orders import (
    OPEN_STATUSES,
    REASON_REQUIRED,
    TRANSITIONS,
    IllegalTransition,
    WorkOrder,
    WorkOrderStatus,
    WorkOrderType,
    check_transition,
)

S = WorkOrderStatus
T0 = dt.datetime(2026, 11, 27, 8, 0, tzinfo=dt.UTC)


def _order(status: S = S.OPEN) -> WorkOrder:
    return WorkOrder(id=7, title="t", type=WorkOrderType.CORRECTIVE, asset_id=1, status=status)


@given(st.sampled_from(list(S)), st.sampled_from(list(S)))
def test_only_listed_moves_are_allowed(current: S, target: S) -> None:
    legal = target in TRANSITIONS[current]
    try:
        check_transition(current, target, assignee_id=1, reason="because")
    except IllegalTransition:
        assert not legal
    else:
        assert legal


@pytest.mark.parametrize("final", [S.CLOSED, S.CANCELLED])
def test_final_states_allow_nothing(final: S) -> None:
    for target in S:
        with pytest.raises(IllegalTransition, match="none \\(final\\)"):
            check_transition(final, target, assignee_id=1, reason="x")


@pytest.mark.parametrize("target", sorted(REASON_REQUIRED))
def test_moves_that_need_a_reason(target: S) -> None:
    with pytest.raises(IllegalTransition, match="needs a reason"):
        check_transition(S.OPEN, target, assignee_id=None, reason="  ")
    check_transition(S.OPEN, target, assignee_id=None, reason="pump seal on back order")


def test_assigning_needs_an_assignee() -> None:
    with pytest.raises(IllegalTransition, match="assignee"):
        check_transition(S.OPEN, S.ASSIGNED, assignee_id=None, reason=None)


def test_lifecycle_stamps_times_and_reopen_clears_completion() -> None:
    order = _order()
    order.move_to(S.ASSIGNED, assignee_id=3, now=T0)
    assert order.assignee_id == 3
    order.move_to(S.IN_PROGRESS, now=T0 + dt.timedelta(hours=1))
    assert order.started_at == T0 + dt.timedelta(hours=1)
    order.move_to(S.COMPLETED, now=T0 + dt.timedelta(hours=3))
    assert order.completed_at == T0 + dt.timedelta(hours=3)
    assert not order.is_open
    order.move_to(S.IN_PROGRESS, now=T0 + dt.timedelta(hours=4))
    assert order.completed_at is None
    assert order.started_at == T0 + dt.timedelta(hours=1), "rework keeps the first start"
    order.move_to(S.COMPLETED, now=T0 + dt.timedelta(hours=5))
    order.move_to(S.CLOSED, now=T0 + dt.timedelta(hours=6))
    assert order.closed_at == T0 + dt.timedelta(hours=6)


def test_refused_move_changes_nothing() -> None:
    order = _order(S.OPEN)
    with pytest.raises(IllegalTransition):
        order.move_to(S.CLOSED, now=T0)
    assert order.status is S.OPEN
    assert order.closed_at is None


def test_number_and_open_statuses() -> None:
    assert _order().number == "WO-000007"
    assert S.WAITING_FOR_PARTS in OPEN_STATUSES
    assert S.COMPLETED not in OPEN_STATUSES
