"""ERP connections from the settings: validated specs, connectors built on demand, and the
order sender that pushes a served supplier's orders to its ERP and remembers the ERP's id.

A connection is a dict in ``Settings.erp_connections`` (TOML ``[[erp_connections]]``), see
docs/configuration.md. Secrets are never written there: the auth block names environment
variables (``password_env``, ``client_secret_env``) read when the specs are loaded.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import os
from collections.abc import Callable, Mapping
from typing import Any, Literal, TypeVar

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
)
from sqlalchemy import select
from sqlalchemy.orm import Session

from maintainpro.config import ConfigurationError, Settings
from maintainpro.core.db import utcnow
from maintainpro.supply.erp.auth import BasicCredentials, Credentials, OAuthClientCredentials
from maintainpro.supply.erp.base import ErpConnector
from maintainpro.supply.erp.business_central import BusinessCentralConfig, BusinessCentralConnector
from maintainpro.supply.erp.dynamics_fo import FinanceOperationsConfig, FinanceOperationsConnector
from maintainpro.supply.erp.http import Connection, HttpOptions, RetryPolicy
from maintainpro.supply.erp.mapping import erp_purchase_order
from maintainpro.supply.erp.oracle import OracleConfig, OracleConnector
from maintainpro.supply.erp.sap import SapConfig, SapConnector
from maintainpro.supply.erp_records import ErpLink
from maintainpro.supply.order_changes import CHANGED_TOPIC
from maintainpro.supply.purchasing import PurchaseOrder

log = logging.getLogger(__name__)

System = Literal["sap", "oracle", "dynamics_fo", "business_central"]
OrderSender = Callable[[Session, PurchaseOrder, str], str]
"""The dispatch module's sender type: (session, order, topic) -> history note."""
# Each system's config dataclass; its fields other than ``connection`` are the ``options``.
CONFIG_CLASSES: Mapping[str, type[Any]] = {
    "sap": SapConfig,
    "oracle": OracleConfig,
    "dynamics_fo": FinanceOperationsConfig,
    "business_central": BusinessCentralConfig,
}
K = TypeVar("K")
DEFAULT_START = dt.datetime(2000, 1, 1, tzinfo=dt.UTC)


class AuthSpec(BaseModel):
    """How to log in: basic (user + password) or OAuth2 client credentials."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    type: Literal["basic", "oauth"]
    username: str | None = Field(default=None, max_length=200)
    password_env: str | None = Field(default=None, pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,127}$")
    token_url: str | None = Field(default=None, pattern=r"^https?://", max_length=500)
    client_id: str | None = Field(default=None, max_length=200)
    client_secret_env: str | None = Field(default=None, pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,127}$")
    scope: str | None = Field(default=None, max_length=500)
    client_auth: Literal["body", "basic"] = "body"


class ErpConnectionSpec(BaseModel):
    """One configured ERP connection, validated; credentials resolved from the environment."""

    model_config = ConfigDict(extra="forbid", frozen=True, arbitrary_types_allowed=True)
    name: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,63}$")
    system: System
    base_url: str = Field(pattern=r"^https?://", max_length=500)
    auth: AuthSpec
    # Fields of the system's config dataclass (SapConfig: company_code, plant, ...).
    options: dict[str, str | int | bool] = Field(default_factory=dict)
    # Our supplier codes whose orders go to this ERP and whose master data it maintains.
    suppliers: tuple[str, ...] = ()
    # Our supplier code -> the ERP's vendor number, where they differ.
    vendor_numbers: dict[str, str] = Field(default_factory=dict)
    pull: bool = True
    start_at: AwareDatetime = DEFAULT_START
    timeout_s: float = Field(default=30.0, gt=0, le=600)
    max_attempts: int = Field(default=5, ge=1, le=20)
    verify: bool | str = True
    credentials: Credentials | None = Field(default=None, exclude=True, repr=False)

    @field_validator("suppliers")
    @classmethod
    def _distinct(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if len(set(value)) != len(value):
            raise ValueError("a supplier code is listed twice")
        return value

    def erp_code(self, supplier_code: str) -> str:
        """The ERP's vendor number for one of our supplier codes."""
        return self.vendor_numbers.get(supplier_code, supplier_code)

    def our_code(self, vendor_number: str) -> str:
        """Our supplier code for an ERP vendor number (the number itself unless mapped)."""
        inverse = {erp: ours for ours, erp in self.vendor_numbers.items()}
        return inverse.get(vendor_number, vendor_number)


def _secret(environ: Mapping[str, str], variable: str | None, what: str, name: str) -> str:
    if not variable:
        raise ConfigurationError(f"ERP connection {name}: auth needs {what}")
    value = environ.get(variable, "")
    if not value:
        raise ConfigurationError(
            f"ERP connection {name}: the environment variable {variable} ({what}) is not set"
        )
    return value


def _credentials(spec: ErpConnectionSpec, environ: Mapping[str, str]) -> Credentials:
    auth = spec.auth
    if auth.type == "basic":
        if not auth.username:
            raise ConfigurationError(f"ERP connection {spec.name}: basic auth needs a username")
        password = _secret(environ, auth.password_env, "password_env", spec.name)
        return BasicCredentials(auth.username, password)
    if not auth.token_url or not auth.client_id:
        raise ConfigurationError(f"ERP connection {spec.name}: oauth needs token_url and client_id")
    secret = _secret(environ, auth.client_secret_env, "client_secret_env", spec.name)
    return OAuthClientCredentials(
        token_url=auth.token_url,
        client_id=auth.client_id,
        client_secret=secret,
        scope=auth.scope,
        client_auth=auth.client_auth,
    )


def check_options(system: str, options: Mapping[str, object]) -> None:
    """Raise ValueError unless the options are exactly the system config's fields, typed."""
    fields = {
        f.name: f for f in dataclasses.fields(CONFIG_CLASSES[system]) if f.name != "connection"
    }
    unknown = sorted(set(options) - set(fields))
    if unknown:
        raise ValueError(f"unknown options for {system}: {', '.join(unknown)}")
    missing = sorted(
        name
        for name, f in fields.items()
        if f.default is dataclasses.MISSING and name not in options
    )
    if missing:
        raise ValueError(f"{system} needs the options {', '.join(missing)}")
    for name, value in options.items():
        default = fields[name].default
        # The dataclass defaults tell the type: int fields have int defaults, the rest text.
        if isinstance(default, bool):
            ok = isinstance(value, bool)
        elif isinstance(default, int):
            ok = isinstance(value, int) and not isinstance(value, bool)
        else:
            ok = isinstance(value, str)
        if not ok:
            raise ValueError(f"option {name} of {system} has the wrong type")


def parse_connections(
    raw: list[dict[str, Any]], environ: Mapping[str, str] | None = None
) -> list[ErpConnectionSpec]:
    """Validate the configured connections; ConfigurationError says what to fix.

    Names must be unique and a supplier may be served by one connection only, because its
    orders can go to one ERP. Messages name fields, never values (they may be secrets).
    """
    env = os.environ if environ is None else environ
    specs: list[ErpConnectionSpec] = []
    for index, item in enumerate(raw):
        label = str(item.get("name", f"#{index + 1}")) if isinstance(item, dict) else "?"
        try:
            spec = ErpConnectionSpec.model_validate(item)
        except ValidationError as exc:
            fields = sorted({".".join(str(p) for p in e["loc"]) or "(entry)" for e in exc.errors()})
            raise ConfigurationError(
                f"ERP connection {label[:64]}: invalid {', '.join(fields)}"
            ) from None
        try:
            check_options(spec.system, spec.options)
        except ValueError as exc:
            raise ConfigurationError(f"ERP connection {spec.name}: {exc}") from None
        specs.append(spec.model_copy(update={"credentials": _credentials(spec, env)}))
    names = [s.name for s in specs]
    if len(set(names)) != len(names):
        raise ConfigurationError("ERP connection names must be unique")
    served: dict[str, str] = {}
    for spec in specs:
        for code in spec.suppliers:
            if code in served:
                raise ConfigurationError(
                    f"supplier {code} is served by both {served[code]} and {spec.name}"
                )
            served[code] = spec.name
    return specs


def erp_connections(settings: Settings) -> list[ErpConnectionSpec]:
    """The settings' ERP connections, validated, with their secrets from the environment."""
    return parse_connections(settings.erp_connections)


Connect = Callable[[ErpConnectionSpec], ErpConnector]


def build_connector(spec: ErpConnectionSpec, *, options: HttpOptions | None = None) -> ErpConnector:
    """A connector for the spec; the caller closes it."""
    if spec.credentials is None:
        raise ConfigurationError(f"ERP connection {spec.name} has no credentials")
    connection = Connection(
        base_url=spec.base_url,
        credentials=spec.credentials,
        timeout_s=spec.timeout_s,
        retry=RetryPolicy(max_attempts=spec.max_attempts),
        verify=spec.verify,
    )
    # Checked against the config class by check_options when the spec was parsed.
    opts: dict[str, Any] = dict(spec.options)
    if spec.system == "sap":
        return SapConnector(SapConfig(connection, **opts), options=options)
    if spec.system == "oracle":
        return OracleConnector(OracleConfig(connection, **opts), options=options)
    if spec.system == "dynamics_fo":
        return FinanceOperationsConnector(
            FinanceOperationsConfig(connection, **opts), options=options
        )
    return BusinessCentralConnector(BusinessCentralConfig(connection, **opts), options=options)


def link_for(session: Session, order_id: int, system: str) -> ErpLink | None:
    """The stored link of an order to one ERP connection."""
    return session.scalar(
        select(ErpLink).where(ErpLink.order_id == order_id, ErpLink.system == system)
    )


def push_and_link(
    session: Session,
    order: PurchaseOrder,
    spec: ErpConnectionSpec,
    connector: ErpConnector,
    *,
    now: dt.datetime | None = None,
) -> ErpLink:
    """Push the order (idempotent in the connector) and store or refresh its ErpLink."""
    document = erp_purchase_order(order, vendor_number=spec.erp_code(order.supplier.code))
    external_id = connector.push_purchase_order(document)
    link = link_for(session, order.id, spec.name)
    when = now or utcnow()
    if link is None:
        link = ErpLink(order_id=order.id, system=spec.name, external_id=external_id, pushed_at=when)
        session.add(link)
    elif link.external_id != external_id:
        # The ERP answered with another id than last time (the first order was deleted there
        # and recreated): the newest id is the one its receipts will carry.
        link.external_id = external_id
        link.pushed_at = when
    session.flush()
    return link


def erp_order_channel(
    specs: list[ErpConnectionSpec],
    fallback: OrderSender,
    *,
    connect: Connect = build_connector,
) -> OrderSender:
    """A sender that pushes served suppliers' orders to their ERP and hands the rest on.

    A connector (and its HTTP connections) lives for one send: orders are few, and nothing is
    left open between outbox runs. Errors propagate so the outbox retries.
    """
    by_supplier = {code: spec for spec in specs for code in spec.suppliers}

    def send(session: Session, order: PurchaseOrder, topic: str) -> str:
        spec = by_supplier.get(order.supplier.code)
        if spec is None:
            return fallback(session, order, topic)
        connector = connect(spec)
        try:
            link = push_and_link(session, order, spec, connector)
        finally:
            connector.close()
        if topic == CHANGED_TOPIC:
            # The connectors create or find an order; none rewrites one. Say so in the history
            # instead of pretending the revision reached the ERP.
            log.warning(
                "order change not sent to the ERP",
                extra={"order_id": order.id, "erp": spec.name, "revision": order.revision},
            )
            return (
                f"revision {order.revision} not sent: change {link.external_id} in {spec.name} "
                "by hand"
            )
        return f"in {spec.name} as {link.external_id}"

    return send


def with_erp_routing(
    senders: Mapping[K, OrderSender],
    settings: Settings,
    *,
    connect: Connect = build_connector,
) -> dict[K, OrderSender]:
    """Every channel's sender, routed to the ERP first for suppliers an ERP connection serves.

    The ERP wins over the supplier's connection type: listing a supplier under a connection is
    the explicit statement that its orders live in that ERP (which then reaches the supplier).
    """
    specs = erp_connections(settings)
    if not any(spec.suppliers for spec in specs):
        return dict(senders)
    return {
        channel: erp_order_channel(specs, sender, connect=connect)
        for channel, sender in senders.items()
    }
