"""A real OData client library (python-odata) reads the feed served by uvicorn: it reflects the
$metadata, then walks every entity set through all its pages with a filter."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
import uvicorn
from odata import ODataService
from requests.auth import HTTPBasicAuth
from sqlalchemy import Engine

from analytics.odata.conftest import Reader
from maintainpro.analytics.access import scope_predicate
from maintainpro.analytics.odata.model import entity_sets
from maintainpro.analytics.warehouse import connect
from maintainpro.app import create_app
from maintainpro.config import Settings

PAGE = 3


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@pytest.fixture
def feed_url(settings: Settings, engine: Engine, built: Path) -> Iterator[str]:
    """The app on a free local port; yields the service root."""
    port = _free_port()
    server = uvicorn.Server(
        uvicorn.Config(create_app(settings), host="127.0.0.1", port=port, log_level="warning")
    )
    thread = threading.Thread(target=server.run, name="odata-feed", daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            pytest.fail("the app did not start")
        time.sleep(0.02)
    yield f"http://127.0.0.1:{port}/odata/"
    server.should_exit = True
    thread.join(15)


def service_for(url: str, reader: Reader) -> ODataService:
    """python-odata signed in with HTTP Basic (token as password), asking for small pages."""
    session = requests.Session()
    session.auth = HTTPBasicAuth("excel", reader.token)
    session.headers["Prefer"] = f"odata.maxpagesize={PAGE}"
    return ODataService(url, reflect_entities=True, session=session, quiet_progress=True)


def warehouse_rows(path: Path, sql: str, params: list[Any]) -> list[tuple[Any, ...]]:
    """Rows straight from the warehouse, for the expected answers."""
    connection = connect(path, read_only=True)
    try:
        return connection.execute(sql, params).fetchall()
    finally:
        connection.close()


def expected_keys(path: Path) -> dict[str, tuple[Any, list[Any]]]:
    """Per entity set: a threshold on its first key and the first-key values from it on."""
    expected: dict[str, tuple[Any, list[Any]]] = {}
    for name, entity_set in entity_sets().items():
        first_key = entity_set.key[0]
        keys = [
            k[0]
            for k in warehouse_rows(
                path,
                f'SELECT "{first_key}" FROM {entity_set.source} AS t ORDER BY 1',  # noqa: S608
                [],
            )
        ]
        assert keys, f"{name} is empty in the test warehouse"
        # Two thirds of a small set, the last twenty rows of a large one (the calendar): several
        # pages either way.
        threshold = keys[max(len(keys) // 3, len(keys) - 20)]
        expected[name] = (threshold, [k for k in keys if k >= threshold])
    return expected


def test_the_client_walks_every_entity_set_through_all_pages_with_a_filter(
    built: Path, readers: dict[str, Reader], request: pytest.FixtureRequest
) -> None:
    # Read before the app opens the file: DuckDB allows one configuration per file and process.
    expected = expected_keys(built)
    service = service_for(request.getfixturevalue("feed_url"), readers["all"])
    assert set(service.entities) == set(expected)
    pages = 0
    for name, (threshold, keys) in expected.items():
        first_key = entity_sets()[name].key[0]
        entity = service.entities[name]
        query = service.query(entity).filter(getattr(entity, first_key) >= threshold)
        received = [getattr(row, first_key) for row in query]
        assert sorted(received) == keys, name
        pages += -(-len(keys) // PAGE)
    assert pages > len(expected)  # sets took several pages


def test_a_site_bound_client_reads_only_its_site(
    built: Path,
    readers: dict[str, Reader],
    world: dict[str, int],
    request: pytest.FixtureRequest,
) -> None:
    scope = frozenset({world["site_b"]})
    site_sets = {n: s for n, s in entity_sets().items() if s.site_rule.column == "site_key"}
    expected: dict[str, int] = {}
    for name, entity_set in site_sets.items():
        predicate, params = scope_predicate(entity_set.site_rule, scope)
        expected[name] = warehouse_rows(
            built,
            f"SELECT count(*) FROM {entity_set.source} AS t WHERE {predicate}",  # noqa: S608
            params,
        )[0][0]
    service = service_for(request.getfixturevalue("feed_url"), readers["b"])
    assert set(site_sets) <= set(service.entities)
    assert "fact_spend" not in service.entities
    for name in site_sets:
        entity = service.entities[name]
        # The client's own filter asks for site A as well; the feed keeps it to site B.
        either = (entity.site_key == world["site_a"]) | (entity.site_key == world["site_b"])
        rows = list(service.query(entity).filter(either))
        assert {row.site_key for row in rows} <= {world["site_b"]}, name
        assert len(rows) == expected[name], name
