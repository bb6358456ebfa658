"""`maintainpro devices probe` against a real pymodbus TCP server."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from typing import cast

import pytest
from pymodbus.server import ModbusTcpServer
from pymodbus.simulator import DataType as SimType
from pymodbus.simulator import SimData, SimDevice
from typer.testing import CliRunner

from maintainpro.cli.main import app
from maintainpro.iot.registers import ByteOrder, DataType, encode_registers

runner = CliRunner()
WIDE = {"COLUMNS": "200"}  # Rich would otherwise wrap the table at 80 columns

# 1234.5 as float32 at 0-1 in ABCD and at 2-3 in CDAB, then an int16.
HOLDING = [
    *encode_registers(DataType.FLOAT32, ByteOrder.ABCD, 1234.5),
    *encode_registers(DataType.FLOAT32, ByteOrder.CDAB, 1234.5),
    *encode_registers(DataType.INT16, ByteOrder.ABCD, -2),
]


@pytest.fixture(scope="module")
def server_port() -> Iterator[int]:
    """A pymodbus server on its own event loop thread (the CLI runs asyncio.run itself)."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()

    async def start() -> ModbusTcpServer:
        device = SimDevice(
            0,
            simdata=(
                [SimData(0, values=[True, False, True], datatype=SimType.BITS)],
                [SimData(0, values=[False], datatype=SimType.BITS)],
                [SimData(0, values=HOLDING, datatype=SimType.REGISTERS)],
                [SimData(0, values=[0], datatype=SimType.REGISTERS)],
            ),
        )
        server = ModbusTcpServer(device, address=("127.0.0.1", 0))
        await server.serve_forever(background=True)
        return server

    server = asyncio.run_coroutine_threadsafe(start(), loop).result(timeout=10)
    yield cast(asyncio.Server, server.transport).sockets[0].getsockname()[1]
    stop = server.shutdown()  # type: ignore[no-untyped-call]
    asyncio.run_coroutine_threadsafe(stop, loop).result(timeout=10)
    loop.call_soon_threadsafe(loop.stop)
    thread.join(timeout=10)
    loop.close()


def _base(port: int) -> list[str]:
    return ["devices", "probe", "--host", "127.0.0.1", "--port", str(port)]


def _rows(output: str) -> dict[tuple[str, str], list[str]]:
    """Table rows keyed by (address, type): ABCD, CDAB, BADC, DCBA; plus the word per address."""
    rows: dict[tuple[str, str], list[str]] = {}
    address = ""
    for line in output.splitlines():
        cells = [cell.strip() for cell in line.strip().strip("│").split("│")]
        if len(cells) != 7 or cells[2] not in {t.value for t in DataType}:
            continue
        if cells[0]:
            address = cells[0]
            rows[(address, "word")] = [cells[1]]
        rows[(address, cells[2])] = cells[3:]
    return rows


def test_probe_shows_the_float_under_both_word_orders(server_port: int) -> None:
    result = runner.invoke(
        app,
        [*_base(server_port), "--count", "5"],
        env=WIDE,
    )
    assert result.exit_code == 0, result.output
    rows = _rows(result.output)
    assert [rows[(str(a), "word")] for a in range(5)] == [
        ["449A"],
        ["5000"],
        ["5000"],
        ["449A"],
        ["FFFE"],
    ]
    abcd, cdab, _, _ = rows[("0", "float32")]
    assert abcd == "1234.5"
    assert cdab != "1234.5"
    abcd, cdab, _, _ = rows[("2", "float32")]
    assert cdab == "1234.5"
    assert abcd != "1234.5"
    # 16-bit rows fill only the two distinct orders.
    assert rows[("4", "int16")] == ["-2", "", "-257", ""]
    assert rows[("4", "uint16")][0] == "65534"
    assert ("3", "float32") in rows
    assert ("4", "float32") not in rows  # one word left: no 32-bit value starts there
    assert ("0", "float64") in rows
    assert ("2", "float64") not in rows


def test_probe_reads_coils(server_port: int) -> None:
    result = runner.invoke(
        app,
        [*_base(server_port), "--function", "coil", "--address", "0", "--count", "3"],
        env=WIDE,
    )
    assert result.exit_code == 0, result.output
    lines = [line for line in result.output.splitlines() if "(on)" in line or "(off)" in line]
    assert [line.split("│")[2].strip() for line in lines] == ["1 (on)", "0 (off)", "1 (on)"]


def test_probe_explains_failures(server_port: int) -> None:
    base = _base(server_port)
    refused = runner.invoke(app, [*base, "--address", "100"], env=WIDE)
    assert refused.exit_code == 1
    assert "Modbus exception 2 (illegal data address)" in refused.output

    too_many = runner.invoke(app, [*base, "--count", "126"], env=WIDE)
    assert too_many.exit_code == 1
    assert "holding reads at most 125 per request" in too_many.output

    with_socket_closed = runner.invoke(
        app, ["devices", "probe", "--host", "127.0.0.1", "--port", "1", "--timeout", "0.5"]
    )
    assert with_socket_closed.exit_code == 1
    assert "cannot connect to tcp://127.0.0.1:1" in with_socket_closed.output


def test_devices_help_lists_probe() -> None:
    result = runner.invoke(app, ["devices", "--help"])
    assert result.exit_code == 0
    assert "probe" in result.output
