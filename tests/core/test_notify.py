"""Pure matching of events to subscriptions: topics, scope, severity, quiet hours, role fan-out."""

from __future__ import annotations

import datetime as dt

import pytest

from maintainpro.core.notifications import Channel
from maintainpro.core.subscriptions import (
    EventFacts,
    Person,
    Recipient,
    Rule,
    in_quiet_hours,
    recipients,
    severity_at_least,
    topic_matches,
)
from maintainpro.core.users import Role

NOON_UTC = dt.datetime(2026, 1, 15, 12, 0, tzinfo=dt.UTC)
ALICE = Person(1, Role.TECHNICIAN, "alice@example.com")
BOB = Person(2, Role.TECHNICIAN, "bob@example.com")
CAROL = Person(3, Role.TECHNICIAN, None)
DAVE = Person(4, Role.TECHNICIAN, "dave@example.com", active=False)
ERIN = Person(5, Role.MAINTENANCE_MANAGER, "erin@example.com")
PEOPLE = [ALICE, BOB, CAROL, DAVE, ERIN]


def facts(severity: str = "major", topic: str = "alert.raised", **kw: int) -> EventFacts:
    return EventFacts(
        topic=topic, severity=severity, site_id=kw.get("site", 1), asset_id=kw.get("asset", 10)
    )


def at(hour: int, minute: int = 0) -> dt.datetime:
    return dt.datetime(2026, 1, 15, hour, minute, tzinfo=dt.UTC)


@pytest.mark.parametrize(
    ("patterns", "topic", "expected"),
    [
        ("alert.*", "alert.raised", True),
        ("alert.*", "work_order.opened", False),
        ("alert.raised, alert.cleared", "alert.cleared", True),
        ("alert.raised", "alert.escalated", False),
        ("*", "anything.at.all", True),
    ],
)
def test_topic_patterns(patterns: str, topic: str, expected: bool) -> None:
    assert topic_matches(patterns, topic) is expected


def test_severity_order() -> None:
    assert severity_at_least("critical", "major")
    assert severity_at_least("major", "major")
    assert not severity_at_least("warning", "major")
    assert not severity_at_least(None, "warning")


@pytest.mark.parametrize(
    ("now", "quiet"),
    [
        (at(21, 59), False),
        (at(22, 0), True),
        (at(23, 30), True),
        (at(0, 0), True),
        (at(5, 59), True),
        (at(6, 0), False),
        (at(12, 0), False),
    ],
)
def test_quiet_hours_across_midnight(now: dt.datetime, quiet: bool) -> None:
    assert in_quiet_hours("22:00", "06:00", "UTC", now) is quiet


def test_quiet_hours_within_a_day_and_empty_window() -> None:
    assert in_quiet_hours("12:00", "13:00", "UTC", at(12, 30))
    assert not in_quiet_hours("12:00", "13:00", "UTC", at(13, 0))
    assert not in_quiet_hours("12:00", "12:00", "UTC", at(12, 0))
    assert not in_quiet_hours(None, None, "UTC", at(12, 0))


def test_quiet_hours_follow_the_subscribers_time_zone() -> None:
    # 22:30 UTC on 15 January is 07:30 next day in Tokyo (UTC+9) and 17:30 in New York (UTC-5).
    late = at(22, 30)
    assert in_quiet_hours("22:00", "06:00", "UTC", late)
    assert not in_quiet_hours("22:00", "06:00", "Asia/Tokyo", late)
    assert not in_quiet_hours("22:00", "06:00", "America/New_York", late)
    # 04:00 UTC is 23:00 in New York: quiet there, not in UTC.
    assert in_quiet_hours("22:00", "06:00", "America/New_York", at(4))
    assert not in_quiet_hours("22:00", "06:00", "UTC", at(7))


def test_quiet_hours_respect_daylight_saving_time() -> None:
    # Berlin is UTC+2 in July: 20:30 UTC is 22:30 local (quiet), while in January it is 21:30.
    summer = dt.datetime(2026, 7, 15, 20, 30, tzinfo=dt.UTC)
    winter = dt.datetime(2026, 1, 15, 20, 30, tzinfo=dt.UTC)
    assert in_quiet_hours("22:00", "06:00", "Europe/Berlin", summer)
    assert not in_quiet_hours("22:00", "06:00", "Europe/Berlin", winter)


def email(rule_id: int, user: Person, **kw: object) -> Rule:
    return Rule(id=rule_id, channel=Channel.EMAIL, user_id=user.id, **kw)  # type: ignore[arg-type]


def test_scope_by_site_asset_and_severity() -> None:
    rules = [
        email(1, ALICE, site_id=1),
        email(2, BOB, asset_id=99),
        email(3, ERIN, min_severity="critical"),
    ]
    got = recipients(facts("major", site=1, asset=10), rules, PEOPLE, [], NOON_UTC)
    assert [r.target for r in got] == ["alice@example.com"]
    got = recipients(facts("critical", site=2, asset=99), rules, PEOPLE, [], NOON_UTC)
    assert sorted(r.target for r in got) == ["bob@example.com", "erin@example.com"]


def test_inactive_subscription_and_other_topics_match_nothing() -> None:
    rules = [email(1, ALICE, active=False), email(2, BOB, topics="work_order.*")]
    assert recipients(facts(), rules, PEOPLE, [], NOON_UTC) == []


def test_quiet_hours_suppress_but_critical_passes_unless_blocked() -> None:
    quiet = {"quiet_start": "11:00", "quiet_end": "13:00", "timezone": "UTC"}
    rules = [email(1, ALICE, **quiet), email(2, BOB, quiet_blocks_critical=True, **quiet)]
    major = recipients(facts("major"), rules, PEOPLE, [], NOON_UTC)
    assert {r.target: r.suppressed for r in major} == {
        "alice@example.com": "quiet hours 11:00-13:00 UTC",
        "bob@example.com": "quiet hours 11:00-13:00 UTC",
    }
    critical = recipients(facts("critical"), rules, PEOPLE, [], NOON_UTC)
    assert {r.target: r.suppressed for r in critical} == {
        "alice@example.com": None,
        "bob@example.com": "quiet hours 11:00-13:00 UTC",
    }


def test_role_subscription_fans_out_to_active_users_with_email() -> None:
    rule = Rule(id=7, channel=Channel.EMAIL, role=Role.TECHNICIAN)
    got = recipients(facts(), [rule], PEOPLE, [], NOON_UTC)
    assert got == [
        Recipient(Channel.EMAIL, "alice@example.com", 7),
        Recipient(Channel.EMAIL, "bob@example.com", 7),
    ]


def test_one_delivery_per_target_and_sending_wins_over_suppressed() -> None:
    role_rule = Rule(id=1, channel=Channel.EMAIL, role=Role.TECHNICIAN)
    # Alice's own rule is in quiet hours, but the role rule still reaches her: one e-mail.
    own = email(2, ALICE, quiet_start="11:00", quiet_end="13:00")
    got = recipients(facts(), [own, role_rule], PEOPLE, [], NOON_UTC)
    assert sorted((r.target, r.suppressed) for r in got) == [
        ("alice@example.com", None),
        ("bob@example.com", None),
    ]


def test_user_without_email_is_recorded_and_inactive_user_skipped() -> None:
    got = recipients(facts(), [email(1, CAROL), email(2, DAVE)], PEOPLE, [], NOON_UTC)
    assert got == [Recipient(Channel.EMAIL, "user:3", 1, "no e-mail address")]


def test_webhook_subscription_needs_an_active_endpoint() -> None:
    rules = [
        Rule(id=1, channel=Channel.WEBHOOK, webhook_id=5),
        Rule(id=2, channel=Channel.WEBHOOK, webhook_id=6),
    ]
    got = recipients(facts(), rules, PEOPLE, [5], NOON_UTC)
    assert got == [Recipient(Channel.WEBHOOK, "webhook:5", 1)]


def test_event_facts_from_an_alert_payload() -> None:
    payload = {"severity": "critical", "site_id": 3, "asset_id": 8, "title": "x", "value": 1.5}
    assert EventFacts.of("alert.raised", payload) == EventFacts("alert.raised", "critical", 3, 8)
    assert EventFacts.of("alert.raised", {"site_id": True}) == EventFacts("alert.raised")
