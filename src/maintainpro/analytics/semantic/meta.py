"""The model as a query builder reads it (pure): Cube's /meta shape, limited to what the caller
may read.

``{"cubes": [{"name", "title", "type": "cube", "measures": [...], "dimensions": [...],
"hierarchies": [...], "joins": [...], "preAggregations": [...]}]}``. Member names are the full
query names (``WorkOrders.count``); a time dimension lists the granularities it can be bucketed
by; a hierarchy lists its levels coarse to fine (``WorkOrders.createdAt.year``, ...,
``Assets.site``, ``Assets.line``, ``Assets.asset``). Joins name only cubes the caller may read,
so a builder offers only combinations that can be answered.
"""

from __future__ import annotations

from typing import Any

from maintainpro.analytics.semantic.model import (
    Cube,
    DimensionType,
    Granularity,
    SemanticModel,
    level_member,
    pre_aggregation_dimensions,
)
from maintainpro.analytics.semantic.plan import Access
from maintainpro.analytics.semantic.results import cube_title, member_title


def _cube(model: SemanticModel, cube: Cube, access: Access) -> dict[str, Any]:
    title = cube_title(cube)
    pre_aggregated = {m for p in cube.pre_aggregations for m in p.measures}
    measures: list[dict[str, Any]] = [
        {
            "name": f"{cube.name}.{m.name}",
            "title": f"{title} {member_title(m)}",
            "shortTitle": member_title(m),
            "description": m.description,
            "type": "number",
            "aggType": m.type.value,
            "format": m.format,
            "cumulative": False,
            "cumulativeTotal": False,
            "drillMembers": [],
            "public": True,
            "isVisible": True,
            "preAggregated": m.name in pre_aggregated,
        }
        for m in cube.measures
    ]
    dimensions = []
    for d in cube.dimensions:
        entry: dict[str, Any] = {
            "name": f"{cube.name}.{d.name}",
            "title": f"{title} {member_title(d)}",
            "shortTitle": member_title(d),
            "description": d.description,
            "type": d.type.value,
            "primaryKey": d.primary_key,
            "suggestFilterValues": d.type is DimensionType.STRING,
            "public": True,
            "isVisible": True,
        }
        if d.type is DimensionType.TIME:
            entry["granularities"] = [
                {"name": g.value, "title": g.value.capitalize()} for g in Granularity
            ]
        dimensions.append(entry)
    hierarchies = [
        {
            "name": f"{cube.name}.{h.name}",
            "title": h.title or h.name,
            "levels": [level_member(model, cube, level) for level in h.levels],
        }
        for h in cube.hierarchies
    ]
    joins = [
        j.cube
        for j in cube.joins
        if (other := model.cube(j.cube)) is not None and access.may_read(other)
    ]
    pre_aggregations = [
        {
            "name": f"{cube.name}.{p.name}",
            "timeDimension": f"{cube.name}.{p.time_dimension}" if p.time_dimension else None,
            "granularity": p.granularity.value,
            "dimensions": [
                f"{owner.name}.{member}"
                for ref in pre_aggregation_dimensions(p)
                if (resolved := model.resolve(cube, ref)) is not None
                for owner, member in [resolved]
            ],
            "measures": [f"{cube.name}.{m}" for m in p.measures],
        }
        for p in cube.pre_aggregations
    ]
    return {
        "name": cube.name,
        "title": title,
        "description": cube.description,
        "type": "cube",
        "public": True,
        "isVisible": True,
        "measures": measures,
        "dimensions": dimensions,
        "segments": [],
        "hierarchies": hierarchies,
        "joins": joins,
        "preAggregations": pre_aggregations,
    }


def meta(model: SemanticModel, access: Access) -> dict[str, Any]:
    """The cubes the caller may read, with their members, hierarchies and joins."""
    return {"cubes": [_cube(model, c, access) for c in model.cubes if access.may_read(c)]}
