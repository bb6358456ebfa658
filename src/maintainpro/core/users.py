"""Users, roles, permissions, password hashing and personal API tokens."""

from __future__ import annotations

import datetime as dt
import enum
import functools
import hashlib
import secrets

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import Boolean, ForeignKey, String, select
from sqlalchemy.orm import Mapped, Session, mapped_column, relationship

from maintainpro.core.columns import Timestamped, text_enum
from maintainpro.core.db import Base, UTCDateTime, utcnow

TOKEN_PREFIX = "mpt_"  # noqa: S105 - a public prefix, not a secret
MIN_PASSWORD_LENGTH = 10


class Role(enum.StrEnum):
    """What a user does; each role carries a fixed set of permissions."""

    ADMIN = "admin"
    MAINTENANCE_MANAGER = "maintenance_manager"
    TECHNICIAN = "technician"
    PROCUREMENT = "procurement"
    ANALYST = "analyst"
    SUPPLIER = "supplier"


class Permission(enum.StrEnum):
    """A right checked on a route."""

    ASSETS_READ = "assets:read"
    ASSETS_WRITE = "assets:write"
    WORK_ORDERS_READ = "work_orders:read"
    WORK_ORDERS_WRITE = "work_orders:write"
    SCHEDULES_READ = "schedules:read"
    SCHEDULES_WRITE = "schedules:write"
    METERS_WRITE = "meters:write"
    INVENTORY_READ = "inventory:read"
    INVENTORY_WRITE = "inventory:write"
    DEVICES_READ = "devices:read"
    DEVICES_WRITE = "devices:write"
    USERS_ADMIN = "users:admin"
    AUDIT_READ = "audit:read"
    SUPPLY_READ = "supply:read"
    SUPPLY_WRITE = "supply:write"
    SUPPLY_APPROVE = "supply:approve"
    REPORTS_READ = "reports:read"
    REPORTS_WRITE = "reports:write"


_READ_ALL = {
    Permission.ASSETS_READ,
    Permission.DEVICES_READ,
    Permission.WORK_ORDERS_READ,
    Permission.SCHEDULES_READ,
    Permission.INVENTORY_READ,
}

ROLE_PERMISSIONS: dict[Role, frozenset[Permission]] = {
    Role.ADMIN: frozenset(Permission),
    Role.MAINTENANCE_MANAGER: frozenset(
        set(Permission)
        - {Permission.USERS_ADMIN, Permission.SUPPLY_WRITE, Permission.SUPPLY_APPROVE}
    ),
    Role.TECHNICIAN: frozenset(_READ_ALL | {Permission.WORK_ORDERS_WRITE, Permission.METERS_WRITE}),
    Role.PROCUREMENT: frozenset(
        _READ_ALL
        | {
            Permission.INVENTORY_WRITE,
            Permission.SUPPLY_READ,
            Permission.SUPPLY_WRITE,
            Permission.SUPPLY_APPROVE,
            Permission.REPORTS_READ,
        }
    ),
    Role.ANALYST: frozenset(
        _READ_ALL
        | {
            Permission.AUDIT_READ,
            Permission.SUPPLY_READ,
            Permission.REPORTS_READ,
            Permission.REPORTS_WRITE,
        }
    ),
    # Suppliers see only their own company's data through the supplier portal, not the CMMS.
    Role.SUPPLIER: frozenset(),
}


def has_permission(role: Role, permission: Permission) -> bool:
    """Whether a role carries a permission."""
    return permission in ROLE_PERMISSIONS[role]


class User(Timestamped, Base):
    """A person (or a supplier's user) who signs in."""

    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    email: Mapped[str | None] = mapped_column(String(254))
    full_name: Mapped[str] = mapped_column(String(200), default="")
    role: Mapped[Role] = mapped_column(text_enum(Role))
    password_hash: Mapped[str] = mapped_column(String(255), info={"audit": "redact"})
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    site_id: Mapped[int | None] = mapped_column(ForeignKey("sites.id", ondelete="SET NULL"))

    @property
    def permissions(self) -> frozenset[Permission]:
        """The permissions this user's role carries."""
        return ROLE_PERMISSIONS[self.role]


class ApiToken(Base):
    """A personal API token; only its SHA-256 is stored, so a leaked table leaks nothing."""

    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(100))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True, info={"audit": "redact"})
    hint: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
    expires_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    last_used_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime(), info={"audit": "skip"})
    revoked_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())

    user: Mapped[User] = relationship()

    def usable_at(self, now: dt.datetime) -> bool:
        """Not revoked and not expired at the given time."""
        if self.revoked_at is not None:
            return False
        return self.expires_at is None or now < self.expires_at


# Argon2id with the library's defaults (RFC 9106 low-memory profile).
_hasher = PasswordHasher()


class WeakPassword(ValueError):
    """A password that is too short to accept."""


def hash_password(password: str) -> str:
    """Hash a password with argon2id, refusing ones that are too short."""
    if len(password) < MIN_PASSWORD_LENGTH:
        raise WeakPassword(f"passwords need at least {MIN_PASSWORD_LENGTH} characters")
    return _hasher.hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    """Check a password against its argon2 hash without raising."""
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def hash_token(token: str) -> str:
    """The stored form of an API token: SHA-256 (tokens are random, so no salt is needed)."""
    return hashlib.sha256(token.encode()).hexdigest()


def new_token_secret() -> str:
    """A fresh random API token, recognisable by its prefix in logs and secret scanners."""
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def issue_token(
    session: Session, user: User, name: str, expires_at: dt.datetime | None = None
) -> tuple[ApiToken, str]:
    """Create a token for a user; the clear text is returned once and never stored."""
    secret = new_token_secret()
    token = ApiToken(
        user_id=user.id,
        name=name,
        token_hash=hash_token(secret),
        hint=secret[: len(TOKEN_PREFIX) + 4],
        expires_at=expires_at,
    )
    session.add(token)
    session.flush()
    return token, secret


def authenticate_token(session: Session, secret: str, now: dt.datetime) -> User | None:
    """The active user behind a usable token, or None; records when the token was used."""
    if not secret.startswith(TOKEN_PREFIX):
        return None
    token = session.scalar(select(ApiToken).where(ApiToken.token_hash == hash_token(secret)))
    if token is None or not token.usable_at(now) or not token.user.active:
        return None
    # Writing last_used_at on every call would serialise API reads on SQLite; a minute is enough.
    if token.last_used_at is None or now - token.last_used_at > dt.timedelta(minutes=1):
        token.last_used_at = now
    return token.user


def authenticate_password(session: Session, username: str, password: str) -> User | None:
    """The active user with this username and password, or None."""
    user = session.scalar(select(User).where(User.username == username))
    if user is None:
        # Spend the same time as a real check so usernames cannot be probed by timing.
        verify_password(_dummy_hash(), password)
        return None
    if not user.active or not verify_password(user.password_hash, password):
        return None
    if _hasher.check_needs_rehash(user.password_hash):
        user.password_hash = _hasher.hash(password)
    return user


@functools.cache
def _dummy_hash() -> str:
    return _hasher.hash("not-a-real-password-0")
