"""A stop signal that lands inside a logging handler must still stop an idle worker:
logging swallows a StopRequested raised there (printing "--- Logging error ---" and a
traceback), so the worker raises SystemExit, which logging lets through
(services/worker/outages.py, note (g))."""

from __future__ import annotations

import logging

import pytest
from rq.exceptions import StopRequested
from rq.worker import WorkerStatus

from services.worker.outages import SurvivesRedisOutages, inside_a_logging_handler


class _RQWorker:
    """What the mixin calls of RQ's worker: its state and its own shutdown."""

    def __init__(self, state: str) -> None:
        self.state = state

    def get_state(self) -> str:
        return self.state

    def _shutdown(self) -> None:
        if self.state != WorkerStatus.BUSY:
            raise StopRequested()


class _Worker(SurvivesRedisOutages, _RQWorker):
    pass


class _SignalInsideEmit(logging.Handler):
    """A handler during whose emit the stop signal arrives (as RQ's handler calls)."""

    def __init__(self, worker: _Worker) -> None:
        super().__init__()
        self.worker = worker
        self.errors = 0

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.worker._shutdown()
        except Exception:  # noqa: BLE001 - what logging's own handlers do
            self.handleError(record)

    def handleError(self, record: logging.LogRecord) -> None:
        self.errors += 1


@pytest.fixture()
def logger():
    logger = logging.getLogger("test.worker-stop")
    logger.propagate = False
    yield logger
    logger.handlers.clear()


def test_an_idle_worker_stopped_inside_a_log_call_exits_instead_of_losing_the_stop(logger):
    worker = _Worker(WorkerStatus.IDLE)
    handler = _SignalInsideEmit(worker)
    logger.addHandler(handler)

    with pytest.raises(SystemExit) as stopped:
        logger.warning("Redis unreachable")

    assert stopped.value.code == 0
    assert handler.errors == 0  # nothing swallowed, no "--- Logging error ---"


def test_a_stop_outside_logging_is_rqs_own():
    with pytest.raises(StopRequested):
        _Worker(WorkerStatus.IDLE)._shutdown()


def test_a_busy_worker_keeps_rqs_stop_after_the_job(logger):
    worker = _Worker(WorkerStatus.BUSY)
    logger.addHandler(_SignalInsideEmit(worker))

    logger.warning("a line while a job runs")  # nothing raised: RQ stops after the job


def test_only_logging_s_own_calls_count_as_inside_a_handler():
    import sys

    assert not inside_a_logging_handler(sys._getframe())
