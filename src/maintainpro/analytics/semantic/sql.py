"""SQL text of a cube (pure): aliases, snippets, joins and the aggregate of each measure.

A cube is aliased by its name (``"WorkOrders"``), a joined cube by its own (``"Assets"``), so
``{CUBE}`` and ``{Assets}`` in a snippet become those quoted aliases. Names come from the
validated model, never from a query; a query only ever chooses among them.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import Final

from maintainpro.analytics.semantic.model import (
    COLUMN_PATTERN,
    PLACEHOLDER,
    SELF,
    Cube,
    Dimension,
    DimensionType,
    Granularity,
    Measure,
    MeasureType,
)

_IDENTIFIER: Final = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def quote(name: str) -> str:
    """A double-quoted identifier; only plain names (from the model or the schema) are taken."""
    if not _IDENTIFIER.match(name):
        raise ValueError(f"not a plain identifier: {name!r}")
    return f'"{name}"'


def render(snippet: str, cube: Cube) -> str:
    """A snippet of ``cube`` as SQL: a bare column qualified by the cube's alias, placeholders
    replaced by the aliases of the cubes they name."""
    if COLUMN_PATTERN.match(snippet):
        return f"{quote(cube.name)}.{quote(snippet)}"
    return PLACEHOLDER.sub(
        lambda m: quote(cube.name if m.group(1) == SELF else m.group(1)), snippet
    )


def source(cube: Cube) -> str:
    """What the cube reads: its table, or its query in parentheses."""
    if cube.table is not None:
        return quote(cube.table)
    assert cube.sql is not None
    return f"({cube.sql})"


def relation(cube: Cube, joined: Sequence[Cube]) -> str:
    """FROM text: the cube aliased by its name, LEFT JOINed to the cubes a query needs."""
    text = f"{source(cube)} AS {quote(cube.name)}"
    for other in joined:
        join = cube.join(other.name)
        if join is None:
            raise ValueError(f"{cube.name} has no join to {other.name}")
        text += f" LEFT JOIN {source(other)} AS {quote(other.name)} ON {render(join.sql, cube)}"
    return text


def dimension_sql(owner: Cube, dimension: Dimension) -> str:
    """The value of a dimension; time dimensions as TIMESTAMP, whatever their column type."""
    text = render(dimension.sql, owner)
    return f"CAST({text} AS TIMESTAMP)" if dimension.type is DimensionType.TIME else text


def bucket_sql(time: str, granularity: Granularity) -> str:
    """A timestamp truncated to the start of its bucket (weeks start on Monday, ISO)."""
    return f"date_trunc('{granularity.value}', {time})"


def conditions(measure: Measure, cube: Cube) -> str | None:
    """A measure's row conditions as one SQL condition, or None."""
    if not measure.filters:
        return None
    return " AND ".join(f"({render(f, cube)})" for f in measure.filters)


def aggregate(kind: MeasureType, value: str | None, condition: str | None) -> str:
    """The aggregate of a (non-number) measure over ``value`` rows meeting ``condition``.

    An average is sum / count so that a pre-aggregation, which keeps both, gives the very same
    figure as the base facts.
    """
    where = f" FILTER (WHERE {condition})" if condition else ""
    if kind is MeasureType.COUNT:
        return f"count({value or '*'}){where}"
    assert value is not None
    if kind is MeasureType.COUNT_DISTINCT:
        return f"count(DISTINCT {value}){where}"
    if kind is MeasureType.AVG:
        return f"(sum({value}){where} / NULLIF(count({value}){where}, 0))"
    function = {MeasureType.SUM: "sum", MeasureType.MIN: "min", MeasureType.MAX: "max"}[kind]
    return f"{function}({value}){where}"


def formula(measure: Measure, part: Callable[[str], str]) -> str:
    """A number measure with each ``{name}`` replaced by that measure's SQL."""
    assert measure.sql is not None
    return "(" + PLACEHOLDER.sub(lambda m: f"({part(m.group(1))})", measure.sql) + ")"


def measure_sql(cube: Cube, measure: Measure) -> str:
    """A measure of the cube aggregated over the cube's (joined, filtered) rows."""
    if measure.type is MeasureType.NUMBER:

        def part(name: str) -> str:
            found = cube.measure(name)
            assert found is not None
            return measure_sql(cube, found)

        return formula(measure, part)
    value = render(measure.sql, cube) if measure.sql is not None else None
    return aggregate(measure.type, value, conditions(measure, cube))
