"""EDI: trading partners, manual interchange upload, the archive and the error queue."""

from __future__ import annotations

import datetime as dt
import re
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from cryptography import x509
from fastapi import APIRouter, Depends, Query, Request, Response, status
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints
from sqlalchemy import select
from starlette.concurrency import run_in_threadpool

from maintainpro.api.crud import get_or_404, require_exists
from maintainpro.api.deps import SessionDep, SettingsDep, require
from maintainpro.api.fields import Name
from maintainpro.api.pagination import Page, WindowDep, paginate
from maintainpro.api.problems import Problem
from maintainpro.config import Settings
from maintainpro.core.users import Permission
from maintainpro.iot.credentials import CredentialBox
from maintainpro.supply.edi.apply import ApplyOptions
from maintainpro.supply.edi.archive import (
    AckState,
    Direction,
    DocumentStatus,
    EdiDocument,
    EdiInterchange,
    InterchangeStatus,
)
from maintainpro.supply.edi.inbound import InboundResult, receive_interchanges
from maintainpro.supply.edi.partners import EdiTransport, MdnMode, TradingPartner
from maintainpro.supply.edi.reprocess import ReprocessError, reprocess_document
from maintainpro.supply.matching import Tolerances
from maintainpro.supply.suppliers import Supplier

router = APIRouter(prefix="/edi", tags=["edi"])
Reader = Depends(require(Permission.SUPPLY_READ))
Writer = Depends(require(Permission.SUPPLY_WRITE))
# Partner setup decides where our orders go and whose documents we accept.
Approver = Depends(require(Permission.SUPPLY_APPROVE))

SETS = Literal["850", "860", "855", "856", "810", "832", "214", "997"]
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def _plain_path(value: str) -> str:
    if _CONTROL.search(value) or ".." in value.split("/"):
        raise ValueError("a folder path without control characters or '..'")
    return value


def _certificate(value: str) -> str:
    try:
        x509.load_pem_x509_certificate(value.encode())
    except ValueError:
        raise ValueError("not a PEM-encoded X.509 certificate") from None
    return value


def _zone(value: str) -> str:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError("not an IANA time zone such as Europe/Berlin") from None
    return value


def _distinct(values: list[str]) -> list[str]:
    if len(set(values)) != len(values):
        raise ValueError("each transaction set once")
    return values


# ISA ids and GS codes: letters, digits and a few marks, never an X12 delimiter.
IsaId = Annotated[
    str,
    StringConstraints(strip_whitespace=True, pattern=r"^[A-Za-z0-9][A-Za-z0-9 ._\-/&]{0,14}$"),
]
Qualifier = Annotated[str, StringConstraints(pattern=r"^[A-Z0-9]{2}$")]
As2Name = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9 ._\-@:/]{1,128}$")]
Folder = Annotated[
    str, StringConstraints(min_length=1, max_length=255), AfterValidator(_plain_path)
]
Documents = Annotated[list[SETS], Field(max_length=8), AfterValidator(_distinct)]
Secrets = Annotated[
    dict[
        Annotated[str, StringConstraints(pattern=r"^[a-z_]{1,32}$")],
        Annotated[str, Field(max_length=20_000)],
    ],
    Field(max_length=10),
]
Certificate = Annotated[str, Field(max_length=20_000), AfterValidator(_certificate)]


class PartnerSettings(BaseModel):
    """Optional behaviour per partner."""

    model_config = ConfigDict(extra="forbid")
    buyer_name: Name | None = None
    timezone: Annotated[str, Field(max_length=64), AfterValidator(_zone)] | None = None
    carrier_scac: Annotated[str, StringConstraints(pattern=r"^[A-Z0-9]{2,4}$")] | None = None


class PartnerFields(BaseModel):
    """What a partner setup may change (everything but the supplier)."""

    model_config = ConfigDict(extra="forbid")
    isa_qualifier: Qualifier | None = None
    isa_id: IsaId | None = None
    gs_id: IsaId | None = None
    our_isa_qualifier: Qualifier | None = None
    our_isa_id: IsaId | None = None
    our_gs_id: IsaId | None = None
    x12_version: Annotated[str, StringConstraints(pattern=r"^00[0-9]{3}$")] | None = None
    gs_version: Annotated[str, StringConstraints(pattern=r"^[0-9]{6}[A-Z0-9]{0,6}$")] | None = None
    usage_indicator: Literal["P", "T"] | None = None
    documents: Documents | None = None
    transport: EdiTransport | None = None
    as2_id: As2Name | None = None
    our_as2_id: As2Name | None = None
    as2_url: (
        Annotated[str, StringConstraints(max_length=500, pattern=r"^https?://[^\s]+$")] | None
    ) = None
    partner_cert_pem: Certificate | None = None
    as2_sign: bool | None = None
    as2_encrypt: bool | None = None
    as2_compress: bool | None = None
    mdn_mode: MdnMode | None = None
    sftp_host: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9.\-:\[\]]{1,255}$")] | None = (
        None
    )
    sftp_port: Annotated[int, Field(ge=1, le=65535)] | None = None
    sftp_username: (
        Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9._\-@]{1,128}$")] | None
    ) = None
    sftp_host_keys: Annotated[str, Field(max_length=20_000)] | None = None
    sftp_outbound_dir: Folder | None = None
    sftp_inbound_dir: Folder | None = None
    sftp_archive_dir: Folder | None = None
    ack_deadline_minutes: Annotated[int, Field(ge=1, le=10_080)] | None = None
    active: bool | None = None
    settings: PartnerSettings | None = None
    # Write-only: passwords and private keys, sealed at rest and never returned.
    secrets: Secrets | None = None


class PartnerIn(PartnerFields):
    """A new trading partner: the supplier and the envelope identities are required."""

    supplier_id: int
    isa_id: IsaId
    gs_id: IsaId
    our_isa_id: IsaId
    our_gs_id: IsaId


class PartnerOut(BaseModel):
    """A trading partner as shown: secrets are only reported as present."""

    model_config = ConfigDict(from_attributes=True)
    id: int
    supplier_id: int
    isa_qualifier: str
    isa_id: str
    gs_id: str
    our_isa_qualifier: str
    our_isa_id: str
    our_gs_id: str
    x12_version: str
    gs_version: str
    usage_indicator: str
    documents: list[str]
    transport: EdiTransport
    as2_id: str | None
    our_as2_id: str | None
    as2_url: str | None
    partner_cert_pem: str | None
    as2_sign: bool
    as2_encrypt: bool
    as2_compress: bool
    mdn_mode: MdnMode
    sftp_host: str | None
    sftp_port: int
    sftp_username: str | None
    sftp_host_keys: str | None
    sftp_outbound_dir: str
    sftp_inbound_dir: str
    sftp_archive_dir: str | None
    ack_deadline_minutes: int
    active: bool
    settings: dict[str, Any]
    has_secrets: bool


def partner_out(partner: TradingPartner) -> PartnerOut:
    """Render a partner without its secrets."""
    values = {c.key: getattr(partner, c.key) for c in TradingPartner.__table__.columns}
    values.pop("secrets", None)
    return PartnerOut(**values, has_secrets=partner.secrets is not None)


def _box(request: Request) -> CredentialBox | None:
    box: CredentialBox | None = request.app.state.credential_box
    return box


def _apply_fields(request: Request, partner: TradingPartner, body: PartnerFields) -> None:
    values = body.model_dump(exclude_unset=True, exclude={"secrets", "settings"})
    for key, value in values.items():
        if value is None and not TradingPartner.__table__.columns[key].nullable:
            raise Problem(422, f"{key} cannot be null", title="Invalid request")
        setattr(partner, key, value)
    if "settings" in body.model_fields_set:
        partner.settings = body.settings.model_dump(exclude_none=True) if body.settings else {}
    if "secrets" in body.model_fields_set:
        if not body.secrets:
            partner.secrets = None
            return
        box = _box(request)
        if box is None:
            raise Problem(422, "secrets cannot be stored: no credentials key is configured")
        partner.secrets = box.seal(body.secrets)


def _check_unique_ids(db: SessionDep, partner: TradingPartner) -> None:
    # No autoflush: flushing the partner being checked would make it clash with itself.
    with db.no_autoflush:
        clash = _clashing_partner(db, partner)
    if clash is not None:
        raise Problem(
            409,
            f"trading partner {clash} already uses these sender and receiver ISA ids",
            title="Conflict",
        )


def _clashing_partner(db: SessionDep, partner: TradingPartner) -> int | None:
    return db.scalar(
        select(TradingPartner.id).where(
            TradingPartner.id != (partner.id or -1),
            TradingPartner.isa_qualifier == partner.isa_qualifier,
            TradingPartner.isa_id == partner.isa_id,
            TradingPartner.our_isa_qualifier == partner.our_isa_qualifier,
            TradingPartner.our_isa_id == partner.our_isa_id,
        )
    )


@router.get("/partners", dependencies=[Reader])
def list_partners(
    db: SessionDep, page: WindowDep, supplier_id: int | None = None, active: bool | None = None
) -> Page[PartnerOut]:
    """List trading partners."""
    stmt = select(TradingPartner).order_by(TradingPartner.id)
    if supplier_id is not None:
        stmt = stmt.where(TradingPartner.supplier_id == supplier_id)
    if active is not None:
        stmt = stmt.where(TradingPartner.active == active)
    rows, total = paginate(db, stmt, page)
    return Page[PartnerOut](
        items=[partner_out(r) for r in rows], total=total, limit=page.limit, offset=page.offset
    )


@router.post("/partners", status_code=status.HTTP_201_CREATED, dependencies=[Approver])
def create_partner(request: Request, db: SessionDep, body: PartnerIn) -> PartnerOut:
    """Set up a supplier as a trading partner."""
    require_exists(db, Supplier, body.supplier_id, "supplier_id")
    if db.scalar(select(TradingPartner.id).where(TradingPartner.supplier_id == body.supplier_id)):
        raise Problem(409, "the supplier already has a trading partner", title="Conflict")
    # The qualifier defaults are set here, not left to the column defaults at flush, so that the
    # uniqueness check below compares the values the row will have.
    partner = TradingPartner(
        supplier_id=body.supplier_id,
        documents=[],
        settings={},
        isa_qualifier="ZZ",
        our_isa_qualifier="ZZ",
    )
    _apply_fields(request, partner, body)
    _check_unique_ids(db, partner)
    db.add(partner)
    db.commit()
    return partner_out(partner)


@router.get("/partners/{partner_id}", dependencies=[Reader])
def get_partner(db: SessionDep, partner_id: int) -> PartnerOut:
    """One trading partner."""
    return partner_out(get_or_404(db, TradingPartner, partner_id))


@router.patch("/partners/{partner_id}", dependencies=[Approver])
def update_partner(
    request: Request, db: SessionDep, partner_id: int, body: PartnerFields
) -> PartnerOut:
    """Change a trading partner; secrets given replace the stored ones ({} removes them)."""
    partner = get_or_404(db, TradingPartner, partner_id)
    _apply_fields(request, partner, body)
    _check_unique_ids(db, partner)
    db.commit()
    return partner_out(partner)


@router.delete(
    "/partners/{partner_id}", status_code=status.HTTP_204_NO_CONTENT, dependencies=[Approver]
)
def delete_partner(db: SessionDep, partner_id: int) -> Response:
    """Remove a partner that never exchanged anything (else deactivate it)."""
    partner = get_or_404(db, TradingPartner, partner_id)
    used = db.scalar(select(EdiInterchange.id).where(EdiInterchange.partner_id == partner.id))
    if used is not None:
        # Its archive and control numbers must stay: a new setup would reuse ISA13 values.
        raise Problem(
            409, "the partner has exchanged interchanges: deactivate it instead", title="Conflict"
        )
    db.delete(partner)
    db.commit()
    return Response(status_code=status.HTTP_204_NO_CONTENT)


# --- the archive -----------------------------------------------------------------------------


class DocumentOut(BaseModel):
    """One transaction set in the archive."""

    id: int
    interchange_id: int
    partner_id: int | None
    direction: Direction
    set_id: str
    group_control: int | None
    set_control: str | None
    status: DocumentStatus
    reference: str | None
    purchase_order_id: int | None
    attempts: int
    processed_at: dt.datetime | None
    errors: list[dict[str, Any]]
    parsed: dict[str, Any] | None = None


class InterchangeOut(BaseModel):
    """One interchange in the archive (without its content)."""

    id: int
    partner_id: int | None
    direction: Direction
    transport: str
    control_number: int | None
    sender_id: str | None
    receiver_id: str | None
    transport_ref: str | None
    status: InterchangeStatus
    ack_state: AckState
    ack_due_at: dt.datetime | None
    acknowledged_at: dt.datetime | None
    created_at: dt.datetime
    processed_at: dt.datetime | None
    size: int
    sets: list[str]
    errors: list[dict[str, Any]]


class InterchangeDetail(InterchangeOut):
    """An interchange with its raw text and its documents in parsed form."""

    raw: str
    documents: list[DocumentOut]


class InboundOut(BaseModel):
    """What became of one uploaded interchange (details: GET /edi/interchanges/{id})."""

    interchange_id: int
    status: InterchangeStatus
    partner_id: int | None
    documents: list[dict[str, Any]]
    reasons: list[str]
    acknowledgement_id: int | None


def document_out(document: EdiDocument, *, parsed: bool = False) -> DocumentOut:
    """Render an archived document."""
    interchange = document.interchange
    return DocumentOut(
        id=document.id,
        interchange_id=document.interchange_id,
        partner_id=interchange.partner_id,
        direction=interchange.direction,
        set_id=document.set_id,
        group_control=document.group_control,
        set_control=document.set_control,
        status=document.status,
        reference=document.reference,
        purchase_order_id=document.purchase_order_id,
        attempts=document.attempts,
        processed_at=document.processed_at,
        errors=document.errors,
        parsed=document.parsed if parsed else None,
    )


def _summary(row: EdiInterchange) -> dict[str, Any]:
    return {
        "id": row.id,
        "partner_id": row.partner_id,
        "direction": row.direction,
        "transport": row.transport,
        "control_number": row.control_number,
        "sender_id": row.sender_id,
        "receiver_id": row.receiver_id,
        "transport_ref": row.transport_ref,
        "status": row.status,
        "ack_state": row.ack_state,
        "ack_due_at": row.ack_due_at,
        "acknowledged_at": row.acknowledged_at,
        "created_at": row.created_at,
        "processed_at": row.processed_at,
        "size": len(row.raw),
        "sets": [d.set_id for d in row.documents],
        "errors": row.errors,
    }


def _text(raw: bytes) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("latin-1")


def apply_options(settings: Settings) -> ApplyOptions:
    """The tolerances inbound documents are applied with, from the settings."""
    return ApplyOptions(
        tolerances=Tolerances(
            price_pct=settings.invoice_price_tolerance_pct,
            quantity_pct=settings.invoice_quantity_tolerance_pct,
        ),
        shipment_tolerance_pct=settings.receipt_tolerance_pct,
    )


def _inbound_out(result: InboundResult) -> InboundOut:
    row = result.interchange
    # Codes only: the messages quote the upload, which this answer must not echo.
    reasons = [str(e.get("code")) for e in row.errors]
    reasons += [str(e.get("code")) for d in row.documents for e in d.errors]
    return InboundOut(
        interchange_id=row.id,
        status=row.status,
        partner_id=row.partner_id,
        documents=[
            {"id": d.id, "set_id": d.set_id, "status": d.status.value} for d in row.documents
        ],
        reasons=list(dict.fromkeys(reasons)),
        acknowledgement_id=result.acknowledgement.id if result.acknowledgement else None,
    )


def _receive(
    db: SessionDep, raw: bytes, transport_ref: str | None, options: ApplyOptions
) -> list[InboundOut]:
    results = receive_interchanges(
        db, raw, transport="manual", transport_ref=transport_ref, options=options
    )
    db.commit()
    return [_inbound_out(r) for r in results]


@router.post("/inbound", status_code=status.HTTP_201_CREATED, dependencies=[Writer])
async def upload_interchange(
    request: Request,
    db: SessionDep,
    settings: SettingsDep,
    transport_ref: Annotated[
        str | None, Query(max_length=255, pattern=r"^[A-Za-z0-9 ._\-/:@]+$")
    ] = None,
) -> list[InboundOut]:
    """Receive interchanges uploaded by hand (e.g. fetched from a VAN mailbox).

    Everything is archived. When nothing in the upload could be taken in (unreadable, unknown
    partner, broken envelope, a repeat) the answer is a problem naming the interchanges.
    """
    raw = await request.body()
    if not raw.strip():
        raise Problem(422, "the body is empty: send the interchange as the request body")
    # The database work is blocking: it runs beside the event loop, not on it.
    answers = await run_in_threadpool(_receive, db, raw, transport_ref, apply_options(settings))
    refused = {InterchangeStatus.REJECTED, InterchangeStatus.DUPLICATE}
    if all(a.status in refused for a in answers):
        duplicate = all(a.status is InterchangeStatus.DUPLICATE for a in answers)
        raise Problem(
            409 if duplicate else 422,
            "the interchange was already received; nothing was applied again"
            if duplicate
            else "the interchange was rejected and archived; nothing was applied",
            title="Duplicate interchange" if duplicate else "Interchange rejected",
            interchanges=[a.model_dump(mode="json") for a in answers],
        )
    return answers


@router.get("/interchanges", dependencies=[Reader])
def list_interchanges(
    db: SessionDep,
    page: WindowDep,
    partner_id: int | None = None,
    direction: Direction | None = None,
    status: InterchangeStatus | None = None,
    ack_state: AckState | None = None,
) -> Page[InterchangeOut]:
    """The archive, newest first."""
    stmt = select(EdiInterchange).order_by(EdiInterchange.id.desc())
    if partner_id is not None:
        stmt = stmt.where(EdiInterchange.partner_id == partner_id)
    if direction is not None:
        stmt = stmt.where(EdiInterchange.direction == direction)
    if status is not None:
        stmt = stmt.where(EdiInterchange.status == status)
    if ack_state is not None:
        stmt = stmt.where(EdiInterchange.ack_state == ack_state)
    rows, total = paginate(db, stmt, page)
    return Page[InterchangeOut](
        items=[InterchangeOut(**_summary(r)) for r in rows],
        total=total,
        limit=page.limit,
        offset=page.offset,
    )


@router.get("/interchanges/{interchange_id}", dependencies=[Reader])
def get_interchange(db: SessionDep, interchange_id: int) -> InterchangeDetail:
    """One interchange: raw text, errors, and each document in parsed form."""
    row = get_or_404(db, EdiInterchange, interchange_id)
    return InterchangeDetail(
        **_summary(row),
        raw=_text(row.raw),
        documents=[document_out(d, parsed=True) for d in row.documents],
    )


@router.get("/documents", dependencies=[Reader])
def list_documents(
    db: SessionDep,
    page: WindowDep,
    status: DocumentStatus | None = None,
    set_id: Annotated[str | None, Query(pattern=r"^[0-9]{3}$")] = None,
    partner_id: int | None = None,
    direction: Direction | None = None,
) -> Page[DocumentOut]:
    """Archived documents; ?status=failed is the error queue."""
    stmt = select(EdiDocument).join(EdiInterchange).order_by(EdiDocument.id.desc())
    if status is not None:
        stmt = stmt.where(EdiDocument.status == status)
    if set_id is not None:
        stmt = stmt.where(EdiDocument.set_id == set_id)
    if partner_id is not None:
        stmt = stmt.where(EdiInterchange.partner_id == partner_id)
    if direction is not None:
        stmt = stmt.where(EdiInterchange.direction == direction)
    rows, total = paginate(db, stmt, page)
    return Page[DocumentOut](
        items=[document_out(r) for r in rows], total=total, limit=page.limit, offset=page.offset
    )


@router.get("/documents/{document_id}", dependencies=[Reader])
def get_document(db: SessionDep, document_id: int) -> DocumentOut:
    """One document with its parsed form."""
    return document_out(get_or_404(db, EdiDocument, document_id), parsed=True)


@router.post("/documents/{document_id}/reprocess", dependencies=[Writer])
def reprocess(db: SessionDep, settings: SettingsDep, document_id: int) -> DocumentOut:
    """Apply a failed document again from the archived raw (after its cause was fixed)."""
    document = get_or_404(db, EdiDocument, document_id)
    try:
        reprocess_document(db, document, options=apply_options(settings))
    except ReprocessError as exc:
        raise Problem(409, str(exc), title="Cannot reprocess") from None
    db.commit()
    return document_out(document, parsed=True)
