"""When a work queue is announced ready or not ready: a timeline of live and dead workers."""

from __future__ import annotations

from services.scheduler.queue_readiness import NOT_READY, READY, QueueState, decide

AFTER_S = 60.0


def replay(timeline: list[tuple[float, bool]]) -> list[tuple[float, str]]:
    """(t, live) observations -> the events announced, with their time."""
    state, announced = None, []
    for now, live in timeline:
        state, event = decide(state, live, now, AFTER_S)
        if event is not None:
            announced.append((now, event))
    return announced


def test_a_queue_is_ready_when_first_served_and_not_ready_once_after_the_delay():
    timeline = [(0, True), (1, True), (2, False), (60, False), (61, False), (62, False)]

    assert replay(timeline) == [(0, READY), (61, NOT_READY)]  # 60 s after t=1


def test_a_worker_back_within_the_delay_announces_nothing():
    assert replay([(0, True), (30, False), (59, False), (60, True), (200, True)]) == [(0, READY)]


def test_a_worker_back_after_not_ready_announces_ready_again():
    timeline = [(0, True), (100, False), (161, True), (162, True)]

    assert replay(timeline) == [(0, READY), (100, NOT_READY), (161, READY)]


def test_a_queue_never_served_starts_its_clock_when_first_followed():
    state, event = decide(None, False, 1000.0, AFTER_S)

    assert event is None and state == QueueState(True, 1000.0, never_served=True)


def test_a_queue_never_served_is_not_ready_after_the_delay_and_ready_when_first_served():
    timeline = [(0, False), (59, False), (60, False), (61, False), (100, True), (101, True)]

    assert replay(timeline) == [(60, NOT_READY), (100, READY)]


def test_a_queue_first_served_within_the_delay_is_announced_ready():
    assert replay([(0, False), (30, True), (31, True), (200, True)]) == [(30, READY)]


def test_a_never_served_state_reads_back_and_old_states_read_as_served():
    state = QueueState(False, 10.0, never_served=True)

    assert QueueState.from_json(state.to_json()) == state
    assert QueueState.from_json('{"ready": true, "last_live": 5}') == QueueState(True, 5.0)


def test_the_state_keeps_when_the_queue_was_last_served():
    state, _ = decide(QueueState(True, 10.0), False, 100.0, AFTER_S)

    assert state == QueueState(False, 10.0)
    assert QueueState.from_json(state.to_json()) == state
