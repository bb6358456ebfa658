"""997s from partners matched to what we sent, and the alarm when none comes in time.

A received 997 names our group by GS06 (AK102); the outbound interchange carrying that group
for the partner takes the 997's verdict as its ack_state. A rejection, and an interchange still
pending past its ack_due_at, each raise an outbox event for the notification service.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from maintainpro.core.audit import SYSTEM, set_actor
from maintainpro.core.db import utcnow
from maintainpro.core.events import emit
from maintainpro.supply.edi.archive import AckState, Direction, EdiDocument, EdiInterchange
from maintainpro.supply.edi.functional_ack import AckStatus, FunctionalAcknowledgement
from maintainpro.supply.edi.model import is_digits
from maintainpro.supply.edi.partners import TradingPartner
from maintainpro.supply.edi.validation import same_control_number

log = logging.getLogger(__name__)

ACK_REJECTED_TOPIC = "edi.ack_rejected"
ACK_OVERDUE_TOPIC = "edi.ack_overdue"
EDI_ALERT_TOPICS = (ACK_REJECTED_TOPIC, ACK_OVERDUE_TOPIC)
# GS01 of the group each transaction set travels in, to check AK101 against what we sent.
FUNCTIONAL_IDS = {
    "850": "PO",
    "860": "PC",
    "855": "PR",
    "856": "SH",
    "810": "IN",
    "832": "SC",
    "214": "QM",
    "997": "FA",
}
_STATE = {
    AckStatus.ACCEPTED: AckState.ACCEPTED,
    AckStatus.ACCEPTED_WITH_ERRORS: AckState.ACCEPTED_WITH_ERRORS,
    AckStatus.PARTIALLY_ACCEPTED: AckState.ACCEPTED_WITH_ERRORS,
}
# AK5 codes under which a set goes through; anything else rejected it.
_ACCEPTING = frozenset({AckStatus.ACCEPTED, AckStatus.ACCEPTED_WITH_ERRORS})
# When several groups of one interchange are acknowledged, the worst verdict stands.
_SEVERITY = {
    AckState.ACCEPTED: 1,
    AckState.ACCEPTED_WITH_ERRORS: 2,
    AckState.REJECTED: 3,
}


class AckMatchError(ValueError):
    """A 997 that acknowledges nothing we sent to this partner."""


def _group_documents(
    session: Session, partner: TradingPartner, ack: FunctionalAcknowledgement
) -> list[EdiDocument]:
    number = ack.group_control_number.strip()
    if not is_digits(number) or len(number) > 9:
        raise AckMatchError(f"AK102 {number[:20]!r} is not a group control number")
    documents = session.scalars(
        select(EdiDocument)
        .join(EdiInterchange)
        .where(
            EdiInterchange.partner_id == partner.id,
            EdiInterchange.direction == Direction.OUTBOUND,
            EdiDocument.group_control == int(number),
        )
        # Control numbers wrap after 999999999: the latest group under the number is meant.
        .order_by(EdiInterchange.id.desc(), EdiDocument.id)
    ).all()
    latest = [d for d in documents if documents and d.interchange_id == documents[0].interchange_id]
    expected = {FUNCTIONAL_IDS.get(d.set_id) for d in latest} - {None}
    if not latest or (expected and ack.functional_id not in expected):
        raise AckMatchError(f"no {ack.functional_id} group {int(number)} was sent to this partner")
    return latest


def _rejected_sets(ack: FunctionalAcknowledgement) -> list[str]:
    return [s.control_number for s in ack.sets if s.status not in _ACCEPTING]


def record_functional_ack(
    session: Session,
    partner: TradingPartner,
    ack: FunctionalAcknowledgement,
    *,
    now: dt.datetime | None = None,
) -> EdiInterchange:
    """Match a received 997 to our group and record its verdict; AckMatchError if none fits."""
    when = now or utcnow()
    documents = _group_documents(session, partner, ack)
    interchange = documents[0].interchange
    state = _STATE.get(ack.status, AckState.REJECTED)
    rejected = _rejected_sets(ack)
    if rejected and state is AckState.ACCEPTED:
        state = AckState.ACCEPTED_WITH_ERRORS
    previous = interchange.ack_state
    groups = {d.group_control for d in interchange.documents}
    if len(groups) > 1 and _SEVERITY.get(previous, 0) > _SEVERITY[state]:
        state = previous  # another group of the same interchange was answered worse
    interchange.ack_state = state
    interchange.acknowledged_at = when
    for document in documents:
        answer = next(
            (
                s
                for s in ack.sets
                if document.set_control is not None
                and same_control_number(s.control_number, document.set_control)
            ),
            None,
        )
        if answer is not None and answer.status not in _ACCEPTING:
            codes = ", ".join(answer.error_codes) or "none given"
            document.errors = [
                *document.errors,
                {
                    "code": "rejected_by_partner",
                    "message": f"the partner's 997 rejected set {answer.control_number} "
                    f"(AK5 {answer.status.value}, error codes {codes})",
                },
            ]
    if state is AckState.REJECTED or rejected:
        emit(session, ACK_REJECTED_TOPIC, _rejection_payload(partner, interchange, ack, rejected))
    return interchange


def _common(partner: TradingPartner, interchange: EdiInterchange) -> dict[str, Any]:
    references = sorted({d.reference for d in interchange.documents if d.reference})
    orders = sorted({d.purchase_order_id for d in interchange.documents if d.purchase_order_id})
    return {
        "interchange_id": interchange.id,
        "control_number": interchange.control_number,
        "partner_id": partner.id,
        "supplier_id": partner.supplier_id,
        "supplier": partner.supplier.code,
        "sets": sorted({d.set_id for d in interchange.documents}),
        "references": references,
        "purchase_order_ids": orders,
    }


def _what(common: dict[str, Any]) -> str:
    sets = " ".join(common["sets"])
    references = ", ".join(common["references"])
    return f"{sets} {references}" if references else sets


def _rejection_payload(
    partner: TradingPartner,
    interchange: EdiInterchange,
    ack: FunctionalAcknowledgement,
    rejected: list[str],
) -> dict[str, Any]:
    common = _common(partner, interchange)
    what = _what(common)
    return {
        **common,
        "group_control": ack.group_control_number,
        "ack_status": ack.status.value,
        "rejected_sets": rejected,
        "error_codes": list(ack.error_codes),
        "severity": "major",
        "title": f"{partner.supplier.code} rejected EDI {what}",
        "reason": f"the partner's 997 answered group {ack.group_control_number} with "
        f"{ack.status.value}; fix the document or the partner setup and send it again",
    }


def mark_overdue(session: Session, *, now: dt.datetime | None = None) -> list[EdiInterchange]:
    """Pending outbound interchanges past their ack_due_at become OVERDUE, each with an event."""
    when = now or utcnow()
    late = session.scalars(
        select(EdiInterchange)
        .where(
            EdiInterchange.direction == Direction.OUTBOUND,
            EdiInterchange.ack_state == AckState.PENDING,
            EdiInterchange.ack_due_at.is_not(None),
            EdiInterchange.ack_due_at <= when,
        )
        .order_by(EdiInterchange.id)
        .with_for_update(skip_locked=True)
    ).all()
    for interchange in late:
        interchange.ack_state = AckState.OVERDUE
        partner = session.get(TradingPartner, interchange.partner_id)
        if partner is None:
            continue
        common = _common(partner, interchange)
        due = interchange.ack_due_at
        emit(
            session,
            ACK_OVERDUE_TOPIC,
            {
                **common,
                "ack_due_at": due.isoformat() if due else None,
                "severity": "warning",
                "title": f"No 997 from {partner.supplier.code} for EDI {_what(common)}",
                "reason": f"no functional acknowledgement within {partner.ack_deadline_minutes} "
                "minutes; check the partner's mailbox or the transport",
            },
        )
    return list(late)


def overdue_acks_job(factory: sessionmaker[Session]) -> int:
    """One pass of the overdue-997 check (for the supervisor); returns how many went overdue."""
    with factory() as session, session.begin():
        set_actor(session, SYSTEM)
        late = mark_overdue(session)
    if late:
        log.info("997 overdue", extra={"interchanges": [i.id for i in late]})
    return len(late)
