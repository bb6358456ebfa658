"""The hourly credential pass: rotation grace ends; certificates near expiry are announced."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from maintainpro.config import Settings
from maintainpro.core.db import utcnow
from maintainpro.core.events import OutboxEvent
from maintainpro.iot.device_ca import DeviceCa
from maintainpro.iot.devices import Device, Protocol
from maintainpro.iot.issuing import credential_housekeeping, issue_certificate
from maintainpro.iot.security_records import IssuedCredential


def test_rotation_grace_ends_and_expiry_is_announced_once(
    session_factory: sessionmaker[Session], settings: Settings, tmp_path: Path
) -> None:
    ca = DeviceCa(tmp_path / "ca")
    now = utcnow()
    with session_factory() as session, session.begin():
        device = Device(key="press-7", name="Press", protocol=Protocol.MQTT)
        session.add(device)
        session.flush()
        # The first certificate was rotated an hour ago with a 30-minute grace: due to end.
        issue_certificate(session, ca, device=device, days=200, now=now - dt.timedelta(hours=2))
        issue_certificate(
            session,
            ca,
            device=device,
            days=10,
            grace=dt.timedelta(minutes=30),
            now=now - dt.timedelta(hours=1),
        )
    local = settings.model_copy(update={"device_ca_dir": tmp_path / "ca"})
    assert credential_housekeeping(session_factory, local) == 1
    assert credential_housekeeping(session_factory, local) == 0
    with session_factory() as session:
        records = session.scalars(select(IssuedCredential).order_by(IssuedCredential.id)).all()
        assert [r.active for r in records] == [False, True]
        expiring = session.scalars(
            select(OutboxEvent).where(OutboxEvent.topic == "credential.expiring")
        ).all()
    assert len(expiring) == 1, "the 10-day certificate, announced once"
