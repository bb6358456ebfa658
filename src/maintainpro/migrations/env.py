"""Alembic environment: the same migrations for SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any

from alembic import context
from sqlalchemy import Connection

from maintainpro.core.db import build_engine
from maintainpro.schema import metadata

config = context.config
target_metadata = metadata()


def _include(obj: Any, name: str | None, type_: str, reflected: bool, compare_to: Any) -> bool:
    # Monthly partitions of sensor_readings are made at run time, not by migrations.
    return not (type_ == "table" and name is not None and name.startswith("sensor_readings_"))


def _configure(connection: Connection) -> None:
    # Batch mode lets ALTER TABLE migrations run on SQLite, which cannot alter most things.
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
        include_object=_include,
    )


def run_migrations_online() -> None:
    """Run migrations on a live connection (the only mode the hub uses)."""
    url = config.get_main_option("sqlalchemy.url")
    if not url:
        raise RuntimeError("no database URL given to the migrations")
    engine = build_engine(url)
    try:
        with engine.connect() as connection:
            _configure(connection)
            with context.begin_transaction():
                context.run_migrations()
    finally:
        engine.dispose()


run_migrations_online()
