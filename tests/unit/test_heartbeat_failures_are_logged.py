"""A heartbeat that fails says why, once per distinct failure, at a level people see: a
fault there would otherwise show up only as a run declared Crashed."""

from __future__ import annotations

import logging
from types import SimpleNamespace

import redis

from flows.heartbeat import Heartbeat
from tests.conftest import wait_until


def heartbeat_failing_with(failures: list[BaseException]) -> tuple[Heartbeat, list[int]]:
    """A heartbeat whose beats raise `failures` in turn, then succeed; and its beat count."""
    root = SimpleNamespace(run=SimpleNamespace(id="run-1", name="run-1"),
                           runtime=SimpleNamespace(settings=SimpleNamespace(
                               heartbeat_interval_s=0.1)))
    heartbeat = Heartbeat(root)  # type: ignore[arg-type]
    beats = [0]

    def beat(_now) -> None:
        beats[0] += 1
        if failures:
            raise failures.pop(0)

    heartbeat.beat = beat  # type: ignore[method-assign]
    return heartbeat, beats


def heartbeat_records(caplog) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "flowkeeper.sdk" and "heartbeat" in r.msg]


def test_a_redis_outage_is_logged_once_as_a_warning_and_the_recovery_too(caplog):
    outage = [redis.ConnectionError("Connection refused") for _ in range(3)]
    heartbeat, beats = heartbeat_failing_with(outage)
    with caplog.at_level(logging.DEBUG, logger="flowkeeper.sdk"):
        heartbeat.start()
        try:
            wait_until(lambda: beats[0] >= 5, 10, message="five beats")
        finally:
            heartbeat.stop()
    records = heartbeat_records(caplog)
    assert [(r.levelno, r.getMessage()) for r in records] == [
        (logging.WARNING, "heartbeat of flow run run-1 failed (retried every 0.1 s): "
                          "ConnectionError: Connection refused"),
        (logging.WARNING, "heartbeat of flow run run-1 renewed again"),
    ]


def test_a_fault_in_the_beat_is_logged_with_its_traceback_once_per_distinct_failure(caplog):
    faults: list[BaseException] = [KeyError("cancel_requested"), KeyError("cancel_requested"),
                                   TypeError("bad flag")]
    heartbeat, beats = heartbeat_failing_with(faults)
    with caplog.at_level(logging.DEBUG, logger="flowkeeper.sdk"):
        heartbeat.start()
        try:
            wait_until(lambda: beats[0] >= 4, 10, message="four beats")
        finally:
            heartbeat.stop()
    failures = [r for r in heartbeat_records(caplog) if r.levelno >= logging.ERROR]
    assert [r.getMessage() for r in failures] == [
        "heartbeat of flow run run-1 failed: KeyError: 'cancel_requested'",
        "heartbeat of flow run run-1 failed: TypeError: bad flag",
    ]
    assert all(r.exc_info is not None for r in failures)
