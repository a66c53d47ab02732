"""Due times of cron and interval schedules, computed without Redis or a clock."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from services.core.errors import InvalidInput
from services.core.models import Schedule
from services.core.schedules import due_times


def at(hour: int, minute: int = 0, second: int = 0, day: int = 1) -> datetime:
    return datetime(2024, 6, day, hour, minute, second, tzinfo=UTC)


def test_interval_times_are_anchored_at_the_epoch_not_at_the_start():
    schedule = Schedule(interval_seconds=600)
    from_one_start = due_times(schedule, at(10, 3, 17), at(11))
    from_another = due_times(schedule, at(10, 7, 59), at(11))
    assert from_one_start == from_another
    assert from_one_start == [at(10, 10), at(10, 20), at(10, 30), at(10, 40), at(10, 50), at(11)]


def test_the_window_excludes_after_and_includes_until():
    schedule = Schedule(interval_seconds=3600)
    assert due_times(schedule, at(10), at(12)) == [at(11), at(12)]


def test_cron_times_in_utc():
    schedule = Schedule(cron="*/15 * * * *")
    assert due_times(schedule, at(9, 50), at(10, 31)) == [at(10), at(10, 15), at(10, 30)]


def test_cron_is_read_in_the_schedules_timezone():
    schedule = Schedule(cron="0 2 * * *", timezone="Europe/Paris")
    times = due_times(schedule, at(0, day=1), at(23, day=2))
    # 02:00 in Paris is 00:00 UTC in summer (CEST, UTC+2)
    assert times == [at(0, day=2)]


def test_cron_keeps_local_time_across_a_dst_change():
    schedule = Schedule(cron="0 12 * * *", timezone="America/New_York")
    start = datetime(2024, 3, 9, 0, tzinfo=UTC)
    times = due_times(schedule, start, start + timedelta(days=2))
    # noon EST is 17:00 UTC; after the switch to EDT on March 10, noon is 16:00 UTC
    assert [t.hour for t in times] == [17, 16]


def test_the_limit_caps_how_many_times_are_returned():
    schedule = Schedule(interval_seconds=1)
    times = due_times(schedule, at(10), at(11), limit=5)
    assert times == [at(10, 0, s) for s in range(1, 6)]


def test_an_empty_or_reversed_window_has_no_times():
    schedule = Schedule(cron="* * * * *")
    assert due_times(schedule, at(10), at(10)) == []
    assert due_times(schedule, at(11), at(10)) == []


def test_the_first_due_time_is_the_first_one_after_the_window_opens():
    assert due_times(Schedule(cron="30 4 * * *"), at(5), at(5, day=3), limit=1) == [
        at(4, 30, day=2)]


def test_an_unknown_timezone_is_a_clear_error():
    with pytest.raises(InvalidInput, match="unknown timezone 'Mars/Olympus'"):
        due_times(Schedule(cron="* * * * *", timezone="Mars/Olympus"), at(10), at(11))


def test_times_are_utc():
    schedule = Schedule(cron="0 * * * *", timezone="Asia/Tokyo")
    assert all(t.tzinfo is UTC for t in due_times(schedule, at(10), at(13)))
