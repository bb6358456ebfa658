"""A real in-process SFTP partner (asyncssh server, chrooted in a temporary folder) for tests."""

from __future__ import annotations

import contextlib
import dataclasses
import os
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncssh

from maintainpro.supply.sftp import SftpConfig

USERNAME = "acme"
PASSWORD = "sftp-password-for-tests"


def new_key() -> asyncssh.SSHKey:
    """A fresh Ed25519 key (fast to generate)."""
    return asyncssh.generate_private_key("ssh-ed25519")


def public_line(key: asyncssh.SSHKey) -> str:
    """The OpenSSH public key line of a key."""
    return key.export_public_key().decode().strip()


@dataclass
class Partner:
    """The running server, what it saw, and switches that change how it behaves."""

    root: Path
    host_key: asyncssh.SSHKey
    client_key: asyncssh.SSHKey
    port: int = 0
    ops: list[tuple[str, ...]] = field(default_factory=list)
    # Names in the outbound folder at the moment of each write: nothing final may appear early.
    outbound_during_writes: list[set[str]] = field(default_factory=list)
    posix_rename: bool = True
    denied_prefix: str | None = None
    extra_listing: list[bytes] = field(default_factory=list)

    @property
    def outbound(self) -> Path:
        """The partner's folder we upload to."""
        return self.root / "outbound"

    @property
    def inbound(self) -> Path:
        """The partner's folder we poll."""
        return self.root / "inbound"

    @property
    def archive(self) -> Path:
        """Where processed inbound files go."""
        return self.root / "archive"

    def config(self, **overrides: Any) -> SftpConfig:
        """Settings reaching this partner with key auth and its pinned host key."""
        values: dict[str, Any] = {
            "partner": "ACME",
            "host": "127.0.0.1",
            "port": self.port,
            "username": USERNAME,
            "private_key": self.client_key.export_private_key().decode(),
            "host_keys": (public_line(self.host_key),),
            "connect_timeout": 5.0,
            "poll_interval": 0.05,
        }
        values.update(overrides)
        return SftpConfig(**values)

    def drop(self, name: str | bytes, data: bytes, *, age: float = 3600.0) -> Path:
        """Put a file in the inbound folder, its modification time `age` seconds ago."""
        folder = os.fsencode(self.inbound)
        raw = name if isinstance(name, bytes) else name.encode()
        path = os.path.join(folder, raw)
        with open(path, "wb") as handle:
            handle.write(data)
        stamp = os.stat(path).st_mtime - age
        os.utime(path, (stamp, stamp))
        return Path(os.fsdecode(path))


class RecordingSFTPServer(asyncssh.SFTPServer):
    """Chrooted SFTP server that records operations and can refuse some of them."""

    def __init__(self, chan: asyncssh.SSHServerChannel[bytes], partner: Partner) -> None:
        super().__init__(chan, chroot=os.fsencode(partner.root))
        self.partner = partner

    def _check(self, path: bytes) -> None:
        prefix = self.partner.denied_prefix
        if prefix is not None and path.decode(errors="replace").startswith(prefix):
            raise asyncssh.SFTPPermissionDenied("permission denied")

    def open(self, path: bytes, pflags: int, attrs: asyncssh.SFTPAttrs) -> object:
        """Record the open, then open under the chroot."""
        self._check(path)
        self.partner.ops.append(("open", path.decode(errors="replace")))
        return super().open(path, pflags, attrs)

    def write(self, file_obj: object, offset: int, data: bytes) -> int:
        """Record what the outbound folder holds while the bytes arrive."""
        self.partner.ops.append(("write",))
        if self.partner.outbound.is_dir():
            self.partner.outbound_during_writes.append(set(os.listdir(self.partner.outbound)))
        return super().write(file_obj, offset, data)  # type: ignore[return-value]

    def rename(self, oldpath: bytes, newpath: bytes) -> None:
        """Record a plain (non-overwriting) rename."""
        self.partner.ops.append(("rename", oldpath.decode(), newpath.decode(errors="replace")))
        super().rename(oldpath, newpath)

    def posix_rename(self, oldpath: bytes, newpath: bytes) -> None:
        """Record a POSIX rename, or refuse it like a server without the extension."""
        if not self.partner.posix_rename:
            raise asyncssh.SFTPOpUnsupported("posix-rename not supported")
        self.partner.ops.append(("posix_rename", oldpath.decode(), newpath.decode()))
        super().posix_rename(oldpath, newpath)

    def remove(self, path: bytes) -> None:
        """Record a removal."""
        self._check(path)
        self.partner.ops.append(("remove", path.decode(errors="replace")))
        super().remove(path)

    async def scandir(self, path: bytes) -> AsyncIterator[asyncssh.SFTPName]:
        """The real listing plus whatever hostile names the test injects."""
        async for entry in super().scandir(path):
            yield entry
        for name in self.partner.extra_listing:
            attrs = asyncssh.SFTPAttrs(
                type=asyncssh.FILEXFER_TYPE_REGULAR, size=4, mtime=0, permissions=0o100644
            )
            yield asyncssh.SFTPName(name, attrs=attrs)


class PartnerSSHServer(asyncssh.SSHServer):
    """Accepts the test user with its password or its one authorised key."""

    def __init__(self, partner: Partner) -> None:
        self.partner = partner

    def begin_auth(self, username: str) -> bool:
        """Authentication is always required."""
        return True

    def password_auth_supported(self) -> bool:
        """Passwords are accepted."""
        return True

    def validate_password(self, username: str, password: str) -> bool:
        """Only the test user's password."""
        return username == USERNAME and password == PASSWORD

    def public_key_auth_supported(self) -> bool:
        """Keys are accepted."""
        return True

    def validate_public_key(self, username: str, key: asyncssh.SSHKey) -> bool:
        """Only the test user's key."""
        return username == USERNAME and public_line(key) == public_line(self.partner.client_key)


@contextlib.asynccontextmanager
async def running_partner(root: Path) -> AsyncIterator[Partner]:
    """Start the partner on 127.0.0.1 (a free port) with its folders; stop it afterwards."""
    for folder in ("outbound", "inbound", "archive"):
        (root / folder).mkdir(parents=True, exist_ok=True)
    partner = Partner(root=root, host_key=new_key(), client_key=new_key())
    server = await asyncssh.listen(
        "127.0.0.1",
        0,
        server_host_keys=[partner.host_key],
        server_factory=lambda: PartnerSSHServer(partner),
        sftp_factory=lambda chan: RecordingSFTPServer(chan, partner),
        allow_scp=False,
    )
    partner.port = server.get_port()
    try:
        yield partner
    finally:
        server.close()
        await server.wait_closed()


def with_port(partner: Partner, port: int) -> Partner:
    """The same partner description pointing at another port (a dead or fake server)."""
    return dataclasses.replace(partner, port=port)
