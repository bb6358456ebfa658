"""The semantic model: the shipped YAML is valid and consistent; a bad model is refused clearly."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import duckdb
import pytest
import yaml

from maintainpro.analytics.odata.model import entity_sets
from maintainpro.analytics.semantic.model import (
    ModelError,
    default_model,
    level_member,
    load_model,
    load_model_file,
    parse_model,
)
from maintainpro.analytics.semantic.preaggs import layouts
from maintainpro.analytics.semantic.sql import dimension_sql, measure_sql, relation
from maintainpro.analytics.warehouse import DuckDbWarehouse


def _cube(**overrides: Any) -> dict[str, Any]:
    cube: dict[str, Any] = {
        "name": "Orders",
        "table": "fact_work_order",
        "permissions": ["assets:read"],
        "measures": [{"name": "count", "type": "count"}],
        "dimensions": [
            {"name": "type", "type": "string", "sql": "type"},
            {"name": "createdAt", "type": "time", "sql": "created_at"},
        ],
    }
    cube.update(overrides)
    return cube


def _refused(*cubes: dict[str, Any]) -> str:
    with pytest.raises(ModelError) as caught:
        parse_model({"cubes": list(cubes)})
    return str(caught.value)


def test_the_shipped_model_loads_with_its_cubes_and_hierarchies() -> None:
    model = default_model()
    names = {c.name for c in model.cubes}
    assert {"WorkOrders", "Alerts", "SensorHours", "ScheduleCompliance", "Spend"} <= names
    assert {"PurchaseOrderLines", "AssetAvailability", "Assets", "Parts"} <= names
    work_orders = model.cube("WorkOrders")
    assert work_orders is not None
    levels = {
        h.name: [level_member(model, work_orders, lv) for lv in h.levels]
        for h in work_orders.hierarchies
    }
    assert levels["calendar"] == [
        "WorkOrders.createdAt.year",
        "WorkOrders.createdAt.quarter",
        "WorkOrders.createdAt.month",
        "WorkOrders.createdAt.day",
    ]
    assert levels["location"] == ["Assets.site", "Assets.line", "Assets.asset"]
    parts = model.cube("Parts")
    assert parts is not None
    assert [level_member(model, parts, lv) for lv in parts.hierarchies[0].levels] == [
        "Parts.category",
        "Parts.part",
    ]
    availability = model.cube("AssetAvailability")
    assert availability is not None
    assert {"availability", "mtbfHours", "mttrHours"} <= {m.name for m in availability.measures}


def test_every_member_and_pre_aggregation_of_the_shipped_model_plans_in_duckdb(
    tmp_path: Path,
) -> None:
    model = default_model()
    with DuckDbWarehouse(tmp_path / "w.duckdb") as target:
        target.ensure_schema()
        connection = target.connection
        for cube in model.cubes:
            joined = [c for c in model.cubes if cube.join(c.name) is not None]
            columns = [measure_sql(cube, m) for m in cube.measures]
            columns += [
                dimension_sql(owner, d) for owner in (cube, *joined) for d in owner.dimensions
            ]
            # DESCRIBE plans the statement: every table, column and function must exist.
            connection.execute(
                f"DESCRIBE SELECT {', '.join(columns)} FROM {relation(cube, joined)} GROUP BY ALL"  # noqa: S608 - model text
            )
        for layout in layouts(model):
            described = connection.execute(f"DESCRIBE {layout.select_sql()}").fetchall()
            names = [row[0] for row in described]
            assert names[:2] == ["_gid", "_partition"]
            assert len(set(names)) == len(names)
            connection.execute(f"DESCRIBE {layout.fingerprint_sql()}")


def test_cubes_over_published_tables_open_with_the_feeds_permissions() -> None:
    sets = entity_sets()
    for cube in default_model().cubes:
        if cube.table is not None:
            assert cube.permissions == sets[cube.table].permissions, cube.name


def test_site_rules_follow_the_warehouse_tables() -> None:
    model = default_model()
    for name in ("WorkOrders", "Alerts", "SensorHours", "ScheduleCompliance", "AssetAvailability"):
        cube = model.cube(name)
        assert cube is not None
        assert cube.site_rule.column == "site_key", name
    for name in ("Spend", "PurchaseOrderLines", "Parts", "Suppliers"):
        cube = model.cube(name)
        assert cube is not None
        assert cube.site_rule.unrestricted_only, name


@pytest.mark.parametrize(
    ("cube", "expected"),
    [
        (
            _cube(table="fact_nothing"),
            "cubes[Orders].table: the warehouse has no table fact_nothing",
        ),
        (
            _cube(measures=[{"name": "hours", "type": "sum", "sql": "no_such_column"}]),
            "cubes[Orders].measures[hours].sql: fact_work_order has no column no_such_column",
        ),
        (
            _cube(measures=[{"name": "hours", "type": "sum"}]),
            "cubes[Orders].measures[hours]: a sum measure needs sql",
        ),
        (
            _cube(measures=[{"name": "ratio", "type": "number", "sql": "{ghost} / 2"}]),
            "cubes[Orders].measures[ratio]: no measure ghost in the cube",
        ),
        (
            _cube(measures=[{"name": "n", "type": "count", "filters": ["{CUBE}.x; DROP TABLE t"]}]),
            "cubes[Orders].measures[n].filters: SQL may not contain ';'",
        ),
        (
            _cube(dimensions=[{"name": "t", "type": "text", "sql": "type"}]),
            "cubes[Orders].dimensions[t].type: Input should be 'string'",
        ),
        (
            _cube(joins=[{"cube": "Nowhere", "sql": "{CUBE}.asset_key = {Nowhere}.asset_key"}]),
            "cubes[Orders].joins[Nowhere]: no such cube",
        ),
        (
            _cube(hierarchies=[{"name": "h", "levels": ["type", "ghost"]}]),
            "cubes[Orders].hierarchies[h]: unknown level ghost",
        ),
        (
            _cube(
                measures=[
                    {"name": "count", "type": "count"},
                    {"name": "Count", "type": "count"},
                ]
            ),
            "the name Count is used twice",
        ),
        (
            _cube(
                measures=[{"name": "assets", "type": "countDistinct", "sql": "asset_key"}],
                pre_aggregations=[
                    {"name": "p", "measures": ["assets"], "time_dimension": "createdAt"}
                ],
            ),
            "assets is a distinct count, which cannot be added up again",
        ),
        (
            _cube(
                pre_aggregations=[
                    {
                        "name": "p",
                        "measures": ["count"],
                        "time_dimension": "createdAt",
                        "granularity": "month",
                        "partition_granularity": "day",
                    }
                ]
            ),
            "partitions must be whole months",
        ),
        (
            _cube(
                pre_aggregations=[
                    {"name": "p", "measures": ["count"], "grouping": [{"rollup": ["createdAt"]}]}
                ]
            ),
            "createdAt is a time dimension (use time_dimension)",
        ),
        (
            _cube(
                pre_aggregations=[
                    {"name": "p", "measures": ["count"], "grouping": [{"rollup": ["ghost"]}]}
                ]
            ),
            "ghost is not a dimension of the cube or a joined cube",
        ),
        (
            _cube(
                pre_aggregations=[
                    {
                        "name": "p",
                        "measures": ["count"],
                        "grouping": [{"rollup": ["type"], "cube": ["type"]}],
                    }
                ]
            ),
            "a grouping is exactly one of rollup, cube or sets",
        ),
        (_cube(sql="SELECT 1"), "a cube reads exactly one of table or sql"),
        (_cube(name="bad name"), "cubes[0].name: String should match pattern"),
    ],
)
def test_a_bad_model_is_refused_with_where_and_why(cube: dict[str, Any], expected: str) -> None:
    message = _refused(cube)
    assert expected in message


def test_a_model_without_cubes_or_with_broken_yaml_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="the model has no cubes"):
        load_model("cubes: []")
    with pytest.raises(ModelError, match="not valid YAML"):
        load_model("cubes: [unclosed")
    with pytest.raises(ModelError, match="cannot read the semantic model"):
        load_model_file(tmp_path / "missing.yaml")


def test_a_model_file_round_trips(tmp_path: Path) -> None:
    path = tmp_path / "model.yaml"
    path.write_text(yaml.safe_dump({"cubes": [_cube()]}), encoding="utf-8")
    model = load_model_file(path)
    cube = model.cube("Orders")
    assert cube is not None
    assert [m.name for m in cube.measures] == ["count"]


def test_grouping_terms_multiply_out_as_sql_does(tmp_path: Path) -> None:
    model = parse_model(
        {
            "cubes": [
                _cube(
                    pre_aggregations=[
                        {
                            "name": "p",
                            "measures": ["count"],
                            "time_dimension": "createdAt",
                            "grouping": [
                                {"rollup": ["type", "priority"]},
                                {"sets": [["status"], []]},
                            ],
                        }
                    ],
                    dimensions=[
                        {"name": "type", "type": "string", "sql": "type"},
                        {"name": "priority", "type": "string", "sql": "priority"},
                        {"name": "status", "type": "string", "sql": "status"},
                        {"name": "createdAt", "type": "time", "sql": "created_at"},
                    ],
                )
            ]
        }
    )
    (layout,) = layouts(model)
    assert len(layout.sets) == 6
    with DuckDbWarehouse(tmp_path / "w.duckdb") as target:
        target.ensure_schema()
        target.connection.execute(
            "INSERT INTO fact_work_order (work_order_key, type, priority, status, created_at)"
            " VALUES (1, 'a', 'p', 's', TIMESTAMP '2026-01-01 10:00')"
        )
        gids = {row[0] for row in target.connection.execute(layout.select_sql()).fetchall()}
    # One row per grouping set: SQL's expansion and ours agree on every GROUPING() value.
    assert gids == {layout.gid(s) for s in layout.sets}


def test_duckdb_is_the_only_sql_dialect_assumed() -> None:
    # The model's SQL is DuckDB's; a quick parse of a number formula proves the substitution.
    cube = default_model().cube("WorkOrders")
    assert cube is not None
    mttr = cube.measure("mttrHours")
    assert mttr is not None
    text = measure_sql(cube, mttr)
    assert "{" not in text
    duckdb.connect().execute(
        f'SELECT {text} FROM (SELECT 1.5 AS downtime_hours, TRUE AS is_failure) AS "WorkOrders"'  # noqa: S608 - model text
    )
