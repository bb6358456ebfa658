"""Write a 214 carrier shipment status (for partner simulators and round-trip tests).

References are written as L11 segments (identifier first, qualifier second); each status is an
LX loop with its AT7 and, when known, the MS1 location and MS2 equipment.
"""

from __future__ import annotations

from maintainpro.supply.edi.carrier_status import CarrierStatus, StatusEvent
from maintainpro.supply.edi.common import party_segments
from maintainpro.supply.edi.envelope import TransactionContent
from maintainpro.supply.edi.model import Segment
from maintainpro.supply.edi.values import format_date, format_time


def _event_segments(number: int, event: StatusEvent) -> list[Segment]:
    segments = [
        Segment.of("LX", str(number)),
        Segment.of(
            "AT7",
            event.status_code,
            event.reason_code,
            event.appointment_code,
            event.appointment_reason,
            format_date(event.date),
            format_time(event.time),
            event.time_code,
        ),
    ]
    if event.city or event.state or event.country:
        segments.append(Segment.of("MS1", event.city, event.state, event.country))
    if event.equipment_owner or event.equipment_number:
        segments.append(Segment.of("MS2", event.equipment_owner, event.equipment_number))
    return segments


def carrier_status_content(status: CarrierStatus) -> TransactionContent:
    """Write a CarrierStatus as the body of a 214 transaction set."""
    segments = [Segment.of("B10", status.reference, status.shipment_id, status.scac)]
    segments += [
        Segment.of("L11", reference.value, reference.qualifier, reference.description)
        for reference in status.references
    ]
    for party in status.parties:
        segments += party_segments(party)
    for number, event in enumerate(status.events, start=1):
        segments += _event_segments(number, event)
    return TransactionContent("214", "QM", tuple(segments))
