"""List responses: a page of items with the total and the window asked for."""

from __future__ import annotations

from typing import Annotated, Any, Generic, TypeVar

from fastapi import Depends, Query
from pydantic import BaseModel
from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session

T = TypeVar("T")
MAX_LIMIT = 500


class Page(BaseModel, Generic[T]):
    """One page of a list."""

    items: list[T]
    total: int
    limit: int
    offset: int


class Window(BaseModel):
    """Which page to return."""

    limit: int
    offset: int


def window(
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT, description="items per page")] = 50,
    offset: Annotated[int, Query(ge=0, le=10_000_000, description="items to skip")] = 0,
) -> Window:
    """Read limit and offset from the query string."""
    return Window(limit=limit, offset=offset)


WindowDep = Annotated[Window, Depends(window)]


def paginate(db: Session, stmt: Select[Any], page: Window) -> tuple[list[Any], int]:
    """Run a select for one page (in a stable order by the caller) and count the whole."""
    total = db.scalar(select(func.count()).select_from(stmt.order_by(None).subquery())) or 0
    rows = list(db.scalars(stmt.limit(page.limit).offset(page.offset)).all())
    return rows, total


S = TypeVar("S", bound=BaseModel)


def page_of(schema: type[S], rows: list[Any], total: int, page: Window) -> Page[S]:
    """Wrap ORM rows as a page of response models."""
    return Page[S](
        items=[schema.model_validate(r) for r in rows],
        total=total,
        limit=page.limit,
        offset=page.offset,
    )


def list_page(db: Session, stmt: Select[Any], page: Window, schema: type[S]) -> Page[S]:
    """Run a select for one page and wrap it as response models."""
    rows, total = paginate(db, stmt, page)
    return page_of(schema, rows, total, page)
