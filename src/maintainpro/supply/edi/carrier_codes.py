"""AT7 shipment status codes (X12 214) normalised to ShipmentStatus, and AT707 time codes.

The table is the documented mapping (docs/edi.md); a code missing from it is reported, never
guessed. Estimated-arrival codes (AG, X2) and delivery appointments (AT703 AB) carry a future
date: they set the expected delivery instead of being a status event.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from maintainpro.supply.shipments import ShipmentStatus

T = ShipmentStatus
AT7_STATUS: Mapping[str, ShipmentStatus] = {
    # Before the carrier moves the goods.
    "X3": T.INFO_RECEIVED,  # arrived at pick-up location
    "X8": T.INFO_RECEIVED,  # arrived at pick-up location loading dock
    # On the way.
    "AF": T.IN_TRANSIT,  # carrier departed pick-up location with shipment
    "CP": T.IN_TRANSIT,  # completed loading at pick-up location
    "AM": T.IN_TRANSIT,  # loaded on truck
    "I1": T.IN_TRANSIT,  # in-gate
    "OA": T.IN_TRANSIT,  # out-gate
    "P1": T.IN_TRANSIT,  # departed terminal location
    "J1": T.IN_TRANSIT,  # delivered to connecting line
    "K1": T.IN_TRANSIT,  # arrived at customs
    "X1": T.IN_TRANSIT,  # arrived at delivery location
    "X4": T.IN_TRANSIT,  # arrived at terminal location
    "X5": T.IN_TRANSIT,  # arrived at delivery location loading dock
    "X6": T.IN_TRANSIT,  # en route to delivery location
    "S1": T.IN_TRANSIT,  # trailer spotted at consignee's location
    # Last mile.
    "OO": T.OUT_FOR_DELIVERY,  # out for delivery
    "AJ": T.OUT_FOR_DELIVERY,  # tendered for delivery
    "AV": T.OUT_FOR_DELIVERY,  # available for delivery
    # Done.
    "D1": T.DELIVERED,  # completed unloading at delivery location
    "CD": T.DELIVERED,  # carrier departed delivery location
    # Something went wrong.
    "A3": T.EXCEPTION,  # shipment returned to shipper
    "A7": T.EXCEPTION,  # refused by consignee
    "A9": T.EXCEPTION,  # shipment damaged
    "AH": T.EXCEPTION,  # attempted delivery
    "AI": T.EXCEPTION,  # shipment has been reconsigned
    "AP": T.EXCEPTION,  # delivery not completed
    "SD": T.EXCEPTION,  # shipment delayed
    "CA": T.EXCEPTION,  # shipment cancelled
}
ESTIMATED_ARRIVAL = frozenset({"AG", "X2"})
# AT703 appointment codes whose date is the planned delivery (AT701 is then empty).
DELIVERY_APPOINTMENT = frozenset({"AB"})

_FIXED_OFFSETS: Mapping[str, int] = {
    "UT": 0,
    "GM": 0,
    "ES": -5,
    "ED": -4,
    "CS": -6,
    "CD": -5,
    "MS": -7,
    "MD": -6,
    "PS": -8,
    "PD": -7,
    "AS": -9,
    "AD": -8,
    "HS": -10,
}
_ZONES: Mapping[str, str] = {
    "ET": "America/New_York",
    "CT": "America/Chicago",
    "MT": "America/Denver",
    "PT": "America/Los_Angeles",
    "AT": "America/Anchorage",
    "HT": "Pacific/Honolulu",
}


def status_for(code: str) -> ShipmentStatus | None:
    """The normalised status of an AT701 code, None when it is not in the table."""
    return AT7_STATUS.get(code.strip().upper())


def zone_for(time_code: str, local: dt.tzinfo) -> dt.tzinfo:
    """The zone an AT707 time code names; LT (local time) and an empty code mean `local`."""
    code = time_code.strip().upper()
    if code in _FIXED_OFFSETS:
        return dt.timezone(dt.timedelta(hours=_FIXED_OFFSETS[code]))
    if code in _ZONES:
        try:
            return ZoneInfo(_ZONES[code])
        except ZoneInfoNotFoundError:
            # Without a tz database, standard time is the better guess than UTC.
            standard = {"ET": -5, "CT": -6, "MT": -7, "PT": -8, "AT": -9, "HT": -10}[code]
            return dt.timezone(dt.timedelta(hours=standard))
    return local


def partner_zone(name: object) -> dt.tzinfo:
    """A partner's local zone from its settings ("timezone": "Europe/Berlin"), else UTC."""
    if isinstance(name, str) and name:
        try:
            return ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError):
            return dt.UTC
    return dt.UTC


def moment(day: dt.date, at: dt.time | None, zone: dt.tzinfo) -> dt.datetime:
    """An aware UTC datetime from an X12 date, optional time and the zone they are in."""
    local = dt.datetime.combine(day, at or dt.time(0, 0), tzinfo=zone)
    return local.astimezone(dt.UTC)
