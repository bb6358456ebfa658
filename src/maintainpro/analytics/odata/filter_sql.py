"""A $filter syntax tree, type-checked against an entity set and compiled to DuckDB SQL (pure).

Identifiers in the SQL are the entity set's own column names (looked up, never copied from the
request) and every literal is a ``?`` parameter cast to its type, so no client text reaches the
SQL. OData's two-valued logic is kept: a comparison with a null is false, so ``not`` reads an
unknown operand as false and ``ne`` is ``IS DISTINCT FROM``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final, Literal

from maintainpro.analytics.odata.errors import bad_request
from maintainpro.analytics.odata.filter_parser import (
    Call,
    Compare,
    In,
    Lit,
    Logical,
    Node,
    Prop,
    parse_filter,
)
from maintainpro.analytics.odata.model import NUMERIC, EntitySet

ValueKind = Literal["null", "bool", "int", "decimal", "double", "string", "date", "datetime"]

# The SQL type a literal of each kind is bound as.
PARAM_TYPES: Final[dict[str, str]] = {
    "bool": "BOOLEAN",
    "int": "BIGINT",
    "decimal": "DECIMAL(38,18)",
    "double": "DOUBLE",
    "string": "VARCHAR",
    "date": "DATE",
    "datetime": "TIMESTAMP",
}
_OPERATORS: Final = {"eq": "=", "gt": ">", "ge": ">=", "lt": "<", "le": "<="}
_TEMPORAL: Final = frozenset({"date", "datetime"})


@dataclass(frozen=True)
class Sql:
    """A compiled expression: SQL text, its parameters and the kind of value it yields."""

    text: str
    params: tuple[Any, ...]
    kind: ValueKind


@dataclass(frozen=True)
class _Function:
    sql: str  # a template with {0}, {1} for the arguments
    args: tuple[frozenset[str], ...]
    result: ValueKind | None  # None: the kind of the first argument


_STRING: Final = frozenset({"string"})
_NUMBER: Final = frozenset(NUMERIC)
_DATE_OR_TIME: Final = frozenset(_TEMPORAL)
_TIME: Final = frozenset({"datetime"})

FUNCTIONS: Final[dict[str, _Function]] = {
    "contains": _Function("contains({0}, {1})", (_STRING, _STRING), "bool"),
    "startswith": _Function("starts_with({0}, {1})", (_STRING, _STRING), "bool"),
    "endswith": _Function("ends_with({0}, {1})", (_STRING, _STRING), "bool"),
    "tolower": _Function("lower({0})", (_STRING,), "string"),
    "toupper": _Function("upper({0})", (_STRING,), "string"),
    "trim": _Function("trim({0})", (_STRING,), "string"),
    "length": _Function("length({0})", (_STRING,), "int"),
    "indexof": _Function("(strpos({0}, {1}) - 1)", (_STRING, _STRING), "int"),
    "concat": _Function("({0} || {1})", (_STRING, _STRING), "string"),
    "year": _Function("year({0})", (_DATE_OR_TIME,), "int"),
    "month": _Function("month({0})", (_DATE_OR_TIME,), "int"),
    "day": _Function("day({0})", (_DATE_OR_TIME,), "int"),
    "hour": _Function("hour({0})", (_TIME,), "int"),
    "minute": _Function("minute({0})", (_TIME,), "int"),
    "second": _Function("second({0})", (_TIME,), "int"),
    "date": _Function("CAST({0} AS DATE)", (_TIME,), "date"),
    "round": _Function("round({0})", (_NUMBER,), None),
    "floor": _Function("floor({0})", (_NUMBER,), None),
    "ceiling": _Function("ceil({0})", (_NUMBER,), None),
}


def _comparable(left: str, right: str) -> bool:
    if left == right:
        return True
    if left in NUMERIC and right in NUMERIC:
        return True
    return left in _TEMPORAL and right in _TEMPORAL


class _Compiler:
    def __init__(self, entity_set: EntitySet, alias: str) -> None:
        self.entity_set = entity_set
        self.alias = alias

    def compile(self, node: Node) -> Sql:
        if isinstance(node, Lit):
            return self.literal(node)
        if isinstance(node, Prop):
            return self.prop(node)
        if isinstance(node, Call):
            return self.call(node)
        if isinstance(node, Compare):
            return self.compare(node)
        if isinstance(node, In):
            return self.in_list(node)
        if isinstance(node, Logical):
            left, right = self.boolean(node.left), self.boolean(node.right)
            op = node.op.upper()
            return Sql(f"({left.text} {op} {right.text})", left.params + right.params, "bool")
        inner = self.boolean(node.operand)
        return Sql(f"(NOT coalesce({inner.text}, false))", inner.params, "bool")

    def boolean(self, node: Node) -> Sql:
        compiled = self.compile(node)
        if compiled.kind != "bool":
            raise bad_request("$filter: and, or and not need boolean operands")
        return compiled

    def literal(self, node: Lit) -> Sql:
        if node.kind == "null":
            return Sql("NULL", (), "null")
        return Sql(f"CAST(? AS {PARAM_TYPES[node.kind]})", (node.value,), node.kind)

    def prop(self, node: Prop) -> Sql:
        found = self.entity_set.prop(node.name)
        if found is None:
            # The tokenizer only lets a plain identifier through, so naming it is safe.
            raise bad_request(f"$filter: {self.entity_set.name} has no property {node.name[:64]!r}")
        return Sql(f'{self.alias}."{found.name}"', (), found.kind)

    def call(self, node: Call) -> Sql:
        function = FUNCTIONS.get(node.name)
        if function is None:
            raise bad_request(f"$filter: unsupported function {node.name[:64]!r}")
        if len(node.args) != len(function.args):
            raise bad_request(f"$filter: {node.name} takes {len(function.args)} argument(s)")
        args = [self.compile(a) for a in node.args]
        for index, (arg, allowed) in enumerate(zip(args, function.args, strict=True)):
            if arg.kind == "null":
                # A typed null, so that DuckDB can choose the function.
                kind = min(allowed)
                args[index] = Sql(f"CAST(NULL AS {PARAM_TYPES[kind]})", (), kind)  # type: ignore[arg-type]
            elif arg.kind not in allowed:
                raise bad_request(f"$filter: wrong type of argument to {node.name}")
        params = tuple(p for a in args for p in a.params)
        text = function.sql.format(*(a.text for a in args))
        return Sql(text, params, function.result or args[0].kind)

    def compare(self, node: Compare) -> Sql:
        left, right = self.compile(node.left), self.compile(node.right)
        if left.kind == "null" or right.kind == "null":
            if node.op not in ("eq", "ne"):
                raise bad_request("$filter: null can only be compared with eq or ne")
            if left.kind == "null" and right.kind == "null":
                return Sql("TRUE" if node.op == "eq" else "FALSE", (), "bool")
            other = right if left.kind == "null" else left
            test = "IS NULL" if node.op == "eq" else "IS NOT NULL"
            return Sql(f"({other.text} {test})", other.params, "bool")
        if not _comparable(left.kind, right.kind):
            raise bad_request(f"$filter: cannot compare {left.kind} with {right.kind}")
        if left.kind == "bool" and node.op not in ("eq", "ne"):
            raise bad_request("$filter: booleans can only be compared with eq or ne")
        params = left.params + right.params
        if node.op == "ne":
            return Sql(f"({left.text} IS DISTINCT FROM {right.text})", params, "bool")
        return Sql(f"({left.text} {_OPERATORS[node.op]} {right.text})", params, "bool")

    def in_list(self, node: In) -> Sql:
        operand = self.compile(node.operand)
        values = [self.literal(item) for item in node.items]
        present = [v for v in values if v.kind != "null"]
        for value in present:
            if not _comparable(operand.kind, value.kind):
                raise bad_request(f"$filter: cannot compare {operand.kind} with {value.kind}")
        parts: list[str] = []
        params: list[Any] = []
        if present:
            marks = ", ".join(v.text for v in present)
            parts.append(f"{operand.text} IN ({marks})")
            params += [*operand.params, *(p for v in present for p in v.params)]
        if len(present) < len(values):
            parts.append(f"{operand.text} IS NULL")
            params += operand.params
        return Sql(f"({' OR '.join(parts)})", tuple(params), "bool")


def compile_filter(text: str, entity_set: EntitySet, alias: str = "t") -> Sql:
    """The SQL predicate of a $filter over an entity set; 400 for bad syntax or types."""
    compiled = _Compiler(entity_set, alias).compile(parse_filter(text))
    if compiled.kind != "bool":
        raise bad_request("$filter must be a boolean expression")
    return compiled
