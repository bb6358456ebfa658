"""The devices page shows each edge agent's configuration: applied, pending or rejected."""

from __future__ import annotations

import re
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from edge_configs import PRESS
from maintainpro.core.users import Role
from maintainpro.iot.edge.channel import ConfigAck
from maintainpro.iot.edge.publisher import record_ack, store_config
from maintainpro.iot.edge_agents import EdgeAgent
from maintainpro.iot.registry import DeviceSpec
from page_login import login


def _push(factory: sessionmaker[Session], key: str) -> int:
    with factory() as session, session.begin():
        return store_config(session, key, [DeviceSpec.model_validate(PRESS)]).version


def test_devices_page_shows_applied_pending_and_rejected_configuration(
    client: TestClient, make_user: Any, session_factory: sessionmaker[Session]
) -> None:
    with session_factory() as session, session.begin():
        for key in ("edge-a", "edge-b", "edge-c"):
            session.add(EdgeAgent(key=key, name=key.upper(), config={}, config_version=0))
    for key in ("edge-a", "edge-b", "edge-c"):
        _push(session_factory, key)
    _push(session_factory, "edge-c")
    with session_factory() as session, session.begin():
        record_ack(session, "edge-a", ConfigAck(1, "applied"))
        record_ack(session, "edge-c", ConfigAck(1, "applied"))
        record_ack(session, "edge-c", ConfigAck(2, "rejected", "devices.0.endpoint: <b>bad</b>"))
    login(client, make_user, Role.TECHNICIAN)
    page = client.get("/devices")
    assert page.status_code == 200
    rows = {
        m.group(1): m.group(2)
        for m in re.finditer(r'<tr data-edge-agent="([^"]+)">(.*?)</tr>', page.text, re.S)
    }
    assert 'data-config-state="applied"' in rows["edge-a"]
    assert 'data-config-state="pending"' in rows["edge-b"]
    assert 'data-config-state="rejected"' in rows["edge-c"]
    assert "version 2: devices.0.endpoint: &lt;b&gt;bad&lt;/b&gt;" in rows["edge-c"]
    assert "<b>bad</b>" not in page.text, "the agent's error text is escaped"
