"""Shipment tracking and ERP sync: the carrier webhook, late shipments, parts ETAs, ERP state."""

from __future__ import annotations

import datetime as dt
import json
import logging
from decimal import Decimal
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request, Response, status
from pydantic import BaseModel, ConfigDict
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker
from starlette.concurrency import run_in_threadpool

from maintainpro.api.deps import SessionDep, SettingsDep, get_session_factory, require
from maintainpro.api.pagination import Page, WindowDep, list_page, page_of
from maintainpro.api.problems import Problem
from maintainpro.config import ConfigurationError, Settings
from maintainpro.core.audit import Actor, set_actor
from maintainpro.core.db import utcnow
from maintainpro.core.users import Permission
from maintainpro.supply.carrier_webhooks import PayloadError, read_report, shape_of, signature_valid
from maintainpro.supply.erp_config import Connect, build_connector, erp_connections
from maintainpro.supply.erp_sync import sync_all, sync_states
from maintainpro.supply.shipments import Shipment, ShipmentStatus
from maintainpro.supply.tracking import (
    CarrierOutcome,
    apply_carrier_report,
    dead_letter,
    delivery_variance,
    eta_for_work_order,
    late_shipments,
    pending_receipts,
)
from maintainpro.supply.tracking_records import CarrierDeadLetter

log = logging.getLogger(__name__)
router = APIRouter(tags=["tracking"])
Reader = Depends(require(Permission.SUPPLY_READ))
Writer = Depends(require(Permission.SUPPLY_WRITE))
WorkOrderReader = Depends(require(Permission.WORK_ORDERS_READ))
WEBHOOK_ACTOR = Actor(user_id=None, name="carrier webhook")


# --- the carrier webhook ----------------------------------------------------------------------


class CarrierEventsOut(BaseModel):
    """What a carrier report did; a dead letter holds what could not be applied."""

    shipment_ids: list[int]
    recorded: int
    duplicates: int
    dead_letter_id: int | None
    reason: str | None


def _record(
    factory: sessionmaker[Session], body: bytes, now: dt.datetime
) -> tuple[CarrierOutcome, bool]:
    """Apply a signed body; (outcome, accepted-for-later). Never raises for bad content."""
    text = body.decode("utf-8", errors="replace")
    try:
        decoded = json.loads(body)
    except ValueError:
        decoded = None
    fmt = shape_of(decoded)
    with factory() as session:
        set_actor(session, WEBHOOK_ACTOR)
        try:
            report = read_report(decoded)
        except PayloadError as exc:
            letter = dead_letter(session, fmt=fmt, reason=str(exc), payload=text, now=now)
            session.commit()
            return CarrierOutcome([], 0, 0, letter.id, str(exc)), True
        try:
            outcome = apply_carrier_report(session, report, text, now)
            session.commit()
        except Exception as exc:  # noqa: BLE001 - the carrier gets 202 and the letter, not a 500
            session.rollback()
            log.warning("carrier report not applied", extra={"error": type(exc).__name__})
            reason = f"could not be applied ({type(exc).__name__}); replay it after the fix"
            letter = dead_letter(
                session,
                fmt=fmt,
                reason=reason,
                payload=text,
                tracking_number=report.tracking_number,
                now=now,
            )
            session.commit()
            return CarrierOutcome([], 0, 0, letter.id, reason), True
    return outcome, not outcome.shipment_ids


@router.post(
    "/carrier-events",
    responses={
        202: {"description": "Signed, but not applied: kept in the dead-letter list"},
        401: {"description": "Missing or wrong signature"},
        503: {"description": "No webhook secret configured"},
    },
)
async def carrier_events(request: Request, response: Response) -> CarrierEventsOut:
    """A carrier's status report (generic, EasyPost-like or AfterShip-like), HMAC-signed.

    No bearer token: the HMAC-SHA256 signature of the exact body under the shared secret
    (``carrier_webhook_secret``) is the authentication. Signed but unusable reports answer
    202 with the dead letter that keeps them, so the carrier does not retry them for ever.
    """
    settings: Settings = request.app.state.settings
    secret = settings.carrier_webhook_secret
    if secret is None or not secret.get_secret_value():
        raise Problem(503, "the carrier webhook is not configured (carrier_webhook_secret)")
    body = await request.body()
    if not signature_valid(secret.get_secret_value(), body, request.headers):
        raise Problem(401, "the report is not signed with the shared secret")
    factory: sessionmaker[Session] = request.app.state.session_factory
    outcome, parked = await run_in_threadpool(_record, factory, body, utcnow())
    if parked:
        response.status_code = status.HTTP_202_ACCEPTED
    return CarrierEventsOut(
        shipment_ids=outcome.shipment_ids,
        recorded=outcome.recorded,
        duplicates=outcome.duplicates,
        dead_letter_id=outcome.dead_letter_id,
        reason=outcome.reason,
    )


class DeadLetterOut(BaseModel):
    """A carrier report that could not be applied."""

    model_config = ConfigDict(from_attributes=True)
    id: int
    received_at: dt.datetime
    format: str
    tracking_number: str | None
    reason: str
    payload: str


@router.get("/carrier-events/dead-letters", dependencies=[Reader])
def list_dead_letters(
    db: SessionDep, page: WindowDep, tracking_number: str | None = None
) -> Page[DeadLetterOut]:
    """Carrier reports kept because they could not be applied, newest first."""
    stmt = select(CarrierDeadLetter).order_by(CarrierDeadLetter.id.desc())
    if tracking_number is not None:
        stmt = stmt.where(CarrierDeadLetter.tracking_number == tracking_number[:64])
    return list_page(db, stmt, page, DeadLetterOut)


# --- shipments ----------------------------------------------------------------------------


class LateShipmentOut(BaseModel):
    """A shipment past its expected delivery."""

    id: int
    purchase_order_id: int
    purchase_order_number: str
    supplier_id: int
    shipment_number: str
    carrier: str | None
    tracking_number: str | None
    status: ShipmentStatus
    shipped_at: dt.datetime
    expected_delivery: dt.datetime
    hours_late: int


def _late_out(shipment: Shipment, now: dt.datetime) -> LateShipmentOut:
    expected = shipment.expected_delivery or now
    return LateShipmentOut(
        id=shipment.id,
        purchase_order_id=shipment.purchase_order_id,
        purchase_order_number=shipment.order.number,
        supplier_id=shipment.supplier_id,
        shipment_number=shipment.shipment_number,
        carrier=shipment.carrier_name or shipment.carrier_scac,
        tracking_number=shipment.tracking_number,
        status=shipment.status,
        shipped_at=shipment.shipped_at,
        expected_delivery=expected,
        hours_late=int((now - expected).total_seconds() // 3600),
    )


@router.get("/shipments/late", dependencies=[Reader])
def list_late_shipments(db: SessionDep, page: WindowDep) -> Page[LateShipmentOut]:
    """Shipments of open orders past their expected delivery, the longest overdue first."""
    now = utcnow()
    rows = late_shipments(db, now)
    chosen = rows[page.offset : page.offset + page.limit]
    return Page[LateShipmentOut](
        items=[_late_out(s, now) for s in chosen],
        total=len(rows),
        limit=page.limit,
        offset=page.offset,
    )


class SuggestedLineOut(BaseModel):
    """What receiving would book on one order line."""

    purchase_order_line_id: int
    line_no: int
    part_number: str
    shipped: Decimal
    outstanding: Decimal
    suggested: Decimal


class ReceiptSuggestionOut(BaseModel):
    """A delivered shipment waiting to be booked."""

    model_config = ConfigDict(from_attributes=True)
    shipment_id: int
    shipment_number: str
    purchase_order_id: int
    purchase_order_number: str
    supplier_id: int
    delivered_at: dt.datetime | None
    lines: list[SuggestedLineOut]


@router.get("/shipments/awaiting-receipt", dependencies=[Reader])
def list_awaiting_receipt(db: SessionDep, page: WindowDep) -> Page[ReceiptSuggestionOut]:
    """Shipments the carrier delivered whose goods are not booked yet (nothing is auto-booked)."""
    rows = pending_receipts(db)
    return page_of(
        ReceiptSuggestionOut,
        [
            ReceiptSuggestionOut.model_validate(
                {**vars(r), "lines": [vars(line) for line in r.lines]}
            )
            for r in rows[page.offset : page.offset + page.limit]
        ],
        len(rows),
        page,
    )


class ShipmentTimesOut(BaseModel):
    """Expected against actual delivery of one shipment."""

    shipment_id: int
    expected_delivery: dt.datetime | None
    delivered_at: dt.datetime | None
    variance_hours: float | None


@router.get("/shipments/{shipment_id}/delivery", dependencies=[Reader])
def shipment_delivery(db: SessionDep, shipment_id: int) -> ShipmentTimesOut:
    """Expected and actual delivery; the variance is positive when the goods came late."""
    shipment = db.get(Shipment, shipment_id)
    if shipment is None:
        raise Problem(404, f"shipment {shipment_id} does not exist")
    variance = delivery_variance(shipment)
    return ShipmentTimesOut(
        shipment_id=shipment.id,
        expected_delivery=shipment.expected_delivery,
        delivered_at=shipment.delivered_at,
        variance_hours=round(variance.total_seconds() / 3600, 2) if variance is not None else None,
    )


# --- work orders --------------------------------------------------------------------------


class PartEtaOut(BaseModel):
    """When one ordered part is expected."""

    part_id: int
    part_number: str
    purchase_order_id: int
    purchase_order_number: str
    line_no: int
    outstanding: Decimal
    eta: dt.datetime | None
    eta_source: str | None
    shipment_id: int | None
    shipment_number: str | None
    tracking_number: str | None
    carrier: str | None
    shipment_status: ShipmentStatus | None
    late: bool


class PartsEtaOut(BaseModel):
    """A work order's parts on order and when the last of them is expected."""

    work_order_id: int
    eta: dt.datetime | None
    lines: list[PartEtaOut]


@router.get("/work-orders/{work_order_id}/parts-eta", dependencies=[WorkOrderReader])
def work_order_parts_eta(db: SessionDep, work_order_id: int) -> PartsEtaOut:
    """The ETA of the parts a work order waits for, from shipments, promises or need dates."""
    found = eta_for_work_order(db, work_order_id)
    if found is None:
        raise Problem(404, f"work order {work_order_id} does not exist")
    return PartsEtaOut(
        work_order_id=found.work_order_id,
        eta=found.eta,
        lines=[PartEtaOut.model_validate(vars(line)) for line in found.lines],
    )


# --- ERP sync -----------------------------------------------------------------------------


class SyncStateOut(BaseModel):
    """One configured ERP connection and how its last pull went (no secrets)."""

    connector: str
    system: str
    pull: bool
    suppliers: list[str]
    watermark: dt.datetime | None
    last_run_at: dt.datetime | None
    last_success_at: dt.datetime | None
    last_error: str | None
    rows: int
    detail: dict[str, Any]


def _specs(settings: Settings) -> list[Any]:
    try:
        return erp_connections(settings)
    except ConfigurationError as exc:
        raise Problem(503, f"the ERP configuration is not usable: {exc}") from None


@router.get("/erp/sync-state", dependencies=[Reader])
def erp_sync_state(db: SessionDep, settings: SettingsDep) -> list[SyncStateOut]:
    """Every configured ERP connection with its watermark, last run and last error."""
    return [SyncStateOut.model_validate(row) for row in sync_states(db, _specs(settings))]


class SyncRunOut(BaseModel):
    """One connection's run."""

    connector: str
    ok: bool
    rows: int
    watermark: dt.datetime | None
    error: str | None
    detail: dict[str, Any]


@router.post("/erp/sync", dependencies=[Writer])
def erp_sync_now(
    request: Request,
    settings: SettingsDep,
    factory: Annotated[sessionmaker[Session], Depends(get_session_factory)],
    connector: str | None = None,
) -> list[SyncRunOut]:
    """Pull every ERP connection now (or the one named) and apply what changed."""
    specs = _specs(settings)
    if connector is not None and connector not in {s.name for s in specs}:
        raise Problem(404, "no ERP connection has that name")
    # Tests and special deployments may put their own connector factory on the app.
    connect: Connect = getattr(request.app.state, "erp_connect", None) or build_connector
    outcomes = sync_all(factory, settings, only=connector, connect=connect)
    return [
        SyncRunOut(
            connector=o.connector,
            ok=o.ok,
            rows=o.rows,
            watermark=o.watermark,
            error=o.error,
            detail=o.detail,
        )
        for o in outcomes
    ]
