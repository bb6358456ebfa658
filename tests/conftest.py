"""Shared fixtures: every database test runs on SQLite and on PostgreSQL."""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from argon2 import PasswordHasher
from cryptography.fernet import Fernet
from fastapi.testclient import TestClient
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

from maintainpro.app import create_app
from maintainpro.config import Settings
from maintainpro.core.audit import install_audit
from maintainpro.core.db import build_engine, build_session_factory
from maintainpro.core.users import Role, User, hash_password, issue_token
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


def _empty_tables(engine: Engine) -> None:
    tables = [t.name for t in reversed(metadata().sorted_tables)]
    with engine.begin() as connection:
        if engine.dialect.name == "postgresql":
            connection.execute(text(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE"))
        else:
            # Self-referencing rows (asset hierarchies) cannot be deleted in one pass with
            # foreign keys checked row by row.
            connection.exec_driver_sql("PRAGMA foreign_keys=OFF")
            for table in tables:
                connection.execute(text(f"DELETE FROM {table}"))  # noqa: S608 - our own table names
            connection.exec_driver_sql("PRAGMA foreign_keys=ON")


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
