"""`maintainpro edge --config edge.yaml`: run an edge agent near the machines."""

from __future__ import annotations

import asyncio
import contextlib
import signal
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from maintainpro.cli.context import fail

if TYPE_CHECKING:
    from maintainpro.iot.edge.settings import AgentSettings


def edge(
    config: Annotated[
        Path, typer.Option("--config", "-c", help="the agent's YAML file (see docs/edge.md)")
    ],
) -> None:
    """Run an edge agent: poll devices, buffer durably, forward to the hub's broker."""
    from maintainpro.iot.edge.settings import AgentSettings, EdgeSettingsError
    from maintainpro.logs import configure_logging

    try:
        settings = AgentSettings.load(config)
    except EdgeSettingsError as exc:
        raise fail(str(exc)) from None
    configure_logging(settings.log_level, json_lines=settings.log_json)
    asyncio.run(_run(settings))


async def _run(settings: AgentSettings) -> None:
    from maintainpro.iot.edge.agent import EdgeAgent

    agent = EdgeAgent(settings)
    receiver = None
    if settings.remote_config:
        from maintainpro.iot.edge.remote import ConfigReceiver

        # paho's thread calls apply; apply_devices hands the change to the event loop.
        receiver = ConfigReceiver(
            settings.uplink_options().mqtt(),
            settings.agent,
            lambda config: agent.apply_devices(list(config.devices)),
            settings.state_dir or settings.queue.path.parent,
        )
    task = asyncio.create_task(agent.run(), name="edge-agent")
    loop = asyncio.get_running_loop()
    # SIGTERM (systemd, docker stop) and Ctrl-C end the agent cleanly; what was not yet
    # acknowledged by the hub stays in the queue for the next start.
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, task.cancel)
    if receiver is not None:
        receiver.start()
    try:
        with contextlib.suppress(asyncio.CancelledError):
            await task
    finally:
        if receiver is not None:
            await asyncio.to_thread(receiver.stop)
