"""The warehouse's star schema: every table, its columns, natural key and column lineage.

One description serves four purposes: the DDL, the Arrow schema every load is cast to, the
OpenLineage schema facet and the column-lineage facet (which operational columns feed which
warehouse column, and how). Times are UTC ``TIMESTAMP`` without zone; money is ``DECIMAL(18,4)``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Literal

import pyarrow as pa

Kind = Literal["dimension", "fact", "meta"]
# How a column is derived, in OpenLineage's terms (transformation type / subtype).
How = Literal["identity", "transformation", "aggregation"]

MONEY: Final = pa.decimal128(18, 4)
QTY: Final = pa.decimal128(14, 3)
TS: Final = pa.timestamp("us")


@dataclass(frozen=True)
class Column:
    """One warehouse column and the operational columns ("table.column") it comes from."""

    name: str
    type: pa.DataType
    description: str = ""
    sources: tuple[str, ...] = ()
    how: How = "identity"


@dataclass(frozen=True)
class WarehouseTable:
    """A dimension, fact or bookkeeping table of the warehouse."""

    name: str
    kind: Kind
    description: str
    columns: tuple[Column, ...]
    key: tuple[str, ...]

    @property
    def arrow_schema(self) -> pa.Schema:
        """The Arrow schema loads into this table are cast to."""
        return pa.schema([pa.field(c.name, c.type) for c in self.columns])

    @property
    def column_names(self) -> list[str]:
        """Column names in table order."""
        return [c.name for c in self.columns]

    def ddl(self) -> str:
        """CREATE TABLE IF NOT EXISTS for DuckDB."""
        body = ",\n  ".join(f"{c.name} {sql_type(c.type)}" for c in self.columns)
        return f"CREATE TABLE IF NOT EXISTS {self.name} (\n  {body}\n)"

    @property
    def source_tables(self) -> list[str]:
        """Operational tables this table reads, sorted."""
        return sorted({s.split(".", 1)[0] for c in self.columns for s in c.sources})


def sql_type(arrow_type: pa.DataType) -> str:
    """The DuckDB type of an Arrow type used in the schema."""
    if pa.types.is_decimal(arrow_type):
        return f"DECIMAL({arrow_type.precision},{arrow_type.scale})"
    if pa.types.is_timestamp(arrow_type):
        return "TIMESTAMP"
    simple = {
        pa.int8(): "TINYINT",
        pa.int16(): "SMALLINT",
        pa.int32(): "INTEGER",
        pa.int64(): "BIGINT",
        pa.float64(): "DOUBLE",
        pa.string(): "VARCHAR",
        pa.bool_(): "BOOLEAN",
        pa.date32(): "DATE",
    }
    try:
        return simple[arrow_type]
    except KeyError:
        raise TypeError(f"no warehouse type for {arrow_type}") from None


def _c(
    name: str, type_: pa.DataType, description: str = "", *sources: str, how: How = "identity"
) -> Column:
    return Column(name, type_, description, tuple(sources), how)


I32: Final = pa.int32()
I64: Final = pa.int64()
F64: Final = pa.float64()
STR: Final = pa.string()
BOOL: Final = pa.bool_()
DATE: Final = pa.date32()
T: Final[How] = "transformation"
A: Final[How] = "aggregation"

# --------------------------------------------------------------------------- dimensions

DIM_DATE = WarehouseTable(
    "dim_date",
    "dimension",
    "Calendar days (UTC) covering every fact; key yyyymmdd.",
    (
        _c("date_key", I32, "yyyymmdd"),
        _c("date", DATE),
        _c("year", I32),
        _c("quarter", I32),
        _c("month", I32),
        _c("month_name", STR),
        _c("day", I32),
        _c("day_of_week", I32, "ISO: 1 = Monday .. 7 = Sunday"),
        _c("day_name", STR),
        _c("iso_week", I32),
        _c("is_weekend", BOOL),
    ),
    ("date_key",),
)

DIM_TIME_OF_DAY = WarehouseTable(
    "dim_time_of_day",
    "dimension",
    "Minutes of the day (UTC); key hour * 60 + minute.",
    (
        _c("time_key", I32, "hour * 60 + minute"),
        _c("hour", I32),
        _c("minute", I32),
        _c("day_part", STR, "night 0-6, morning 6-12, afternoon 12-18, evening 18-24"),
    ),
    ("time_key",),
)

DIM_SITE = WarehouseTable(
    "dim_site",
    "dimension",
    "Plants and facilities.",
    (
        _c("site_key", I64, "", "sites.id"),
        _c("code", STR, "", "sites.code"),
        _c("name", STR, "", "sites.name"),
        _c("timezone", STR, "", "sites.timezone"),
    ),
    ("site_key",),
)

DIM_ASSET = WarehouseTable(
    "dim_asset",
    "dimension",
    "Assets with their site > line > area hierarchy (nearest location of each kind).",
    (
        _c("asset_key", I64, "", "assets.id"),
        _c("tag", STR, "", "assets.tag"),
        _c("name", STR, "", "assets.name"),
        _c("asset_class", STR, "lower case", "assets.asset_class", how=T),
        _c("criticality", STR, "", "assets.criticality"),
        _c("status", STR, "", "assets.status"),
        _c("site_key", I64, "", "assets.site_id"),
        _c("site_code", STR, "", "sites.code"),
        _c("line_code", STR, "", "locations.code", "locations.kind", how=T),
        _c("line_name", STR, "", "locations.name", "locations.kind", how=T),
        _c("area_code", STR, "", "locations.code", "locations.kind", how=T),
        _c("area_name", STR, "", "locations.name", "locations.kind", how=T),
        _c("location_code", STR, "", "locations.code"),
        _c("parent_asset_key", I64, "", "assets.parent_id"),
        _c("manufacturer", STR, "", "assets.manufacturer"),
        _c("model", STR, "", "assets.model"),
        _c("install_date", DATE, "", "assets.install_date"),
    ),
    ("asset_key",),
)

DIM_SENSOR = WarehouseTable(
    "dim_sensor",
    "dimension",
    "Sensors with their device, asset and canonical unit.",
    (
        _c("sensor_key", I64, "", "sensors.id"),
        _c("device_key", STR, "", "devices.key"),
        _c("sensor_code", STR, "", "sensors.key"),
        _c("name", STR, "", "sensors.name"),
        _c("type", STR, "lower case", "sensors.type", how=T),
        _c("unit", STR, "canonical unit of the facts", "sensors.unit", how=T),
        _c("source_unit", STR, "unit as configured", "sensors.unit"),
        _c("min_value", F64, "in the canonical unit", "sensors.min_value", how=T),
        _c("max_value", F64, "in the canonical unit", "sensors.max_value", how=T),
        _c("asset_key", I64, "", "devices.asset_id"),
        _c("site_key", I64, "", "assets.site_id"),
        _c("enabled", BOOL, "", "sensors.enabled"),
    ),
    ("sensor_key",),
)

DIM_PART = WarehouseTable(
    "dim_part",
    "dimension",
    "Spare parts by category.",
    (
        _c("part_key", I64, "", "parts.id"),
        _c("number", STR, "", "parts.number"),
        _c("name", STR, "", "parts.name"),
        _c("category", STR, "lower case", "parts.category", how=T),
        _c("unit", STR, "upper case", "parts.unit", how=T),
        _c("unit_cost", MONEY, "", "parts.unit_cost"),
        _c("currency", STR, "", "parts.currency"),
    ),
    ("part_key",),
)

DIM_SUPPLIER = WarehouseTable(
    "dim_supplier",
    "dimension",
    "Suppliers.",
    (
        _c("supplier_key", I64, "", "suppliers.id"),
        _c("code", STR, "", "suppliers.code"),
        _c("legal_name", STR, "", "suppliers.legal_name"),
        _c("country", STR, "", "suppliers.country"),
        _c("currency", STR, "", "suppliers.currency"),
        _c("status", STR, "", "suppliers.status"),
        _c("preferred", BOOL, "", "suppliers.preferred"),
    ),
    ("supplier_key",),
)

DIM_CURRENCY = WarehouseTable(
    "dim_currency",
    "dimension",
    "ISO 4217 currencies seen in the data, with minor units and the base-currency flag.",
    (
        _c("currency_code", STR, "", "purchase_orders.currency", "parts.currency", how=T),
        _c("minor_units", I32),
        _c("is_base", BOOL),
    ),
    ("currency_code",),
)

DIM_USER = WarehouseTable(
    "dim_user",
    "dimension",
    "People (no e-mail, no credentials).",
    (
        _c("user_key", I64, "", "users.id"),
        _c("username", STR, "", "users.username"),
        _c("full_name", STR, "", "users.full_name"),
        _c("role", STR, "", "users.role"),
        _c("site_key", I64, "", "users.site_id"),
        _c("active", BOOL, "", "users.active"),
    ),
    ("user_key",),
)

# --------------------------------------------------------------------------- facts

_R = "sensor_rollups_1h"
FACT_SENSOR_HOUR = WarehouseTable(
    "fact_sensor_hour",
    "fact",
    "One row per sensor and UTC hour, from the operational hourly rollups, in canonical units.",
    (
        _c("sensor_key", I64, "", f"{_R}.sensor_id"),
        _c("asset_key", I64, "", "devices.asset_id"),
        _c("site_key", I64, "", "assets.site_id"),
        _c("hour_start", TS, "", f"{_R}.bucket", how=T),
        _c("date_key", I32, "", f"{_R}.bucket", how=T),
        _c("time_key", I32, "", f"{_R}.bucket", how=T),
        _c("reading_count", I64, "", f"{_R}.reading_count"),
        _c("value_avg", F64, "", f"{_R}.value_sum", f"{_R}.reading_count", "sensors.unit", how=A),
        _c("value_min", F64, "", f"{_R}.value_min", "sensors.unit", how=T),
        _c("value_max", F64, "", f"{_R}.value_max", "sensors.unit", how=T),
        _c("last_value", F64, "", f"{_R}.last_value", "sensors.unit", how=T),
        _c("unit", STR, "", "sensors.unit", how=T),
        _c(
            "out_of_range",
            BOOL,
            "min or max outside the sensor's range",
            f"{_R}.value_min",
            f"{_R}.value_max",
            "sensors.min_value",
            "sensors.max_value",
            how=T,
        ),
    ),
    ("sensor_key", "hour_start"),
)

FACT_ALERT = WarehouseTable(
    "fact_alert",
    "fact",
    "Alerts with their response times.",
    (
        _c("alert_key", I64, "", "alerts.id"),
        _c("rule_id", I64, "", "alerts.rule_id"),
        _c("sensor_key", I64, "", "alerts.sensor_id"),
        _c("asset_key", I64, "", "alerts.asset_id"),
        _c("site_key", I64, "", "assets.site_id"),
        _c("kind", STR, "", "alerts.kind"),
        _c("severity", STR, "lower case", "alerts.severity", how=T),
        _c("status", STR, "", "alerts.status"),
        _c("raised_at", TS, "", "alerts.raised_at"),
        _c("date_key", I32, "", "alerts.raised_at", how=T),
        _c("time_key", I32, "", "alerts.raised_at", how=T),
        _c("acknowledged_at", TS, "", "alerts.acknowledged_at"),
        _c("cleared_at", TS, "", "alerts.cleared_at"),
        _c("closed_at", TS, "", "alerts.closed_at"),
        _c(
            "minutes_to_acknowledge",
            F64,
            "",
            "alerts.raised_at",
            "alerts.acknowledged_at",
            how=T,
        ),
        _c("minutes_to_clear", F64, "", "alerts.raised_at", "alerts.cleared_at", how=T),
        _c("escalations", I32, "", "alerts.escalations"),
        _c("work_order_key", I64, "", "alerts.work_order_id"),
    ),
    ("alert_key",),
)

_W = "work_orders"
_EV = "outbox_events"
FACT_WORK_ORDER = WarehouseTable(
    "fact_work_order",
    "fact",
    "Work orders with durations, downtime, labour hours and parts cost in base currency.",
    (
        _c("work_order_key", I64, "", f"{_W}.id"),
        _c("asset_key", I64, "", f"{_W}.asset_id"),
        _c("site_key", I64, "", "assets.site_id"),
        _c("schedule_key", I64, "", f"{_W}.schedule_id"),
        _c("assignee_key", I64, "", f"{_W}.assignee_id"),
        _c("type", STR, "", f"{_W}.type"),
        _c("priority", STR, "", f"{_W}.priority"),
        _c("status", STR, "", f"{_W}.status"),
        _c("origin", STR, "", f"{_W}.origin"),
        _c("is_failure", BOOL, "corrective or condition-based", f"{_W}.type", how=T),
        _c("created_at", TS, "", f"{_W}.created_at"),
        _c("date_key", I32, "day created", f"{_W}.created_at", how=T),
        _c("due_at", TS, "", f"{_W}.due_at"),
        _c("started_at", TS, "", f"{_W}.started_at"),
        _c("completed_at", TS, "", f"{_W}.completed_at"),
        _c("closed_at", TS, "", f"{_W}.closed_at"),
        _c("hours_to_start", F64, "", f"{_W}.created_at", f"{_W}.started_at", how=T),
        _c("hours_open_to_completed", F64, "", f"{_W}.created_at", f"{_W}.completed_at", how=T),
        _c(
            "downtime_hours",
            F64,
            "failure: created to completed; planned work: started to completed",
            f"{_W}.type",
            f"{_W}.created_at",
            f"{_W}.started_at",
            f"{_W}.completed_at",
            how=T,
        ),
        _c("waiting_for_parts_hours", F64, "", f"{_EV}.payload", f"{_EV}.created_at", how=A),
        _c("on_hold_hours", F64, "", f"{_EV}.payload", f"{_EV}.created_at", how=A),
        _c("labour_hours", pa.decimal128(12, 2), "", "work_order_notes.hours", how=A),
        _c(
            "parts_cost_base",
            MONEY,
            "consumed reservations x part unit cost, in base currency",
            "reservations.quantity",
            "reservations.status",
            "parts.unit_cost",
            "parts.currency",
            "exchange_rates.per_eur",
            how=A,
        ),
        _c("base_currency", STR, ""),
        _c("cost_complete", BOOL, "false when a part had no cost or no exchange rate"),
    ),
    ("work_order_key",),
)

FACT_WORK_ORDER_STATUS = WarehouseTable(
    "fact_work_order_status",
    "fact",
    "Status intervals of each work order, from its status-change events.",
    (
        _c("work_order_key", I64, "", f"{_EV}.payload", how=T),
        _c("seq", I32, "0 = opened", f"{_EV}.id", how=T),
        _c("status", STR, "", f"{_EV}.payload", how=T),
        _c("entered_at", TS, "", f"{_EV}.created_at", f"{_W}.created_at"),
        _c("left_at", TS, "null while current", f"{_EV}.created_at"),
        _c("hours", F64, "null while current", f"{_EV}.created_at", how=T),
    ),
    ("work_order_key", "seq"),
)

FACT_SCHEDULE_COMPLIANCE = WarehouseTable(
    "fact_schedule_compliance",
    "fact",
    "One row per preventive occurrence (a work order from a schedule): on time, late, missed.",
    (
        _c("work_order_key", I64, "", f"{_W}.id"),
        _c("schedule_key", I64, "", f"{_W}.schedule_id"),
        _c("asset_key", I64, "", f"{_W}.asset_id"),
        _c("site_key", I64, "", "assets.site_id"),
        _c("due_at", TS, "", f"{_W}.due_at"),
        _c("due_date_key", I32, "", f"{_W}.due_at", how=T),
        _c("grace_hours", F64, "", "maintenance_schedules.interval_count", how=T),
        _c("completed_at", TS, "", f"{_W}.completed_at"),
        _c(
            "outcome",
            STR,
            "on_time | late | missed | pending",
            f"{_W}.status",
            f"{_W}.due_at",
            f"{_W}.completed_at",
            how=T,
        ),
        _c("days_late", F64, "", f"{_W}.due_at", f"{_W}.completed_at", how=T),
    ),
    ("work_order_key",),
)

_PO, _POL = "purchase_orders", "purchase_order_lines"
FACT_PO_LINE = WarehouseTable(
    "fact_po_line",
    "fact",
    "Purchase-order lines with amounts in order and base currency (the order's stored rate).",
    (
        _c("po_line_key", I64, "", f"{_POL}.id"),
        _c("purchase_order_key", I64, "", f"{_PO}.id"),
        _c("line_no", I32, "", f"{_POL}.line_no"),
        _c("supplier_key", I64, "", f"{_PO}.supplier_id"),
        _c("part_key", I64, "", f"{_POL}.part_id"),
        _c("status", STR, "", f"{_PO}.status"),
        _c("ordered_at", TS, "", f"{_PO}.created_at"),
        _c("date_key", I32, "", f"{_PO}.created_at", how=T),
        _c("approved_at", TS, "", f"{_PO}.approved_at"),
        _c("need_by", DATE, "", f"{_POL}.need_by"),
        _c("promised_date", DATE, "", f"{_POL}.promised_date"),
        _c("quantity", QTY, "", f"{_POL}.quantity"),
        _c("received_quantity", QTY, "", f"{_POL}.received_quantity"),
        _c("rejected_quantity", QTY, "", f"{_POL}.rejected_quantity"),
        _c("invoiced_quantity", QTY, "", f"{_POL}.invoiced_quantity"),
        _c("unit_price", pa.decimal128(18, 6), "", f"{_POL}.unit_price"),
        _c("currency", STR, "", f"{_PO}.currency"),
        _c("line_total", MONEY, "", f"{_POL}.line_total"),
        _c("fx_rate", pa.decimal128(28, 12), "", f"{_PO}.fx_rate"),
        _c("base_currency", STR, "", f"{_PO}.base_currency"),
        _c("line_total_base", MONEY, "", f"{_POL}.line_total", f"{_PO}.fx_rate", how=T),
    ),
    ("po_line_key",),
)

_GR = "goods_receipts"
FACT_RECEIPT = WarehouseTable(
    "fact_receipt",
    "fact",
    "Goods receipts with lead time and lateness against the need-by date.",
    (
        _c("receipt_key", I64, "", f"{_GR}.id"),
        _c("po_line_key", I64, "", f"{_GR}.purchase_order_line_id"),
        _c("purchase_order_key", I64, "", f"{_POL}.purchase_order_id"),
        _c("supplier_key", I64, "", f"{_PO}.supplier_id"),
        _c("part_key", I64, "", f"{_POL}.part_id"),
        _c("received_at", TS, "", f"{_GR}.received_at"),
        _c("date_key", I32, "", f"{_GR}.received_at", how=T),
        _c("quantity_received", QTY, "", f"{_GR}.quantity_received"),
        _c("quantity_rejected", QTY, "", f"{_GR}.quantity_rejected"),
        _c("lead_time_days", F64, "sent (or created) to received", f"{_PO}.sent_at", how=T),
        _c("days_late", I32, "received day minus need-by day", f"{_POL}.need_by", how=T),
    ),
    ("receipt_key",),
)

_INV, _INVL = "supplier_invoices", "supplier_invoice_lines"
FACT_INVOICE = WarehouseTable(
    "fact_invoice",
    "fact",
    "Supplier invoices with totals in base currency.",
    (
        _c("invoice_key", I64, "", f"{_INV}.id"),
        _c("supplier_key", I64, "", f"{_INV}.supplier_id"),
        _c("purchase_order_key", I64, "", f"{_INV}.purchase_order_id"),
        _c("invoice_number", STR, "", f"{_INV}.invoice_number"),
        _c("invoice_date", DATE, "", f"{_INV}.invoice_date"),
        _c("date_key", I32, "", f"{_INV}.invoice_date", how=T),
        _c("status", STR, "", f"{_INV}.status"),
        _c("currency", STR, "", f"{_INV}.currency"),
        _c("total", MONEY, "", f"{_INV}.total"),
        _c("tax", MONEY, "", f"{_INV}.tax"),
        _c("base_currency", STR, ""),
        _c("total_base", MONEY, "", f"{_INV}.total", f"{_PO}.fx_rate", how=T),
        _c("exception_count", I32, "", f"{_INV}.exceptions", how=A),
    ),
    ("invoice_key",),
)

FACT_SPEND = WarehouseTable(
    "fact_spend",
    "fact",
    "Spend per invoice line in base currency (rejected invoices excluded).",
    (
        _c("invoice_line_key", I64, "", f"{_INVL}.id"),
        _c("invoice_key", I64, "", f"{_INVL}.invoice_id"),
        _c("supplier_key", I64, "", f"{_INV}.supplier_id"),
        _c("part_key", I64, "", f"{_POL}.part_id"),
        _c("purchase_order_key", I64, "", f"{_INV}.purchase_order_id"),
        _c("date_key", I32, "", f"{_INV}.invoice_date", how=T),
        _c("currency", STR, "", f"{_INV}.currency"),
        _c("amount", MONEY, "", f"{_INVL}.line_total"),
        _c("fx_rate", pa.decimal128(28, 12), "", f"{_PO}.fx_rate", "exchange_rates.per_eur"),
        _c("base_currency", STR, ""),
        _c("amount_base", MONEY, "", f"{_INVL}.line_total", f"{_PO}.fx_rate", how=T),
    ),
    ("invoice_line_key",),
)

# Written by the machine-learning jobs (analytics/ml/training.py), not by an ETL job: one row per
# asset (remaining useful life) or per sensor (anomaly score) and run. A run is identified by
# (kind, predicted_at) and re-running it replaces its rows.
FACT_PREDICTION = WarehouseTable(
    "fact_prediction",
    "fact",
    "Model outputs per run: remaining useful life per asset and anomaly score per sensor, "
    "with the model version that produced them.",
    (
        _c("predicted_at", TS, "when the run computed the prediction"),
        _c("date_key", I32, "day of predicted_at", how=T),
        _c("kind", STR, "rul | anomaly"),
        _c("model_id", I64, "model version id in the registry"),
        _c("model_version", I64, "version number of the model's target"),
        _c("sensor_key", I64, "", "sensors.id"),
        _c("asset_key", I64, "", "devices.asset_id"),
        _c("site_key", I64, "", "assets.site_id"),
        _c("value", F64, "RUL in days, or the newest anomaly score"),
        _c("low", F64, "band low end (RUL days)"),
        _c("high", F64, "band high end (RUL days); null when open-ended"),
        _c("threshold", F64, "failure level (RUL), or alarm threshold (anomaly)"),
        _c("threshold_source", STR, "failure history | alert rule | training scores"),
        _c("failure_at", TS, "predicted failure time (RUL)"),
    ),
    ("kind", "predicted_at", "sensor_key"),
)

# --------------------------------------------------------------------------- bookkeeping

ETL_WATERMARKS = WarehouseTable(
    "etl_watermarks",
    "meta",
    "Per job: how far the source has been loaded; advanced only by a successful run.",
    (
        _c("job", STR),
        _c("value", TS, "source time up to which the job has loaded"),
        _c("run_id", STR),
        _c("updated_at", TS),
    ),
    ("job",),
)

ETL_RUNS = WarehouseTable(
    "etl_runs",
    "meta",
    "Every ETL job run: window, rows in and out, duration, status, error.",
    (
        _c("run_id", STR),
        _c("job", STR),
        _c("mode", STR, "full | incremental"),
        _c("window_start", TS),
        _c("window_end", TS),
        _c("started_at", TS),
        _c("finished_at", TS),
        _c("duration_s", F64),
        _c("rows_in", I64),
        _c("rows_out", I64),
        _c("rows_rejected", I64),
        _c("status", STR, "running | completed | failed"),
        _c("error", STR),
    ),
    ("run_id",),
)

DIMENSIONS: Final = (
    DIM_DATE,
    DIM_TIME_OF_DAY,
    DIM_SITE,
    DIM_ASSET,
    DIM_SENSOR,
    DIM_PART,
    DIM_SUPPLIER,
    DIM_CURRENCY,
    DIM_USER,
)
FACTS: Final = (
    FACT_SENSOR_HOUR,
    FACT_ALERT,
    FACT_WORK_ORDER,
    FACT_WORK_ORDER_STATUS,
    FACT_SCHEDULE_COMPLIANCE,
    FACT_PO_LINE,
    FACT_RECEIPT,
    FACT_INVOICE,
    FACT_SPEND,
    FACT_PREDICTION,
)
META: Final = (ETL_WATERMARKS, ETL_RUNS)
TABLES: Final = {t.name: t for t in (*DIMENSIONS, *FACTS, *META)}
