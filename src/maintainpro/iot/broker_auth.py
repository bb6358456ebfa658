"""Mosquitto's password and ACL files written from the registry, and the broker told to reload."""

from __future__ import annotations

import datetime as dt
import logging
import os
import signal
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from maintainpro.config import Settings
from maintainpro.core.db import utcnow
from maintainpro.iot import security
from maintainpro.iot.device_ca import in_force
from maintainpro.iot.devices import Device
from maintainpro.iot.edge_agents import EdgeAgent
from maintainpro.iot.security_records import CredentialKind, IssuedCredential

log = logging.getLogger(__name__)

# Readable by the broker's group, never by others: the file holds password hashes.
BROKER_FILE_MODE = 0o640


class BrokerReloadError(RuntimeError):
    """The broker could not be told to reload (no pid file, dead process)."""


@dataclass
class BrokerAccounts:
    """What the files will say: password hashes per username and the ACL plan."""

    passwords: dict[str, str] = field(default_factory=dict)
    devices: set[str] = field(default_factory=set)
    agents: dict[str, list[str]] = field(default_factory=dict)


@dataclass(frozen=True)
class BrokerFilesResult:
    """Which files were written and whether the broker was signalled."""

    password_file: Path | None
    acl_file: Path | None
    accounts: int
    reloaded: bool


def agent_devices(config: Mapping[str, Any] | None) -> list[str]:
    """The device keys an edge agent's pushed configuration names (list or mapping form)."""
    devices = (config or {}).get("devices") or []
    if isinstance(devices, Mapping):
        return [str(key) for key in devices]
    keys: list[str] = []
    for item in devices:
        if isinstance(item, str):
            keys.append(item)
        elif isinstance(item, Mapping) and isinstance(item.get("key"), str):
            keys.append(item["key"])
    return keys


def collect_accounts(session: Session, now: dt.datetime | None = None) -> BrokerAccounts:
    """Accounts of enabled devices and agents whose credentials are in force right now."""
    now = now or utcnow()
    accounts = BrokerAccounts()
    rows = session.execute(
        select(IssuedCredential, Device, EdgeAgent)
        .outerjoin(Device, IssuedCredential.device_id == Device.id)
        .outerjoin(EdgeAgent, IssuedCredential.edge_agent_id == EdgeAgent.id)
        .where(
            IssuedCredential.kind.in_(
                [CredentialKind.MQTT_PASSWORD, CredentialKind.CLIENT_CERTIFICATE]
            ),
            *in_force(now),
        )
        .order_by(IssuedCredential.id)
    )
    for record, device, agent in rows:
        if device is not None and device.enabled:
            username = device.key
            accounts.devices.add(device.key)
        elif agent is not None and agent.enabled:
            username = security.agent_username(agent.key)
            accounts.agents[agent.key] = agent_devices(agent.config)
        else:
            continue
        if record.kind == CredentialKind.MQTT_PASSWORD and record.secret_hash:
            # Ordered by id: the newest password of a username wins (one line per user).
            accounts.passwords[username] = record.secret_hash
    return accounts


def atomic_write(path: Path, text: str, mode: int = BROKER_FILE_MODE) -> None:
    """Write a file so a reader sees the old or the new content, never a mix (temp + rename)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def hub_users(settings: Settings) -> dict[str, str]:
    """The hub's own broker account (from its MQTT settings), hashed for the password file."""
    if settings.mqtt_username is None:
        return {}
    password = settings.mqtt_password.get_secret_value() if settings.mqtt_password else ""
    return {settings.mqtt_username: security.mosquitto_hash(password)}


def render_files(
    accounts: BrokerAccounts, hub: Mapping[str, str], *, device_root: str = "devices"
) -> tuple[str, str]:
    """The password file and ACL file texts."""
    passwords = dict(accounts.passwords)
    passwords.update(hub)
    plan = security.AclPlan(
        hub_users=sorted(hub),
        devices=sorted(accounts.devices),
        agents=accounts.agents,
        device_root=device_root,
    )
    return security.password_file_text(passwords), security.acl_text(plan)


def reload_broker(pid_file: Path) -> int:
    """Send SIGHUP to the broker named by the pid file (Mosquitto rereads password and ACL
    files and disconnects clients they no longer allow); returns the pid."""
    try:
        pid = int(pid_file.read_text().strip())
    except (OSError, ValueError) as exc:
        raise BrokerReloadError(f"cannot read the broker pid from {pid_file}: {exc}") from exc
    try:
        os.kill(pid, signal.SIGHUP)
    except OSError as exc:
        raise BrokerReloadError(f"cannot signal broker process {pid}: {exc}") from exc
    return pid


def write_broker_files(
    session: Session,
    settings: Settings,
    *,
    reload: bool = True,
    now: dt.datetime | None = None,
) -> BrokerFilesResult:
    """Write the configured password and ACL files from the registry; reload the broker."""
    accounts = collect_accounts(session, now)
    passwords, acl = render_files(
        accounts, hub_users(settings), device_root=settings.mqtt_topic_prefix or "devices"
    )
    if settings.mqtt_password_file is not None:
        atomic_write(settings.mqtt_password_file, passwords)
    if settings.mqtt_acl_file is not None:
        atomic_write(settings.mqtt_acl_file, acl)
    reloaded = False
    wrote = settings.mqtt_password_file is not None or settings.mqtt_acl_file is not None
    if reload and wrote and settings.mqtt_broker_pid_file is not None:
        reload_broker(settings.mqtt_broker_pid_file)
        reloaded = True
    log.info(
        "broker files written",
        extra={
            "accounts": len(accounts.devices) + len(accounts.agents),
            "reloaded": reloaded,
        },
    )
    return BrokerFilesResult(
        password_file=settings.mqtt_password_file,
        acl_file=settings.mqtt_acl_file,
        accounts=len(accounts.devices) + len(accounts.agents),
        reloaded=reloaded,
    )
