"""Shared fixtures: every database test runs on SQLite and on PostgreSQL."""

from __future__ import annotations

import logging
import os
import secrets
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import fastapi.routing
import pytest
from argon2 import PasswordHasher
from cryptography.fernet import Fernet
from fastapi.testclient import TestClient
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session, sessionmaker

from maintainpro.app import create_app
from maintainpro.config import Settings
from maintainpro.core.audit import install_audit
from maintainpro.core.db import build_engine, build_session_factory
from maintainpro.core.users import Role, User, hash_password, issue_token
from maintainpro.logs import JsonFormatter, PlainFormatter
from maintainpro.migrate import upgrade
from maintainpro.schema import metadata
from support import bearer

# Rich sizes CLI output to the terminal; pytest-xdist workers have none and fall back to 80
# columns, which folds messages the CLI tests look for. One wide width for every worker.
os.environ["COLUMNS"] = "200"

PG_ADMIN_URL = os.environ.get(
    "MAINTAINPRO_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
TEST_SECRET = "test-secret-" + "x" * 40
PASSWORD = "correct horse battery"
TEST_CREDENTIALS_KEY = Fernet.generate_key().decode()


@pytest.fixture(scope="session", autouse=True)
def cheap_password_hashing() -> Iterator[None]:
    """Argon2 at its lowest cost: tests are about behaviour, not the hash's strength."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(
            "maintainpro.core.users._hasher",
            PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1),
        )
        yield


@pytest.fixture(autouse=True)
def _no_stale_log_handler() -> Iterator[None]:
    """Drop the handler a CLI test's `configure_logging` put on the root logger.

    It writes to the stderr pytest captured for that test; left behind, every later log line
    of the worker (an aiosmtpd thread's, say) fails with "I/O operation on closed file".
    """
    root = logging.getLogger()
    level = root.level
    yield
    root.handlers[:] = [
        h for h in root.handlers if not isinstance(h.formatter, JsonFormatter | PlainFormatter)
    ]
    root.setLevel(level)


def _memoised(build: Callable[..., Any]) -> Callable[..., Any]:
    """`build` remembering its result per keyword arguments (unhashable ones are not kept)."""
    results: dict[tuple[Any, ...], Any] = {}

    def remembered(*positional: Any, **arguments: Any) -> Any:
        if positional:
            return build(*positional, **arguments)
        key = tuple(
            (name, tuple(value) if isinstance(value, list) else value)
            for name, value in sorted(arguments.items())
        )
        try:
            return results[key]
        except KeyError:
            result = results[key] = build(**arguments)
            return result
        except TypeError:  # an unhashable argument: build afresh
            return build(**arguments)

    return remembered


@pytest.fixture(scope="session", autouse=True)
def cheap_app_construction() -> Iterator[None]:
    """Each route's parameters and response model analysed once per session, not once per app.

    FastAPI analyses every route of every router again for each app it includes them in
    (signatures, pydantic adapters): about a second per `create_app`, which ~1,000 tests call.
    The analysis depends only on the endpoint, its path and its dependencies (all in the key),
    and its results are not changed afterwards, so apps built from the same routes share them.
    """
    names = ("_build_dependant_with_parameterless_dependencies", "create_model_field")
    with pytest.MonkeyPatch.context() as patch:
        for name in names:
            # A FastAPI without these internals simply builds every app in full.
            if hasattr(fastapi.routing, name):
                patch.setattr(fastapi.routing, name, _memoised(getattr(fastapi.routing, name)))
        yield


def _pg_reachable() -> str | None:
    try:
        engine = create_engine(PG_ADMIN_URL)
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))
        engine.dispose()
    except Exception as exc:  # noqa: BLE001 - any failure means "not reachable"
        return f"{type(exc).__name__}: {exc}"
    return None


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A fresh PostgreSQL database for this test session, dropped afterwards."""
    problem = _pg_reachable()
    if problem is not None:
        if os.environ.get("CI"):
            pytest.fail(f"PostgreSQL is required in CI and is not reachable: {problem}")
        pytest.skip(f"PostgreSQL not reachable at {PG_ADMIN_URL}: {problem}")
    name = f"maintainpro_test_{secrets.token_hex(4)}"
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
        # A throwaway database: a commit need not wait for the WAL flush (a crash loses the
        # last commits of a test run, never its consistency), which every test commits often.
        connection.execute(text(f'ALTER DATABASE "{name}" SET synchronous_commit = off'))
    url = make_url(PG_ADMIN_URL).set(database=name).render_as_string(hide_password=False)
    yield url
    with admin.connect() as connection:
        connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture(scope="session", params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> str:
    """A migrated database URL, once per backend."""
    if request.param == "sqlite":
        path = tmp_path_factory.mktemp("db") / "maintainpro.db"
        url = f"sqlite:///{path}"
    else:
        url = request.getfixturevalue("postgres_url")
    upgrade(url)
    return url


@pytest.fixture(scope="session")
def shared_engine(database_url: str) -> Iterator[Engine]:
    """One engine per backend for the whole session."""
    engine = build_engine(database_url)
    yield engine
    engine.dispose()


@dataclass(frozen=True)
class _Cleanup:
    """What emptying a test database needs, looked up once per engine."""

    tables: list[str]  # children before parents
    probe: str  # one query naming the tables a test wrote to
    owned_sequences: frozenset[str]
    partitioned: frozenset[str]


_cleanups: dict[Engine, _Cleanup] = {}


def _cleanup(engine: Engine) -> _Cleanup:
    if engine not in _cleanups:
        tables = [t.name for t in reversed(metadata().sorted_tables)]
        partitioned: frozenset[str] = frozenset()
        owned: frozenset[str] = frozenset()
        if engine.dialect.name == "postgresql":
            with engine.connect() as connection:
                partitioned = frozenset(
                    connection.execute(
                        text("SELECT relname FROM pg_class WHERE relkind = 'p'")
                    ).scalars()
                )
                # Sequences behind serial and identity columns: the ones RESTART IDENTITY resets.
                owned = frozenset(
                    connection.execute(
                        text(
                            "SELECT s.relname FROM pg_depend d "
                            "JOIN pg_class s ON s.oid = d.objid AND s.relkind = 'S' "
                            "WHERE d.deptype IN ('a', 'i')"
                        )
                    ).scalars()
                )
        checks = [_written_check(name, partitioned=name in partitioned) for name in tables]
        _cleanups[engine] = _Cleanup(
            tables=tables,
            probe=" UNION ALL ".join(checks),
            owned_sequences=owned,
            partitioned=partitioned,
        )
    return _cleanups[engine]


def _written_check(table: str, *, partitioned: bool) -> str:
    if partitioned:
        # Written while any partition has a page on disk: only TRUNCATE hands the space back,
        # and retention decides by a partition's size.
        tree = f"pg_partition_tree('{table}')"
        size = f"SELECT coalesce(sum(pg_relation_size(relid)), 0) FROM {tree}"  # noqa: S608 - our own names
        return f"SELECT '{table}' WHERE ({size}) > 0"
    return f"SELECT '{table}' WHERE EXISTS (SELECT 1 FROM {table})"  # noqa: S608 - our own names


def _empty_postgres_tables(engine: Engine, cleanup: _Cleanup) -> None:
    # TRUNCATE of all ~70 tables costs about half a second even when they are empty (new files
    # for every table and index), which, once per test, was the largest single cost of the
    # suite. Deleting the rows of just the tables a test wrote to, and restarting the sequences
    # it used, leaves the same empty database with the same next ids.
    try:
        with engine.begin() as connection:
            written = set(connection.execute(text(cleanup.probe)).scalars())
            used = [
                name
                for name in connection.execute(
                    text("SELECT sequencename FROM pg_sequences WHERE last_value IS NOT NULL")
                ).scalars()
                if name in cleanup.owned_sequences
            ]
            for table in cleanup.tables:
                if table in cleanup.partitioned and table in written:
                    connection.execute(text(f"TRUNCATE {table}"))
                elif table in written:
                    connection.execute(text(f"DELETE FROM {table}"))  # noqa: S608 - our own table names
            for sequence in used:
                connection.execute(text(f"ALTER SEQUENCE {sequence} RESTART"))
    except DBAPIError:
        # Whatever a test left behind that rows-only deletion cannot clear (a cycle of foreign
        # keys, a lock), the full TRUNCATE does.
        with engine.begin() as connection:
            everything = ", ".join(cleanup.tables)
            connection.execute(text(f"TRUNCATE {everything} RESTART IDENTITY CASCADE"))


def _empty_tables(engine: Engine) -> None:
    cleanup = _cleanup(engine)
    if engine.dialect.name == "postgresql":
        _empty_postgres_tables(engine, cleanup)
        return
    with engine.connect() as connection:
        written = set(connection.execute(text(cleanup.probe)).scalars())
        connection.commit()
        # Self-referencing rows (asset hierarchies) cannot be deleted in one pass with
        # foreign keys checked row by row. SQLite ignores this pragma inside a transaction,
        # so it is switched outside one, and back on only after the deletes are committed:
        # switched on inside the transaction, the pooled connection kept foreign keys off
        # for every later test.
        connection.exec_driver_sql("PRAGMA foreign_keys=OFF")
        for table in cleanup.tables:
            if table in written:
                connection.execute(text(f"DELETE FROM {table}"))  # noqa: S608 - our own table names
        connection.commit()
        connection.exec_driver_sql("PRAGMA foreign_keys=ON")
        enforced = connection.exec_driver_sql("PRAGMA foreign_keys").scalar()
        connection.commit()
    assert enforced == 1, "SQLite foreign keys stayed off after emptying the test database"


@pytest.fixture
def engine(shared_engine: Engine) -> Iterator[Engine]:
    """The backend's engine, with every table emptied after the test."""
    install_audit()
    yield shared_engine
    _empty_tables(shared_engine)


@pytest.fixture
def session_factory(engine: Engine) -> sessionmaker[Session]:
    """A session factory on the test database."""
    return build_session_factory(engine)


@pytest.fixture
def db(session_factory: sessionmaker[Session]) -> Iterator[Session]:
    """A session on the test database (commit what a test needs others to see)."""
    with session_factory() as session:
        yield session


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    """Settings for an app on the test database, its files (warehouse, cold tier) in tmp_path."""
    return Settings(
        database_url=database_url,
        warehouse_path=tmp_path / "warehouse" / "warehouse.duckdb",
        cold_dir=tmp_path / "cold",
        secret_key=TEST_SECRET,
        cookie_secure=False,
        max_body_bytes=64 * 1024,
        # Background jobs would change the data under the tests' feet; tests drive them directly.
        run_background_jobs=False,
        credentials_key=TEST_CREDENTIALS_KEY,
    )


@pytest.fixture
def client(settings: Settings, engine: Engine) -> Iterator[TestClient]:
    """An HTTP client on a fresh app."""
    with TestClient(create_app(settings)) as test_client:
        yield test_client


MakeUser = Callable[..., tuple[User, str]]


@pytest.fixture
def make_user(session_factory: sessionmaker[Session]) -> MakeUser:
    """Create a user with a role and return it with a fresh API token."""
    counter = iter(range(1, 10_000))

    def make(
        role: Role = Role.ADMIN, username: str | None = None, **fields: Any
    ) -> tuple[User, str]:
        with session_factory() as session, session.begin():
            user = User(
                username=username or f"{role.value.replace('_', '-')}{next(counter)}",
                role=role,
                password_hash=hash_password(PASSWORD),
                **fields,
            )
            session.add(user)
            session.flush()
            _, secret = issue_token(session, user, "test")
        return user, secret

    return make


@pytest.fixture
def admin_headers(make_user: MakeUser) -> dict[str, str]:
    """Headers of an administrator's request."""
    return bearer(make_user(Role.ADMIN)[1])
