"""SFTP partner settings, file-name rules and error classification (no server needed)."""

from __future__ import annotations

import datetime as dt
from typing import Any

import asyncssh
import pytest

from maintainpro.supply.sftp import (
    MAX_NAME_BYTES,
    SftpAuthError,
    SftpConfig,
    SftpConfigError,
    SftpError,
    SftpHostKeyError,
    SftpPermanentError,
    SftpPermissionError,
    SftpRetryableError,
    classify,
    is_temporary,
    outbound_file_name,
    printable_name,
    unsafe_name_reason,
)
from maintainpro.supply.sftp_poll import archive_variant
from supply.sftp_partner import new_key, public_line

HOST_KEY = new_key()
WHEN = dt.datetime(2024, 5, 1, 14, 30, 5, tzinfo=dt.UTC)


def config(**overrides: Any) -> SftpConfig:
    """Valid settings with the given changes."""
    values: dict[str, Any] = {
        "partner": "ACME",
        "host": "sftp.acme.example",
        "username": "maintainpro",
        "password": "pw-for-tests",
        "host_keys": (public_line(HOST_KEY),),
    }
    values.update(overrides)
    return SftpConfig(**values)


def test_pins_accept_key_lines_keyscan_lines_and_fingerprints() -> None:
    fingerprint = new_key().get_fingerprint("sha256")
    settings = config(
        host_keys=(
            public_line(HOST_KEY),
            "sftp.acme.example " + public_line(new_key()),
            fingerprint,
        )
    )
    assert len(settings.pinned_keys) == 2
    assert settings.pinned_fingerprints == {fingerprint}


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"host_keys": ()}, "pinned host key"),
        ({"host_keys": ("ssh-ed25519 not-base64",)}, "host_keys"),
        ({"host_keys": ("MD5:00:11:22",)}, "host_keys"),
        ({"password": None}, "password or a private key"),
        ({"port": 0}, "port"),
        ({"host": ""}, "host"),
        ({"partner": "../x"}, "partner"),
        ({"partner": "A{B}"}, "partner"),
        ({"file_pattern": "{partner}_{secret}.x12"}, "file_pattern"),
        ({"file_pattern": "{partner.__class__}.x12"}, "file_pattern"),
        ({"file_pattern": "{}.x12"}, "file_pattern"),
        ({"file_pattern": "{partner"}, "file_pattern"),
        ({"outbound_dir": "out/../../etc"}, "outbound_dir"),
        ({"inbound_dir": "in\nbox"}, "inbound_dir"),
        ({"archive_dir": ""}, "archive_dir"),
        ({"connect_timeout": 0}, "positive"),
        ({"max_file_size": 0}, "max_file_size"),
    ],
)
def test_unusable_settings_are_refused(overrides: dict[str, Any], message: str) -> None:
    with pytest.raises(SftpConfigError, match=message):
        config(**overrides)


def test_secrets_stay_out_of_the_repr() -> None:
    text = repr(config(private_key="-----BEGIN KEY-----", passphrase="phrase"))
    assert "pw-for-tests" not in text
    assert "BEGIN KEY" not in text
    assert "phrase" not in text


def test_outbound_file_name_from_the_pattern() -> None:
    assert outbound_file_name(config(), control=123, when=WHEN) == "ACME_123_20240501T143005Z.x12"
    custom = config(file_pattern="{document}-{control}.edi")
    assert outbound_file_name(custom, control="000000007", when=WHEN, document="850") == (
        "850-000000007.edi"
    )


def test_a_control_number_cannot_smuggle_a_path() -> None:
    with pytest.raises(SftpConfigError):
        outbound_file_name(config(), control="1/../../etc", when=WHEN)


@pytest.mark.parametrize(
    "name",
    ["", ".", "..", "a/b", "a\\b", "nul\x00", "tab\t", "del\x7f", "c1\x85", "rtl\u202e", "x" * 256],
)
def test_unsafe_names(name: str) -> None:
    assert unsafe_name_reason(name) is not None


@pytest.mark.parametrize("name", ["ACME_1.x12", "Lieferschein_Ä.edi", "x" * MAX_NAME_BYTES])
def test_safe_names(name: str) -> None:
    assert unsafe_name_reason(name) is None


@pytest.mark.parametrize(
    ("name", "temporary"),
    [(".a.x12.part", True), ("a.PART", True), ("a.filepart", True), (".x", True), ("a.x12", False)],
)
def test_temporary_names(name: str, temporary: bool) -> None:
    assert is_temporary(name) is temporary


def test_printable_name_escapes_what_a_terminal_would_act_on() -> None:
    assert printable_name(b"a\x1b[2Jb\xffc\xe2\x80\xae.x12") == "a\\u001b[2Jb\\xffc\\u202e.x12"
    assert len(printable_name(b"n" * 400)) == 120


def testarchive_variant_stays_a_valid_name() -> None:
    long = "é" * 127 + ".x"
    variant = archive_variant(long, WHEN)
    assert len(variant.encode()) <= MAX_NAME_BYTES
    assert unsafe_name_reason(variant) is None
    assert variant.endswith(".20240501T143005000000Z")


@pytest.mark.parametrize(
    ("error", "kind"),
    [
        (asyncssh.HostKeyNotVerifiable("Host key is not trusted"), SftpHostKeyError),
        (asyncssh.PermissionDenied("Permission denied"), SftpAuthError),
        (asyncssh.KeyExchangeFailed("no matching algorithm"), SftpPermanentError),
        (asyncssh.ConnectionLost("lost"), SftpRetryableError),
        (asyncssh.ProtocolError("garbled"), SftpRetryableError),
        (asyncssh.SFTPConnectionLost("lost"), SftpRetryableError),
        (asyncssh.SFTPFailure("failure"), SftpRetryableError),
        (asyncssh.SFTPPermissionDenied("denied"), SftpPermissionError),
        (asyncssh.SFTPNoSuchFile("missing"), SftpPermissionError),
        (asyncssh.KeyImportError("bad key"), SftpConfigError),
        (ConnectionRefusedError(111, "Connection refused"), SftpRetryableError),
        (ConnectionResetError(104, "reset"), SftpRetryableError),
        (TimeoutError(), SftpRetryableError),
    ],
)
def test_errors_are_classified(error: Exception, kind: type[SftpError]) -> None:
    classified = classify(error)
    assert type(classified) is kind
    assert classified.retryable is (kind is SftpRetryableError)
