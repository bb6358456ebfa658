"""The pure rules of questions and dashboards: what a valid one is, who may see or change it.

A question's query is checked the way ``/semantic/load`` checks it (``parse_query`` then
``plan_query`` for the caller), so a saved question names only members the saver may read.
A dashboard is a 12-column grid of non-overlapping items: saved questions and live sensor
widgets. Its ``dateRange`` filter replaces the date range of every question's time dimensions;
its ``members`` filters (on shared dimensions, see ``filters``) narrow every question they apply to.
Errors are ``DashboardError`` with a status and a message that never repeats what was sent.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from typing import Annotated, Any, Final, Literal, TypeVar

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
)

from maintainpro.analytics.semantic.answering import access_of
from maintainpro.analytics.semantic.model import SemanticModel
from maintainpro.analytics.semantic.plan import Access, plan_query
from maintainpro.analytics.semantic.query import QueryError, parse_query
from maintainpro.analytics.semantic.timeranges import date_range
from maintainpro.api.fields import Name
from maintainpro.core.users import Role, User

CHART_TYPES: Final = ("table", "line", "bar", "stacked", "heatmap", "pivot")
# Relative ranges offered by the builder and the dashboards (phrases the semantic layer reads).
DATE_PRESETS: Final = (
    "today",
    "yesterday",
    "last 7 days",
    "last 30 days",
    "last 90 days",
    "last 12 months",
    "this week",
    "last week",
    "this month",
    "last month",
    "this quarter",
    "last quarter",
    "this year",
    "last year",
)
GRID_COLUMNS: Final = 12
MAX_ROWS: Final = 200
MAX_ITEMS: Final = 60
MAX_SENSORS_PER_WIDGET: Final = 8
MAX_QUERY_TEXT: Final = 16_384
MIN_REFRESH_S: Final = 5
MAX_REFRESH_S: Final = 86_400
MAX_MEMBER_FILTERS: Final = 8
MAX_FILTER_VALUES: Final = 50
# Supplier accounts never see the staff pages, so nothing can be shared with them.
SHAREABLE_ROLES: Final = tuple(r.value for r in Role if r is not Role.SUPPLIER)
M = TypeVar("M", bound=BaseModel)
# Messages of pydantic that would repeat what was sent.
_MESSAGES: Final = {
    "union_tag_invalid": "kind is question or sensors",
    "union_tag_not_found": "kind is missing (question or sensors)",
}
_PLAIN: Final = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,40}$")

ChartType = Literal["table", "line", "bar", "stacked", "heatmap", "pivot"]
RoleName = Literal["admin", "maintenance_manager", "technician", "procurement", "analyst"]
Description = Annotated[str, StringConstraints(max_length=2000)]
DateText = Annotated[str, StringConstraints(max_length=40)]
DateRange = DateText | Annotated[list[DateText], Field(min_length=2, max_length=2)] | None


def _refresh_interval(seconds: int) -> int:
    if 0 < seconds < MIN_REFRESH_S:
        raise ValueError(f"refresh_s is 0 (off) or at least {MIN_REFRESH_S} seconds")
    return seconds


RefreshSeconds = Annotated[int, Field(ge=0, le=MAX_REFRESH_S), AfterValidator(_refresh_interval)]


class DashboardError(ValueError):
    """A question or dashboard that cannot be saved, run or shown; the message is safe to show."""

    def __init__(self, message: str, status: int = 422) -> None:
        super().__init__(message)
        self.status = status


class StrictModel(BaseModel):
    """A model that refuses unknown keys."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class QuestionIn(StrictModel):
    """A question as sent to be saved."""

    name: Name
    description: Description = ""
    query: dict[str, Any]
    chart: ChartType = "table"
    shared_roles: Annotated[list[RoleName], Field(max_length=len(SHAREABLE_ROLES))] = []


class GridCell(StrictModel):
    """A place on the 12-column grid."""

    x: Annotated[int, Field(ge=0, lt=GRID_COLUMNS)]
    y: Annotated[int, Field(ge=0, lt=MAX_ROWS)]
    w: Annotated[int, Field(ge=1, le=GRID_COLUMNS)] = 6
    h: Annotated[int, Field(ge=1, le=12)] = 4


class QuestionItem(GridCell):
    """A saved question on the grid."""

    kind: Literal["question"]
    question_id: Annotated[int, Field(ge=1)]


class SensorItem(GridCell):
    """A live chart of up to eight sensors, fed by the real-time stream."""

    kind: Literal["sensors"]
    sensor_ids: Annotated[
        list[Annotated[int, Field(ge=1)]], Field(min_length=1, max_length=MAX_SENSORS_PER_WIDGET)
    ]
    title: Annotated[str, StringConstraints(max_length=200)] = ""


Item = Annotated[QuestionItem | SensorItem, Field(discriminator="kind")]


FilterValue = Annotated[str, StringConstraints(min_length=1, max_length=200)]


class MemberFilter(StrictModel):
    """A dashboard-wide filter on a shared dimension: its values (equals) or not (notEquals)."""

    member: Annotated[str, StringConstraints(min_length=3, max_length=130)]
    operator: Literal["equals", "notEquals"] = "equals"
    values: Annotated[list[FilterValue], Field(min_length=1, max_length=MAX_FILTER_VALUES)]


class Filters(StrictModel):
    """Dashboard-wide filters: a date range for every question's time dimensions, and member
    filters on shared dimensions for every question they apply to."""

    date_range: DateRange = Field(default=None, alias="dateRange")
    members: Annotated[list[MemberFilter], Field(max_length=MAX_MEMBER_FILTERS)] = []

    def stored(self) -> dict[str, Any]:
        """The JSON kept with the dashboard: no key for a range or member filters not given."""
        data = self.model_dump(by_alias=True, exclude_none=True)
        if not self.members:
            del data["members"]
        return data


class DashboardIn(StrictModel):
    """A dashboard as sent to be saved."""

    name: Name
    description: Description = ""
    layout: Annotated[list[Item], Field(max_length=MAX_ITEMS)] = []
    filters: Filters = Filters()
    refresh_s: RefreshSeconds = 0
    shared_roles: Annotated[list[RoleName], Field(max_length=len(SHAREABLE_ROLES))] = []


_ITEM_KINDS: Final = frozenset({"question", "sensors"})


def _where(loc: tuple[Any, ...]) -> str:
    parts: list[str] = []
    for index, part in enumerate(loc):
        if index and isinstance(loc[index - 1], int) and part in _ITEM_KINDS:
            continue  # pydantic names the kind of a layout item; the index says which item
        if isinstance(part, int):
            parts.append(f"[{part}]")
        elif _PLAIN.match(str(part)):
            parts.append(("." if parts else "") + str(part))
        else:  # a key the sender made up: it is not repeated back
            parts.append(("." if parts else "") + "(not shown)")
    return "".join(parts) or "body"


def parse_model(model: type[M], raw: Any, what: str) -> M:
    """Validate decoded JSON against a model; ``DashboardError`` (422) naming the first errors."""
    if not isinstance(raw, dict):
        raise DashboardError(f"the {what} is a JSON object")
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        lines: list[str] = []
        for error in exc.errors(include_input=False, include_url=False, include_context=False):
            message = _MESSAGES.get(error["type"], error["msg"].removeprefix("Value error, "))
            line = f"{_where(tuple(error['loc']))}: {message}"
            if line not in lines:
                lines.append(line)
        raise DashboardError(f"invalid {what}: " + "; ".join(lines[:5])) from None


def _plans(model: SemanticModel, raw: dict[str, Any], access: Access, today: dt.date) -> bool:
    try:
        plan_query(model, parse_query(raw), access, today)
    except QueryError:
        return False
    return True


def _failing_part(
    model: SemanticModel, raw: dict[str, Any], access: Access, today: dt.date
) -> str | None:
    """Which filter or time dimension a refused query fails on, when one part alone does."""
    # Each part is tried on the query without the other parts of its kind, so the message can
    # name the builder's row ("filters[1]") rather than only the member.
    bare = {k: v for k, v in raw.items() if k not in ("filters", "timeDimensions", "order")}
    if not _plans(model, bare, access, today):
        return None
    for key in ("timeDimensions", "filters"):
        parts = raw.get(key)
        if not isinstance(parts, list):
            continue
        for index, part in enumerate(parts):
            if not _plans(model, {**bare, key: [part]}, access, today):
                return f"{key}[{index}]"
    return None


def check_query(model: SemanticModel, raw: dict[str, Any], user: User, today: dt.date) -> None:
    """Refuse a query the semantic layer would not answer for this user (422, or 403).

    A refused filter or time dimension is named by its place (``filters[1]: ...``).
    """
    if len(json.dumps(raw, default=str)) > MAX_QUERY_TEXT:
        raise DashboardError(f"the query is longer than {MAX_QUERY_TEXT} characters")
    access = access_of(user)
    try:
        plan_query(model, parse_query(raw), access, today)
    except QueryError as exc:
        if exc.status == 403:
            raise DashboardError(str(exc), 403) from None
        where = _failing_part(model, raw, access, today)
        raise DashboardError(f"{where}: {exc}" if where else str(exc)) from None


def check_date_range(value: str | list[str] | None, today: dt.date) -> None:
    """Refuse a dashboard date range the semantic layer cannot read."""
    if value is None:
        return
    try:
        date_range(value, today)
    except (QueryError, ValueError):
        raise DashboardError("filters.dateRange is not a date range the model reads") from None


def check_grid(layout: list[QuestionItem | SensorItem]) -> None:
    """Every item inside the 12 columns and the 200 rows, and no two items on the same cell."""
    taken: set[tuple[int, int]] = set()
    for index, item in enumerate(layout):
        if item.x + item.w > GRID_COLUMNS:
            raise DashboardError(f"layout[{index}] reaches past column {GRID_COLUMNS}")
        if item.y + item.h > MAX_ROWS:
            raise DashboardError(f"layout[{index}] reaches past row {MAX_ROWS}")
        cells = {
            (x, y) for x in range(item.x, item.x + item.w) for y in range(item.y, item.y + item.h)
        }
        if cells & taken:
            raise DashboardError(f"layout[{index}] overlaps an earlier item")
        taken |= cells


def with_date_range(query: dict[str, Any], value: str | list[str] | None) -> dict[str, Any]:
    """The query with the dashboard's date range on each of its time dimensions."""
    if value is None or not query.get("timeDimensions"):
        return query
    times = [{**entry, "dateRange": value} for entry in query["timeDimensions"]]
    return {**query, "timeDimensions": times}


def may_view(owner_id: int | None, shared_roles: list[str], user: User) -> bool:
    """The owner, an admin, and the roles it is shared with may open it."""
    return user.role is Role.ADMIN or owner_id == user.id or user.role.value in shared_roles


def may_change(owner_id: int | None, user: User) -> bool:
    """Only the owner (or an admin) may change or delete it."""
    return user.role is Role.ADMIN or owner_id == user.id
