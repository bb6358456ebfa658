"""Work orders: types, priorities, the status machine, required parts and labour notes."""

from __future__ import annotations

import datetime as dt
import enum
from decimal import Decimal

from sqlalchemy import ForeignKey, Numeric, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from maintainpro.core.assets import Asset
from maintainpro.core.columns import Timestamped, text_enum
from maintainpro.core.db import Base, UTCDateTime, utcnow


class WorkOrderType(enum.StrEnum):
    """Why the work is done."""

    CORRECTIVE = "corrective"
    PREVENTIVE = "preventive"
    CONDITION_BASED = "condition_based"
    INSPECTION = "inspection"


class Priority(enum.StrEnum):
    """How soon the work must be done."""

    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"
    URGENT = "urgent"


class WorkOrderStatus(enum.StrEnum):
    """Where a work order is in its life."""

    OPEN = "open"
    ASSIGNED = "assigned"
    IN_PROGRESS = "in_progress"
    ON_HOLD = "on_hold"
    WAITING_FOR_PARTS = "waiting_for_parts"
    COMPLETED = "completed"
    CLOSED = "closed"
    CANCELLED = "cancelled"


class Origin(enum.StrEnum):
    """What created the work order."""

    MANUAL = "manual"
    SCHEDULE = "schedule"
    ALERT = "alert"


S = WorkOrderStatus
# The legal moves. Completed work can be reopened (rework) until it is closed; closed and
# cancelled are final so that costs and KPIs computed from them never change afterwards.
TRANSITIONS: dict[WorkOrderStatus, frozenset[WorkOrderStatus]] = {
    S.OPEN: frozenset({S.ASSIGNED, S.IN_PROGRESS, S.ON_HOLD, S.WAITING_FOR_PARTS, S.CANCELLED}),
    S.ASSIGNED: frozenset({S.OPEN, S.IN_PROGRESS, S.ON_HOLD, S.WAITING_FOR_PARTS, S.CANCELLED}),
    S.IN_PROGRESS: frozenset({S.ON_HOLD, S.WAITING_FOR_PARTS, S.COMPLETED, S.CANCELLED}),
    S.ON_HOLD: frozenset({S.ASSIGNED, S.IN_PROGRESS, S.CANCELLED}),
    S.WAITING_FOR_PARTS: frozenset({S.ASSIGNED, S.IN_PROGRESS, S.ON_HOLD, S.CANCELLED}),
    S.COMPLETED: frozenset({S.CLOSED, S.IN_PROGRESS}),
    S.CLOSED: frozenset(),
    S.CANCELLED: frozenset(),
}
OPEN_STATUSES = frozenset({S.OPEN, S.ASSIGNED, S.IN_PROGRESS, S.ON_HOLD, S.WAITING_FOR_PARTS})
# Moves that must say why, so that the history explains itself.
REASON_REQUIRED = frozenset({S.ON_HOLD, S.WAITING_FOR_PARTS, S.CANCELLED})


class IllegalTransition(ValueError):
    """A status change the work-order status machine does not allow."""


def check_transition(
    current: WorkOrderStatus,
    target: WorkOrderStatus,
    *,
    assignee_id: int | None,
    reason: str | None,
) -> None:
    """Raise IllegalTransition unless moving from current to target is allowed as asked."""
    if target not in TRANSITIONS[current]:
        allowed = ", ".join(sorted(s.value for s in TRANSITIONS[current])) or "none (final)"
        raise IllegalTransition(
            f"a work order cannot go from {current.value} to {target.value}; allowed: {allowed}"
        )
    if target is S.ASSIGNED and assignee_id is None:
        raise IllegalTransition("assigning needs an assignee")
    if target in REASON_REQUIRED and not (reason and reason.strip()):
        raise IllegalTransition(f"moving to {target.value} needs a reason")


class WorkOrder(Timestamped, Base):
    """A piece of maintenance work on one asset."""

    __tablename__ = "work_orders"

    id: Mapped[int] = mapped_column(primary_key=True)
    title: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    type: Mapped[WorkOrderType] = mapped_column(text_enum(WorkOrderType))
    priority: Mapped[Priority] = mapped_column(text_enum(Priority), default=Priority.MEDIUM)
    status: Mapped[WorkOrderStatus] = mapped_column(
        text_enum(WorkOrderStatus), default=WorkOrderStatus.OPEN, index=True
    )
    status_reason: Mapped[str | None] = mapped_column(Text)
    asset_id: Mapped[int] = mapped_column(ForeignKey("assets.id", ondelete="RESTRICT"), index=True)
    assignee_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    origin: Mapped[Origin] = mapped_column(text_enum(Origin), default=Origin.MANUAL)
    origin_ref: Mapped[str | None] = mapped_column(String(100), index=True)
    schedule_id: Mapped[int | None] = mapped_column(
        ForeignKey("maintenance_schedules.id", ondelete="SET NULL"), index=True
    )
    due_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    started_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    completed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    closed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())

    asset: Mapped[Asset] = relationship()
    parts: Mapped[list[WorkOrderPart]] = relationship(
        back_populates="work_order", cascade="all, delete-orphan", order_by="WorkOrderPart.id"
    )
    notes: Mapped[list[WorkOrderNote]] = relationship(
        back_populates="work_order", cascade="all, delete-orphan", order_by="WorkOrderNote.id"
    )

    @property
    def number(self) -> str:
        """The number people quote on the shop floor."""
        return f"WO-{self.id:06d}"

    @property
    def is_open(self) -> bool:
        """Whether the work is still to be finished."""
        return self.status in OPEN_STATUSES

    def move_to(
        self,
        target: WorkOrderStatus,
        *,
        reason: str | None = None,
        assignee_id: int | None = None,
        now: dt.datetime | None = None,
    ) -> None:
        """Change status through the status machine, stamping the times that go with it."""
        when = now or utcnow()
        new_assignee = assignee_id if assignee_id is not None else self.assignee_id
        check_transition(self.status, target, assignee_id=new_assignee, reason=reason)
        if target is S.ASSIGNED:
            self.assignee_id = new_assignee
        if target is S.IN_PROGRESS and self.started_at is None:
            self.started_at = when
        if target is S.COMPLETED:
            self.completed_at = when
        if target is S.IN_PROGRESS and self.status is S.COMPLETED:
            self.completed_at = None  # reopened for rework
        if target is S.CLOSED:
            self.closed_at = when
        self.status = target
        self.status_reason = reason


class WorkOrderPart(Base):
    """A spare part a work order needs, and how many."""

    __tablename__ = "work_order_parts"
    __table_args__ = (UniqueConstraint("work_order_id", "part_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    work_order_id: Mapped[int] = mapped_column(
        ForeignKey("work_orders.id", ondelete="CASCADE"), index=True
    )
    part_id: Mapped[int] = mapped_column(ForeignKey("parts.id", ondelete="RESTRICT"))
    quantity: Mapped[Decimal] = mapped_column(Numeric(14, 3))

    work_order: Mapped[WorkOrder] = relationship(back_populates="parts")


class WorkOrderNote(Base):
    """A labour note: what was done, by whom, and the hours spent."""

    __tablename__ = "work_order_notes"

    id: Mapped[int] = mapped_column(primary_key=True)
    work_order_id: Mapped[int] = mapped_column(
        ForeignKey("work_orders.id", ondelete="CASCADE"), index=True
    )
    author_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    body: Mapped[str] = mapped_column(Text)
    hours: Mapped[Decimal | None] = mapped_column(Numeric(8, 2))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)

    work_order: Mapped[WorkOrder] = relationship(back_populates="notes")
