"""SFTP sessions to a partner with pinned host keys, and atomic uploads (write, then rename)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Iterator

import asyncssh

from maintainpro.supply.sftp import (
    SftpConfig,
    SftpError,
    SftpHostKeyError,
    checked_outbound_name,
    classify,
    remote_path,
    temporary_name,
)

log = logging.getLogger(__name__)


class _PinnedHostKeyClient(asyncssh.SSHClient):
    """Accepts a host key only if its SHA256 fingerprint is pinned (full keys go to asyncssh)."""

    def __init__(self, fingerprints: frozenset[str]) -> None:
        self._fingerprints = fingerprints
        self.offered: str | None = None

    def validate_host_public_key(
        self, host: str, addr: str, port: int, key: asyncssh.SSHKey
    ) -> bool:
        """True only for a pinned fingerprint; asyncssh already checked the pinned keys."""
        self.offered = key.get_fingerprint("sha256")
        return self.offered in self._fingerprints


@contextlib.contextmanager
def translated_errors() -> Iterator[None]:
    """Re-raise asyncssh and socket errors as SftpRetryableError or SftpPermanentError."""
    try:
        yield
    except SftpError:
        raise
    except (
        asyncssh.Error,
        asyncssh.KeyImportError,
        asyncssh.KeyEncryptionError,
        OSError,
        TimeoutError,
    ) as exc:
        raise classify(exc) from exc


def _client_keys(config: SftpConfig) -> list[asyncssh.SSHKey] | None:
    if config.private_key is None:
        return None
    with translated_errors():
        return [asyncssh.import_private_key(config.private_key, config.passphrase)]


@contextlib.asynccontextmanager
async def open_session(config: SftpConfig) -> AsyncIterator[asyncssh.SFTPClient]:
    """An SFTP session on a connection whose host key is pinned, or a typed SftpError."""
    keys = _client_keys(config)
    client = _PinnedHostKeyClient(config.pinned_fingerprints)
    try:
        connection = await _connect(config, keys, client)
    except SftpHostKeyError as exc:
        # The fingerprint lets an administrator compare it with what the partner says out of band.
        raise SftpHostKeyError(
            f"{config.host} presented host key {client.offered or '(unknown)'}, which is not "
            "pinned for this partner; refusing to connect"
        ) from exc
    try:
        with translated_errors():
            sftp = await connection.start_sftp_client()
        try:
            yield sftp
        finally:
            sftp.exit()
    finally:
        connection.close()
        with contextlib.suppress(asyncssh.Error, OSError):
            await connection.wait_closed()


async def _connect(
    config: SftpConfig, keys: list[asyncssh.SSHKey] | None, client: _PinnedHostKeyClient
) -> asyncssh.SSHClientConnection:
    with translated_errors():
        return await asyncssh.connect(
            config.host,
            config.port,
            username=config.username,
            password=config.password,
            client_keys=keys,
            # Only what this partner's settings say: no ~/.ssh config, keys, agent or
            # known_hosts of whoever runs the service.
            config=[],
            agent_path=None,
            known_hosts=(list(config.pinned_keys), [], []),
            client_factory=lambda: client,
            gss_auth=False,
            gss_kex=False,
            connect_timeout=config.connect_timeout,
            login_timeout=config.connect_timeout,
        )


async def replace_file(sftp: asyncssh.SFTPClient, source: str, target: str) -> None:
    """Rename source over target: atomically where the server has posix-rename."""
    try:
        await sftp.posix_rename(source, target)
    except asyncssh.SFTPOpUnsupported:
        # Plain SFTP v3 rename refuses an existing target; one can only be a stale copy of this
        # same document from an attempt whose answer was lost, so it is removed first.
        if await sftp.exists(target):
            await sftp.remove(target)
        await sftp.rename(source, target)


async def upload(config: SftpConfig, filename: str, payload: bytes) -> str:
    """Put payload in the partner's outbound folder atomically; returns the final remote path.

    The bytes go to ".{filename}.part" first and are renamed only when complete, so a partner
    polling the folder never sees a half-written file.
    """
    name = checked_outbound_name(filename)
    final = remote_path(config.outbound_dir, name)
    partial = remote_path(config.outbound_dir, temporary_name(name))
    async with open_session(config) as sftp:
        with translated_errors():
            async with sftp.open(partial, "wb") as remote:
                await remote.write(payload)
            await replace_file(sftp, partial, final)
    log.info(
        "sftp upload done",
        extra={"partner": config.partner, "path": final, "bytes": len(payload)},
    )
    return final


def deliver_via_sftp(config: SftpConfig, filename: str, payload: bytes) -> str:
    """Blocking upload for outbox handlers; raises SftpError so the outbox retries later.

    Outbox handlers run in a worker thread with no event loop, so this runs its own. Called on
    a thread whose event loop is running, it refuses: blocking that loop could stall the very
    connection it waits for. Async code awaits `upload` instead.
    """
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(upload(config, filename, payload))
    raise RuntimeError("deliver_via_sftp blocks; from async code await upload() instead")
