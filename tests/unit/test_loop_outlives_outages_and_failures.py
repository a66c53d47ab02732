"""The loop every long-running process runs: it waits out Redis outages with capped
backoff and two log lines, backs off failing steps with one traceback, and stops promptly."""

from __future__ import annotations

import logging
import threading
import time

import pytest
import redis

from services.core.loop import (
    FAILURE_LOG_INTERVAL_S,
    FAILURE_RETRY_MAX_S,
    OUTAGE_RETRY_INITIAL_S,
    OUTAGE_RETRY_MAX_S,
    backoff_s,
    run_loop,
    wait_for_redis,
)

LOGGER = "flowkeeper.test-loop"


class RecordingStop:
    """A stop event whose waits return at once and are recorded (no sleeping in tests)."""

    def __init__(self, clock: list[float]) -> None:
        self.waits: list[float] = []
        self.clock = clock
        self._set = False

    def is_set(self) -> bool:
        return self._set

    def set(self) -> None:
        self._set = True

    def wait(self, timeout: float) -> bool:
        self.waits.append(timeout)
        self.clock[0] += timeout
        return self._set


class ScriptedStep:
    """Raises the scripted errors in turn, then succeeds; stops the loop after `calls`."""

    def __init__(self, stop: RecordingStop, errors: list[BaseException], calls: int,
                 pause_s: float = 0.0) -> None:
        self.stop = stop
        self.errors = list(errors)
        self.calls_left = calls
        self.pause_s = pause_s
        self.calls = 0

    def __call__(self) -> float:
        self.calls += 1
        self.calls_left -= 1
        if self.calls_left <= 0:
            self.stop.set()
        if self.errors:
            raise self.errors.pop(0)
        return self.pause_s


def run_scripted(errors: list[BaseException], calls: int, pause_s: float = 0.0):
    clock = [0.0]
    stop = RecordingStop(clock)
    step = ScriptedStep(stop, errors, calls, pause_s)
    run_loop(step, stop, name="test-loop", log=logging.getLogger(LOGGER),  # type: ignore[arg-type]
             clock=lambda: clock[0])
    return step, stop


def messages(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [record for record in caplog.records if record.name == LOGGER]


def test_backoff_doubles_from_its_initial_delay_up_to_its_cap():
    delays = [backoff_s(attempt, 0.1, 5.0) for attempt in range(1, 12)]

    assert delays[:4] == pytest.approx([0.1, 0.2, 0.4, 0.8])
    assert max(delays) == 5.0 and delays[-1] == 5.0
    assert backoff_s(10_000, 0.1, 5.0) == 5.0
    assert backoff_s(0, 0.1, 5.0) == 0.0


def test_an_outage_logs_one_line_when_lost_and_one_when_back_with_its_length(caplog):
    caplog.set_level(logging.INFO, logger=LOGGER)
    outage = [redis.ConnectionError("Connection refused")] * 20

    step, stop = run_scripted(outage, calls=22)

    lines = [record.getMessage() for record in messages(caplog)]
    assert len(lines) == 2, lines
    assert "Redis unreachable" in lines[0] and "Connection refused" in lines[0]
    expected_outage_s = sum(stop.waits[:20])
    assert f"Redis reachable again after {expected_outage_s:.1f} s (20 retries)" in lines[1]
    assert all(record.exc_info is None for record in messages(caplog))
    assert step.calls == 22


def test_outage_retries_back_off_up_to_their_cap():
    step, stop = run_scripted([redis.TimeoutError("timed out")] * 15, calls=15)

    assert stop.waits[0] == pytest.approx(OUTAGE_RETRY_INITIAL_S)
    assert stop.waits == sorted(stop.waits)
    assert max(stop.waits) == OUTAGE_RETRY_MAX_S
    assert stop.waits[-1] == OUTAGE_RETRY_MAX_S


def test_builtin_connection_errors_count_as_an_outage(caplog):
    caplog.set_level(logging.INFO, logger=LOGGER)

    run_scripted([ConnectionRefusedError(111, "refused"), redis.BusyLoadingError("loading")],
                 calls=3)

    lines = [record.getMessage() for record in messages(caplog)]
    assert len(lines) == 2 and "unreachable" in lines[0] and "again after" in lines[1]


def test_after_an_outage_the_step_paces_itself_again():
    step, stop = run_scripted([redis.ConnectionError("down")] * 3, calls=6, pause_s=1.5)

    assert stop.waits[3:] == [1.5, 1.5, 1.5]


def test_a_failing_step_logs_one_traceback_and_backs_off(caplog):
    caplog.set_level(logging.INFO, logger=LOGGER)
    failures = [ValueError("bad data")] * 10

    step, stop = run_scripted(failures, calls=11)

    records = messages(caplog)
    with_traceback = [record for record in records if record.exc_info]
    assert len(with_traceback) == 1
    assert "bad data" in caplog.text
    assert stop.waits == sorted(stop.waits) and stop.waits[-1] <= FAILURE_RETRY_MAX_S
    # ten failures over more than a minute of backoff: the count is logged again at most
    # once per interval, and the recovery once
    assert sum(stop.waits) > FAILURE_LOG_INTERVAL_S
    assert 2 <= len(records) <= 2 + sum(stop.waits) // FAILURE_LOG_INTERVAL_S + 1
    assert "succeeds again after 10 failures" in records[-1].getMessage()


def test_a_failing_step_is_never_retried_faster_than_its_backoff():
    step, stop = run_scripted([RuntimeError("bug")] * 30, calls=30)

    # 30 failures take minutes of waiting, not the 6 s that 5 tries a second would
    assert sum(stop.waits) > 10 * FAILURE_RETRY_MAX_S


def test_the_stop_event_is_honoured_promptly_during_an_outage_backoff():
    stop = threading.Event()
    calls = []

    def always_down() -> float:
        calls.append(time.monotonic())
        raise redis.ConnectionError("down")

    loop = threading.Thread(target=run_loop, args=(always_down, stop),
                            kwargs={"name": "test-loop"})
    loop.start()
    deadline = time.monotonic() + 10
    while len(calls) < 6 and time.monotonic() < deadline:  # backoff now ~3 s
        time.sleep(0.05)
    asked = time.monotonic()
    stop.set()
    loop.join(5)

    assert not loop.is_alive()
    assert time.monotonic() - asked < 1.0


def test_wait_for_redis_returns_once_a_ping_answers(caplog):
    caplog.set_level(logging.INFO, logger=LOGGER)

    class FlakyClient:
        def __init__(self) -> None:
            self.pings = 0

        def ping(self) -> bool:
            self.pings += 1
            if self.pings < 4:
                raise redis.ConnectionError("down")
            return True

    client = FlakyClient()
    clock = [0.0]
    stop = RecordingStop(clock)

    answered = wait_for_redis(client, stop, name="test-loop",  # type: ignore[arg-type]
                              log=logging.getLogger(LOGGER), clock=lambda: clock[0])

    assert answered and client.pings == 4
    assert len(messages(caplog)) == 2


def test_wait_for_redis_gives_up_when_stopped():
    class DownClient:
        def ping(self) -> bool:
            raise redis.ConnectionError("down")

    stop = threading.Event()
    stop.set()

    assert wait_for_redis(DownClient(), stop, name="test-loop") is False  # type: ignore[arg-type]
