"""Carrier webhooks, pure: signature checks, the three payload shapes, status normalisation.

Three shapes are read (docs/tracking.md has examples):

* generic: ``{"tracking_number", "carrier"?, "estimated_delivery"?, "events": [{"status" or
  "code", "occurred_at", "location"?, "message"?}]}``; signed with ``X-MaintainPro-Signature:
  sha256=<hex>``, the same scheme as the hub's own outgoing webhooks;
* EasyPost-like: an Event whose ``result`` is a Tracker (``tracking_code``, ``carrier``,
  ``status``, ``est_delivery_date``, ``tracking_details[]``); ``X-Hmac-Signature:
  hmac-sha256-hex=<hex>``;
* AfterShip-like: ``{"msg": {"tracking_number", "slug", "tag", "expected_delivery",
  "checkpoints": [{"checkpoint_time", "tag", "message", "location"}]}}``;
  ``aftership-hmac-sha256: <base64>``.

Every signature is an HMAC-SHA256 of the exact body bytes under the one shared secret.
Timestamps must carry a UTC offset: a carrier's local time without one cannot be placed.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
import hmac
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from maintainpro.supply.shipments import ShipmentStatus

T = ShipmentStatus
GENERIC_HEADER = "x-maintainpro-signature"
EASYPOST_HEADER = "x-hmac-signature"
AFTERSHIP_HEADER = "aftership-hmac-sha256"
MAX_EVENTS = 200
MAX_TEXT = 200

# Our own names (the generic shape) and common synonyms.
GENERIC_STATUS: Mapping[str, ShipmentStatus] = {
    "info_received": T.INFO_RECEIVED,
    "pre_transit": T.INFO_RECEIVED,
    "label_created": T.INFO_RECEIVED,
    "in_transit": T.IN_TRANSIT,
    "out_for_delivery": T.OUT_FOR_DELIVERY,
    "delivered": T.DELIVERED,
    "exception": T.EXCEPTION,
    "failed_attempt": T.EXCEPTION,
    "returned": T.EXCEPTION,
}
# EasyPost Tracker.status and tracking_details[].status.
EASYPOST_STATUS: Mapping[str, ShipmentStatus] = {
    "pre_transit": T.INFO_RECEIVED,
    "in_transit": T.IN_TRANSIT,
    "out_for_delivery": T.OUT_FOR_DELIVERY,
    "delivered": T.DELIVERED,
    # Waiting at a pick-up point is not a delivery to us: somebody has to act.
    "available_for_pickup": T.EXCEPTION,
    "return_to_sender": T.EXCEPTION,
    "failure": T.EXCEPTION,
    "cancelled": T.EXCEPTION,
    "error": T.EXCEPTION,
}
# AfterShip tags (msg.tag and checkpoints[].tag).
AFTERSHIP_TAG: Mapping[str, ShipmentStatus] = {
    "Pending": T.INFO_RECEIVED,
    "InfoReceived": T.INFO_RECEIVED,
    "InTransit": T.IN_TRANSIT,
    "OutForDelivery": T.OUT_FOR_DELIVERY,
    "Delivered": T.DELIVERED,
    "AvailableForPickup": T.EXCEPTION,
    "AttemptFail": T.EXCEPTION,
    "Exception": T.EXCEPTION,
    "Expired": T.EXCEPTION,
}


class PayloadError(ValueError):
    """A signed body that is not a carrier report we can read."""


@dataclass(frozen=True)
class CarrierScan:
    """One normalised status report."""

    status: ShipmentStatus
    occurred_at: dt.datetime
    raw_code: str
    location: str | None = None
    message: str = ""


@dataclass(frozen=True)
class CarrierReport:
    """What a webhook says about one tracking number; ``problems`` lists unusable events."""

    format: str
    tracking_number: str
    carrier: str | None
    scans: tuple[CarrierScan, ...]
    estimated_delivery: dt.datetime | None = None
    problems: tuple[str, ...] = field(default=())


# --- signatures ---------------------------------------------------------------------------


def _digest(secret: str, body: bytes) -> bytes:
    # NFKD as EasyPost's client libraries normalise the secret; a no-op for ASCII secrets.
    key = unicodedata.normalize("NFKD", secret).encode()
    return hmac.new(key, body, hashlib.sha256).digest()


def sign_generic(secret: str, body: bytes) -> str:
    """The X-MaintainPro-Signature value for a body."""
    return "sha256=" + _digest(secret, body).hex()


def sign_easypost(secret: str, body: bytes) -> str:
    """The X-Hmac-Signature value EasyPost would send."""
    return "hmac-sha256-hex=" + _digest(secret, body).hex()


def sign_aftership(secret: str, body: bytes) -> str:
    """The aftership-hmac-sha256 value AfterShip would send."""
    return base64.b64encode(_digest(secret, body)).decode()


def signature_valid(secret: str, body: bytes, headers: Mapping[str, str]) -> bool:
    """Whether any supported signature header is the body's HMAC under the secret.

    Compared in constant time; an empty secret never verifies.
    """
    if not secret:
        return False
    expected = _digest(secret, body)
    found = {k.lower(): v.strip() for k, v in headers.items()}
    candidates: list[bytes] = []
    generic = found.get(GENERIC_HEADER, "")
    if generic.startswith("sha256="):
        candidates.append(_unhex(generic.removeprefix("sha256=")))
    easypost = found.get(EASYPOST_HEADER, "")
    if easypost.startswith("hmac-sha256-hex="):
        candidates.append(_unhex(easypost.removeprefix("hmac-sha256-hex=")))
    aftership = found.get(AFTERSHIP_HEADER, "")
    if aftership:
        try:
            candidates.append(base64.b64decode(aftership, validate=True))
        except (binascii.Error, ValueError):
            candidates.append(b"")
    return any(hmac.compare_digest(expected, c) for c in candidates)


def _unhex(text: str) -> bytes:
    try:
        return bytes.fromhex(text)
    except ValueError:
        return b""


# --- payloads -----------------------------------------------------------------------------


def _text(value: Any, limit: int = MAX_TEXT) -> str:
    if not isinstance(value, str | int):
        return ""
    # Control characters have no place in a carrier's words; the rest is stored verbatim.
    cleaned = "".join(ch for ch in str(value) if ch.isprintable())
    return cleaned.strip()[:limit]


def parse_moment(value: Any) -> dt.datetime:
    """An ISO 8601 timestamp with an offset, as aware UTC; ValueError otherwise."""
    if not isinstance(value, str) or not value.strip():
        raise ValueError("a timestamp is missing")
    try:
        moment = dt.datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        raise ValueError("a timestamp is not ISO 8601") from None
    if moment.tzinfo is None:
        raise ValueError("a timestamp has no UTC offset")
    return moment.astimezone(dt.UTC)


def _optional_moment(value: Any, problems: list[str], what: str) -> dt.datetime | None:
    if value in (None, ""):
        return None
    try:
        return parse_moment(value)
    except ValueError as exc:
        problems.append(f"{what}: {exc}")
        return None


def _scan(
    table: Mapping[str, ShipmentStatus],
    code: Any,
    when: Any,
    location: str | None,
    message: Any,
    problems: list[str],
    index: int,
) -> CarrierScan | None:
    raw = _text(code, 32)
    status = table.get(raw)
    if status is None:
        problems.append(f"event {index}: unknown status code {raw or '(none)'}")
        return None
    try:
        occurred = parse_moment(when)
    except ValueError as exc:
        problems.append(f"event {index}: {exc}")
        return None
    return CarrierScan(status, occurred, raw, location or None, _text(message, 500))


def _list(value: Any) -> list[Any]:
    if not isinstance(value, list):
        return []
    if len(value) > MAX_EVENTS:
        raise PayloadError(f"more than {MAX_EVENTS} events in one report")
    return value


def _tracking(value: Any) -> str:
    number = _text(value, 64)
    if not number:
        raise PayloadError("no tracking number")
    return number


def _generic(body: Mapping[str, Any]) -> CarrierReport:
    problems: list[str] = []
    scans = []
    for index, event in enumerate(_list(body.get("events")), start=1):
        if not isinstance(event, dict):
            problems.append(f"event {index}: not an object")
            continue
        code = event.get("status", event.get("code"))
        scan = _scan(
            GENERIC_STATUS,
            code.lower() if isinstance(code, str) else code,
            event.get("occurred_at"),
            _text(event.get("location")),
            event.get("message"),
            problems,
            index,
        )
        if scan is not None:
            scans.append(scan)
    return CarrierReport(
        format="generic",
        tracking_number=_tracking(body.get("tracking_number")),
        carrier=_text(body.get("carrier"), 120) or None,
        scans=tuple(scans),
        estimated_delivery=_optional_moment(
            body.get("estimated_delivery"), problems, "estimated_delivery"
        ),
        problems=tuple(problems),
    )


def _place(value: Any) -> str | None:
    if not isinstance(value, dict):
        return None
    parts = [_text(value.get(k), 60) for k in ("city", "state", "country")]
    return ", ".join(p for p in parts if p) or None


def _easypost(body: Mapping[str, Any]) -> CarrierReport:
    tracker = body.get("result")
    if not isinstance(tracker, dict) or tracker.get("object") != "Tracker":
        raise PayloadError("an EasyPost event that is not about a tracker")
    problems: list[str] = []
    scans = []
    for index, detail in enumerate(_list(tracker.get("tracking_details")), start=1):
        if not isinstance(detail, dict):
            problems.append(f"event {index}: not an object")
            continue
        scan = _scan(
            EASYPOST_STATUS,
            detail.get("status"),
            detail.get("datetime"),
            _place(detail.get("tracking_location")),
            detail.get("message"),
            problems,
            index,
        )
        if scan is not None:
            scans.append(scan)
    return CarrierReport(
        format="easypost",
        tracking_number=_tracking(tracker.get("tracking_code")),
        carrier=_text(tracker.get("carrier"), 120) or None,
        scans=tuple(scans),
        estimated_delivery=_optional_moment(
            tracker.get("est_delivery_date"), problems, "est_delivery_date"
        ),
        problems=tuple(problems),
    )


def _aftership(body: Mapping[str, Any]) -> CarrierReport:
    msg = body.get("msg")
    if not isinstance(msg, dict):
        raise PayloadError("an AfterShip event without msg")
    problems: list[str] = []
    scans = []
    for index, checkpoint in enumerate(_list(msg.get("checkpoints")), start=1):
        if not isinstance(checkpoint, dict):
            problems.append(f"event {index}: not an object")
            continue
        location = _text(checkpoint.get("location")) or _place(checkpoint)
        scan = _scan(
            AFTERSHIP_TAG,
            checkpoint.get("tag"),
            checkpoint.get("checkpoint_time"),
            location,
            checkpoint.get("message"),
            problems,
            index,
        )
        if scan is not None:
            scans.append(scan)
    return CarrierReport(
        format="aftership",
        tracking_number=_tracking(msg.get("tracking_number")),
        carrier=_text(msg.get("slug"), 120) or None,
        scans=tuple(scans),
        estimated_delivery=_optional_moment(
            msg.get("expected_delivery"), problems, "expected_delivery"
        ),
        problems=tuple(problems),
    )


def shape_of(body: Any) -> str:
    """Which payload shape a decoded body has: generic, easypost, aftership or unknown."""
    if not isinstance(body, dict):
        return "unknown"
    if body.get("object") == "Event" and "result" in body:
        return "easypost"
    if isinstance(body.get("msg"), dict):
        return "aftership"
    if "tracking_number" in body:
        return "generic"
    return "unknown"


def read_report(body: Any) -> CarrierReport:
    """The carrier report in a decoded JSON body; PayloadError when there is none."""
    shape = shape_of(body)
    if shape == "easypost":
        return _easypost(body)
    if shape == "aftership":
        return _aftership(body)
    if shape == "generic":
        return _generic(body)
    raise PayloadError("not a carrier report this endpoint reads (generic, EasyPost, AfterShip)")
