"""Audit log: every change to a domain row, with who, what, when, before and after.

Recording hangs on the ORM flush, so no service can forget it. The actor is read from
``session.info["actor"]`` which the API, the web pages and the CLI set when they open a session.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from sqlalchemy import JSON, Integer, String, event, insert, inspect
from sqlalchemy.orm import Mapped, Session, mapped_column

from maintainpro.core.columns import json_value
from maintainpro.core.db import Base, UTCDateTime, utcnow

REDACTED = "***"


@dataclass(frozen=True)
class Actor:
    """Who makes the changes in a session."""

    user_id: int | None
    name: str


SYSTEM = Actor(user_id=None, name="system")


class AuditEntry(Base):
    """One recorded change."""

    __tablename__ = "audit_log"
    __audit__ = False

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow, index=True)
    actor_id: Mapped[int | None] = mapped_column(Integer)
    actor: Mapped[str] = mapped_column(String(100))
    action: Mapped[str] = mapped_column(String(16))
    entity: Mapped[str] = mapped_column(String(64), index=True)
    entity_id: Mapped[str] = mapped_column(String(64), index=True)
    before: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    after: Mapped[dict[str, Any] | None] = mapped_column(JSON)


def set_actor(session: Session, actor: Actor) -> None:
    """Attribute the session's coming changes to an actor."""
    session.info["actor"] = actor


def _audited(obj: Any) -> bool:
    return bool(getattr(type(obj), "__audit__", True)) and hasattr(obj, "__table__")


def _column_policy(obj: Any, key: str) -> str | None:
    column = obj.__table__.columns.get(key)
    if column is None:
        return None
    policy = column.info.get("audit")
    return str(policy) if policy else None


def _snapshot(obj: Any, *, old: bool) -> dict[str, Any]:
    # state.dict never triggers a load, which must not happen in the middle of a flush.
    state = inspect(obj)
    values: dict[str, Any] = {}
    for attr in state.mapper.column_attrs:
        key = attr.key
        policy = _column_policy(obj, key)
        if policy == "skip":
            continue
        value = state.dict.get(key)
        if old:
            history = state.attrs[key].history
            if history.deleted:
                value = history.deleted[0]
        values[key] = REDACTED if policy == "redact" and value is not None else json_value(value)
    return values


def _changed_keys(obj: Any) -> list[str]:
    state = inspect(obj)
    changed = []
    for attr in state.mapper.column_attrs:
        if _column_policy(obj, attr.key) == "skip":
            continue
        if state.attrs[attr.key].history.has_changes():
            changed.append(attr.key)
    return changed


def _entity_id(obj: Any) -> str:
    # New rows have no identity key until after the flush, but their primary key is loaded.
    state = inspect(obj)
    values = [state.dict.get(column.key) for column in state.mapper.primary_key]
    return ",".join(str(v) for v in values)


def _after_flush(session: Session, _context: Any) -> None:
    actor: Actor = session.info.get("actor", SYSTEM)
    now = utcnow()
    rows: list[dict[str, Any]] = []

    def record(obj: Any, action: str, before: Any, after: Any) -> None:
        rows.append(
            {
                "at": now,
                "actor_id": actor.user_id,
                "actor": actor.name,
                "action": action,
                "entity": obj.__tablename__,
                "entity_id": _entity_id(obj),
                "before": before,
                "after": after,
            }
        )

    for obj in session.new:
        if _audited(obj):
            record(obj, "create", None, _snapshot(obj, old=False))
    for obj in session.dirty:
        if not _audited(obj) or not session.is_modified(obj):
            continue
        changed = _changed_keys(obj)
        if not changed:
            continue
        before = _snapshot(obj, old=True)
        after = _snapshot(obj, old=False)
        record(
            obj,
            "update",
            {k: before[k] for k in changed},
            {k: after[k] for k in changed},
        )
    for obj in session.deleted:
        if _audited(obj):
            record(obj, "delete", _snapshot(obj, old=True), None)
    if rows:
        session.connection().execute(insert(AuditEntry), rows)


def record_change(
    session: Session,
    action: str,
    obj: Any,
    *,
    before: dict[str, Any] | None,
    after: dict[str, Any] | None,
) -> None:
    """Record a change made with a bulk statement, which the flush hook cannot see."""
    actor: Actor = session.info.get("actor", SYSTEM)
    session.connection().execute(
        insert(AuditEntry),
        [
            {
                "at": utcnow(),
                "actor_id": actor.user_id,
                "actor": actor.name,
                "action": action,
                "entity": obj.__tablename__,
                "entity_id": _entity_id(obj),
                "before": before,
                "after": after,
            }
        ],
    )


def install_audit(session_class: type[Session] = Session) -> None:
    """Hook audit recording onto every flush of the session class (idempotent)."""
    if not event.contains(session_class, "after_flush", _after_flush):
        event.listen(session_class, "after_flush", _after_flush)
