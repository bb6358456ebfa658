"""214 carrier shipment status: B10 header and AT7 status details with MS1/MS2 locations."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, time

from maintainpro.supply.edi.common import (
    Party,
    Reference,
    read_parties,
    read_reference,
    require_segment,
    require_set,
)
from maintainpro.supply.edi.model import Segment, TransactionSet
from maintainpro.supply.edi.values import optional_date, optional_time, text

DELIVERED = "D1"


@dataclass(frozen=True, slots=True)
class StatusEvent:
    """An AT7 status (AT701, e.g. D1 delivered, AF departed) or appointment (AT703)."""

    status_code: str
    reason_code: str
    appointment_code: str
    appointment_reason: str
    date: date | None
    time: time | None
    time_code: str
    city: str
    state: str
    country: str
    equipment_owner: str
    equipment_number: str

    @property
    def delivered(self) -> bool:
        """True for status D1 (completed unloading at delivery location)."""
        return self.status_code == DELIVERED


@dataclass(frozen=True, slots=True)
class CarrierStatus:
    """A 214 status message for one shipment."""

    reference: str
    shipment_id: str
    scac: str
    references: tuple[Reference, ...]
    parties: tuple[Party, ...]
    events: tuple[StatusEvent, ...]

    @property
    def delivered(self) -> bool:
        """True when any event reports delivery."""
        return any(event.delivered for event in self.events)


def _event(at7: Segment, following: list[Segment]) -> StatusEvent:
    ms1 = next((s for s in following if s.tag == "MS1"), None)
    ms2 = next((s for s in following if s.tag == "MS2"), None)
    return StatusEvent(
        status_code=text(at7, 1),
        reason_code=text(at7, 2),
        appointment_code=text(at7, 3),
        appointment_reason=text(at7, 4),
        date=optional_date(at7, 5),
        time=optional_time(at7, 6),
        time_code=text(at7, 7),
        city=text(ms1, 1) if ms1 else "",
        state=text(ms1, 2) if ms1 else "",
        country=text(ms1, 3) if ms1 else "",
        equipment_owner=text(ms2, 1) if ms2 else "",
        equipment_number=text(ms2, 2) if ms2 else "",
    )


def _events(segments: list[Segment]) -> tuple[StatusEvent, ...]:
    # MS1/MS2 belong to the preceding AT7 until the next AT7 or LX.
    groups: list[tuple[Segment, list[Segment]]] = []
    for segment in segments:
        if segment.tag in {"AT7", "LX"}:
            groups.append((segment, []))
        elif groups:
            groups[-1][1].append(segment)
    return tuple(_event(at7, rest) for at7, rest in groups if at7.tag == "AT7")


def _l11(segment: Segment) -> Reference:
    # L11 puts the identifier first and the qualifier second, unlike REF.
    return Reference(text(segment, 2), text(segment, 1), text(segment, 3))


def read_carrier_status(transaction_set: TransactionSet) -> CarrierStatus:
    """Map a 214 transaction set to a CarrierStatus."""
    require_set(transaction_set, "214")
    segments = list(transaction_set.segments)
    b10 = require_segment(transaction_set, segments, "B10")
    return CarrierStatus(
        reference=text(b10, 1),
        shipment_id=text(b10, 2),
        scac=text(b10, 3),
        references=tuple(
            _l11(s) if s.tag == "L11" else read_reference(s)
            for s in segments
            if s.tag in {"L11", "REF"}
        ),
        parties=read_parties(segments),
        events=_events(segments),
    )
