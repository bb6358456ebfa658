"""When reports run (pure): cron expressions read in an IANA time zone, DST, due and missed runs.

A schedule's cron expression is local wall-clock time in its zone. Two rules cover the days
the clocks change:

- a local time that does not exist (spring forward: 02:30 in Europe/Berlin on the last Sunday
  of March) fires once, at the moment the clock jumps (03:00 local);
- a local time that happens twice (fall back: 02:30 on the last Sunday of October) fires once,
  the first time it comes round.

A schedule keeps ``next_run_at``. When the hub finds it in the past — on time at the next
tick, or after being down — it makes exactly one run, for the latest fire time that has
passed, and moves ``next_run_at`` to the first fire time after now. Runs that were missed
while down are not replayed one by one: a report is a snapshot, and one fresh copy is what
its readers need.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from itertools import islice
from typing import Final
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import CroniterBadDateError, croniter  # type: ignore[import-untyped]

# A run found later than this after its fire time is recorded as a catch-up.
LATE_AFTER: Final = dt.timedelta(minutes=10)
# How far back a catch-up looks for the latest fire time once more than MAX_WALK were missed,
# so that a schedule firing every minute does not walk through months of missed minutes.
CATCH_UP_WINDOW: Final = dt.timedelta(days=2)
MAX_WALK: Final = 1000
_MAX_STEPS: Final = 10_000
_ZONE_NAME_CHARS: Final = frozenset(
    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789/_+-"
)


class ScheduleError(ValueError):
    """A cron expression or time zone that cannot be used (the message never repeats it)."""


def checked_cron(expression: str) -> str:
    """A usable five-field cron expression, whitespace normalised; ScheduleError otherwise."""
    fields = expression.split()
    if len(fields) != 5:
        raise ScheduleError("cron must have five fields: minute hour day-of-month month weekday")
    normal = " ".join(fields)
    if not croniter.is_valid(normal):
        raise ScheduleError("cron is not a valid expression (e.g. '0 6 * * 1' for Mondays 06:00)")
    try:
        croniter(normal, dt.datetime(2000, 1, 1)).get_next(dt.datetime)
    except (CroniterBadDateError, ValueError, KeyError) as exc:
        # e.g. "0 0 31 2 *": valid fields, but no day ever matches.
        raise ScheduleError("cron never fires (no date matches it)") from exc
    return normal


def checked_zone(name: str) -> ZoneInfo:
    """The IANA time zone of that name; ScheduleError for an unknown one."""
    # Names with other characters (paths, NULs) are refused before the zone database is asked.
    if not name or len(name) > 64 or not set(name) <= _ZONE_NAME_CHARS or ".." in name:
        raise ScheduleError("timezone must be an IANA name such as Europe/Berlin")
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ScheduleError("timezone must be an IANA name such as Europe/Berlin") from exc


def _local(moment: dt.datetime, zone: ZoneInfo) -> dt.datetime:
    """The naive wall-clock time of an aware moment in a zone."""
    return moment.astimezone(zone).replace(tzinfo=None)


def _exists(wall: dt.datetime, zone: ZoneInfo) -> bool:
    # Through UTC: astimezone() to the datetime's own zone would return it unchanged.
    return _local(wall.replace(tzinfo=zone).astimezone(dt.UTC), zone) == wall


def resolve_wall_time(wall: dt.datetime, zone: ZoneInfo) -> dt.datetime:
    """The UTC instant of a naive local time: its first occurrence, or the jump over a gap."""
    if _exists(wall, zone):
        # fold=0 is the earlier of two occurrences when the time repeats.
        return wall.replace(tzinfo=zone, fold=0).astimezone(dt.UTC)
    # In a gap, fold=1 reads the time with the offset after the jump (an instant before the
    # gap) and fold=0 with the offset before it (an instant after). The jump lies between;
    # the first instant whose local time has reached the wall time is the jump itself.
    low = wall.replace(tzinfo=zone, fold=1).astimezone(dt.UTC)
    high = wall.replace(tzinfo=zone, fold=0).astimezone(dt.UTC)
    if low > high:
        low, high = high, low
    while high - low > dt.timedelta(seconds=1):
        middle = low + (high - low) / 2
        if _local(middle, zone) >= wall:
            high = middle
        else:
            low = middle
    return high.replace(microsecond=0)


def next_fire(cron: str, zone: ZoneInfo, after: dt.datetime) -> dt.datetime:
    """The first fire time strictly after ``after`` (aware), as aware UTC."""
    if after.tzinfo is None:
        raise ValueError("after must be timezone-aware")
    wall = _local(after, zone)
    iterator = croniter(cron, wall)
    for _ in range(_MAX_STEPS):
        candidate: dt.datetime = iterator.get_next(dt.datetime)
        instant = resolve_wall_time(candidate, zone)
        # A wall time in the repeated hour can map to an instant already passed.
        if instant > after:
            return instant
    raise ScheduleError("cron does not fire after the given time")


def fire_times(
    cron: str, zone: ZoneInfo, after: dt.datetime, until: dt.datetime
) -> Iterable[dt.datetime]:
    """Every fire time in (after, until], in order (bounded by the catch-up walk's limit)."""
    moment = after
    for _ in range(_MAX_STEPS):
        moment = next_fire(cron, zone, moment)
        if moment > until:
            return
        yield moment


@dataclass(frozen=True)
class ScheduleState:
    """What the scheduler needs of a stored schedule."""

    schedule_id: int
    cron: str
    timezone: str
    enabled: bool
    next_run_at: dt.datetime | None


@dataclass(frozen=True)
class DueRun:
    """A run to create now, and where the schedule goes next."""

    schedule_id: int
    scheduled_for: dt.datetime
    next_run_at: dt.datetime
    missed: int
    catch_up: bool


def latest_due(
    cron: str, zone: ZoneInfo, next_run_at: dt.datetime, now: dt.datetime
) -> tuple[dt.datetime, int]:
    """The latest fire time in [next_run_at, now], and how many earlier ones it stands for.

    The count is exact unless a frequent schedule missed more than ``MAX_WALK`` times and the
    outage was longer than the catch-up window; then it is a lower bound.
    """
    walked = list(islice(fire_times(cron, zone, next_run_at, now), MAX_WALK))
    if len(walked) < MAX_WALK:
        return (walked[-1] if walked else next_run_at), len(walked)
    # Only the latest counts; walking every minute of a long outage would gain nothing.
    resume = max(walked[-1], now - CATCH_UP_WINDOW)
    rest = list(fire_times(cron, zone, resume, now))
    return (rest[-1] if rest else walked[-1]), len(walked) + len(rest)


def due_runs(states: Iterable[ScheduleState], now: dt.datetime) -> list[DueRun]:
    """The runs to create at ``now``: one per enabled schedule whose next run has come."""
    runs = []
    for state in states:
        if not state.enabled or state.next_run_at is None or state.next_run_at > now:
            continue
        zone = checked_zone(state.timezone)
        scheduled_for, skipped = latest_due(state.cron, zone, state.next_run_at, now)
        runs.append(
            DueRun(
                schedule_id=state.schedule_id,
                scheduled_for=scheduled_for,
                next_run_at=next_fire(state.cron, zone, now),
                missed=skipped,
                catch_up=skipped > 0 or now - scheduled_for > LATE_AFTER,
            )
        )
    return runs


def first_run(cron: str, timezone: str, now: dt.datetime) -> dt.datetime:
    """When a new (or re-enabled, or changed) schedule first fires: the next time after now."""
    return next_fire(checked_cron(cron), checked_zone(timezone), now)
