"""Settings: MAINTAINPRO_* environment variables and an optional maintainpro.toml."""

from __future__ import annotations

import os
import secrets
from decimal import Decimal
from pathlib import Path
from typing import Any

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

DEFAULT_DATABASE_URL = "sqlite:///./data/maintainpro.db"
CONFIG_FILE_ENV = "MAINTAINPRO_CONFIG"
MIN_SECRET_LENGTH = 32
# Values that people copy from tutorials; a key equal to one of these is as good as none.
KNOWN_WEAK_SECRETS = frozenset(
    {"changeme", "change-me", "secret", "secret-key", "dev", "development", "insecure", "password"}
)


class ConfigurationError(RuntimeError):
    """The settings cannot run a server as they stand."""


class Settings(BaseSettings):
    """Everything the hub can be told; built once at start and passed down."""

    model_config = SettingsConfigDict(
        env_prefix="MAINTAINPRO_",
        extra="ignore",
        toml_file="maintainpro.toml",
    )

    database_url: str = DEFAULT_DATABASE_URL
    secret_key: SecretStr | None = None
    demo: bool = False
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)
    log_level: str = "INFO"
    log_json: bool = True
    cookie_secure: bool = True
    session_max_age_seconds: int = Field(default=8 * 3600, ge=60)
    max_body_bytes: int = Field(default=1024 * 1024, ge=1024)
    api_token_ttl_days: int | None = Field(default=None, ge=1)
    # IoT: the hub's MQTT broker (None: no MQTT; the demo starts an embedded broker).
    mqtt_url: str | None = None
    mqtt_username: str | None = None
    mqtt_password: SecretStr | None = None
    mqtt_ca_file: Path | None = None
    mqtt_cert_file: Path | None = None
    mqtt_key_file: Path | None = None
    mqtt_client_id: str = "maintainpro-hub"
    mqtt_protocol: str = Field(default="5", pattern=r"^(5|3\.1\.1)$")
    mqtt_shared_group: str | None = None
    mqtt_topic_prefix: str = ""
    # IoT: the hub's CoAP server for devices that POST readings (None: off).
    coap_bind: str | None = None
    coaps_bind: str | None = None
    # IoT: encryption key for device credentials at rest (Fernet, urlsafe base64, 32 bytes).
    credentials_key: SecretStr | None = None
    credentials_key_file: Path | None = None
    # IoT security: broker files the hub writes (Mosquitto password_file / acl_file) and the
    # broker's pid file to SIGHUP after a change; the device CA; certificate lifetimes.
    mqtt_password_file: Path | None = None
    mqtt_acl_file: Path | None = None
    mqtt_broker_pid_file: Path | None = None
    device_ca_dir: Path = Path("data/pki/devices")
    device_cert_days: int = Field(default=365, ge=1, le=3650)
    credential_expiry_warn_days: int = Field(default=30, ge=1)
    credential_rotation_grace_hours: float = Field(default=24.0, ge=0)
    opcua_pki_dir: Path = Path("data/pki/opcua")
    # Time series: the cold tier (Parquet) and how long each resolution is kept.
    cold_dir: Path = Path("data/cold")
    compact_after_days: int = Field(default=30, ge=1)
    # None keeps that resolution for ever; raw data older than compact_after_days lives in cold.
    retention_raw_days: int | None = Field(default=730, ge=1)
    retention_1m_days: int | None = Field(default=400, ge=1)
    retention_1h_days: int | None = Field(default=None, ge=1)
    timeseries_maintenance_interval_s: float = Field(default=3600.0, gt=0)
    ingest_batch_size: int = Field(default=5000, ge=1)
    ingest_max_delay_ms: int = Field(default=10, ge=1)
    # Notifications: e-mail over SMTP (STARTTLS or implicit TLS) and the public URL for links.
    smtp_host: str | None = None
    smtp_port: int = Field(default=587, ge=1, le=65535)
    smtp_username: str | None = None
    smtp_password: SecretStr | None = None
    smtp_starttls: bool = True
    smtp_ssl: bool = False
    smtp_ca_file: Path | None = None
    smtp_from: str = "maintainpro@localhost"
    public_url: str = "http://127.0.0.1:8000"
    # Condition-based maintenance.
    stale_check_interval_s: float = Field(default=10.0, gt=0)
    prediction_interval_s: float = Field(default=3600.0, gt=0)
    pm_pull_forward: str = Field(default="propose", pattern=r"^(off|propose|move)$")
    # Procurement: the company's reporting currency, approval limit for the procurement role
    # (in base currency; administrators have none) and how far a receipt may exceed its order.
    base_currency: str = Field(default="USD", pattern=r"^[A-Z]{3}$")
    # The buying company's name on purchase orders (PDF, e-mail) and in EDI N1*BY, unless a
    # trading partner sets its own "buyer_name".
    buyer_name: str = Field(default="MaintAInPro", min_length=1, max_length=120)
    procurement_approval_limit: Decimal = Field(default=Decimal(10000), ge=0)
    receipt_tolerance_pct: Decimal = Field(default=Decimal(0), ge=0, le=100)
    # Three-way match: how far an invoice's unit price may exceed the order's, and its quantity
    # the accepted (received) quantity, before the invoice becomes an exception.
    invoice_price_tolerance_pct: Decimal = Field(default=Decimal(2), ge=0, le=100)
    invoice_quantity_tolerance_pct: Decimal = Field(default=Decimal(0), ge=0, le=100)
    # Procurement jobs: how often stock is checked against reorder points, whether open
    # requisitions then become draft orders on their own, and how long before a contract ends
    # the first warning goes out (then again 7 days and 1 day before).
    reorder_check_interval_s: float = Field(default=900.0, gt=0)
    auto_purchase_orders: bool = True
    contract_warn_days: int = Field(default=30, ge=1, le=365)
    # Analytics warehouse (DuckDB file; None: beside the SQLite database, else data/) and where
    # its ETL runs send OpenLineage events (a JSON-lines file, or an HTTP endpoint such as
    # Marquez when lineage_url is set).
    warehouse_path: Path | None = None
    lineage_file: Path | None = None
    lineage_url: str | None = None
    lineage_namespace: str = "maintainpro"
    # How often the hub refreshes the warehouse (incremental ETL, then cube pre-aggregations);
    # 0 leaves it to `maintainpro warehouse build` (e.g. from cron).
    warehouse_refresh_interval_s: float = Field(default=3600.0, ge=0)
    # Optional second warehouse in PostgreSQL (a SQLAlchemy/libpq URL such as
    # postgresql+psycopg://bi@db/warehouse): every refresh also loads the same star schema and
    # KPI views into schema ``warehouse_schema`` there, for BI tools' native PostgreSQL
    # connectors. DuckDB stays the store the hub's own channels (OData, cubes, files) serve from.
    warehouse_postgres_url: str | None = None
    warehouse_schema: str = Field(default="warehouse", pattern=r"^[a-z_][a-z0-9_]{0,62}$")
    # BI access audit (every OData, export, feed and query access is a row): how long rows are
    # kept before the daily purge (0 keeps them forever).
    bi_access_retention_days: int = Field(default=400, ge=0)
    # Scheduled reports' files kept on the hub for download (docs/reports.md): a file larger
    # than the cap is recorded without its bytes; kept files older than the retention are
    # removed by the daily purge (0 keeps them forever).
    report_output_max_bytes: int = Field(default=25 * 1024 * 1024, ge=0, le=1024 * 1024 * 1024)
    report_output_retention_days: int = Field(default=30, ge=0)
    # Rows per OData page before @odata.nextLink; clients may ask for fewer (Prefer maxpagesize).
    odata_page_size: int = Field(default=10_000, ge=1, le=50_000)
    # Real-time feeds (analytics/feeds, docs/realtime-feeds.md): events kept for Last-Event-ID
    # resume, the SSE/WebSocket heartbeat, at most one reading per sensor per interval (0: every
    # stored reading), how long a looked-up site is trusted, and the push targets (webhook
    # streams, Power BI push datasets; validated by analytics/feeds/targets.py; secrets are
    # named environment variables, never values here).
    feed_replay_events: int = Field(default=10_000, ge=0, le=1_000_000)
    feed_heartbeat_s: float = Field(default=15.0, gt=0, le=300)
    feed_reading_interval_s: float = Field(default=1.0, ge=0)
    feed_site_cache_s: float = Field(default=60.0, ge=0)
    feed_targets: list[dict[str, Any]] = Field(default_factory=list)
    # Supplier connectivity: ERP connections (validated by supply/erp_config.py; secrets are
    # named environment variables, never values here), how often they are pulled, the shared
    # secret carriers sign webhooks with, and how often shipments are checked for lateness.
    erp_connections: list[dict[str, Any]] = Field(default_factory=list)
    erp_sync_interval_s: float = Field(default=900.0, gt=0)
    carrier_webhook_secret: SecretStr | None = None
    shipment_check_interval_s: float = Field(default=900.0, gt=0)
    # EDI over AS2 (supply/edi/wiring.py): our RSA key and certificate (PEM or DER files; the
    # key optionally encrypted with as2_key_password) for every AS2 partner, and the body
    # limit of POST /as2/receive, where EDI files are far larger than API requests
    # (max_body_bytes stays the limit everywhere else).
    as2_key_file: Path | None = None
    as2_cert_file: Path | None = None
    as2_key_password: SecretStr | None = None
    as2_max_body_bytes: int = Field(default=50 * 1024 * 1024, ge=1024)
    run_background_jobs: bool = True
    schedule_interval_seconds: float = Field(default=60.0, gt=0)

    @field_validator("log_level")
    @classmethod
    def _upper_level(cls, value: str) -> str:
        return value.upper()

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Order of precedence: arguments, environment, then the TOML file."""
        toml_path = Path(os.environ.get(CONFIG_FILE_ENV, "maintainpro.toml"))
        return (
            init_settings,
            env_settings,
            TomlConfigSettingsSource(settings_cls, toml_file=toml_path),
        )

    @property
    def is_sqlite(self) -> bool:
        """True when the operational database is an SQLite file."""
        return self.database_url.startswith("sqlite")

    def checked_for_server(self) -> Settings:
        """Return settings fit to serve, or raise ConfigurationError saying what to fix.

        Outside demo mode a real secret key is required. In demo mode a missing key is
        replaced by a random one for this process, so demo sessions end with the process.
        """
        key = self.secret_key.get_secret_value() if self.secret_key else ""
        if self.demo and not key:
            return self.model_copy(update={"secret_key": SecretStr(secrets.token_urlsafe(48))})
        if not key:
            raise ConfigurationError(
                "MAINTAINPRO_SECRET_KEY is not set. Generate one with "
                "`python -c 'import secrets; print(secrets.token_urlsafe(48))'` "
                "and set it in the environment or in maintainpro.toml."
            )
        if key.lower() in KNOWN_WEAK_SECRETS or len(key) < MIN_SECRET_LENGTH:
            raise ConfigurationError(
                f"MAINTAINPRO_SECRET_KEY is too weak: use at least {MIN_SECRET_LENGTH} random "
                "characters, not a placeholder."
            )
        return self

    def secret(self) -> str:
        """The secret key; call only on settings returned by checked_for_server()."""
        if self.secret_key is None:
            raise ConfigurationError("no secret key: call checked_for_server() first")
        return self.secret_key.get_secret_value()


def load_settings(**overrides: Any) -> Settings:
    """Build settings from the environment and the TOML file, with explicit overrides."""
    return Settings(**overrides)
