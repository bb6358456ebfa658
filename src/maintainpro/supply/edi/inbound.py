"""Inbound X12: from raw bytes off a transport to archived, applied documents and our 997s.

Every interchange is archived whatever becomes of it. In order:
1. unreadable input (no ISA, truncated, no IEA) -> REJECTED with the codec's reason;
2. the partner is found by ISA05/06 (sender) and ISA07/08 (receiver); none, an inactive one or
   a test/production mismatch (ISA15) -> REJECTED;
3. a problem in the ISA/IEA envelope itself (IEA01/IEA02, ISA fields) -> REJECTED, no 997 (that
   would be a TA1, which we do not send);
4. an ISA13 already received from the partner -> DUPLICATE, pointing at the first one;
5. each group is answered with a 997 (acknowledge_group); a set the 997 rejects (SE count or
   control number, GE problems) is archived IGNORED with the problems and not applied;
6. every other set is read and applied in its own savepoint: APPLIED, or FAILED with the reason
   (the error queue); the rest of the interchange still applies.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from maintainpro.core.audit import SYSTEM, set_actor
from maintainpro.core.db import utcnow
from maintainpro.supply.edi.apply import ApplyOptions, apply_document, document_reference
from maintainpro.supply.edi.archive import (
    Direction,
    DocumentStatus,
    EdiDocument,
    EdiInterchange,
    InterchangeStatus,
)
from maintainpro.supply.edi.errors import (
    EnvelopeProblem,
    ProblemCode,
    SegmentPosition,
    UnsupportedTransactionError,
    X12Error,
)
from maintainpro.supply.edi.functional_ack import (
    AckStatus,
    FunctionalAcknowledgement,
    SetAcknowledgement,
    acknowledge_group,
    functional_ack_content,
)
from maintainpro.supply.edi.json_form import json_form
from maintainpro.supply.edi.model import FunctionalGroup, Interchange, TransactionSet, is_digits
from maintainpro.supply.edi.outbound import OutboundDocument, queue_interchange
from maintainpro.supply.edi.partners import TradingPartner
from maintainpro.supply.edi.transactions import read_transaction
from maintainpro.supply.edi.x12 import ParseResult, parse_interchange, read_separators

log = logging.getLogger(__name__)

# Documents a buyer receives; 850/860 go the other way and are ignored with a reason.
RECEIVED_SETS = frozenset({"855", "856", "810", "832", "214", "997"})
# A payload may hold several interchanges back to back (VAN mailboxes do that); within reason.
MAX_INTERCHANGES = 100
_MAX_MESSAGE = 500


@dataclass(frozen=True)
class InboundResult:
    """An archived inbound interchange and the 997 interchange queued in answer, if any."""

    interchange: EdiInterchange
    acknowledgement: EdiInterchange | None = None


def error_entry(
    code: str, message: str, position: SegmentPosition | None = None, **extra: Any
) -> dict[str, Any]:
    """One entry of an archive errors list."""
    entry: dict[str, Any] = {"code": code, "message": message[:_MAX_MESSAGE]}
    if position is not None:
        entry["position"] = {
            "segment": position.index,
            "line": position.line,
            "offset": position.offset,
        }
    entry.update(extra)
    return entry


def _problem_entry(problem: EnvelopeProblem) -> dict[str, Any]:
    return error_entry(problem.code.value, problem.message, problem.position)


def _decode(raw: bytes) -> tuple[str, str]:
    # Same rule as the codec (UTF-8, else Latin-1, BOM dropped) so offsets line up with it.
    try:
        return raw.decode("utf-8").removeprefix("\ufeff"), "utf-8"
    except UnicodeDecodeError:
        return raw.decode("latin-1").removeprefix("\ufeff"), "latin-1"


def _cut(text: str) -> tuple[str, ParseResult | X12Error, str]:
    """The first interchange of `text`, how it parsed, and whatever follows its IEA."""
    try:
        parsed = parse_interchange(text)
    except X12Error as exc:
        return text, exc, ""
    follower = next(
        (
            p.position.offset
            for p in parsed.problems
            if p.code is ProblemCode.DATA_AFTER_INTERCHANGE
            and p.position is not None
            and text.startswith("ISA", p.position.offset)
        ),
        None,
    )
    if follower is None:
        return text, parsed, ""
    head = text[:follower]
    try:
        return head, parse_interchange(head), text[follower:]
    except X12Error as exc:  # pragma: no cover - the head parsed as part of the whole
        return head, exc, text[follower:]


@dataclass(frozen=True)
class _Header:
    sender_qualifier: str
    sender_id: str
    receiver_qualifier: str
    receiver_id: str
    control_number: str


def _peek_header(text: str) -> _Header | None:
    """ISA identities of input the codec could not parse, to file it under its partner."""
    try:
        separators = read_separators(text)
    except X12Error:
        return None
    elements = text.lstrip()[:256].split(separators.element)
    if len(elements) < 14:
        return None
    values = [" ".join(e.split()) for e in elements[:14]]
    return _Header(values[5], values[6], values[7], values[8], values[13])


def _header_of(interchange: Interchange) -> _Header:
    return _Header(
        interchange.sender_qualifier,
        interchange.sender_id,
        interchange.receiver_qualifier,
        interchange.receiver_id,
        interchange.control_number,
    )


def identify_partner(session: Session, header: _Header) -> tuple[TradingPartner | None, str]:
    """The trading partner sending under these ISA ids to us, or why there is none."""
    candidates = session.scalars(
        select(TradingPartner)
        .where(
            TradingPartner.isa_id == header.sender_id,
            TradingPartner.our_isa_id == header.receiver_id,
        )
        .order_by(TradingPartner.id)
    ).all()
    found = [
        p
        for p in candidates
        if p.isa_qualifier.strip().upper() == header.sender_qualifier.upper()
        and p.our_isa_qualifier.strip().upper() == header.receiver_qualifier.upper()
    ]
    if not found:
        return None, (
            f"no trading partner is set up for sender {header.sender_qualifier}/"
            f"{header.sender_id} to receiver {header.receiver_qualifier}/{header.receiver_id}"
        )
    active = [p for p in found if p.active]
    if not active:
        return found[0], f"the trading partner {found[0].supplier.code} is inactive"
    return active[0], ""


def _control(value: str) -> int | None:
    digits = value.strip()
    return int(digits) if is_digits(digits) and len(digits) <= 9 else None


def _archive(
    session: Session,
    raw: bytes,
    status: InterchangeStatus,
    *,
    partner: TradingPartner | None,
    header: _Header | None,
    control: int | None,
    transport: str,
    transport_ref: str | None,
    errors: list[dict[str, Any]],
    when: dt.datetime,
) -> EdiInterchange:
    row = EdiInterchange(
        partner_id=partner.id if partner is not None else None,
        direction=Direction.INBOUND,
        transport=transport[:16],
        control_number=control,
        sender_id=header.sender_id[:32] if header else None,
        receiver_id=header.receiver_id[:32] if header else None,
        transport_ref=transport_ref[:255] if transport_ref else None,
        raw=raw,
        status=status,
        errors=errors,
        created_at=when,
        processed_at=when
        if status in (InterchangeStatus.REJECTED, InterchangeStatus.DUPLICATE)
        else None,
    )
    session.add(row)
    session.flush()
    return row


# --- where a problem sits --------------------------------------------------------------------


def _index(position: SegmentPosition | None) -> int | None:
    return position.index if position is not None else None


def _set_span(transaction_set: TransactionSet) -> tuple[int, int]:
    start = _index(transaction_set.header.position) or 0
    end = _index(transaction_set.trailer.position) if transaction_set.trailer else None
    return start, end if end is not None else start


def _group_span(group: FunctionalGroup) -> tuple[int, int]:
    start = _index(group.header.position) or 0
    ends = [start] + [_set_span(s)[1] for s in group.transaction_sets]
    if group.trailer is not None:
        ends.append(_index(group.trailer.position) or start)
    return start, max(ends)


def _within(problem: EnvelopeProblem, span: tuple[int, int]) -> bool:
    index = _index(problem.position)
    return index is not None and span[0] <= index <= span[1]


def interchange_problems(
    interchange: Interchange, problems: Sequence[EnvelopeProblem]
) -> list[EnvelopeProblem]:
    """Problems of the ISA/IEA envelope itself (outside every group): they reject it whole."""
    spans = [_group_span(g) for g in interchange.groups]
    return [p for p in problems if not any(_within(p, span) for span in spans)]


# --- documents -------------------------------------------------------------------------------


def interchange_status(row: EdiInterchange) -> InterchangeStatus:
    """An inbound interchange's status from its documents' (see the module docstring)."""
    statuses = [d.status for d in row.documents]
    applied = statuses.count(DocumentStatus.APPLIED)
    failed = statuses.count(DocumentStatus.FAILED)
    refused = sum(
        1
        for d in row.documents
        if d.status is DocumentStatus.IGNORED and any(e.get("code") == "envelope" for e in d.errors)
    )
    if failed:
        return InterchangeStatus.PARTIALLY_APPLIED if applied else InterchangeStatus.FAILED
    if refused:
        return InterchangeStatus.PARTIALLY_APPLIED if applied else InterchangeStatus.REJECTED
    return InterchangeStatus.APPLIED if applied else InterchangeStatus.RECEIVED


def apply_in_savepoint(
    session: Session,
    partner: TradingPartner,
    document: EdiDocument,
    transaction_set: TransactionSet,
    options: ApplyOptions,
    when: dt.datetime,
) -> None:
    """Read and apply one set in its own savepoint; a failure lands in the error queue."""
    document.attempts += 1
    document.processed_at = when
    try:
        typed = read_transaction(transaction_set)
    except UnsupportedTransactionError:
        document.status = DocumentStatus.IGNORED
        document.errors = [error_entry("unsupported", f"no mapping for {document.set_id} sets")]
        return
    except X12Error as exc:
        document.status = DocumentStatus.FAILED
        document.errors = [error_entry("mapping", exc.message, exc.position)]
        return
    document.parsed = json_form(typed)
    document.reference = document_reference(typed)
    if transaction_set.set_id not in RECEIVED_SETS:
        document.status = DocumentStatus.IGNORED
        document.errors = [
            error_entry("not_received", f"{document.set_id} is a document we send, not receive")
        ]
        return
    try:
        with session.begin_nested():
            applied = apply_document(session, partner, typed, options=options, now=when)
    except ValueError as exc:
        document.status = DocumentStatus.FAILED
        document.errors = [error_entry("apply", str(exc))]
        return
    except Exception as exc:  # one broken set must not stop the rest of the interchange
        log.exception("applying an EDI document failed", extra={"document_id": document.id})
        document.status = DocumentStatus.FAILED
        document.errors = [
            error_entry("internal", f"unexpected {type(exc).__name__} while applying; logged")
        ]
        return
    document.status = DocumentStatus.APPLIED
    document.reference = applied.reference or document.reference
    document.purchase_order_id = applied.purchase_order_id
    document.errors = [error_entry("warning", w) for w in applied.warnings]


def _set_refusal(
    transaction_set: TransactionSet,
    group: FunctionalGroup,
    ack: FunctionalAcknowledgement,
    answer: SetAcknowledgement,
    problems: Sequence[EnvelopeProblem],
) -> list[dict[str, Any]]:
    span = _set_span(transaction_set)
    inside = [_problem_entry(p) for p in problems if _within(p, span)]
    group_span = _group_span(group)
    sets = [_set_span(s) for s in group.transaction_sets]
    around = [
        _problem_entry(p)
        for p in problems
        if _within(p, group_span) and not any(_within(p, s) for s in sets)
    ]
    codes = ", ".join(answer.error_codes) or "none"
    summary = error_entry(
        "envelope",
        f"rejected in our 997: AK5 {answer.status.value} (codes {codes}), "
        f"AK9 {ack.status.value} (codes {', '.join(ack.error_codes) or 'none'})",
    )
    return [summary, *inside, *around]


def _documents(
    session: Session,
    row: EdiInterchange,
    partner: TradingPartner,
    parsed: ParseResult,
    options: ApplyOptions,
    when: dt.datetime,
) -> list[FunctionalAcknowledgement]:
    acks: list[FunctionalAcknowledgement] = []
    for group in parsed.interchange.groups:
        ack = acknowledge_group(group, parsed.problems)
        group_ok = not ack.error_codes
        for transaction_set, answer in zip(group.transaction_sets, ack.sets, strict=True):
            set_id = transaction_set.set_id
            document = EdiDocument(
                set_id=set_id if len(set_id) <= 3 else "?",
                group_control=_control(group.control_number),
                set_control=transaction_set.control_number[:9] or None,
                status=DocumentStatus.PENDING,
                errors=[],
                attempts=0,
            )
            row.documents.append(document)
            session.flush()
            if not group_ok or answer.status is not AckStatus.ACCEPTED:
                document.status = DocumentStatus.IGNORED
                document.processed_at = when
                document.errors = _set_refusal(transaction_set, group, ack, answer, parsed.problems)
                continue
            if partner.documents and set_id not in partner.documents and set_id != "997":
                document.status = DocumentStatus.IGNORED
                document.processed_at = when
                document.errors = [
                    error_entry("not_agreed", f"the partner is not set up to send {set_id}")
                ]
                continue
            apply_in_savepoint(session, partner, document, transaction_set, options, when)
        if group.functional_id != "FA":
            acks.append(ack)
    return acks


def _answer(
    session: Session,
    partner: TradingPartner,
    acks: Sequence[FunctionalAcknowledgement],
    when: dt.datetime,
) -> EdiInterchange | None:
    if not acks or (partner.documents and "997" not in partner.documents):
        return None
    documents = [
        OutboundDocument(
            functional_ack_content(ack),
            ack,
            reference=f"{ack.functional_id} {ack.group_control_number}"[:64],
        )
        for ack in acks
    ]
    return queue_interchange(session, partner, documents, expect_ack=False, now=when)


def _interchange_refusal(
    interchange: Interchange,
    problems: Sequence[EnvelopeProblem],
    partner: TradingPartner | None,
    why: str,
) -> list[dict[str, Any]]:
    """Why an interchange is refused before its groups are looked at; [] when it is not."""
    if partner is None or why:
        return [error_entry("unknown_partner" if partner is None else "inactive_partner", why)]
    if interchange.usage_indicator != partner.usage_indicator:
        message = (
            f"ISA15 is {interchange.usage_indicator[:1]!r} but the partner is set up for "
            f"{partner.usage_indicator!r} (P production, T test)"
        )
        return [error_entry("usage_indicator", message)]
    if interchange_problems(interchange, problems):
        return [_problem_entry(p) for p in problems]
    if _control(interchange.control_number) is None:  # pragma: no cover - INVALID_ISA above
        return [error_entry("invalid_isa", "ISA13 is not a control number")]
    return []


def _receive_one(
    session: Session,
    text: str,
    encoding: str,
    outcome: ParseResult | X12Error,
    *,
    transport: str,
    transport_ref: str | None,
    options: ApplyOptions,
    when: dt.datetime,
) -> InboundResult:
    raw = text.encode(encoding)
    common: dict[str, Any] = {"transport": transport, "transport_ref": transport_ref, "when": when}

    def refuse(
        partner: TradingPartner | None, header: _Header | None, errors: list[dict[str, Any]]
    ) -> InboundResult:
        status = InterchangeStatus.REJECTED
        return InboundResult(
            _archive(
                session,
                raw,
                status,
                partner=partner,
                header=header,
                control=None,
                errors=errors,
                **common,
            )
        )

    if isinstance(outcome, X12Error):
        header = _peek_header(text)
        partner = identify_partner(session, header)[0] if header else None
        return refuse(partner, header, [error_entry("syntax", outcome.message, outcome.position)])
    interchange = outcome.interchange
    header = _header_of(interchange)
    partner, why = identify_partner(session, header)
    reasons = _interchange_refusal(interchange, outcome.problems, partner, why)
    if reasons or partner is None:
        return refuse(partner, header, reasons)
    control = _control(interchange.control_number) or 0
    duplicate = _duplicate(session, raw, partner, header, control, common)
    if duplicate is not None:
        return InboundResult(duplicate)
    try:
        with session.begin_nested():
            row = _archive(
                session,
                raw,
                InterchangeStatus.RECEIVED,
                partner=partner,
                header=header,
                control=control,
                errors=[_problem_entry(p) for p in outcome.problems],
                **common,
            )
    except IntegrityError:
        # The same interchange arrived at the same moment through another transport.
        found = _duplicate(session, raw, partner, header, control, common)
        if found is None:  # pragma: no cover - the unique constraint names only this case
            raise
        return InboundResult(found)
    acks = _documents(session, row, partner, outcome, options, when)
    row.status = interchange_status(row)
    row.processed_at = when
    acknowledgement = _answer(session, partner, acks, when)
    session.flush()
    return InboundResult(row, acknowledgement)


def _duplicate(
    session: Session,
    raw: bytes,
    partner: TradingPartner,
    header: _Header,
    control: int,
    common: dict[str, Any],
) -> EdiInterchange | None:
    original = session.scalar(
        select(EdiInterchange).where(
            EdiInterchange.partner_id == partner.id,
            EdiInterchange.direction == Direction.INBOUND,
            EdiInterchange.control_number == control,
        )
    )
    if original is None:
        return None
    message = (
        f"interchange control number {control:09d} from {partner.supplier.code} was already "
        f"received (interchange {original.id}); nothing applied"
    )
    entry = error_entry(
        "duplicate", message, original_interchange_id=original.id, control_number=control
    )
    # The archive keeps one row per partner and ISA13, so the copy is stored without it.
    return _archive(
        session,
        raw,
        InterchangeStatus.DUPLICATE,
        partner=partner,
        header=header,
        control=None,
        errors=[entry],
        **common,
    )


def receive_interchanges(
    session: Session,
    raw: bytes,
    *,
    transport: str = "manual",
    transport_ref: str | None = None,
    options: ApplyOptions | None = None,
    now: dt.datetime | None = None,
) -> list[InboundResult]:
    """Archive and apply every interchange in a payload; the caller commits."""
    when = now or utcnow()
    chosen = options or ApplyOptions()
    text, encoding = _decode(raw)
    results: list[InboundResult] = []
    rest = text
    while True:
        head, outcome, rest = _cut(rest)
        results.append(
            _receive_one(
                session,
                head,
                encoding,
                outcome,
                transport=transport,
                transport_ref=transport_ref,
                options=chosen,
                when=when,
            )
        )
        if not rest.strip():
            return results
        if len(results) >= MAX_INTERCHANGES:
            results.append(_too_many(session, rest, encoding, transport, transport_ref, when))
            return results


def _too_many(
    session: Session,
    rest: str,
    encoding: str,
    transport: str,
    transport_ref: str | None,
    when: dt.datetime,
) -> InboundResult:
    message = f"more than {MAX_INTERCHANGES} interchanges in one payload; the rest is not read"
    return InboundResult(
        _archive(
            session,
            rest.encode(encoding),
            InterchangeStatus.REJECTED,
            partner=None,
            header=None,
            control=None,
            transport=transport,
            transport_ref=transport_ref,
            errors=[error_entry("too_many_interchanges", message)],
            when=when,
        )
    )


def inbound_receiver(
    factory: sessionmaker[Session],
    options: ApplyOptions | None = None,
    *,
    transport: str,
) -> Callable[[bytes, str | None], list[InboundResult]]:
    """A transport's entry point: receive(raw, reference) in its own committed transaction."""

    def receive(raw: bytes, reference: str | None) -> list[InboundResult]:
        with factory() as session, session.begin():
            set_actor(session, SYSTEM)
            return receive_interchanges(
                session, raw, transport=transport, transport_ref=reference, options=options
            )

    return receive


def sftp_inbound_handler(
    factory: sessionmaker[Session], options: ApplyOptions | None = None
) -> Callable[[str, bytes], Any]:
    """The SFTP poller's `handle(name, data)`: each file is received off the event loop."""
    receive = inbound_receiver(factory, options, transport="sftp")

    async def handle(name: str, data: bytes) -> None:
        await asyncio.to_thread(receive, data, name)

    return handle
