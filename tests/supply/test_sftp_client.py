"""Uploads to a real in-process asyncssh SFTP server: atomic rename, auth, pinning, errors."""

from __future__ import annotations

import asyncio
import datetime as dt
import socket
from collections.abc import AsyncIterator, Mapping
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.orm import Session, sessionmaker

from maintainpro.core.db import utcnow
from maintainpro.core.events import Handler, OutboxEvent, deliver_pending, emit
from maintainpro.supply.sftp import (
    SftpAuthError,
    SftpConfigError,
    SftpHostKeyError,
    SftpPermissionError,
    SftpRetryableError,
)
from maintainpro.supply.sftp_client import deliver_via_sftp, upload
from supply.sftp_partner import PASSWORD, Partner, new_key, public_line, running_partner

NAME = "ACME_000000123_20240501T120000Z.x12"
# Larger than asyncssh's 4 MiB write limit, so it arrives in several write requests.
BIG = b"ISA*00*" + bytes(range(256)) * (4096 * 36)


@pytest.fixture
async def partner(tmp_path: Path) -> AsyncIterator[Partner]:
    """A running SFTP partner chrooted at tmp_path/server."""
    async with running_partner(tmp_path / "server") as running:
        yield running


def free_port() -> int:
    """A port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


async def test_upload_writes_a_hidden_part_file_then_renames_it(partner: Partner) -> None:
    path = await upload(partner.config(), NAME, BIG)

    assert path == f"outbound/{NAME}"
    assert (partner.outbound / NAME).read_bytes() == BIG
    assert sorted(p.name for p in partner.outbound.iterdir()) == [NAME]
    kinds = [op[0] for op in partner.ops]
    assert partner.ops[0] == ("open", f"outbound/.{NAME}.part")
    assert kinds.count("write") > 1, "the payload should arrive in several writes"
    assert partner.ops[-1] == ("posix_rename", f"outbound/.{NAME}.part", f"outbound/{NAME}")
    assert partner.outbound_during_writes, "writes were observed"
    assert all(NAME not in names for names in partner.outbound_during_writes)
    assert all(f".{NAME}.part" in names for names in partner.outbound_during_writes)


async def test_upload_replaces_a_stale_copy_without_posix_rename(partner: Partner) -> None:
    partner.posix_rename = False
    (partner.outbound / NAME).write_bytes(b"stale copy from a lost answer")

    await upload(partner.config(), NAME, b"fresh")

    assert (partner.outbound / NAME).read_bytes() == b"fresh"
    tail = [op[0] for op in partner.ops if op[0] != "write"][-3:]
    assert tail == ["open", "remove", "rename"]
    assert not (partner.outbound / f".{NAME}.part").exists()


async def test_upload_without_posix_rename_and_no_stale_copy(partner: Partner) -> None:
    partner.posix_rename = False
    await upload(partner.config(), NAME, b"only")
    assert (partner.outbound / NAME).read_bytes() == b"only"
    assert "remove" not in [op[0] for op in partner.ops]


async def test_password_auth(partner: Partner) -> None:
    config = partner.config(private_key=None, password=PASSWORD)
    await upload(config, NAME, b"by password")
    assert (partner.outbound / NAME).read_bytes() == b"by password"


async def test_key_auth_with_a_passphrase_protected_key(partner: Partner) -> None:
    pem = partner.client_key.export_private_key("pkcs8-pem", passphrase="open sesame").decode()
    config = partner.config(private_key=pem, passphrase="open sesame")
    await upload(config, NAME, b"by key")
    assert (partner.outbound / NAME).exists()


async def test_wrong_passphrase_is_a_permanent_config_error(partner: Partner) -> None:
    pem = partner.client_key.export_private_key("pkcs8-pem", passphrase="open sesame").decode()
    with pytest.raises(SftpConfigError) as caught:
        await upload(partner.config(private_key=pem, passphrase="wrong"), NAME, b"x")
    assert not caught.value.retryable


async def test_wrong_password_is_a_permanent_auth_error(partner: Partner) -> None:
    config = partner.config(private_key=None, password="not the password")
    with pytest.raises(SftpAuthError) as caught:
        await upload(config, NAME, b"x")
    assert not caught.value.retryable
    assert "not the password" not in str(caught.value)
    assert list(partner.outbound.iterdir()) == []


async def test_unknown_key_is_refused(partner: Partner) -> None:
    config = partner.config(private_key=new_key().export_private_key().decode())
    with pytest.raises(SftpAuthError):
        await upload(config, NAME, b"x")


async def test_changed_host_key_is_refused_never_accepted(partner: Partner) -> None:
    config = partner.config(host_keys=(public_line(new_key()),))
    with pytest.raises(SftpHostKeyError) as caught:
        await upload(config, NAME, b"x")
    assert not caught.value.retryable
    assert partner.host_key.get_fingerprint("sha256") in str(caught.value)
    assert partner.ops == [], "nothing was sent to an unverified server"
    assert list(partner.outbound.iterdir()) == []


async def test_host_key_pinned_by_fingerprint(partner: Partner) -> None:
    pin = partner.host_key.get_fingerprint("sha256")
    await upload(partner.config(host_keys=(pin,)), NAME, b"fingerprint")
    assert (partner.outbound / NAME).exists()

    other = new_key().get_fingerprint("sha256")
    with pytest.raises(SftpHostKeyError):
        await upload(partner.config(host_keys=(other,)), NAME, b"x")


async def test_host_key_pinned_by_a_keyscan_line(partner: Partner) -> None:
    line = f"[127.0.0.1]:{partner.port} {public_line(partner.host_key)}"
    await upload(partner.config(host_keys=(line,)), NAME, b"keyscan")
    assert (partner.outbound / NAME).exists()


async def test_server_down_is_retryable(partner: Partner) -> None:
    with pytest.raises(SftpRetryableError) as caught:
        await upload(partner.config(port=free_port()), NAME, b"x")
    assert caught.value.retryable


async def test_silent_server_times_out_retryably(partner: Partner) -> None:
    accepted = asyncio.Event()
    writers: list[asyncio.StreamWriter] = []

    async def hold(_: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writers.append(writer)
        accepted.set()

    server = await asyncio.start_server(hold, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        with pytest.raises(SftpRetryableError):
            await upload(partner.config(port=port, connect_timeout=0.3), NAME, b"x")
        assert accepted.is_set()
    finally:
        for writer in writers:
            writer.close()
        server.close()
        await server.wait_closed()


async def test_connection_dropped_by_the_server_is_retryable(partner: Partner) -> None:
    async def hang_up(_: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.close()

    server = await asyncio.start_server(hang_up, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        with pytest.raises(SftpRetryableError):
            await upload(partner.config(port=port), NAME, b"x")
    finally:
        server.close()
        await server.wait_closed()


async def test_refused_folder_is_a_permanent_permission_error(partner: Partner) -> None:
    partner.denied_prefix = "outbound"
    with pytest.raises(SftpPermissionError) as caught:
        await upload(partner.config(), NAME, b"x")
    assert not caught.value.retryable


async def test_missing_outbound_folder_is_permanent(partner: Partner) -> None:
    with pytest.raises(SftpPermissionError):
        await upload(partner.config(outbound_dir="no-such-folder"), NAME, b"x")


@pytest.mark.parametrize(
    "name",
    [
        "../escape.x12",
        "../../etc/passwd",
        "sub/dir.x12",
        "back\\slash.x12",
        "nul\x00.x12",
        "bell\x07.x12",
        "esc\x1b[31m.x12",
        "rtl\u202eexe.x12",
        ".",
        "..",
        "",
        ".hidden.x12",
        "upload.x12.part",
        "n" * 250 + ".x12",
    ],
)
async def test_hostile_outbound_names_are_refused_before_connecting(
    partner: Partner, name: str
) -> None:
    before = sorted(str(p) for p in partner.root.parent.rglob("*"))
    with pytest.raises(SftpConfigError):
        await upload(partner.config(), name, b"x")
    assert partner.ops == []
    assert sorted(str(p) for p in partner.root.parent.rglob("*")) == before


async def test_longest_allowed_name_uploads(partner: Partner) -> None:
    name = "n" * 245 + ".x12"
    await upload(partner.config(), name, b"long")
    assert (partner.outbound / name).read_bytes() == b"long"


async def test_deliver_via_sftp_from_a_worker_thread(partner: Partner) -> None:
    path = await asyncio.to_thread(deliver_via_sftp, partner.config(), NAME, b"sync")
    assert path == f"outbound/{NAME}"
    assert (partner.outbound / NAME).read_bytes() == b"sync"


async def test_deliver_via_sftp_refuses_to_block_a_running_loop(partner: Partner) -> None:
    with pytest.raises(RuntimeError, match="await upload"):
        deliver_via_sftp(partner.config(), NAME, b"x")


async def test_outbox_keeps_the_document_until_the_partner_is_back(
    partner: Partner, session_factory: sessionmaker[Session]
) -> None:
    reachable = partner.config()
    config = {"current": partner.config(port=free_port())}

    def send(topic: str, payload: Mapping[str, Any]) -> None:
        deliver_via_sftp(config["current"], payload["filename"], payload["body"].encode())

    with session_factory() as session, session.begin():
        emit(session, "edi.outbound", {"filename": NAME, "body": "ISA*00*~"})
    now = utcnow()
    handlers: dict[str, list[Handler]] = {"edi.outbound": [send]}

    delivered = await asyncio.to_thread(deliver_pending, session_factory, handlers, now=now)
    assert delivered == 0
    with session_factory() as session:
        event = session.query(OutboxEvent).one()
        assert event.delivered_at is None
        assert event.last_error is not None
        assert event.last_error.startswith("SftpRetryableError")

    config["current"] = reachable
    later = now + dt.timedelta(hours=1)
    delivered = await asyncio.to_thread(deliver_pending, session_factory, handlers, now=later)
    assert delivered == 1
    assert (partner.outbound / NAME).read_bytes() == b"ISA*00*~"
