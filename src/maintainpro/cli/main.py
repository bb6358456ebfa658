"""The `maintainpro` command line: serve, demo, db, users."""

from __future__ import annotations

import datetime as dt
import getpass
import sys
from typing import Annotated

import typer
from rich.console import Console
from rich.panel import Panel
from sqlalchemy import select

from maintainpro.cli.context import CLI_ACTOR, cli_settings, err, fail
from maintainpro.cli.devices import devices_app
from maintainpro.config import ConfigurationError, Settings
from maintainpro.core.audit import install_audit, set_actor
from maintainpro.core.db import build_engine, build_session_factory, transaction, utcnow
from maintainpro.core.users import ApiToken, Role, User, WeakPassword, hash_password, issue_token

app = typer.Typer(
    help="MaintAInPro Integration Hub: maintenance, IoT, BI and supply-chain integration.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
db_app = typer.Typer(help="Database schema.", no_args_is_help=True)
users_app = typer.Typer(help="Users and API tokens.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(users_app, name="users")
app.add_typer(devices_app, name="devices")
console = Console()


_fail = fail
_settings = cli_settings


@db_app.command("upgrade")
def db_upgrade(revision: Annotated[str, typer.Argument(help="target revision")] = "head") -> None:
    """Apply the database migrations (SQLite or PostgreSQL)."""
    from maintainpro.migrate import upgrade

    settings = _settings()
    upgrade(settings.database_url, revision)
    console.print(f"database at [bold]{revision}[/] ({_safe_url(settings.database_url)})")


@db_app.command("current")
def db_current() -> None:
    """Show the database's migration and whether it is the newest."""
    from maintainpro.migrate import current_revision, head_revision

    settings = _settings()
    engine = build_engine(settings.database_url)
    current, head = current_revision(engine), head_revision()
    engine.dispose()
    state = "[green]up to date[/]" if current == head else "[yellow]needs `db upgrade`[/]"
    console.print(f"current: {current or 'empty'}  head: {head}  {state}")


def _safe_url(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


def _read_password(prompt: str) -> str:
    if not sys.stdin.isatty():
        return sys.stdin.readline().rstrip("\n")
    first = getpass.getpass(prompt)
    if getpass.getpass("again: ") != first:
        raise _fail("the passwords differ")
    return first


@users_app.command("create")
def users_create(
    username: Annotated[str, typer.Argument(help="login name")],
    role: Annotated[Role, typer.Option(help="what the user does")] = Role.TECHNICIAN,
    full_name: Annotated[str, typer.Option(help="name shown in pages")] = "",
    email: Annotated[str | None, typer.Option(help="e-mail address")] = None,
) -> None:
    """Create a user; the password is read from the terminal (or one line of stdin)."""
    settings = _settings()
    password = _read_password("password: ")
    try:
        hashed = hash_password(password)
    except WeakPassword as exc:
        raise _fail(str(exc)) from exc
    install_audit()
    factory = build_session_factory(build_engine(settings.database_url))
    with transaction(factory) as session:
        set_actor(session, CLI_ACTOR)
        if session.scalar(select(User).where(User.username == username)) is not None:
            raise _fail(f"user {username!r} exists already")
        session.add(
            User(
                username=username,
                role=role,
                full_name=full_name,
                email=email,
                password_hash=hashed,
            )
        )
    console.print(f"created user [bold]{username}[/] ({role.value})")


@users_app.command("token")
def users_token(
    username: Annotated[str, typer.Argument(help="whose token")],
    name: Annotated[str, typer.Option(help="what the token is for")] = "cli",
    days: Annotated[int | None, typer.Option(help="expire after this many days")] = None,
) -> None:
    """Issue a personal API token; it is printed once and never stored in clear."""
    settings = _settings()
    install_audit()
    factory = build_session_factory(build_engine(settings.database_url))
    with transaction(factory) as session:
        set_actor(session, CLI_ACTOR)
        user = session.scalar(select(User).where(User.username == username))
        if user is None or not user.active:
            raise _fail(f"no active user {username!r}")
        expires = utcnow() + dt.timedelta(days=days) if days else None
        token, secret = issue_token(session, user, name, expires)
        token_id = token.id
    # Printed bare on stdout so scripts can capture it; the note goes to stderr.
    err.print(f"token {token_id} for {username}; store it now, it is not shown again:")
    print(secret)


@users_app.command("revoke-token")
def users_revoke_token(token_id: Annotated[int, typer.Argument(help="token id")]) -> None:
    """Revoke an API token at once."""
    settings = _settings()
    install_audit()
    factory = build_session_factory(build_engine(settings.database_url))
    with transaction(factory) as session:
        set_actor(session, CLI_ACTOR)
        token = session.get(ApiToken, token_id)
        if token is None:
            raise _fail(f"no token {token_id}")
        token.revoked_at = token.revoked_at or utcnow()
    console.print(f"token {token_id} revoked")


def _serve(settings: Settings) -> None:
    import uvicorn

    from maintainpro.app import create_app
    from maintainpro.logs import configure_logging
    from maintainpro.migrate import is_current

    try:
        checked = settings.checked_for_server()
    except ConfigurationError as exc:
        raise _fail(str(exc)) from exc
    configure_logging(checked.log_level, json_lines=checked.log_json)
    engine = build_engine(checked.database_url)
    current = is_current(engine)
    engine.dispose()
    if not current:
        raise _fail("the database schema is not current: run `maintainpro db upgrade` first")
    uvicorn.run(
        create_app(checked),
        host=checked.host,
        port=checked.port,
        log_config=None,
        proxy_headers=True,
    )


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="address to listen on")] = None,
    port: Annotated[int | None, typer.Option(help="port to listen on")] = None,
) -> None:
    """Run the hub (API, pages and integrations) with the configured settings."""
    overrides: dict[str, object] = {}
    if host:
        overrides["host"] = host
    if port:
        overrides["port"] = port
    _serve(_settings(**overrides))


@app.command()
def demo(
    host: Annotated[str, typer.Option(help="address to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="port to listen on")] = 8000,
) -> None:
    """Migrate, seed the demo plant and serve it, printing the login."""
    from maintainpro.demo.plant import demo_password, seed_demo_plant
    from maintainpro.migrate import upgrade

    settings = _settings(demo=True, host=host, port=port, cookie_secure=False, log_json=False)
    upgrade(settings.database_url)
    install_audit()
    engine = build_engine(settings.database_url)
    password = demo_password()
    with transaction(build_session_factory(engine)) as session:
        created = seed_demo_plant(session, password)
    engine.dispose()
    what = "seeded the demo plant" if created else "demo plant already there; passwords reset"
    console.print(
        Panel.fit(
            f"{what}\n\n"
            f"open   [bold]http://{host}:{port}/[/]\n"
            f"login  [bold]admin[/] / [bold]{password}[/]\n"
            f"       (also manager, tech, buyer, analyst with the same password)\n"
            f"API    http://{host}:{port}/docs",
            title="MaintAInPro demo",
        )
    )
    _serve(settings)


if __name__ == "__main__":
    app()
