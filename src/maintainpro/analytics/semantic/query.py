"""The query JSON analysts send, in Cube's shape, read strictly (pure).

``{"measures": [...], "dimensions": [...], "timeDimensions": [{"dimension", "granularity",
"dateRange"}], "filters": [{"member", "operator", "values"} | {"or": [...]} | {"and": [...]}],
"order": {"Member": "asc"} | [["Member", "desc"]], "limit", "offset", "total", "timezone"}``.

Anything else is refused with a ``QueryError`` (HTTP 400) whose message names the field but
never repeats what the client sent, unless it is a plain member name.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Final, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    StringConstraints,
    Tag,
    ValidationError,
    field_validator,
)

MEMBER_PATTERN: Final = re.compile(
    r"^[A-Za-z][A-Za-z0-9_]{0,62}(\.[A-Za-z][A-Za-z0-9_]{0,62}){1,2}$"
)
DEFAULT_LIMIT: Final = 10_000
MAX_LIMIT: Final = 50_000
MAX_OFFSET: Final = 1_000_000
MAX_MEMBERS: Final = 64
MAX_FILTERS: Final = 64
MAX_VALUES: Final = 500
MAX_VALUE_LENGTH: Final = 500
MAX_DEPTH: Final = 4

Member = Annotated[str, StringConstraints(min_length=1, max_length=200)]
Value = str | int | float | bool | None
Direction = Literal["asc", "desc"]


class QueryError(ValueError):
    """The query cannot be answered as asked (HTTP 400); the message is safe to show."""

    status = 400


class QueryForbidden(QueryError):
    """The caller may not read a cube the query needs (HTTP 403)."""

    status = 403


def shown(name: object) -> str:
    """A member name for an error message: as sent if it is a plain member name, else hidden."""
    return name if isinstance(name, str) and MEMBER_PATTERN.match(name) else "(not shown)"


class _Strict(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)


class TimeDimensionQuery(_Strict):
    """A time dimension: bucketed by ``granularity``, limited to ``dateRange``, or both."""

    dimension: Member
    granularity: Annotated[str, StringConstraints(max_length=20)] | None = None
    date_range: (
        Annotated[str, StringConstraints(max_length=40)]
        | Annotated[
            list[Annotated[str, StringConstraints(max_length=40)]],
            Field(min_length=2, max_length=2),
        ]
        | None
    ) = Field(default=None, alias="dateRange")


class Condition(_Strict):
    """``member operator values``; ``dimension`` is accepted for ``member`` as Cube does."""

    member: Member | None = None
    dimension: Member | None = None
    operator: Annotated[str, StringConstraints(max_length=40)]
    values: Annotated[list[Value], Field(max_length=MAX_VALUES)] | None = None

    @field_validator("values")
    @classmethod
    def _short(cls, values: list[Value] | None) -> list[Value] | None:
        for value in values or ():
            if isinstance(value, str) and len(value) > MAX_VALUE_LENGTH:
                raise ValueError(f"a value is longer than {MAX_VALUE_LENGTH} characters")
        return values

    @property
    def target(self) -> str:
        """The member the condition is on."""
        name = self.member or self.dimension
        if name is None or (self.member and self.dimension):
            raise QueryError("a filter names its member in `member`")
        return name


class OrGroup(_Strict):
    """Any of the filters."""

    any_of: Annotated[list[Filter], Field(min_length=1, max_length=MAX_FILTERS)] = Field(alias="or")


class AndGroup(_Strict):
    """All of the filters."""

    all_of: Annotated[list[Filter], Field(min_length=1, max_length=MAX_FILTERS)] = Field(
        alias="and"
    )


def _branch(value: Any) -> str:
    if isinstance(value, dict):
        if "or" in value:
            return "or"
        if "and" in value:
            return "and"
    return "condition"


Filter = Annotated[
    Annotated[Condition, Tag("condition")]
    | Annotated[OrGroup, Tag("or")]
    | Annotated[AndGroup, Tag("and")],
    Discriminator(_branch),
]
OrGroup.model_rebuild()
AndGroup.model_rebuild()


class Query(_Strict):
    """A Cube query."""

    measures: Annotated[list[Member], Field(max_length=MAX_MEMBERS)] = []
    dimensions: Annotated[list[Member], Field(max_length=MAX_MEMBERS)] = []
    time_dimensions: Annotated[list[TimeDimensionQuery], Field(max_length=8)] = Field(
        default=[], alias="timeDimensions"
    )
    filters: Annotated[list[Filter], Field(max_length=MAX_FILTERS)] = []
    segments: Annotated[list[Member], Field(max_length=0)] = []
    order: dict[Member, Direction] | list[tuple[Member, Direction]] | None = None
    limit: Annotated[int, Field(ge=1, le=MAX_LIMIT)] | None = None
    offset: Annotated[int, Field(ge=0, le=MAX_OFFSET)] = 0
    total: bool = False
    timezone: Literal["UTC", "Etc/UTC"] = "UTC"
    ungrouped: Literal[False] = False
    renew_query: bool = Field(default=False, alias="renewQuery")

    def order_pairs(self) -> list[tuple[str, Direction]] | None:
        """The order as (member, direction) pairs; None when not given."""
        if self.order is None:
            return None
        if isinstance(self.order, dict):
            return list(self.order.items())
        return list(self.order)


_MESSAGES: Final = {
    "extra_forbidden": "is not a query field",
    "literal_error": "is not one of the accepted values",
    "too_long": "has too many items",
    "too_short": "has too few items",
    "less_than_equal": "is too large",
    "greater_than_equal": "is too small",
}
_PLAIN_FIELD: Final = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,40}$")


_TAGS: Final = frozenset({"condition", "or", "and"})
_TYPE_LABELS: Final = frozenset({"str", "int", "float", "bool", "list", "dict", "tuple", "none"})


def _location(loc: tuple[Any, ...]) -> str:
    parts: list[str] = []
    for i, part in enumerate(loc):
        if isinstance(part, int):
            parts.append(f"[{part}]")
            continue
        text = str(part)
        # pydantic names union branches (a type, or a filter's tag); they are no query field.
        if "[" in text or text in _TYPE_LABELS or text.startswith("constrained"):
            continue
        if i > 0 and isinstance(loc[i - 1], int) and text in _TAGS:
            continue
        plain = _PLAIN_FIELD.match(text) or MEMBER_PATTERN.match(text)
        parts.append(("." if parts else "") + (text if plain else "(not shown)"))
    return "".join(parts) or "query"


def parse_query(raw: Any) -> Query:
    """A query from decoded JSON; ``QueryError`` naming the first few problems."""
    if not isinstance(raw, dict):
        raise QueryError("the query is a JSON object")
    if _depth(raw.get("filters"), 0) > MAX_DEPTH:
        raise QueryError(f"filters nest deeper than {MAX_DEPTH} levels")
    try:
        return Query.model_validate(raw)
    except ValidationError as exc:
        seen: list[str] = []
        for error in exc.errors(include_input=False, include_url=False):
            message = _MESSAGES.get(error["type"], error["msg"].removeprefix("Value error, "))
            line = f"{_location(tuple(error['loc']))}: {message}"
            if line not in seen:
                seen.append(line)
        raise QueryError("invalid query: " + "; ".join(seen[:5])) from None


def _depth(node: Any, level: int) -> int:
    if level > MAX_DEPTH:
        return level
    if isinstance(node, list):
        return max((_depth(n, level) for n in node), default=level)
    if isinstance(node, dict):
        inner = [v for k, v in node.items() if k in ("or", "and")]
        return max((_depth(v, level + 1) for v in inner), default=level)
    return level
