"""The audit log records every change with actor, before and after; secrets are redacted."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from maintainpro.core.assets import Asset, AssetStatus
from maintainpro.core.audit import Actor, AuditEntry, set_actor
from maintainpro.core.db import utcnow
from maintainpro.core.users import Role, User, issue_token
from support import plant


def _entries(db: Session, entity: str) -> list[AuditEntry]:
    return list(
        db.scalars(select(AuditEntry).where(AuditEntry.entity == entity).order_by(AuditEntry.id))
    )


def test_create_update_delete_are_recorded_with_the_actor(db: Session) -> None:
    set_actor(db, Actor(user_id=42, name="maria"))
    ids = plant(db)
    db.commit()
    pump = db.get(Asset, ids["pump"])
    assert pump is not None
    pump.status = AssetStatus.DOWN
    pump.name = "Transfer pump"
    db.commit()
    db.delete(db.get(Asset, ids["motor"]))
    db.commit()
    entries = _entries(db, "assets")
    actions = [(e.action, e.entity_id) for e in entries]
    assert actions == [
        ("create", str(ids["pump"])),
        ("create", str(ids["motor"])),
        ("update", str(ids["pump"])),
        ("delete", str(ids["motor"])),
    ]
    update = entries[2]
    assert update.actor == "maria"
    assert update.actor_id == 42
    assert update.before == {"name": "Pump", "status": "operational"}
    assert update.after == {"name": "Transfer pump", "status": "down"}
    assert entries[3].before is not None
    assert entries[3].before["tag"] == "M-1"


def test_secrets_are_redacted_and_bookkeeping_is_skipped(db: Session) -> None:
    user = User(username="u1", role=Role.TECHNICIAN, password_hash="$argon2id$secret")
    db.add(user)
    db.flush()
    token, _ = issue_token(db, user, "t")
    db.commit()
    assert _entries(db, "users")[0].after["password_hash"] == "***"  # type: ignore[index]
    assert _entries(db, "api_tokens")[0].after["token_hash"] == "***"  # type: ignore[index]
    token.last_used_at = utcnow()
    db.commit()
    assert len(_entries(db, "api_tokens")) == 1, "last_used_at alone is not an audited change"


def test_stock_movements_are_audited(db: Session) -> None:
    from decimal import Decimal

    from maintainpro.core.inventory import adjust_stock

    set_actor(db, Actor(user_id=None, name="store"))
    ids = plant(db)
    adjust_stock(db, ids["stock"], Decimal(3))
    db.commit()
    moves = [e for e in _entries(db, "stock_levels") if e.action == "update"]
    assert len(moves) == 1
    assert moves[0].before is not None
    assert Decimal(moves[0].before["on_hand"]) == 5
    assert moves[0].after is not None
    assert Decimal(moves[0].after["on_hand"]) == 8
