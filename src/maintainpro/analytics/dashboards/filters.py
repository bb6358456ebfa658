"""Dashboard-wide member filters: which dimensions they may name and which questions they reach.

A dashboard filter names a *shared dimension*: a dimension (not a time, not a key) of a cube
that other cubes join: Sites, Assets, Sensors, Parts and Suppliers in the shipped model. Such a
member means the same thing in every question that reaches it. Dimensions that only share a
name across fact cubes (``WorkOrders.status`` and ``Alerts.status``) hold different things, so
they are not shared.

A filter applies to a question when the question's base cube (the cube of its measures) is the
filter's cube or joins it; failing that, when it is or joins the cube of an *equivalent* member
(the same values under another name: ``Sites.code`` and ``Assets.site`` are both the site
code). A filter that does not apply is reported for that question, never dropped silently. The
filters are added to the question's own (all must hold), and the semantic layer still applies
the viewer's site scope, so a filter can only narrow what a viewer sees.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Any, Final

from maintainpro.analytics.dashboards.rules import (
    DashboardError,
    Filters,
    MemberFilter,
    with_date_range,
)
from maintainpro.analytics.semantic.model import Cube, DimensionType, SemanticModel
from maintainpro.analytics.semantic.plan import Access, plan_query
from maintainpro.analytics.semantic.query import QueryError, parse_query

# Members of different cubes that hold the same values (a site code in both).
EQUIVALENTS: Final = (frozenset({"Sites.code", "Assets.site"}),)


@dataclass(frozen=True)
class SharedDimension:
    """A dimension a dashboard may filter on."""

    member: str
    cube: str
    title: str
    type: str


def shared_dimensions(model: SemanticModel) -> dict[str, SharedDimension]:
    """Every dimension a dashboard may filter on, by member name, in model order."""
    joined = {join.cube for cube in model.cubes for join in cube.joins}
    found: dict[str, SharedDimension] = {}
    for cube in model.cubes:
        if cube.name not in joined:
            continue
        for dimension in cube.dimensions:
            # Surrogate keys differ from warehouse to warehouse; times belong to the date range.
            if dimension.primary_key or dimension.type is DimensionType.TIME:
                continue
            member = f"{cube.name}.{dimension.name}"
            title = f"{cube.display_title}: {dimension.title or dimension.name}"
            found[member] = SharedDimension(member, cube.name, title, dimension.type.value)
    return found


def filter_members(model: SemanticModel, access: Access) -> list[dict[str, str]]:
    """The shared dimensions of the cubes this caller may read (the page's filter picker)."""
    found: list[dict[str, str]] = []
    for shared in shared_dimensions(model).values():
        cube = model.cube(shared.cube)
        if cube is not None and access.may_read(cube):
            found.append({"member": shared.member, "title": shared.title, "type": shared.type})
    return found


def _equivalents(member: str) -> list[str]:
    same = [m for group in EQUIVALENTS if member in group for m in sorted(group) if m != member]
    return [member, *same]


def check_member_filters(
    model: SemanticModel, filters: Sequence[MemberFilter], access: Access, today: dt.date
) -> None:
    """Refuse a filter on a member that is not shared, a member filtered twice, or values the
    member's type cannot hold (422); a cube the caller may not read is a 403."""
    shared = shared_dimensions(model)
    cubes = sorted({s.cube for s in shared.values()})
    names = " or ".join([", ".join(cubes[:-1]), cubes[-1]] if len(cubes) > 1 else cubes)
    seen: set[str] = set()
    for index, item in enumerate(filters):
        where = f"filters.members[{index}]"
        if item.member not in shared:
            raise DashboardError(
                f"{where}.member is not a shared dimension (a dimension of {names or 'no cube'},"
                " not a time or a key)"
            )
        if item.member in seen:
            raise DashboardError(f"{where} filters a member an earlier filter already filters")
        seen.add(item.member)
        # The filter asked of its own cube: the semantic layer converts and checks the values.
        probe = {"dimensions": [item.member], "filters": [item.model_dump()], "limit": 1}
        try:
            plan_query(model, parse_query(probe), access, today)
        except QueryError as exc:
            raise DashboardError(f"{where}: {exc}", 403 if exc.status == 403 else 422) from None


def _base_cube(model: SemanticModel, query: dict[str, Any], today: dt.date) -> Cube | None:
    try:
        return plan_query(model, parse_query(query), Access.unrestricted(), today).base
    except QueryError:
        return None


def _reach(model: SemanticModel, base: Cube, member: str, shared: Collection[str]) -> str | None:
    if member not in shared:
        return None
    for candidate in _equivalents(member):
        owner, _, name = candidate.partition(".")
        cube = model.cube(owner)
        if cube is None or cube.dimension(name) is None:
            continue
        if owner == base.name or base.join(owner) is not None:
            return candidate
    return None


def target_member(
    model: SemanticModel, query: dict[str, Any], member: str, today: dt.date
) -> str | None:
    """The member through which a dashboard filter on ``member`` narrows this question, or None
    when it cannot (the question's cube neither has nor joins it or an equivalent)."""
    base = _base_cube(model, query, today)
    return None if base is None else _reach(model, base, member, shared_dimensions(model))


def with_member_filters(
    model: SemanticModel,
    query: dict[str, Any],
    filters: Sequence[MemberFilter],
    today: dt.date,
) -> tuple[dict[str, Any], list[str]]:
    """The query with every dashboard filter that applies to it added to its own filters, and
    the members of the filters that do not apply (in the dashboard's order)."""
    if not filters:
        return query, []
    base = _base_cube(model, query, today)
    shared = shared_dimensions(model)
    added: list[dict[str, Any]] = []
    skipped: list[str] = []
    for item in filters:
        target = None if base is None else _reach(model, base, item.member, shared)
        if target is None:
            skipped.append(item.member)
            continue
        added.append({"member": target, "operator": item.operator, "values": list(item.values)})
    if not added:
        return query, skipped
    own = query.get("filters")
    return {**query, "filters": [*(own if isinstance(own, list) else []), *added]}, skipped


def with_dashboard_filters(
    model: SemanticModel, query: dict[str, Any], stored: dict[str, Any], today: dt.date
) -> tuple[dict[str, Any], list[str]]:
    """A question's query under a dashboard's saved filters (its ``dateRange`` and member
    filters), and the members of the filters that do not apply: for callers that run a
    dashboard's questions outside the page, such as scheduled reports."""
    filters = Filters.model_validate(stored or {})
    return with_member_filters(
        model, with_date_range(query, filters.date_range), filters.members, today
    )
