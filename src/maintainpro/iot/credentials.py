"""Device credentials encrypted at rest with Fernet; the key comes from settings or a file."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken

from maintainpro.config import ConfigurationError, Settings

DEMO_KEY_FILE = Path("data/credentials.key")


class CredentialError(ValueError):
    """Stored credentials cannot be decrypted with the configured key."""


class CredentialBox:
    """Encrypts and decrypts device credential objects."""

    def __init__(self, key: bytes) -> None:
        self._fernet = Fernet(key)

    def seal(self, credentials: Mapping[str, str]) -> bytes:
        """Encrypt a credentials object for storage."""
        return self._fernet.encrypt(json.dumps(dict(credentials), sort_keys=True).encode())

    def open(self, token: bytes | None) -> dict[str, str]:
        """Decrypt stored credentials; None means none were stored."""
        if token is None:
            return {}
        try:
            data = json.loads(self._fernet.decrypt(token))
        except InvalidToken as exc:
            raise CredentialError(
                "device credentials cannot be decrypted: the credentials key changed"
            ) from exc
        return {str(k): str(v) for k, v in data.items()}


def credential_box(settings: Settings) -> CredentialBox:
    """The box for the configured key; demo mode keeps a generated key file under data/."""
    if settings.credentials_key is not None:
        return CredentialBox(settings.credentials_key.get_secret_value().encode())
    if settings.credentials_key_file is not None:
        return CredentialBox(settings.credentials_key_file.read_bytes().strip())
    if settings.demo:
        if not DEMO_KEY_FILE.exists():
            DEMO_KEY_FILE.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(DEMO_KEY_FILE, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as handle:
                handle.write(Fernet.generate_key())
        return CredentialBox(DEMO_KEY_FILE.read_bytes().strip())
    raise ConfigurationError(
        "no credentials key: set MAINTAINPRO_CREDENTIALS_KEY or MAINTAINPRO_CREDENTIALS_KEY_FILE "
        "(make one with `python -c 'from cryptography.fernet import Fernet; "
        "print(Fernet.generate_key().decode())'`)"
    )
