"""Serving a page of an entity set from a DuckDB connection: run the plan, write the JSON body,
build the next link. Query failures the client caused become OData errors, not 500s."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Final

import duckdb

from maintainpro.analytics.odata.errors import ODataError, bad_request
from maintainpro.analytics.odata.model import EntitySet
from maintainpro.analytics.odata.paging import CursorStore, encode_position, next_link
from maintainpro.analytics.odata.query import QueryOptions, ResponseFormat, plan_query

DEFAULT_TIMEOUT_S: Final = 60.0
# Options a next link does not repeat: the position replaces $skip and $skiptoken, and $top is
# rewritten to what is left of it.
_NOT_REPEATED: Final = frozenset({"$skip", "$skiptoken", "$top"})


@dataclass(frozen=True)
class Page:
    """One page as served: the body, how many rows it holds, the count and the next link."""

    body: bytes
    rows: int
    count: int | None
    next_link: str | None


@contextmanager
def _time_limit(connection: duckdb.DuckDBPyConnection, seconds: float) -> Iterator[None]:
    """Interrupt a query running longer than ``seconds``; map the client's query errors."""
    timer = threading.Timer(seconds, connection.interrupt)
    timer.daemon = True
    timer.start()
    try:
        yield
    except duckdb.InterruptException:
        raise ODataError(
            503, "Timeout", "the query took too long: narrow it with $filter or $top"
        ) from None
    except duckdb.CatalogException:
        raise ODataError(
            503, "WarehouseOutdated", "the warehouse lacks this table: rebuild the warehouse"
        ) from None
    except (
        duckdb.ConversionException,
        duckdb.OutOfRangeException,
        duckdb.InvalidInputException,
    ):
        raise bad_request(
            "the query cannot be evaluated on these rows (a value out of range)"
        ) from None
    finally:
        timer.cancel()


def context_url(service_root: str, entity_set: EntitySet, options: QueryOptions) -> str:
    """The @odata.context of a collection, with the selected properties when $select narrows."""
    url = f"{service_root}$metadata#{entity_set.name}"
    if options.select is not None and "*" not in options.select:
        names = list(dict.fromkeys(options.select))
        url += f"({','.join(names)})"
    return url


def read_page(
    connection: duckdb.DuckDBPyConnection,
    entity_set: EntitySet,
    options: QueryOptions,
    scope: frozenset[int] | None,
    *,
    page_size: int,
    response: ResponseFormat,
    service_root: str,
    user_id: int,
    cursors: CursorStore,
    timeout_s: float = DEFAULT_TIMEOUT_S,
) -> Page:
    """One page of an entity set for a user with this site scope."""
    plan = plan_query(entity_set, options, scope, page_size=page_size, ieee754=response.ieee754)
    with _time_limit(connection, timeout_s):
        rows = connection.execute(plan.rows_sql, plan.rows_params).fetchall()
        count = None
        if plan.count_sql is not None:
            found = connection.execute(plan.count_sql, plan.count_params).fetchone()
            count = int(found[0]) if found else 0
    more = len(rows) > plan.page_rows
    rows = rows[: plan.page_rows]
    link = None
    if more and rows:
        kept = {k: v for k, v in options.given.items() if k not in _NOT_REPEATED}
        if plan.top_left is not None:
            kept["$top"] = str(plan.top_left)
        link = next_link(
            f"{service_root}{entity_set.name}",
            kept,
            encode_position(rows[-1][1:]),
            user_id=user_id,
            entity_set=entity_set.name,
            cursors=cursors,
        )
    parts: list[str] = []
    if response.metadata != "none":
        parts.append(
            '"@odata.context":' + json.dumps(context_url(service_root, entity_set, options))
        )
    if count is not None:
        parts.append(f'"@odata.count":"{count}"' if response.ieee754 else f'"@odata.count":{count}')
    if link is not None:
        parts.append('"@odata.nextLink":' + json.dumps(link))
    parts.append('"value":[' + ",".join(row[0] for row in rows) + "]")
    body = ("{" + ",".join(parts) + "}").encode()
    return Page(body=body, rows=len(rows), count=count, next_link=link)


def count_rows(
    connection: duckdb.DuckDBPyConnection,
    entity_set: EntitySet,
    options: QueryOptions,
    scope: frozenset[int] | None,
    *,
    timeout_s: float = DEFAULT_TIMEOUT_S,
) -> int:
    """The rows of an entity set matching $filter within the scope (``/set/$count``)."""
    counting = QueryOptions(given=options.given, filter=options.filter, count=True)
    plan = plan_query(entity_set, counting, scope, page_size=1)
    assert plan.count_sql is not None
    with _time_limit(connection, timeout_s):
        found: Any = connection.execute(plan.count_sql, plan.count_params).fetchone()
    return int(found[0]) if found else 0
