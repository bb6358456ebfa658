"""Pure security helpers: Mosquitto's $7$ hash against mosquitto_passwd, ACL text, keys, certs."""

from __future__ import annotations

import base64
import datetime as dt
from pathlib import Path

import pytest

from maintainpro.iot import security
from mosquitto import password_file


def test_hash_is_what_mosquitto_passwd_writes(tmp_path: Path) -> None:
    made = password_file(tmp_path / "passwd", {"alice": "s3cret pässword"})
    user, encoded = made.read_text().strip().split(":", 1)
    assert user == "alice"
    iterations, salt, _ = security.parse_mosquitto_hash(encoded)
    # Same salt and iterations: byte-for-byte the line mosquitto_passwd wrote.
    assert security.mosquitto_hash("s3cret pässword", salt=salt, iterations=iterations) == encoded
    assert security.verify_mosquitto_hash("s3cret pässword", encoded)
    assert not security.verify_mosquitto_hash("s3cret password", encoded)


def test_hash_format() -> None:
    encoded = security.mosquitto_hash("pw")
    _, seven, iterations, salt, digest = encoded.split("$")
    assert (seven, iterations) == ("7", str(security.PBKDF2_ITERATIONS))
    assert len(base64.b64decode(salt)) == security.SALT_BYTES
    assert len(base64.b64decode(digest)) == 64
    assert encoded != security.mosquitto_hash("pw"), "a fresh salt each time"
    assert not security.verify_mosquitto_hash("pw", "$6$abc$def")
    with pytest.raises(security.SecurityFormatError):
        security.parse_mosquitto_hash("$7$x$y$z")


def test_password_file_text_refuses_unsafe_usernames() -> None:
    text = security.password_file_text(
        {"pump-2": security.mosquitto_hash("a"), "edge/gw-1": security.mosquitto_hash("b")}
    )
    assert [line.split(":")[0] for line in text.splitlines()] == ["edge/gw-1", "pump-2"]
    for bad in ("a:b", "dev#", "dev/x", "a\nuser hub", "", "edge/+"):
        with pytest.raises(security.SecurityFormatError):
            security.password_file_text({bad: security.mosquitto_hash("a")})


def test_acl_confines_each_device_to_its_own_topics() -> None:
    text = security.acl_text(
        security.AclPlan(
            hub_users=["hub"], devices=["pump-1", "fan-2"], agents={"gw-1": ["fan-2", "press-3"]}
        )
    )
    blocks = {block.splitlines()[0]: block.splitlines()[1:] for block in text.split("\n\n")[1:]}
    assert blocks["user hub"] == ["topic read devices/#", "topic readwrite edge/#"]
    assert blocks["user pump-1"] == ["topic write devices/pump-1/#"]
    assert blocks["user fan-2"] == ["topic write devices/fan-2/#"]
    assert blocks["user edge/gw-1"] == [
        "topic readwrite edge/gw-1/#",
        "topic write devices/fan-2/#",
        "topic write devices/press-3/#",
    ]
    assert "pattern" not in text
    assert "topic #" not in text
    with pytest.raises(security.SecurityFormatError):
        security.acl_text(security.AclPlan(devices=["a/#"]))


def test_acl_follows_the_topic_prefix() -> None:
    text = security.acl_text(
        security.AclPlan(hub_users=["hub"], devices=["d1"], device_root="plant/devices")
    )
    assert "topic read plant/devices/#" in text
    assert "topic write plant/devices/d1/#" in text


def test_generated_secrets() -> None:
    identity, key = security.generate_psk()
    assert identity.startswith("psk-")
    assert len(bytes.fromhex(key)) == 32
    assert len(security.generate_password()) >= 40
    key_text = security.generate_provisioning_key()
    assert key_text.startswith("mpk_")
    assert len(security.hash_provisioning_key(key_text)) == 64
    assert key_text[8:] not in security.key_hint(key_text)


def test_ca_issues_certificates_it_verifies() -> None:
    now = dt.datetime.now(dt.UTC)
    ca, ca_key = security.make_ca("CA", not_before=now, not_after=now + dt.timedelta(days=2))
    leaf, _ = security.issue_certificate(
        ca, ca_key, "pump-1", not_before=now, not_after=now + dt.timedelta(days=1)
    )
    leaf.verify_directly_issued_by(ca)
    assert leaf.subject.rfc4514_string() == "CN=pump-1"
    crl = security.make_crl(ca, ca_key, [(leaf.serial_number, now)], now=now)
    assert crl.get_revoked_certificate_by_serial_number(leaf.serial_number) is not None
    assert int(security.serial_text(leaf), 16) == leaf.serial_number
