"""`maintainpro devices list/import/export/enable/disable` on a real SQLite file."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from maintainpro.cli.main import app

runner = CliRunner()
FILE = """
devices:
  - key: chiller-plc
    name: Chiller PLC
    protocol: modbus
    endpoint: tcp://127.0.0.1:5020
    settings: {unit_id: 1, poll_interval_s: 5}
    credentials: {password: never-exported}
    sensors:
      - key: supply-temp
        type: temperature
        unit: "°C"
        address: {function: holding, address: 0, data_type: float32}
  - key: vib-node-7
    name: Vibration node 7
    protocol: mqtt
    sensors:
      - {key: rms, type: vibration, unit: mm/s}
"""


@pytest.fixture
def hub_db(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("MAINTAINPRO_DATABASE_URL", f"sqlite:///{tmp_path / 'hub.db'}")
    monkeypatch.setenv(
        "MAINTAINPRO_CREDENTIALS_KEY", "kLq4Qn3P1xq8d5cC1b0b2o6Wq3y7n9Zr0uXb8a1v2Ss="
    )
    assert runner.invoke(app, ["db", "upgrade"]).exit_code == 0
    return tmp_path


def test_import_list_export_disable(hub_db: Path) -> None:
    source = hub_db / "devices.yaml"
    source.write_text(FILE, encoding="utf-8")
    imported = runner.invoke(app, ["devices", "import", str(source)])
    assert imported.exit_code == 0, imported.output
    assert "2 created, 0 updated" in imported.output

    listed = runner.invoke(app, ["devices", "list"])
    assert "chiller-plc" in listed.output
    assert "offline" in listed.output

    out = hub_db / "export.yaml"
    assert runner.invoke(app, ["devices", "export", "--output", str(out)]).exit_code == 0
    exported = yaml.safe_load(out.read_text(encoding="utf-8"))
    assert [d["key"] for d in exported["devices"]] == ["chiller-plc", "vib-node-7"]
    assert "never-exported" not in out.read_text(encoding="utf-8")

    assert runner.invoke(app, ["devices", "disable", "vib-node-7"]).exit_code == 0
    assert "disabled" in runner.invoke(app, ["devices", "list"]).output
    missing = runner.invoke(app, ["devices", "enable", "nope"])
    assert missing.exit_code == 1


def test_a_bad_file_imports_nothing(hub_db: Path) -> None:
    document = yaml.safe_load(FILE)
    document["devices"][1]["protocol"] = "zigbee"
    source = hub_db / "bad.yaml"
    source.write_text(yaml.safe_dump(document), encoding="utf-8")
    result = runner.invoke(app, ["devices", "import", str(source)])
    assert result.exit_code == 1
    assert "entry 2 (vib-node-7)" in result.output
    assert "chiller-plc" not in runner.invoke(app, ["devices", "list"]).output
