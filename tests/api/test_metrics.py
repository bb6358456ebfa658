"""/metrics speaks the Prometheus text format."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from maintainpro.iot.devices import Device, Protocol


def test_device_counts_in_prometheus_format(client: TestClient, db: Session) -> None:
    db.add_all(
        [
            Device(key="a", name="A", protocol=Protocol.MQTT),
            Device(key="b", name="B", protocol=Protocol.MQTT, enabled=False),
        ]
    )
    db.commit()
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    lines = response.text.splitlines()
    assert "# TYPE maintainpro_devices gauge" in lines
    assert 'maintainpro_devices{status="offline"} 1' in lines
    assert 'maintainpro_devices{status="disabled"} 1' in lines
    assert 'maintainpro_task_failures_total{task="preventive-maintenance"} 0' not in lines
