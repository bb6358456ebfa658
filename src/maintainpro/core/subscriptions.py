"""Pure matching of events to notification subscriptions: topics, scope, severity, quiet hours."""

from __future__ import annotations

import datetime as dt
import fnmatch
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from maintainpro.core.notifications import Channel, Subscription
from maintainpro.core.users import Role, User

SEVERITY_RANK: dict[str, int] = {"info": 0, "warning": 1, "major": 2, "critical": 3}
SEVERITIES = tuple(SEVERITY_RANK)
_HHMM = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")
_TOPIC_PATTERN = re.compile(r"^[a-z0-9_.*]{1,100}$")


def split_topics(patterns: str) -> list[str]:
    """The topic patterns of a subscription, written comma- or space-separated."""
    return [p for p in re.split(r"[,\s]+", patterns.strip()) if p]


def valid_topic_pattern(pattern: str) -> bool:
    """Whether a pattern is lower-case dotted words with optional * wildcards."""
    return bool(_TOPIC_PATTERN.match(pattern))


def topic_matches(patterns: str, topic: str) -> bool:
    """Whether a topic matches any pattern ("alert.*", "alert.raised", "*")."""
    return any(fnmatch.fnmatchcase(topic, p) for p in split_topics(patterns))


def parse_hhmm(value: str) -> dt.time:
    """A wall-clock time written HH:MM (24 h)."""
    match = _HHMM.match(value)
    if match is None:
        raise ValueError(f"not a HH:MM time: {value!r}")
    return dt.time(int(match.group(1)), int(match.group(2)))


def zone(name: str) -> ZoneInfo:
    """The IANA time zone of that name; ValueError for an unknown one."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"unknown time zone: {name!r}") from exc


def in_quiet_hours(start: str | None, end: str | None, timezone: str, now: dt.datetime) -> bool:
    """Whether now falls in the window [start, end) of local time; start > end spans midnight."""
    if not start or not end:
        return False
    begin, finish = parse_hhmm(start), parse_hhmm(end)
    if begin == finish:
        return False  # an empty window, not a whole day: silence for ever is `active=False`
    local = now.astimezone(zone(timezone)).time().replace(tzinfo=None)
    if begin < finish:
        return begin <= local < finish
    return local >= begin or local < finish


def severity_at_least(severity: str | None, minimum: str) -> bool:
    """Whether an event's severity reaches the subscription's minimum (unknown counts as info)."""
    return SEVERITY_RANK.get(severity or "", 0) >= SEVERITY_RANK.get(minimum, 1)


@dataclass(frozen=True)
class EventFacts:
    """What matching needs to know about an event."""

    topic: str
    severity: str | None = None
    site_id: int | None = None
    asset_id: int | None = None

    @classmethod
    def of(cls, topic: str, payload: Mapping[str, Any]) -> EventFacts:
        """Facts read from an outbox payload (alert events carry site, asset and severity)."""

        def as_int(value: Any) -> int | None:
            return value if isinstance(value, int) and not isinstance(value, bool) else None

        severity = payload.get("severity")
        return cls(
            topic=topic,
            severity=severity if isinstance(severity, str) else None,
            site_id=as_int(payload.get("site_id")),
            asset_id=as_int(payload.get("asset_id")),
        )


@dataclass(frozen=True)
class Rule:
    """A subscription as matching sees it (defaults applied, detached from the session)."""

    id: int | None
    channel: Channel
    user_id: int | None = None
    role: Role | None = None
    webhook_id: int | None = None
    topics: str = "alert.*"
    site_id: int | None = None
    asset_id: int | None = None
    min_severity: str = "warning"
    quiet_start: str | None = None
    quiet_end: str | None = None
    timezone: str = "UTC"
    quiet_blocks_critical: bool = False
    active: bool = True

    @classmethod
    def of(cls, sub: Subscription) -> Rule:
        """The rule of a stored subscription."""
        return cls(
            id=sub.id,
            channel=sub.channel,
            user_id=sub.user_id,
            role=sub.role,
            webhook_id=sub.webhook_id,
            topics=sub.topics or "alert.*",
            site_id=sub.site_id,
            asset_id=sub.asset_id,
            min_severity=sub.min_severity or "warning",
            quiet_start=sub.quiet_start,
            quiet_end=sub.quiet_end,
            timezone=sub.timezone or "UTC",
            quiet_blocks_critical=bool(sub.quiet_blocks_critical),
            active=sub.active is not False,
        )


@dataclass(frozen=True)
class Person:
    """A possible e-mail recipient."""

    id: int
    role: Role
    email: str | None
    active: bool = True

    @classmethod
    def of(cls, user: User) -> Person:
        """The recipient view of a user."""
        return cls(id=user.id, role=user.role, email=user.email, active=user.active is not False)


@dataclass(frozen=True)
class Recipient:
    """One delivery to make: where, because of which subscription, and whether it is held back."""

    channel: Channel
    target: str
    subscription_id: int | None
    suppressed: str | None = None


def webhook_target(webhook_id: int) -> str:
    """The delivery target naming a webhook endpoint (its URL may change; its id does not)."""
    return f"webhook:{webhook_id}"


def webhook_id_of(target: str) -> int | None:
    """The endpoint id of a webhook target, or None for anything else."""
    prefix, _, rest = target.partition(":")
    return int(rest) if prefix == "webhook" and rest.isdigit() else None


def applies(rule: Rule, facts: EventFacts) -> bool:
    """Whether a subscription wants this event at all (before quiet hours)."""
    if not rule.active or not topic_matches(rule.topics, facts.topic):
        return False
    if rule.site_id is not None and rule.site_id != facts.site_id:
        return False
    if rule.asset_id is not None and rule.asset_id != facts.asset_id:
        return False
    return severity_at_least(facts.severity, rule.min_severity)


def quiet_reason(rule: Rule, facts: EventFacts, now: dt.datetime) -> str | None:
    """Why quiet hours hold this event back, or None when it goes out now."""
    try:
        quiet = in_quiet_hours(rule.quiet_start, rule.quiet_end, rule.timezone, now)
    except ValueError:
        # A broken window must not silence alerts; validation keeps such rows out anyway.
        return None
    if not quiet:
        return None
    if facts.severity == "critical" and not rule.quiet_blocks_critical:
        return None
    return f"quiet hours {rule.quiet_start}-{rule.quiet_end} {rule.timezone}"


def recipients(
    facts: EventFacts,
    rules: Iterable[Rule],
    people: Sequence[Person],
    active_webhooks: Iterable[int],
    now: dt.datetime,
) -> list[Recipient]:
    """Every delivery an event calls for, one per (channel, target), suppressed ones included.

    A role subscription reaches every active user of that role with an e-mail address. When
    several subscriptions reach the same target, a delivery that goes out wins over a suppressed
    one, so nobody gets the same alert twice and nobody loses it to another rule's quiet hours.
    """
    by_id = {p.id: p for p in people}
    hooks = set(active_webhooks)
    chosen: dict[tuple[Channel, str], Recipient] = {}

    def offer(candidate: Recipient) -> None:
        key = (candidate.channel, candidate.target)
        held = chosen.get(key)
        if held is None or (held.suppressed is not None and candidate.suppressed is None):
            chosen[key] = candidate

    for rule in sorted(rules, key=lambda r: (r.id is None, r.id or 0)):
        if not applies(rule, facts):
            continue
        quiet = quiet_reason(rule, facts, now)
        if rule.channel is Channel.WEBHOOK:
            if rule.webhook_id is not None and rule.webhook_id in hooks:
                offer(Recipient(rule.channel, webhook_target(rule.webhook_id), rule.id, quiet))
            continue
        if rule.role is not None:
            targets = [p for p in people if p.role is rule.role and p.active and p.email]
        elif rule.user_id is not None and (person := by_id.get(rule.user_id)) is not None:
            if not person.active:
                continue
            if not person.email:
                offer(Recipient(rule.channel, f"user:{person.id}", rule.id, "no e-mail address"))
                continue
            targets = [person]
        else:
            continue
        for target in targets:
            offer(Recipient(rule.channel, (target.email or "").strip(), rule.id, quiet))
    return list(chosen.values())
