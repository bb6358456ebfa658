"""What every CLI command needs: settings, a database session factory, clean failures."""

from __future__ import annotations

from typing import Any

import typer
from rich.console import Console
from sqlalchemy.orm import Session, sessionmaker

from maintainpro.config import Settings, load_settings
from maintainpro.core.audit import Actor, install_audit
from maintainpro.core.db import build_engine, build_session_factory

CLI_ACTOR = Actor(user_id=None, name="cli")
err = Console(stderr=True)


def fail(message: str) -> typer.Exit:
    """Print an error and return the Exit to raise (exit code 1)."""
    err.print(f"[bold red]error:[/] {message}")
    return typer.Exit(code=1)


def cli_settings(**overrides: Any) -> Settings:
    """Settings from the environment and maintainpro.toml, or a clean error."""
    try:
        return load_settings(**overrides)
    except ValueError as exc:
        raise fail(f"invalid settings: {exc}") from exc


def session_factory(settings: Settings) -> sessionmaker[Session]:
    """A session factory on the configured database, with auditing on."""
    install_audit()
    return build_session_factory(build_engine(settings.database_url))
