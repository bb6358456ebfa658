"""install_supplier_connectivity in create_app: what is mounted and registered, with and without
AS2 files and background jobs, and that broken AS2 files stop the start."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from maintainpro.api.limits import BodySizeLimit
from maintainpro.app import create_app
from maintainpro.config import ConfigurationError, Settings
from maintainpro.supply.edi.acks import EDI_ALERT_TOPICS
from maintainpro.supply.edi.outbound import OUTBOUND_TOPIC, EdiSetupError
from maintainpro.supply.edi.partners import EdiTransport, TradingPartner
from maintainpro.supply.edi.wiring import PathBodyLimits, SupplierConnectivity
from supply.as2.as2_world import openssl


@pytest.fixture(scope="module")
def as2_files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """Our AS2 key and certificate as `openssl req -x509` writes them."""
    folder = tmp_path_factory.mktemp("as2-files")
    key, cert = folder / "hub.key", folder / "hub.crt"
    openssl(
        "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "5", "-subj", "/CN=hub",
        "-keyout", key, "-out", cert,
    )  # fmt: skip
    return key, cert


def test_without_as2_files_nothing_listens_and_the_as2_sender_says_why(
    client: TestClient,
) -> None:
    connectivity: SupplierConnectivity = client.app.state.supplier_connectivity
    assert connectivity.as2 is None
    assert not connectivity.jobs_running
    assert OUTBOUND_TOPIC not in connectivity.outbox_handlers
    assert client.post("/as2/receive", content=b"x").status_code == 404
    with pytest.raises(EdiSetupError, match="as2_key_file and as2_cert_file"):
        connectivity.senders[EdiTransport.AS2](TradingPartner(id=1), "a.x12", b"ISA")


def test_with_jobs_the_handlers_jobs_endpoint_and_body_limit_are_installed(
    settings: Settings, engine: Engine, as2_files: tuple[Path, Path]
) -> None:
    key, cert = as2_files
    app = create_app(
        settings.model_copy(
            update={"run_background_jobs": True, "as2_key_file": key, "as2_cert_file": cert}
        )
    )
    connectivity: SupplierConnectivity = app.state.supplier_connectivity
    assert connectivity.as2 is not None
    assert connectivity.as2.async_mdn_url == f"{settings.public_url}/as2/receive"
    handlers = connectivity.outbox_handlers
    assert len(handlers[OUTBOUND_TOPIC]) == 1
    assert all(handlers[topic] for topic in EDI_ALERT_TOPICS)
    # The outbox job runs over the same dict the wiring filled.
    assert "purchase_order.sent" in handlers
    names = {status.name for status in app.state.supervisor.statuses}
    assert {"edi-overdue-acks", "sftp-inbound", "outbox"} <= names
    kinds: list[object] = [entry.cls for entry in app.user_middleware]
    assert PathBodyLimits in kinds
    assert BodySizeLimit not in kinds
    assert app.url_path_for("receive_as2") == "/as2/receive"


def test_unusable_as2_files_stop_the_start(
    settings: Settings, engine: Engine, as2_files: tuple[Path, Path], tmp_path: Path
) -> None:
    key, _ = as2_files
    not_a_cert = tmp_path / "cert.pem"
    not_a_cert.write_text("-----BEGIN CERTIFICATE-----\nbroken\n-----END CERTIFICATE-----\n")
    with pytest.raises(ConfigurationError, match="as2_cert_file cannot be used"):
        create_app(settings.model_copy(update={"as2_key_file": key, "as2_cert_file": not_a_cert}))
    with pytest.raises(ConfigurationError, match="as2_key_file cannot be used"):
        create_app(settings.model_copy(update={"as2_key_file": not_a_cert, "as2_cert_file": key}))
