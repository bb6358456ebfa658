"""The EDI error queue: failed documents applied again from the archived raw after a fix.

A document fails when its purchase order is missing, a line does not match, a rule refuses it.
Once the cause is fixed (the order created, the partner's catalogue mapped, our code corrected),
reprocessing reads the set again from the interchange exactly as it arrived and applies it in a
savepoint, like the first time; attempts counts every try.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select
from sqlalchemy.orm import Session

from maintainpro.core.db import utcnow
from maintainpro.supply.edi.apply import ApplyOptions
from maintainpro.supply.edi.archive import (
    Direction,
    DocumentStatus,
    EdiDocument,
    EdiInterchange,
)
from maintainpro.supply.edi.errors import X12Error
from maintainpro.supply.edi.inbound import apply_in_savepoint, interchange_status
from maintainpro.supply.edi.model import TransactionSet
from maintainpro.supply.edi.partners import TradingPartner
from maintainpro.supply.edi.x12 import parse_interchange


class ReprocessError(ValueError):
    """The document cannot be reprocessed (not failed, not inbound, archive unreadable)."""


def _archived_set(interchange: EdiInterchange, document: EdiDocument) -> TransactionSet:
    # Documents were archived one per set, in the order the sets stand in the interchange.
    try:
        sets = list(parse_interchange(interchange.raw).interchange.transaction_sets())
    except X12Error as exc:
        raise ReprocessError(f"the archived interchange cannot be read: {exc.message}") from exc
    ordinal = [d.id for d in interchange.documents].index(document.id)
    found = sets[ordinal] if ordinal < len(sets) else None
    if found is None or found.set_id != document.set_id:
        raise ReprocessError("the archived interchange does not hold this document")
    return found


def reprocess_document(
    session: Session,
    document: EdiDocument,
    *,
    options: ApplyOptions | None = None,
    now: dt.datetime | None = None,
) -> EdiDocument:
    """Apply a FAILED inbound document again; its interchange's status follows."""
    when = now or utcnow()
    if document.status is not DocumentStatus.FAILED:
        raise ReprocessError(
            f"only failed documents are reprocessed; this one is {document.status}"
        )
    interchange = document.interchange
    if interchange.direction is not Direction.INBOUND:
        raise ReprocessError("only received documents are reprocessed")
    partner = (
        session.get(TradingPartner, interchange.partner_id) if interchange.partner_id else None
    )
    if partner is None:
        raise ReprocessError("the interchange's trading partner no longer exists")
    transaction_set = _archived_set(interchange, document)
    apply_in_savepoint(session, partner, document, transaction_set, options or ApplyOptions(), when)
    interchange.status = interchange_status(interchange)
    interchange.processed_at = when
    session.flush()
    return document


def reprocess_failed(
    session: Session,
    *,
    partner_id: int | None = None,
    options: ApplyOptions | None = None,
    now: dt.datetime | None = None,
) -> list[EdiDocument]:
    """Reprocess every failed inbound document (of one partner); returns them as they ended."""
    stmt = (
        select(EdiDocument)
        .join(EdiInterchange)
        .where(
            EdiDocument.status == DocumentStatus.FAILED,
            EdiInterchange.direction == Direction.INBOUND,
        )
        .order_by(EdiDocument.id)
    )
    if partner_id is not None:
        stmt = stmt.where(EdiInterchange.partner_id == partner_id)
    documents = list(session.scalars(stmt))
    for document in documents:
        reprocess_document(session, document, options=options, now=now)
    return documents
