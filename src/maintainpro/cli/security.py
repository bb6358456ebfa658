"""`maintainpro security ...`: broker files, device certificates, provisioning keys, OPC-UA PKI."""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from sqlalchemy import select

from maintainpro.cli.context import CLI_ACTOR, cli_settings, fail, session_factory
from maintainpro.core.db import utcnow
from maintainpro.iot import issuing
from maintainpro.iot.broker_auth import BrokerReloadError, write_broker_files
from maintainpro.iot.device_ca import DeviceCa, finish_revocations, scan_expiring
from maintainpro.iot.devices import Device
from maintainpro.iot.edge_agents import EdgeAgent
from maintainpro.iot.security import SecurityFormatError, fingerprint

security_app = typer.Typer(
    help="Device security: broker accounts, certificates, provisioning keys, OPC-UA PKI.",
    no_args_is_help=True,
)
provisioning_app = typer.Typer(help="Provisioning keys.", no_args_is_help=True)
security_app.add_typer(provisioning_app, name="provisioning-key")
console = Console()


@security_app.command("write-broker-files")
def write_files(
    reload: Annotated[bool, typer.Option(help="SIGHUP the broker afterwards")] = True,
) -> None:
    """Write Mosquitto's password and ACL files from the registry (and reload the broker)."""
    settings = cli_settings()
    if settings.mqtt_password_file is None and settings.mqtt_acl_file is None:
        raise fail("set MAINTAINPRO_MQTT_PASSWORD_FILE and/or MAINTAINPRO_MQTT_ACL_FILE")
    factory = session_factory(settings)
    with factory() as session, session.begin():
        session.info["actor"] = CLI_ACTOR
        finish_revocations(session)
    with factory() as session:
        try:
            result = write_broker_files(session, settings, reload=reload)
        except (BrokerReloadError, SecurityFormatError, OSError) as exc:
            raise fail(str(exc)) from exc
    console.print(
        f"{result.accounts} accounts written"
        + (" and the broker reloaded" if result.reloaded else "")
    )


def _write_private(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)


@security_app.command("issue-cert")
def issue_cert(
    key: Annotated[str, typer.Argument(help="device key (or agent key with --agent)")],
    out: Annotated[Path, typer.Option(help="directory for <key>.pem, <key>.key and ca.pem")],
    days: Annotated[int | None, typer.Option(help="validity in days")] = None,
    agent: Annotated[bool, typer.Option("--agent", help="the key names an edge agent")] = False,
    grace_hours: Annotated[
        float | None, typer.Option(help="how long earlier certificates stay valid")
    ] = None,
) -> None:
    """Issue a client certificate from the device CA and write it with its key (0600)."""
    settings = cli_settings()
    factory = session_factory(settings)
    grace = settings.credential_rotation_grace_hours if grace_hours is None else grace_hours
    with factory() as session, session.begin():
        session.info["actor"] = CLI_ACTOR
        model = EdgeAgent if agent else Device
        holder = session.scalar(select(model).where(model.key == key))
        if holder is None:
            raise fail(f"no {'edge agent' if agent else 'device'} {key!r}")
        try:
            secret = issuing.issue_certificate(
                session,
                DeviceCa(settings.device_ca_dir),
                device=holder if isinstance(holder, Device) else None,
                agent=holder if isinstance(holder, EdgeAgent) else None,
                days=days or settings.device_cert_days,
                grace=dt.timedelta(hours=grace),
            )
        except SecurityFormatError as exc:
            raise fail(str(exc)) from exc
        out.mkdir(parents=True, exist_ok=True)
        (out / f"{key}.pem").write_text(secret.values["certificate_pem"])
        _write_private(out / f"{key}.key", secret.values["private_key_pem"].encode())
        (out / "ca.pem").write_text(secret.values["ca_pem"])
        record = secret.record
    with factory() as session:
        issuing.apply_to_broker(session, settings)
    console.print(
        f"certificate serial {record.serial} valid until {record.not_after} written to {out}"
    )


@security_app.command("expiry-scan")
def expiry_scan(
    days: Annotated[int | None, typer.Option(help="window in days")] = None,
) -> None:
    """List certificates expiring soon and raise `credential.expiring` events for new ones."""
    settings = cli_settings()
    factory = session_factory(settings)
    with factory() as session, session.begin():
        session.info["actor"] = CLI_ACTOR
        found = scan_expiring(session, within_days=days or settings.credential_expiry_warn_days)
        for record in found:
            console.print(
                f"{record.kind.value} {record.username} {record.serial} {record.not_after}"
            )
    if not found:
        console.print("nothing expires within the window")


@provisioning_app.command("create")
def create_key(
    label: Annotated[str, typer.Argument(help="what the key is for")],
    uses: Annotated[int | None, typer.Option(help="how many times it may be used")] = None,
    hours: Annotated[float | None, typer.Option(help="lifetime in hours")] = None,
) -> None:
    """Create a provisioning key and print it once."""
    factory = session_factory(cli_settings())
    expires_at = utcnow() + dt.timedelta(hours=hours) if hours is not None else None
    with factory() as session, session.begin():
        session.info["actor"] = CLI_ACTOR
        record, key = issuing.create_provisioning_key(
            session, label, uses=uses, expires_at=expires_at
        )
        key_id = record.id
    console.print(f"provisioning key {key_id} (shown once, store it now):")
    # Printed plainly, without markup, so it can be piped.
    print(key)


@security_app.command("opcua-cert")
def opcua_cert(
    uri: Annotated[str, typer.Option(help="application URI, e.g. urn:plant:maintainpro")],
    directory: Annotated[
        Path | None, typer.Option(help="PKI directory (default: the opcua_pki_dir setting)")
    ] = None,
    host: Annotated[list[str] | None, typer.Option(help="host name or IP (repeatable)")] = None,
    days: Annotated[int, typer.Option(help="validity in days")] = 365,
    replace: Annotated[bool, typer.Option(help="replace an existing certificate")] = False,
) -> None:
    """Create the OPC-UA application certificate of the hub (or, with --directory, an edge)."""
    settings = cli_settings()
    pki = issuing.OpcUaPki(directory or settings.opcua_pki_dir)
    factory = session_factory(settings) if directory is None else None
    try:
        if factory is not None:
            with factory() as session, session.begin():
                session.info["actor"] = CLI_ACTOR
                cert = issuing.create_opcua_certificate(
                    session,
                    pki,
                    application_uri=uri,
                    hostnames=tuple(host or ["localhost"]),
                    days=days,
                    replace=replace,
                )
        else:
            cert = issuing.create_opcua_certificate(
                None,
                pki,
                application_uri=uri,
                hostnames=tuple(host or ["localhost"]),
                days=days,
                replace=replace,
            )
    except FileExistsError as exc:
        raise fail(f"{exc}; use --replace") from exc
    console.print(f"certificate {pki.certificate} (SHA-256 {fingerprint(cert)})")
    console.print(f"private key {pki.private_key}; trust store {pki.trusted}")


@security_app.command("opcua-trust")
def opcua_trust(
    certificate: Annotated[Path, typer.Argument(help="server or CA certificate (DER or PEM)")],
    directory: Annotated[Path | None, typer.Option(help="PKI directory")] = None,
) -> None:
    """Add an OPC-UA server certificate to the trust store."""
    settings = cli_settings()
    try:
        path = issuing.trust_server_certificate(
            issuing.OpcUaPki(directory or settings.opcua_pki_dir), certificate.read_bytes()
        )
    except (OSError, ValueError) as exc:
        raise fail(f"cannot trust {certificate}: {exc}") from exc
    console.print(f"trusted: {path}")
