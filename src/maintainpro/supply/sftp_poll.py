"""Polling a partner's inbound SFTP folder: settled files to a handler, then archive or delete."""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import cast

import asyncssh

from maintainpro.core.db import utcnow
from maintainpro.supply.sftp import (
    MAX_NAME_BYTES,
    SftpConfig,
    SftpError,
    is_temporary,
    printable_name,
    remote_path,
    unsafe_name_reason,
)
from maintainpro.supply.sftp_client import open_session, translated_errors

log = logging.getLogger(__name__)

ARCHIVE_SUFFIX_FORMAT = "%Y%m%dT%H%M%S%fZ"
InboundHandler = Callable[[str, bytes], Awaitable[None]]
"""Receives a file's name and bytes; returning means it is safely stored and may be removed."""

# Errors that end the whole session, as opposed to a problem with one file.
_SESSION_ERRORS = (
    asyncssh.DisconnectError,
    asyncssh.SFTPConnectionLost,
    asyncssh.SFTPNoConnection,
    OSError,
    TimeoutError,
)


@dataclass
class PollReport:
    """What one poll did with each file it saw (names only: contents stay with the handler)."""

    delivered: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    left_behind: dict[str, str] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)
    waiting: list[str] = field(default_factory=list)


@dataclass
class PollerStatus:
    """The partner's inbound connection as the supply dashboard shows it."""

    partner: str
    connected: bool | None = None
    last_poll_at: dt.datetime | None = None
    last_success_at: dt.datetime | None = None
    last_error: str | None = None
    last_report: PollReport | None = None


@dataclass(frozen=True)
class _Listed:
    name: str
    size: int
    mtime: int | None


class InboundPoller:
    """Hands each settled inbound file to `handle` once per poll; removes it only after success.

    A file is settled when the previous poll listed it with the same size and modification
    time, or when its modification time is at least `min_file_age` seconds old. A handler that
    raises leaves the file where it is, to be offered again on the next poll.
    """

    def __init__(
        self,
        config: SftpConfig,
        handle: InboundHandler,
        *,
        clock: Callable[[], dt.datetime] = utcnow,
    ) -> None:
        self.config = config
        self.handle = handle
        self.clock = clock
        self.status = PollerStatus(config.partner)
        self._previous: dict[str, tuple[int, int | None]] = {}
        self._reported: set[str] = set()

    async def poll(self) -> PollReport:
        """One pass over the inbound folder; SftpError if the server cannot be used at all."""
        report = PollReport()
        async with open_session(self.config) as sftp:
            with translated_errors():
                listed = await self._list(sftp, report)
                current: dict[str, tuple[int, int | None]] = {}
                for item in listed:
                    current[item.name] = (item.size, item.mtime)
                    if self._settled(item):
                        await self._take(sftp, item, report)
                    else:
                        report.waiting.append(item.name)
        self._previous = current
        return report

    async def run(self) -> None:
        """Poll every `poll_interval` seconds until cancelled (a Supervisor service)."""
        while True:
            await self.poll_once()
            await asyncio.sleep(self.config.poll_interval)

    async def poll_once(self) -> PollReport | None:
        """Poll, record the outcome in `status`, log a failure streak and the recovery once."""
        self.status.last_poll_at = self.clock()
        try:
            report = await self.poll()
        except SftpError as exc:
            if self.status.last_error is None:
                log.warning(
                    "sftp poll failed",
                    extra={"partner": self.config.partner, "error": str(exc)},
                )
            self.status.connected = False
            self.status.last_error = f"{type(exc).__name__}: {exc}"
            return None
        if self.status.last_error is not None:
            log.info("sftp poll recovered", extra={"partner": self.config.partner})
        self.status.connected = True
        self.status.last_error = None
        self.status.last_success_at = self.clock()
        self.status.last_report = report
        return report

    async def _list(self, sftp: asyncssh.SFTPClient, report: PollReport) -> list[_Listed]:
        folder = self.config.inbound_dir.encode()
        found: dict[str, _Listed] = {}
        for entry in await sftp.readdir(folder):
            raw = entry.filename if isinstance(entry.filename, bytes) else entry.filename.encode()
            try:
                name = raw.decode()
            except UnicodeDecodeError:
                self._skip(report, raw, "name is not UTF-8")
                continue
            if name in {".", ".."} or name in found:
                # A listing naming a file twice must not hand it over twice.
                continue
            reason = unsafe_name_reason(name, max_bytes=MAX_NAME_BYTES)
            if reason is not None:
                self._skip(report, raw, reason)
                continue
            if is_temporary(name):
                continue
            attrs = entry.attrs
            if attrs.type != asyncssh.FILEXFER_TYPE_REGULAR:
                continue  # folders (an archive inside inbound), links, devices
            size = attrs.size if attrs.size is not None else 0
            if size > self.config.max_file_size:
                self._skip(report, raw, f"larger than {self.config.max_file_size} bytes")
                continue
            found[name] = _Listed(name, size, attrs.mtime)
        return list(found.values())

    def _settled(self, item: _Listed) -> bool:
        if self._previous.get(item.name) == (item.size, item.mtime):
            return True
        if item.mtime is None:
            return False
        age = self.clock().timestamp() - item.mtime
        return age >= self.config.min_file_age

    async def _take(self, sftp: asyncssh.SFTPClient, item: _Listed, report: PollReport) -> None:
        path = remote_path(self.config.inbound_dir, item.name)
        try:
            async with sftp.open(path, "rb", encoding=None) as remote:
                # Binary mode without an encoding: asyncssh returns bytes.
                data = cast(bytes, await remote.read(self.config.max_file_size + 1))
        except _SESSION_ERRORS:
            raise
        except asyncssh.SFTPError as exc:
            report.failed[item.name] = f"cannot read: {exc.reason}"
            return
        if len(data) != item.size:
            # Changed since the listing: still being written after all.
            report.waiting.append(item.name)
            return
        try:
            await self.handle(item.name, data)
        except Exception as exc:  # noqa: BLE001 - the file stays and is offered again next poll
            report.failed[item.name] = f"{type(exc).__name__}: {exc}"
            log.warning(
                "sftp inbound file not accepted",
                extra={"partner": self.config.partner, "file": item.name, "error": str(exc)},
            )
            return
        report.delivered.append(item.name)
        try:
            await self._dispose(sftp, path, item.name)
        except _SESSION_ERRORS:
            raise
        except asyncssh.SFTPError as exc:
            # The handler has it; the next poll offers it again and the handler's dedup copes.
            report.left_behind[item.name] = f"cannot archive or delete: {exc.reason}"

    async def _dispose(self, sftp: asyncssh.SFTPClient, path: str, name: str) -> None:
        archive = self.config.archive_dir
        if archive is None:
            await sftp.remove(path)
            return
        try:
            # Plain rename never overwrites: an earlier file of the same name stays archived.
            await sftp.rename(path, remote_path(archive, name))
        except (asyncssh.SFTPFailure, asyncssh.SFTPFileAlreadyExists):
            await sftp.rename(path, remote_path(archive, archive_variant(name, self.clock())))

    def _skip(self, report: PollReport, raw: bytes, reason: str) -> None:
        shown = printable_name(raw)
        report.skipped[shown] = reason
        if shown not in self._reported:
            self._reported.add(shown)
            log.warning(
                "sftp inbound file skipped",
                extra={"partner": self.config.partner, "file": shown, "reason": reason},
            )


def archive_variant(name: str, when: dt.datetime) -> str:
    """`name` with a UTC time suffix, shortened so the result stays a valid file name."""
    suffix = "." + when.astimezone(dt.UTC).strftime(ARCHIVE_SUFFIX_FORMAT)
    room = MAX_NAME_BYTES - len(suffix)
    stem = name.encode()[:room].decode(errors="ignore")
    return stem + suffix
