"""When a deployment's schedule is due: pure functions of the schedule and two instants.

Implementation notes:
- Every scheduler must compute the same due times, whatever instant it starts
  from, so that two schedulers claim the same slots (and a slot is claimed
  once). Cron times are fixed by the expression; interval times are anchored
  at the Unix epoch (multiples of the interval), not at the moment a
  scheduler started.
- Cron expressions are read in the schedule's timezone, so "0 2 * * *" in
  Europe/Paris stays at 2 am local time across DST changes; the times
  returned are in UTC.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from services.core.errors import InvalidInput
from services.core.models import Schedule

# a schedule never yields more runs than this from one computation
DEFAULT_MAX_DUE_TIMES = 100


def _zone(schedule: Schedule) -> ZoneInfo:
    try:
        return ZoneInfo(schedule.timezone)
    except (ZoneInfoNotFoundError, ValueError) as error:
        raise InvalidInput(f"schedule.timezone: unknown timezone '{schedule.timezone}'") from error


def due_times(schedule: Schedule, after: datetime, until: datetime,
              limit: int = DEFAULT_MAX_DUE_TIMES) -> list[datetime]:
    """The due times t of `schedule` with after < t <= until (UTC, oldest first, at most `limit`)."""
    if until <= after or limit <= 0:
        return []
    if schedule.interval_seconds is not None:
        return _interval_times(schedule.interval_seconds, after, until, limit)
    return _cron_times(schedule, after, until, limit)


def _interval_times(interval_s: float, after: datetime, until: datetime,
                    limit: int) -> list[datetime]:
    start = after.timestamp()
    step = math.floor(start / interval_s) + 1
    times = []
    while len(times) < limit:
        due = step * interval_s
        if due > until.timestamp():
            break
        times.append(datetime.fromtimestamp(due, UTC))
        step += 1
    return times


def _cron_times(schedule: Schedule, after: datetime, until: datetime,
                limit: int) -> list[datetime]:
    from croniter import croniter

    zone = _zone(schedule)
    iterator = croniter(schedule.cron, after.astimezone(zone))
    times = []
    while len(times) < limit:
        due = iterator.get_next(datetime).astimezone(UTC)
        if due > until:
            break
        times.append(due)
    return times


def next_run_times(schedule: Schedule, now: datetime, count: int) -> list[datetime]:
    """The next `count` due times after `now` (within a year), for a deployment's page; none
    while the schedule is paused."""
    if not schedule.active:
        return []
    return due_times(schedule, now, now + timedelta(days=366), limit=count)
