"""Small shared steps of the create/read/update routes."""

from __future__ import annotations

from typing import Any, TypeVar

from pydantic import BaseModel
from sqlalchemy.orm import Session

from maintainpro.api.problems import Problem

M = TypeVar("M")


def get_or_404(db: Session, model: type[M], item_id: int) -> M:
    """The row with this id, or a 404 problem naming what was missing."""
    item = db.get(model, item_id)
    if item is None:
        name = getattr(model, "__tablename__", model.__name__).rstrip("s").replace("_", " ")
        raise Problem(404, f"{name} {item_id} does not exist")
    return item


def refuse_nulls(item: Any, values: dict[str, Any]) -> None:
    """A 422 problem when a PATCH body sets a required column to null."""
    columns = item.__table__.columns
    for key, value in values.items():
        if value is None and key in columns and not columns[key].nullable:
            raise Problem(422, f"{key} cannot be null", title="Invalid request")


def apply_changes(item: Any, changes: BaseModel) -> dict[str, Any]:
    """Copy the fields a PATCH body actually set onto a row; returns them."""
    values = changes.model_dump(exclude_unset=True)
    refuse_nulls(item, values)
    for key, value in values.items():
        setattr(item, key, value)
    return values


def require_exists(db: Session, model: type[Any], item_id: int | None, field: str) -> None:
    """A 422 problem when a body refers to a row that does not exist."""
    if item_id is not None and db.get(model, item_id) is None:
        raise Problem(422, f"{field} {item_id} does not exist", title="Unknown reference")
