"""SFTP trading-partner settings, file-name rules and the typed errors of the SFTP transport."""

from __future__ import annotations

import datetime as dt
import posixpath
import re
import string
import unicodedata
from dataclasses import dataclass, field

import asyncssh

MAX_NAME_BYTES = 255
TEMP_PREFIX = "."
TEMP_SUFFIX = ".part"
# Outbound names must leave room for the ".{name}.part" temporary name within the limit.
MAX_OUTBOUND_NAME_BYTES = MAX_NAME_BYTES - len(TEMP_PREFIX) - len(TEMP_SUFFIX)
# Names partners' clients use while a file is still being written (WinSCP adds ".filepart").
TEMPORARY_SUFFIXES = (".part", ".filepart", ".tmp")
PATTERN_FIELDS = frozenset({"partner", "control", "timestamp", "document"})
TIMESTAMP_FORMAT = "%Y%m%dT%H%M%SZ"
_FINGERPRINT = re.compile(r"^SHA256:[A-Za-z0-9+/]{43}=?$")
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
# Format (bidirectional overrides), surrogate, private-use and unassigned code points.
_HIDDEN_CATEGORIES = frozenset({"Cf", "Cs", "Co", "Cn"})
_FORBIDDEN = re.compile(r"[/\\\x00-\x1f\x7f-\x9f]")


# --- errors -------------------------------------------------------------------------------


class SftpError(Exception):
    """An SFTP transfer failed; `retryable` says whether trying again later can help."""

    retryable = False


class SftpRetryableError(SftpError):
    """The partner could not be reached or the connection broke: try again later."""

    retryable = True


class SftpPermanentError(SftpError):
    """Retrying will not help until someone fixes the setup or the partner's server."""


class SftpAuthError(SftpPermanentError):
    """The server refused our user name, password or key."""


class SftpHostKeyError(SftpPermanentError):
    """The server's host key is not one of the pinned keys: possibly another machine."""


class SftpPermissionError(SftpPermanentError):
    """The server refused an operation on a file or folder (permission, missing folder)."""


class SftpConfigError(SftpPermanentError, ValueError):
    """The partner's SFTP settings, or a file name, cannot be used."""


_RETRYABLE_SFTP = (
    asyncssh.SFTPConnectionLost,
    asyncssh.SFTPNoConnection,
    asyncssh.SFTPFailure,
    asyncssh.SFTPEOFError,
    asyncssh.SFTPNoSpaceOnFilesystem,
    asyncssh.SFTPQuotaExceeded,
    asyncssh.SFTPLockConflict,
)
_PERMANENT_DISCONNECT = (
    asyncssh.KeyExchangeFailed,
    asyncssh.ProtocolNotSupported,
    asyncssh.IllegalUserName,
    asyncssh.ServiceNotAvailable,
)


def classify(exc: BaseException) -> SftpError:
    """Map an asyncssh or socket error to our retryable/permanent hierarchy."""
    if isinstance(exc, SftpError):
        return exc
    if isinstance(exc, asyncssh.HostKeyNotVerifiable):
        return SftpHostKeyError(f"host key refused: {exc}")
    if isinstance(exc, asyncssh.PermissionDenied):
        return SftpAuthError(f"authentication failed: {exc}")
    if isinstance(exc, _PERMANENT_DISCONNECT):
        return SftpPermanentError(f"{type(exc).__name__}: {exc}")
    if isinstance(exc, asyncssh.DisconnectError):
        return SftpRetryableError(f"connection broken: {exc}")
    if isinstance(exc, _RETRYABLE_SFTP):
        return SftpRetryableError(f"{type(exc).__name__}: {exc}")
    if isinstance(exc, asyncssh.SFTPError):
        return SftpPermissionError(f"{type(exc).__name__}: {exc}")
    if isinstance(exc, asyncssh.KeyImportError | asyncssh.KeyEncryptionError):
        return SftpConfigError(f"private key unusable: {exc}")
    if isinstance(exc, TimeoutError):
        return SftpRetryableError("timed out")
    if isinstance(exc, OSError):
        return SftpRetryableError(f"cannot reach server: {exc.strerror or exc}")
    return SftpRetryableError(f"{type(exc).__name__}: {exc}")


# --- file names ---------------------------------------------------------------------------


def unsafe_name_reason(name: str, *, max_bytes: int = MAX_NAME_BYTES) -> str | None:
    """Why a name cannot be a plain file name inside one folder, or None if it can."""
    if not name or name in {".", ".."}:
        return "empty or a directory reference"
    if _FORBIDDEN.search(name):
        return "contains a path separator or control character"
    if any(unicodedata.category(char) in _HIDDEN_CATEGORIES for char in name):
        # Bidirectional overrides and unassigned code points make names display misleadingly.
        return "contains invisible or unassigned characters"
    if len(name.encode()) > max_bytes:
        return f"longer than {max_bytes} bytes"
    return None


def _invisible(char: str) -> bool:
    return bool(_CONTROL.match(char)) or unicodedata.category(char) in _HIDDEN_CATEGORIES


def printable_name(raw: bytes) -> str:
    """A remote file name safe to log or show: control, invisible and undecodable bytes escaped."""
    text = raw.decode(errors="backslashreplace")
    shown = "".join(f"\\u{ord(char):04x}" if _invisible(char) else char for char in text)
    return shown[:120]


def is_temporary(name: str) -> bool:
    """Hidden or still-being-written names, which pollers on both sides leave alone."""
    return name.startswith(".") or name.lower().endswith(TEMPORARY_SUFFIXES)


def checked_outbound_name(name: str) -> str:
    """The name itself if we may upload under it; SftpConfigError otherwise."""
    reason = unsafe_name_reason(name, max_bytes=MAX_OUTBOUND_NAME_BYTES)
    if reason is None and is_temporary(name):
        reason = "hidden or temporary names are ignored by the partner"
    if reason is not None:
        raise SftpConfigError(f"unusable outbound file name: {reason}")
    return name


def temporary_name(name: str) -> str:
    """Where an upload is written before its rename: hidden and ending in .part."""
    return f"{TEMP_PREFIX}{name}{TEMP_SUFFIX}"


def remote_path(folder: str, name: str) -> str:
    """A file's path in a folder; `name` must already be a checked plain name."""
    return posixpath.join(folder, name)


def _check_folder(label: str, folder: str) -> None:
    if not folder or _CONTROL.search(folder):
        raise SftpConfigError(f"{label} must be a folder path without control characters")
    if ".." in folder.split("/"):
        raise SftpConfigError(f"{label} must not contain '..'")


def _check_pattern(pattern: str) -> None:
    try:
        fields = [part[1] for part in string.Formatter().parse(pattern) if part[1] is not None]
    except ValueError as exc:
        raise SftpConfigError(f"file_pattern is not a valid pattern: {exc}") from None
    unknown = [name for name in fields if name not in PATTERN_FIELDS]
    if unknown:
        raise SftpConfigError(
            "file_pattern may only use " + ", ".join("{" + f + "}" for f in sorted(PATTERN_FIELDS))
        )


# --- configuration ------------------------------------------------------------------------


def _pinned(lines: tuple[str, ...]) -> tuple[tuple[asyncssh.SSHKey, ...], frozenset[str]]:
    """Split host-key pins into public keys and SHA256 fingerprints, refusing anything else."""
    keys: list[asyncssh.SSHKey] = []
    fingerprints: set[str] = set()
    for line in (raw.strip() for raw in lines):
        if _FINGERPRINT.match(line):
            fingerprints.add(line.rstrip("="))
            continue
        words = line.split()
        # Accept an OpenSSH public key line, or a known_hosts / ssh-keyscan line (host first).
        for candidate in (line, " ".join(words[1:])):
            try:
                keys.append(asyncssh.import_public_key(candidate))
                break
            except (asyncssh.KeyImportError, ValueError):
                continue
        else:
            raise SftpConfigError(
                "host_keys entries must be OpenSSH public key lines or SHA256:... fingerprints"
            )
    return tuple(keys), frozenset(fingerprints)


@dataclass(frozen=True)
class SftpConfig:
    """How to reach one trading partner's SFTP server and which folders to use there."""

    partner: str
    host: str
    username: str
    host_keys: tuple[str, ...]
    port: int = 22
    password: str | None = field(default=None, repr=False)
    private_key: str | None = field(default=None, repr=False)
    passphrase: str | None = field(default=None, repr=False)
    outbound_dir: str = "outbound"
    inbound_dir: str = "inbound"
    # Processed inbound files are moved here; None deletes them instead.
    archive_dir: str | None = "archive"
    file_pattern: str = "{partner}_{control}_{timestamp}.x12"
    connect_timeout: float = 15.0
    poll_interval: float = 60.0
    min_file_age: float = 300.0
    max_file_size: int = 50 * 1024 * 1024
    pinned_keys: tuple[asyncssh.SSHKey, ...] = field(
        init=False, repr=False, compare=False, default=()
    )
    pinned_fingerprints: frozenset[str] = field(
        init=False, repr=False, compare=False, default=frozenset()
    )

    def __post_init__(self) -> None:
        """Refuse settings that cannot work or would trust an unknown server."""
        if not self.partner or unsafe_name_reason(self.partner) or "{" in self.partner:
            raise SftpConfigError("partner must be a short code usable in a file name")
        if not self.host or not self.username:
            raise SftpConfigError("host and username are required")
        if not 0 < self.port < 65536:
            raise SftpConfigError("port must be between 1 and 65535")
        if self.password is None and self.private_key is None:
            raise SftpConfigError("a password or a private key is required")
        if not self.host_keys:
            # Never trust on first use: an unpinned server could be anyone.
            raise SftpConfigError("at least one pinned host key is required")
        if min(self.connect_timeout, self.poll_interval) <= 0 or self.min_file_age < 0:
            raise SftpConfigError("timeouts and intervals must be positive")
        if self.max_file_size <= 0:
            raise SftpConfigError("max_file_size must be positive")
        _check_folder("outbound_dir", self.outbound_dir)
        _check_folder("inbound_dir", self.inbound_dir)
        if self.archive_dir is not None:
            _check_folder("archive_dir", self.archive_dir)
        _check_pattern(self.file_pattern)
        keys, fingerprints = _pinned(self.host_keys)
        object.__setattr__(self, "pinned_keys", keys)
        object.__setattr__(self, "pinned_fingerprints", fingerprints)


def outbound_file_name(
    config: SftpConfig, *, control: str | int, when: dt.datetime, document: str = ""
) -> str:
    """The partner's file name for an outbound document, from the configured pattern."""
    name = config.file_pattern.format(
        partner=config.partner,
        control=str(control),
        timestamp=when.astimezone(dt.UTC).strftime(TIMESTAMP_FORMAT),
        document=document,
    )
    return checked_outbound_name(name)
