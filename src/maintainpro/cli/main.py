"""The `maintainpro` command line: serve, demo, db, users."""

from __future__ import annotations

import datetime as dt
import getpass
import sys
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console, Group, RenderableType
from rich.panel import Panel
from rich.table import Table
from sqlalchemy import select

from maintainpro.cli.context import CLI_ACTOR, cli_settings, err, fail
from maintainpro.cli.cubes import cubes_app
from maintainpro.cli.devices import devices_app
from maintainpro.cli.edge import edge
from maintainpro.cli.exports import exports_app
from maintainpro.cli.reports import reports_app
from maintainpro.cli.security import security_app
from maintainpro.cli.supply import supply_app
from maintainpro.cli.warehouse import warehouse_app
from maintainpro.config import ConfigurationError, Settings
from maintainpro.core.audit import install_audit, set_actor
from maintainpro.core.db import build_engine, build_session_factory, transaction, utcnow
from maintainpro.core.users import ApiToken, Role, User, WeakPassword, hash_password, issue_token

if TYPE_CHECKING:
    from maintainpro.demo.devices import DemoPorts
    from maintainpro.demo.simulators import DemoDevices, PortInUse

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
app.add_typer(security_app, name="security")
app.add_typer(supply_app, name="supply")
app.add_typer(warehouse_app, name="warehouse")
app.add_typer(cubes_app, name="cubes")
app.add_typer(exports_app, name="exports")
app.add_typer(reports_app, name="reports")
app.command()(edge)
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


def _checked_for_serving(settings: Settings) -> Settings:
    """Settings fit to serve, with logging configured and the schema checked; or a clean exit."""
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
    return checked


def _serve(settings: Settings) -> None:
    import uvicorn

    from maintainpro.app import create_app

    checked = _checked_for_serving(settings)
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


# Which option moves each demo listener elsewhere, for the "port taken" message.
_PORT_OPTIONS = {
    "http": "--port",
    "mqtt": "--mqtt-port",
    "opcua": "--opcua-port",
    "modbus": "--modbus-port",
    "coap": "--coap-port",
    "hub_coap": "--hub-coap-port",
}


@app.command()
def demo(
    host: Annotated[str, typer.Option(help="address to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="port to listen on")] = 8000,
    devices: Annotated[
        bool, typer.Option(help="run simulated devices on MQTT, OPC-UA, Modbus and CoAP")
    ] = True,
    mqtt_port: Annotated[int, typer.Option(help="embedded MQTT broker (TCP)")] = 18830,
    opcua_port: Annotated[int, typer.Option(help="simulated OPC-UA server (TCP)")] = 48400,
    modbus_port: Annotated[int, typer.Option(help="simulated Modbus server (TCP)")] = 15020,
    coap_port: Annotated[int, typer.Option(help="simulated CoAP device (UDP)")] = 56830,
    hub_coap_port: Annotated[int, typer.Option(help="the hub's CoAP server (UDP)")] = 56831,
) -> None:
    """Migrate, seed the demo plant and serve it with simulated devices, printing the login."""
    import asyncio

    from maintainpro.demo.devices import DemoPorts, seed_demo_devices
    from maintainpro.demo.plant import demo_password, seed_demo_plant
    from maintainpro.demo.procurement import seed_demo_procurement
    from maintainpro.demo.simulators import DemoDevicesError, Listener, PortInUse, ensure_free
    from maintainpro.migrate import upgrade

    overrides: dict[str, object] = {
        "demo": True,
        "host": host,
        "port": port,
        "cookie_secure": False,
        "log_json": False,
    }
    settings = _settings(**overrides)
    ports = DemoPorts(
        mqtt=mqtt_port, opcua=opcua_port, modbus=modbus_port, coap=coap_port, hub_coap=hub_coap_port
    )
    simulators: DemoDevices | None = None
    if devices:
        settings, simulators = _demo_devices(settings, overrides, ports)
    # Checked before migrating and seeding, so a clash fails at once and changes nothing.
    try:
        if simulators is not None:
            hub = [Listener("hub_coap", "hub's CoAP server", "udp", hub_coap_port)]
            own_coap = settings.coap_bind == ports.hub_coap_bind
            ensure_free(ports.host, simulators.listeners + (hub if own_coap else []))
        ensure_free(host, [Listener("http", "web server", "tcp", port)])
    except PortInUse as exc:
        raise _port_taken(exc) from None

    upgrade(settings.database_url)
    install_audit()
    engine = build_engine(settings.database_url)
    password = demo_password()
    with transaction(build_session_factory(engine)) as session:
        created = seed_demo_plant(session, password)
        seed_demo_procurement(session, base_currency=settings.base_currency)
        if simulators is not None:
            seed_demo_devices(session, ports)
    engine.dispose()
    what = "seeded the demo plant" if created else "demo plant already there; passwords reset"
    parts: list[RenderableType] = [
        f"{what}\n\n"
        f"open   [bold]http://{host}:{port}/[/]\n"
        f"login  [bold]admin[/] / [bold]{password}[/]\n"
        f"       (also manager, tech, buyer, analyst with the same password)\n"
        f"API    http://{host}:{port}/docs"
    ]
    if simulators is not None:
        table = Table(box=None, show_header=False, padding=(0, 1, 0, 0))
        # Names and endpoints stay whole on a narrow terminal; the asset list wraps.
        table.add_column(no_wrap=True)
        table.add_column(no_wrap=True)
        table.add_column()
        for row in simulators.describe():
            table.add_row(*row)
        parts += [
            "\nsimulated devices, a reading every second:",
            table,
            "P-101's bearing starts failing two minutes in: watch its vibration rise.",
        ]
    console.print(Panel.fit(Group(*parts), title="MaintAInPro demo"))
    checked = _checked_for_serving(settings)
    try:
        asyncio.run(_serve_with(checked, simulators))
    except PortInUse as exc:
        raise _port_taken(exc) from None
    except DemoDevicesError as exc:
        raise _fail(str(exc)) from None
    except KeyboardInterrupt:
        # Ctrl-C is how a demo ends; uvicorn has already shut the app down.
        pass


def _demo_devices(
    settings: Settings, overrides: dict[str, object], ports: DemoPorts
) -> tuple[Settings, DemoDevices]:
    """Point the hub at the demo broker and CoAP port unless configured; build the simulators."""
    from maintainpro.demo.simulators import DemoDevices
    from maintainpro.iot.connectors.coap import parse_bind
    from maintainpro.iot.connectors.mqtt import MqttConfigError, MqttOptions

    extra: dict[str, object] = {}
    if not settings.mqtt_url:
        # amqtt speaks MQTT 3.1.1 only.
        extra |= {"mqtt_url": ports.mqtt_url, "mqtt_protocol": "3.1.1"}
    if not settings.coap_bind:
        extra["coap_bind"] = ports.hub_coap_bind
    if extra:
        settings = _settings(**overrides, **extra)
    try:
        # A broker of the hub's own: the transmitters publish there, with the hub's account.
        mqtt = None if "mqtt_url" in extra else MqttOptions.from_settings(settings)
        host, coap_port = parse_bind(settings.coap_bind or ports.hub_coap_bind, ports.hub_coap)
    except (MqttConfigError, ValueError) as exc:
        raise _fail(f"invalid settings: {exc}") from exc
    # A server on every interface is reached on loopback.
    if host in ("0.0.0.0", "::", ""):  # noqa: S104 - compared, not bound
        host = "127.0.0.1"
    return settings, DemoDevices(ports, mqtt=mqtt, hub_coap=(host, coap_port))


def _port_taken(exc: PortInUse) -> typer.Exit:
    option = _PORT_OPTIONS.get(exc.listener.name)
    hint = f"; choose another with {option}" if option else ""
    return _fail(f"{exc}{hint}")


async def _serve_with(settings: Settings, simulators: DemoDevices | None) -> None:
    """Run uvicorn and the simulators in one event loop; the devices start first, stop last."""
    import uvicorn

    from maintainpro.app import create_app

    config = uvicorn.Config(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        log_config=None,
        proxy_headers=True,
    )
    if simulators is not None:
        await simulators.start()
    try:
        await uvicorn.Server(config).serve()
    finally:
        if simulators is not None:
            await simulators.stop()


if __name__ == "__main__":
    app()
