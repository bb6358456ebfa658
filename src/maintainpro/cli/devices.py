"""`maintainpro devices ...`: commissioning and inspecting field devices."""

from __future__ import annotations

import asyncio
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table
from sqlalchemy import select

from maintainpro.cli.context import CLI_ACTOR, cli_settings, fail, session_factory
from maintainpro.config import ConfigurationError, Settings
from maintainpro.core.db import utcnow
from maintainpro.iot.credentials import CredentialBox, credential_box
from maintainpro.iot.devices import Device
from maintainpro.iot.registers import (
    MAX_READ_COUNT,
    ByteOrder,
    DataType,
    Interpretation,
    RegisterFunction,
    interpretations,
)
from maintainpro.iot.registry import export_yaml, import_yaml

devices_app = typer.Typer(help="Field devices: commissioning and inspection.", no_args_is_help=True)


_fail = fail


# --------------------------------------------------------------------------------------------
# probe
# --------------------------------------------------------------------------------------------

_ORDERS = tuple(ByteOrder)


def _format_value(item: Interpretation) -> str:
    if item.data_type in (DataType.FLOAT32, DataType.FLOAT64):
        if not math.isfinite(item.value):
            return str(item.value)
        # Enough digits to recognise a reading while keeping the table within a terminal.
        return f"{item.value:.7g}" if item.data_type is DataType.FLOAT32 else f"{item.value:.10g}"
    return str(int(item.value))


def _interpretation_table(words: Sequence[int], start: int, title: str) -> Table:
    """One row per (address, type), one column per byte/word order."""
    table = Table(title=title, caption="16-bit types: CDAB reads as ABCD, DCBA as BADC")
    # Labels keep their width; long values fold onto a second line on narrow terminals
    # rather than being cut off.
    table.add_column("address", justify="right", min_width=7, no_wrap=True)
    table.add_column("word", min_width=4, no_wrap=True)
    table.add_column("type", min_width=7, no_wrap=True)
    for order in _ORDERS:
        table.add_column(order.value, justify="right", overflow="fold")
    by_address: dict[int, dict[DataType, dict[ByteOrder, Interpretation]]] = {}
    for item in interpretations(words, start):
        by_address.setdefault(item.address, {}).setdefault(item.data_type, {})[item.order] = item
    for address, types in by_address.items():
        # The word at an address is shown once, on its first row; wider values read on from it.
        for index, (data_type, by_order) in enumerate(types.items()):
            table.add_row(
                "" if index else str(address),
                "" if index else f"{words[address - start]:04X}",
                data_type.value,
                *(_format_value(by_order[o]) if o in by_order else "" for o in _ORDERS),
                end_section=index == len(types) - 1,
            )
    return table


def _bits_table(bits: Sequence[int], start: int, title: str) -> Table:
    table = Table(title=title)
    table.add_column("address", justify="right")
    table.add_column("value")
    for offset, bit in enumerate(bits):
        table.add_row(str(start + offset), "1 (on)" if bit else "0 (off)")
    return table


@devices_app.command("probe")
def probe(
    host: Annotated[str, typer.Option(help="device or gateway address")],
    port: Annotated[int, typer.Option(min=1, max=65535, help="Modbus TCP port")] = 502,
    unit: Annotated[int, typer.Option(min=0, max=255, help="unit (slave) id")] = 1,
    function: Annotated[
        RegisterFunction, typer.Option(case_sensitive=False, help="data table to read")
    ] = RegisterFunction.HOLDING,
    address: Annotated[int, typer.Option(min=0, max=65535, help="first address (0-based)")] = 0,
    count: Annotated[int, typer.Option(min=1, max=2000, help="registers (or bits) to read")] = 4,
    timeout: Annotated[float, typer.Option(min=0.05, max=60, help="seconds per attempt")] = 3.0,
) -> None:
    """Read a register range once and show every interpretation side by side."""
    # Imported here so the rest of the CLI works without the `iot` extra installed.
    from maintainpro.iot.connectors.modbus import (
        ModbusEndpoint,
        ModbusError,
        read_range,
    )

    if count > MAX_READ_COUNT[function]:
        raise _fail(f"{function} reads at most {MAX_READ_COUNT[function]} per request")
    if address + count - 1 > 0xFFFF:
        raise _fail(f"addresses {address}..{address + count - 1} run past 65535")
    endpoint = ModbusEndpoint("tcp", host, port)
    try:
        words = asyncio.run(
            read_range(endpoint, function, address, count, unit_id=unit, timeout_s=timeout)
        )
    except ModbusError as exc:
        raise _fail(f"{endpoint} unit {unit}: {exc}") from exc
    title = f"{endpoint} unit {unit}, {function} {address}..{address + count - 1}"
    console = Console()
    if function in (RegisterFunction.COIL, RegisterFunction.DISCRETE):
        console.print(_bits_table(words, address, title))
    else:
        console.print(_interpretation_table(words, address, title))


# --------------------------------------------------------------------------------------------
# registry
# --------------------------------------------------------------------------------------------


def _box(settings: Settings) -> CredentialBox | None:
    try:
        return credential_box(settings)
    except ConfigurationError:
        return None


@devices_app.command("list")
def list_devices() -> None:
    """List devices with their status, last data and last error."""
    factory = session_factory(cli_settings())
    table = Table(title="Devices")
    for column in ("device", "protocol", "status", "sensors", "last data", "last error"):
        table.add_column(column)
    now = utcnow()
    with factory() as session:
        for device in session.scalars(select(Device).order_by(Device.key)):
            table.add_row(
                device.key,
                device.protocol.value,
                device.status_at(now).value,
                str(len(device.sensors)),
                device.last_seen_at.isoformat(timespec="seconds") if device.last_seen_at else "—",
                (device.last_error or "—")[:60],
            )
    Console().print(table)


@devices_app.command("export")
def export_devices(
    output: Annotated[Path | None, typer.Option(help="file to write (default: stdout)")] = None,
) -> None:
    """Write every device and sensor as YAML (credentials are never exported)."""
    factory = session_factory(cli_settings())
    with factory() as session:
        text = export_yaml(session)
    if output is None:
        print(text, end="")
    else:
        output.write_text(text, encoding="utf-8")
        Console(stderr=True).print(f"wrote {output}")


@devices_app.command("import")
def import_devices(
    path: Annotated[Path, typer.Argument(help="YAML file with a devices list", exists=True)],
) -> None:
    """Create or update devices from YAML, all or nothing."""
    settings = cli_settings()
    factory = session_factory(settings)
    with factory() as session, session.begin():
        session.info["actor"] = CLI_ACTOR
        result = import_yaml(session, path.read_text(encoding="utf-8"), _box(settings))
        if not result.ok:
            session.rollback()
            for problem in result.problems:
                Console(stderr=True).print(
                    f"entry {problem.index} ({problem.key or '?'}): {problem.message}"
                )
            raise fail("nothing was imported")
    Console().print(f"imported: {result.created} created, {result.updated} updated")


def _set_enabled(key: str, enabled: bool) -> None:
    factory = session_factory(cli_settings())
    with factory() as session, session.begin():
        session.info["actor"] = CLI_ACTOR
        device = session.scalar(select(Device).where(Device.key == key))
        if device is None:
            raise fail(f"no device {key!r}")
        device.enabled = enabled
    Console().print(f"{key} {'enabled' if enabled else 'disabled'}")


@devices_app.command("enable")
def enable(key: Annotated[str, typer.Argument(help="device key")]) -> None:
    """Enable a device; a running hub starts its connector within seconds."""
    _set_enabled(key, True)


@devices_app.command("disable")
def disable(key: Annotated[str, typer.Argument(help="device key")]) -> None:
    """Disable a device; a running hub stops its connector within seconds."""
    _set_enabled(key, False)
