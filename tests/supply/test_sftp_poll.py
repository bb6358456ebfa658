"""Polling a real in-process SFTP partner's inbound folder: hand over, archive, never lose."""

from __future__ import annotations

import asyncio
import datetime as dt
import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from maintainpro.runtime import Supervisor
from maintainpro.supply.sftp import SftpConfig
from maintainpro.supply.sftp_poll import InboundPoller
from supply.sftp_partner import Partner, running_partner


class Clock:
    """A settable clock; starts at the real time so server mtimes compare sensibly."""

    def __init__(self) -> None:
        self.now = dt.datetime.now(dt.UTC)

    def __call__(self) -> dt.datetime:
        return self.now


class Inbox:
    """The handler: records what it was given; can be told to refuse some names."""

    def __init__(self) -> None:
        self.received: list[tuple[str, bytes]] = []
        self.refuse: set[str] = set()
        self.arrived = asyncio.Event()

    async def __call__(self, name: str, data: bytes) -> None:
        if name in self.refuse:
            raise ValueError("document store unavailable")
        self.received.append((name, data))
        self.arrived.set()


@pytest.fixture
async def partner(tmp_path: Path) -> AsyncIterator[Partner]:
    """A running SFTP partner chrooted at tmp_path/server."""
    async with running_partner(tmp_path / "server") as running:
        yield running


@pytest.fixture
def inbox() -> Inbox:
    """A handler that accepts everything unless told otherwise."""
    return Inbox()


def poller(config: SftpConfig, inbox: Inbox, clock: Clock | None = None) -> InboundPoller:
    """A poller on the partner with the test's handler and clock."""
    return InboundPoller(config, inbox, clock=clock or Clock())


async def test_settled_files_are_handed_over_and_archived(partner: Partner, inbox: Inbox) -> None:
    partner.drop("ACME_855_1.x12", b"ISA*855~")
    partner.drop("ACME_856_2.x12", b"ISA*856~")

    report = await poller(partner.config(), inbox).poll()

    assert sorted(inbox.received) == [
        ("ACME_855_1.x12", b"ISA*855~"),
        ("ACME_856_2.x12", b"ISA*856~"),
    ]
    assert sorted(report.delivered) == ["ACME_855_1.x12", "ACME_856_2.x12"]
    assert list(partner.inbound.iterdir()) == []
    assert (partner.archive / "ACME_855_1.x12").read_bytes() == b"ISA*855~"
    assert (partner.archive / "ACME_856_2.x12").read_bytes() == b"ISA*856~"


async def test_processed_files_are_deleted_without_an_archive(
    partner: Partner, inbox: Inbox
) -> None:
    partner.drop("ACME_810_3.x12", b"ISA*810~")
    await poller(partner.config(archive_dir=None), inbox).poll()
    assert inbox.received == [("ACME_810_3.x12", b"ISA*810~")]
    assert list(partner.inbound.iterdir()) == []
    assert list(partner.archive.iterdir()) == []


async def test_a_failing_handler_leaves_the_file_for_the_next_poll(
    partner: Partner, inbox: Inbox
) -> None:
    partner.drop("refused.x12", b"ISA*A~")
    partner.drop("accepted.x12", b"ISA*B~")
    inbox.refuse = {"refused.x12"}
    polling = poller(partner.config(), inbox)

    first = await polling.poll()

    assert inbox.received == [("accepted.x12", b"ISA*B~")]
    assert first.failed == {"refused.x12": "ValueError: document store unavailable"}
    assert (partner.inbound / "refused.x12").read_bytes() == b"ISA*A~"
    assert not (partner.archive / "refused.x12").exists()

    inbox.refuse = set()
    second = await polling.poll()

    assert second.delivered == ["refused.x12"]
    assert inbox.received[-1] == ("refused.x12", b"ISA*A~")
    assert list(partner.inbound.iterdir()) == []


async def test_partial_and_hidden_files_are_left_alone(partner: Partner, inbox: Inbox) -> None:
    for name in (".ACME_1.x12.part", "ACME_2.x12.part", ".hidden", "upload.filepart"):
        partner.drop(name, b"half")
    (partner.inbound / "archive").mkdir()

    report = await poller(partner.config(), inbox).poll()

    assert inbox.received == []
    assert report.delivered == report.waiting == []
    assert report.skipped == {}
    assert len(list(partner.inbound.iterdir())) == 5


async def test_a_growing_file_waits_until_two_polls_see_it_unchanged(
    partner: Partner, inbox: Inbox
) -> None:
    clock = Clock()
    polling = poller(partner.config(min_file_age=600), inbox, clock)
    path = partner.drop("ACME_856_9.x12", b"ISA*first half", age=0)

    assert (await polling.poll()).waiting == ["ACME_856_9.x12"]
    with path.open("ab") as handle:
        handle.write(b"*second half~")
    assert (await polling.poll()).waiting == ["ACME_856_9.x12"]
    assert inbox.received == []

    report = await polling.poll()
    assert report.delivered == ["ACME_856_9.x12"]
    assert inbox.received == [("ACME_856_9.x12", b"ISA*first half*second half~")]


async def test_an_old_enough_file_is_taken_on_the_first_poll(
    partner: Partner, inbox: Inbox
) -> None:
    clock = Clock()
    partner.drop("fresh.x12", b"new", age=10)
    partner.drop("old.x12", b"old", age=120)
    report = await poller(partner.config(min_file_age=60), inbox, clock).poll()
    assert report.delivered == ["old.x12"]
    assert report.waiting == ["fresh.x12"]


async def test_hostile_names_never_leave_the_inbound_folder(partner: Partner, inbox: Inbox) -> None:
    outside = partner.root / "escape.x12"
    outside.write_bytes(b"outside the inbound folder")
    (partner.root / "secret.x12").write_bytes(b"not for the poller")
    long_name = "L" * 251 + ".x12"
    partner.drop(long_name, b"long")
    partner.drop("bell\x07.x12", b"control")
    partner.drop("esc\x1b[31m.x12", b"escape sequence")
    partner.drop(b"latin1-\xe9.x12", b"not utf-8")
    partner.extra_listing = [b"../escape.x12", b"../../secret.x12", b"sub/../../escape.x12"]

    report = await poller(partner.config(), inbox).poll()

    assert inbox.received == [(long_name, b"long")]
    assert (partner.archive / long_name).read_bytes() == b"long"
    assert outside.read_bytes() == b"outside the inbound folder"
    assert (partner.root / "secret.x12").exists()
    assert set(report.skipped) == {
        "bell\\u0007.x12",
        "esc\\u001b[31m.x12",
        "latin1-\\xe9.x12",
        "../escape.x12",
        "../../secret.x12",
        "sub/../../escape.x12",
    }
    assert all("\x1b" not in name and "\x07" not in name for name in report.skipped)
    assert sorted(os.listdir(os.fsencode(partner.inbound))) == [
        b"bell\x07.x12",
        b"esc\x1b[31m.x12",
        b"latin1-\xe9.x12",
    ]


async def test_a_name_listed_twice_is_handed_over_once(partner: Partner, inbox: Inbox) -> None:
    partner.drop("twice.x12", b"ISA*1~")
    partner.extra_listing = [b"twice.x12"]
    report = await poller(partner.config(), inbox).poll()
    assert inbox.received == [("twice.x12", b"ISA*1~")]
    assert report.delivered == ["twice.x12"]


async def test_archive_keeps_an_earlier_file_of_the_same_name(
    partner: Partner, inbox: Inbox
) -> None:
    (partner.archive / "ACME_997.x12").write_bytes(b"yesterday")
    partner.drop("ACME_997.x12", b"today")

    await poller(partner.config(), inbox).poll()

    archived = {p.name: p.read_bytes() for p in partner.archive.iterdir()}
    assert archived.pop("ACME_997.x12") == b"yesterday"
    assert list(archived.values()) == [b"today"]
    assert next(iter(archived)).startswith("ACME_997.x12.")


async def test_a_file_that_cannot_be_archived_stays_and_is_reported(
    partner: Partner, inbox: Inbox
) -> None:
    partner.drop("ACME_855.x12", b"ISA*855~")
    report = await poller(partner.config(archive_dir="no-such-folder"), inbox).poll()
    assert report.delivered == ["ACME_855.x12"]
    assert set(report.left_behind) == {"ACME_855.x12"}
    assert (partner.inbound / "ACME_855.x12").exists()


async def test_an_unreadable_file_is_reported_and_the_rest_proceed(
    partner: Partner, inbox: Inbox
) -> None:
    partner.drop("locked.x12", b"no")
    partner.drop("open.x12", b"yes")
    partner.denied_prefix = "inbound/locked"
    report = await poller(partner.config(), inbox).poll()
    assert inbox.received == [("open.x12", b"yes")]
    assert set(report.failed) == {"locked.x12"}
    assert (partner.inbound / "locked.x12").exists()


async def test_an_oversized_file_is_skipped(partner: Partner, inbox: Inbox) -> None:
    partner.drop("huge.x12", b"x" * 2048)
    report = await poller(partner.config(max_file_size=1024), inbox).poll()
    assert inbox.received == []
    assert report.skipped == {"huge.x12": "larger than 1024 bytes"}
    assert (partner.inbound / "huge.x12").exists()


async def test_status_shows_the_outage_and_the_recovery(partner: Partner, inbox: Inbox) -> None:
    partner.drop("ACME_1.x12", b"ISA~")
    config = partner.config()
    polling = poller(partner.config(inbound_dir="missing"), inbox)

    assert await polling.poll_once() is None
    assert polling.status.connected is False
    assert polling.status.last_error is not None
    assert polling.status.last_error.startswith("SftpPermissionError")

    polling.config = config
    report = await polling.poll_once()
    assert report is not None
    assert report.delivered == ["ACME_1.x12"]
    assert polling.status.connected is True
    assert polling.status.last_error is None
    assert polling.status.last_report is report


async def test_runs_as_a_supervisor_service(partner: Partner, inbox: Inbox) -> None:
    polling = poller(partner.config(), inbox)
    supervisor = Supervisor()
    supervisor.service("sftp-inbound:ACME", polling.run)
    supervisor.start()
    try:
        partner.drop("ACME_214.x12", b"ISA*214~")
        await asyncio.wait_for(inbox.arrived.wait(), timeout=30)
    finally:
        await supervisor.stop()
    assert inbox.received == [("ACME_214.x12", b"ISA*214~")]
    assert supervisor.statuses[0].failures == 0
