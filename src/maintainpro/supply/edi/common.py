"""Value objects shared by several transaction sets (REF, DTM, N1 loop, TD5, AMT, SAC)."""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from datetime import date, time
from decimal import Decimal

from maintainpro.supply.edi.errors import X12MappingError
from maintainpro.supply.edi.model import Segment, TransactionSet
from maintainpro.supply.edi.values import (
    format_date,
    format_decimal,
    format_implied,
    format_time,
    optional_decimal,
    optional_implied,
    optional_time,
    required_date,
    required_decimal,
    required_text,
    text,
)


@dataclass(frozen=True, slots=True)
class Reference:
    """A REF reference: qualifier, identifier and optional description."""

    qualifier: str
    value: str
    description: str = ""


@dataclass(frozen=True, slots=True)
class DateReference:
    """A DTM date/time reference, e.g. qualifier 011 = shipped."""

    qualifier: str
    date: date
    time: time | None = None


@dataclass(frozen=True, slots=True)
class ProductId:
    """A product/service identifier pair such as (VN, vendor part number)."""

    qualifier: str
    value: str


@dataclass(frozen=True, slots=True)
class Party:
    """An N1 loop: entity role, name, identifier and address (N2/N3/N4)."""

    entity_code: str
    name: str = ""
    id_qualifier: str = ""
    identifier: str = ""
    additional_names: tuple[str, ...] = ()
    address_lines: tuple[str, ...] = ()
    city: str = ""
    state: str = ""
    postal_code: str = ""
    country: str = ""


@dataclass(frozen=True, slots=True)
class CarrierRouting:
    """A TD5 carrier detail; `identifier` is a SCAC when `id_qualifier` is 2."""

    routing_sequence: str = ""
    id_qualifier: str = ""
    identifier: str = ""
    transport_method: str = ""
    routing: str = ""

    @property
    def scac(self) -> str | None:
        """The Standard Carrier Alpha Code, when the identifier is one."""
        return self.identifier if self.id_qualifier == "2" and self.identifier else None


@dataclass(frozen=True, slots=True)
class Amount:
    """An AMT monetary amount with its qualifier (e.g. TT total, 1 line item total)."""

    qualifier: str
    amount: Decimal


@dataclass(frozen=True, slots=True)
class AllowanceCharge:
    """A SAC allowance (A), charge (C) or informational (N) amount; amount is N2."""

    indicator: str
    code: str
    amount: Decimal | None = None
    percent: Decimal | None = None
    description: str = ""

    @property
    def signed_amount(self) -> Decimal:
        """Amount as it affects a total: charges add, allowances subtract, N is zero."""
        amount = self.amount or Decimal(0)
        return {"C": amount, "A": -amount}.get(self.indicator, Decimal(0))


def require_set(transaction_set: TransactionSet, set_id: str) -> None:
    """Raise unless the transaction set has the expected ST01."""
    if transaction_set.set_id != set_id:
        raise X12MappingError(
            f"expected a {set_id} transaction set, got {transaction_set.set_id!r}",
            transaction_set.header.position,
        )


def require_segment(
    transaction_set: TransactionSet, segments: Sequence[Segment], tag: str
) -> Segment:
    """Return the first segment with `tag`, raising a mapping error when missing."""
    for segment in segments:
        if segment.tag == tag:
            return segment
    raise X12MappingError(
        f"{transaction_set.set_id} {transaction_set.control_number} has no {tag} segment",
        transaction_set.header.position,
    )


def split_loops(
    segments: Iterable[Segment], loop_tag: str, summary_tags: Collection[str]
) -> tuple[list[Segment], list[list[Segment]], list[Segment]]:
    """Split a body into heading, loops starting at `loop_tag`, and summary."""
    head: list[Segment] = []
    loops: list[list[Segment]] = []
    summary: list[Segment] = []
    in_summary = False
    for segment in segments:
        if segment.tag in summary_tags:
            in_summary = True
        if in_summary:
            summary.append(segment)
        elif segment.tag == loop_tag:
            loops.append([segment])
        elif loops:
            loops[-1].append(segment)
        else:
            head.append(segment)
    return head, loops, summary


def read_reference(segment: Segment) -> Reference:
    """Map a REF segment."""
    return Reference(required_text(segment, 1), text(segment, 2), text(segment, 3))


def reference_segment(reference: Reference) -> Segment:
    """Write a REF segment."""
    return Segment.of("REF", reference.qualifier, reference.value, reference.description)


def read_date_reference(segment: Segment) -> DateReference:
    """Map a DTM segment."""
    return DateReference(
        required_text(segment, 1), required_date(segment, 2), optional_time(segment, 3)
    )


def date_reference_segment(reference: DateReference) -> Segment:
    """Write a DTM segment."""
    return Segment.of(
        "DTM", reference.qualifier, format_date(reference.date), format_time(reference.time)
    )


def read_product_ids(segment: Segment, first: int) -> tuple[ProductId, ...]:
    """Read qualifier/value pairs starting at element `first` (e.g. PO106/PO107...)."""
    ids: list[ProductId] = []
    for number in range(first, len(segment.elements) + 1, 2):
        qualifier, value = text(segment, number), text(segment, number + 1)
        if qualifier or value:
            ids.append(ProductId(qualifier, value))
    return tuple(ids)


def product_id_elements(ids: Iterable[ProductId]) -> list[str]:
    """Flatten product identifiers into qualifier/value element pairs."""
    elements: list[str] = []
    for product in ids:
        elements += [product.qualifier, product.value]
    return elements


def read_descriptions(segments: Iterable[Segment]) -> tuple[str, ...]:
    """Collect PID05 free-form descriptions."""
    return tuple(text(s, 5) for s in segments if s.tag == "PID" and text(s, 5))


def description_segments(descriptions: Iterable[str]) -> list[Segment]:
    """Write free-form PID segments."""
    return [Segment.of("PID", "F", "", "", "", description) for description in descriptions]


def _party(loop: Sequence[Segment]) -> Party:
    n1 = loop[0]
    names: list[str] = []
    lines: list[str] = []
    city = state = postal_code = country = ""
    for segment in loop[1:]:
        pair = [v for v in (text(segment, 1), text(segment, 2)) if v]
        if segment.tag == "N2":
            names += pair
        elif segment.tag == "N3":
            lines += pair
        else:
            city, state = text(segment, 1), text(segment, 2)
            postal_code, country = text(segment, 3), text(segment, 4)
    return Party(
        required_text(n1, 1),
        text(n1, 2),
        text(n1, 3),
        text(n1, 4),
        tuple(names),
        tuple(lines),
        city,
        state,
        postal_code,
        country,
    )


def read_parties(segments: Iterable[Segment]) -> tuple[Party, ...]:
    """Read every N1 loop (N1 with its N2/N3/N4) in `segments`."""
    loops: list[list[Segment]] = []
    for segment in segments:
        if segment.tag == "N1":
            loops.append([segment])
        elif loops and segment.tag in {"N2", "N3", "N4"}:
            loops[-1].append(segment)
    return tuple(_party(loop) for loop in loops)


def party_segments(party: Party) -> list[Segment]:
    """Write an N1 loop."""
    segments = [
        Segment.of("N1", party.entity_code, party.name, party.id_qualifier, party.identifier)
    ]
    names, lines = party.additional_names, party.address_lines
    segments += [Segment.of("N2", *names[i : i + 2]) for i in range(0, len(names), 2)]
    segments += [Segment.of("N3", *lines[i : i + 2]) for i in range(0, len(lines), 2)]
    if party.city or party.state or party.postal_code or party.country:
        segments.append(Segment.of("N4", party.city, party.state, party.postal_code, party.country))
    return segments


def read_carrier(segment: Segment) -> CarrierRouting:
    """Map a TD5 segment."""
    return CarrierRouting(*(text(segment, number) for number in range(1, 6)))


def carrier_segment(carrier: CarrierRouting) -> Segment:
    """Write a TD5 segment."""
    return Segment.of(
        "TD5",
        carrier.routing_sequence,
        carrier.id_qualifier,
        carrier.identifier,
        carrier.transport_method,
        carrier.routing,
    )


def read_amount(segment: Segment) -> Amount:
    """Map an AMT segment."""
    return Amount(required_text(segment, 1), required_decimal(segment, 2))


def amount_segment(amount: Amount) -> Segment:
    """Write an AMT segment."""
    return Segment.of("AMT", amount.qualifier, format_decimal(amount.amount))


def read_allowance_charge(segment: Segment) -> AllowanceCharge:
    """Map a SAC segment (SAC05 amount is N2, SAC07 percent is R, SAC15 description)."""
    return AllowanceCharge(
        required_text(segment, 1),
        text(segment, 2),
        optional_implied(segment, 5),
        optional_decimal(segment, 7),
        text(segment, 15),
    )


def allowance_charge_segment(charge: AllowanceCharge) -> Segment:
    """Write a SAC segment."""
    amount = format_implied(charge.amount) if charge.amount is not None else ""
    percent = format_decimal(charge.percent) if charge.percent is not None else ""
    elements = [charge.indicator, charge.code, "", "", amount, "Z" if percent else "", percent]
    if charge.description:
        elements += [""] * 7 + [charge.description]
    return Segment.of("SAC", *elements)
