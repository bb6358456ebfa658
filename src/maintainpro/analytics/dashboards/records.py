"""Tables of saved questions (a semantic query with a chart) and dashboards (a grid of them)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import JSON, ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from maintainpro.core.columns import Timestamped
from maintainpro.core.db import Base


class SavedQuestion(Timestamped, Base):
    """A query on the semantic model with the chart that shows it, shared with some roles."""

    __tablename__ = "saved_questions"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    # Cube-style query JSON, checked against the semantic model when saved.
    query: Mapped[dict[str, Any]] = mapped_column(JSON)
    chart: Mapped[str] = mapped_column(String(20), default="table")
    owner_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), index=True
    )
    shared_roles: Mapped[list[str]] = mapped_column(JSON, default=list)


class Dashboard(Timestamped, Base):
    """Saved questions and live sensor widgets on a grid, with filters for every question."""

    __tablename__ = "dashboards"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    # [{"kind": "question", "question_id", "x", "y", "w", "h"} |
    #  {"kind": "sensors", "sensor_ids": [...], "title", "x", "y", "w", "h"}]
    layout: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    filters: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    refresh_s: Mapped[int] = mapped_column(Integer, default=0)
    owner_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), index=True
    )
    shared_roles: Mapped[list[str]] = mapped_column(JSON, default=list)
