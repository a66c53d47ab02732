"""RQ workers that outlive Redis outages of any length, without exiting.

RQ 3.0's `Worker.work` quits on a Redis timeout and on any error outside its dequeue
retry (the suspension check, maintenance, the heartbeats it keeps while a job runs,
the state it sets after one), and a flow running in the work horse is then left
unowned. Here each of those calls waits for Redis instead.

Implementation notes:
  (a) Between jobs (suspension check, maintenance, dequeue, heartbeat, state), a call
      that finds Redis unreachable blocks until Redis answers PING (services.core.loop:
      one line when lost, one when back), re-registers the worker if Redis lost its
      record (a restart without data, or the record expired), and is made again.
  (b) While a work horse runs, the worker must keep watching it: a heartbeat that fails
      is logged once per outage and skipped (so is the command listener's reconnecting); the horse goes on (the flow's own writes
      are buffered by the SDK's background writer) and is reaped as usual.
  (c) When the job function has returned (in the horse, or in the worker for a
      SimpleWorker), the job's end is recorded only once Redis answers: RQ would
      otherwise fail the job's bookkeeping and the worker would count a finished flow
      as a crashed horse.
  (d) A stop (SIGTERM/SIGINT) during an outage still stops the worker: RQ's handler
      raises StopRequested through the wait; the death record that cannot be written
      is logged, not raised.
  (e) `work_until_stopped` restarts RQ's work loop if it ever returns without being
      asked to (an error none of the above covers), once Redis answers.
  (f) RQ's scheduler process (due scheduled jobs, the retries of action jobs) dies on
      the first connection error, with a traceback, and is started again by the next
      maintenance pass; its loop here waits the outage out instead. It serves the queues
      `scheduler_queues` names (the worker's own unless told), and a worker told none
      runs no scheduler process: `flowkeeper up` runs one for all its queues, not one
      per queue.
  (g) RQ's handler raises StopRequested wherever the signal lands. Inside a logging
      handler (an outage logs a line a second) the logging module swallows it, prints
      "--- Logging error ---" with a traceback, and the stop is lost. An idle worker
      whose stop lands there raises SystemExit instead, which logging lets through:
      RQ's work loop re-raises it after its teardown (the death record), as for its own
      cold shutdown, which for an idle worker is the same stop. Deferring the stop to a
      later call instead could raise it between a dequeue and the job's start, and lose
      the job.
"""

from __future__ import annotations

import logging
import os
import sys
import time
from collections.abc import Callable
from typing import Any, TypeVar

from rq.defaults import DEFAULT_LOGGING_DATE_FORMAT, DEFAULT_LOGGING_FORMAT
from rq.exceptions import StopRequested
from rq.scheduler import RQScheduler
from rq.worker import WorkerStatus

from services.core.lifeline import die_with_parent
from services.core.loop import REDIS_OUTAGE_ERRORS, OutageLog, wait_for_redis

log = logging.getLogger("flowkeeper.worker")

LOGGING_FOLDER = os.path.dirname(logging.__file__)
# the logging calls that catch every exception of what they call (and so would swallow a
# StopRequested raised by a signal landing inside them)
SWALLOWING_LOGGING_CALLS = frozenset({"emit", "handle", "callHandlers", "flush", "format",
                                      "handleError"})


def inside_a_logging_handler(frame: Any) -> bool:
    """Whether `frame` or a caller of it is one of logging's swallowing calls (g)."""
    while frame is not None:
        code = frame.f_code
        if code.co_name in SWALLOWING_LOGGING_CALLS and \
                os.path.dirname(code.co_filename) == LOGGING_FOLDER:
            return True
        frame = frame.f_back
    return False

T = TypeVar("T")


class SurvivesRedisOutages:
    """Mixin for an RQ worker class (before it in the bases): waits out Redis outages."""

    connection: Any
    key: str
    name: str
    _stop_requested: bool
    # the queues whose scheduled jobs this worker's RQ scheduler enqueues when due (f):
    # None for the worker's own queues; empty for no scheduler
    scheduler_queues: list[str] | None = None

    def _outage(self) -> OutageLog:
        outage = getattr(self, "_outage_log", None)
        if outage is None:
            outage = self._outage_log = OutageLog(f"worker {self.name}", log)
        return outage

    def _shutdown(self) -> None:
        if self.get_state() != WorkerStatus.BUSY and inside_a_logging_handler(sys._getframe(1)):
            raise SystemExit(0)  # (g)
        super()._shutdown()  # type: ignore[misc]

    def _through_outage(self, call: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Make `call`, waiting out any Redis outage and trying again (a)."""
        while True:
            try:
                result = call(*args, **kwargs)
            except REDIS_OUTAGE_ERRORS as error:
                self._wait_for_redis(error)
                continue
            self._outage().back()
            return result

    def _wait_for_redis(self, error: BaseException) -> None:
        outage = self._outage()
        time.sleep(outage.lost(error))
        while True:
            wait_for_redis(self.connection, name=f"worker {self.name}", log=log, outage=outage)
            try:
                self._reregister()
                return
            except REDIS_OUTAGE_ERRORS as again:  # lost again at once
                time.sleep(outage.lost(again))

    def _reregister(self) -> None:
        """After an outage: the worker's record again, if Redis lost it (a)."""
        if self.connection.exists(self.key):
            return
        log.warning("worker %s: Redis lost this worker's record; registering again", self.name)
        self._registered_before = False
        self.register_birth()

    # (a) the calls between jobs
    def check_for_suspension(self, burst: bool) -> None:
        self._through_outage(super().check_for_suspension, burst)  # type: ignore[misc]

    def run_maintenance_tasks(self) -> None:
        self._through_outage(super().run_maintenance_tasks)  # type: ignore[misc]

    def dequeue_job_and_maintain_ttl(self, timeout: int | None,
                                     max_idle_time: int | None = None) -> Any:
        return self._through_outage(super().dequeue_job_and_maintain_ttl,  # type: ignore[misc]
                                    timeout, max_idle_time)

    def heartbeat(self, timeout: int | None = None, pipeline: Any = None) -> None:
        if pipeline is not None:  # only queued on the caller's pipeline
            super().heartbeat(timeout, pipeline=pipeline)  # type: ignore[misc]
            return
        self._through_outage(super().heartbeat, timeout)  # type: ignore[misc]

    def set_state(self, state: str, pipeline: Any = None) -> None:
        if pipeline is not None:
            super().set_state(state, pipeline=pipeline)  # type: ignore[misc]
            return
        self._through_outage(super().set_state, state)  # type: ignore[misc]

    def register_birth(self) -> None:
        if getattr(self, "_registered_before", False):
            # this same worker again (e): its last record could not be marked dead
            self.connection.delete(self.key)
        super().register_birth()  # type: ignore[misc]
        self._registered_before = True

    def _start_scheduler(self, burst: bool = False, logging_level: str | None = "INFO",
                         date_format: str = DEFAULT_LOGGING_DATE_FORMAT,
                         log_format: str = DEFAULT_LOGGING_FORMAT) -> None:
        """RQ's own, with the scheduler class that outlives outages, for the queues
        `scheduler_queues` names (f)."""
        queues = self.scheduler_queues
        if queues is None:
            queues = self.queues  # type: ignore[attr-defined]
        if not queues:
            return
        self.scheduler = OutageProofScheduler(
            queues, connection=self.connection, logging_level=logging_level,
            date_format=date_format, log_format=log_format,
            serializer=self.serializer)  # type: ignore[attr-defined]
        self.scheduler.acquire_locks()
        if not self.scheduler.acquired_locks:
            return
        if not burst:
            self.scheduler.start()
            return
        try:
            self.scheduler.register_birth()
            self.scheduler.enqueue_scheduled_jobs()
        finally:
            self.scheduler.release_locks()
            self.scheduler.register_death()

    # (b) while a work horse runs
    def maintain_heartbeats(self, job: Any, execution: Any) -> None:
        try:
            super().maintain_heartbeats(job, execution)  # type: ignore[misc]
        except REDIS_OUTAGE_ERRORS as error:
            self._outage().lost(error)
            return
        self._outage().back()

    def _pubsub_exception_handler(self, exc: Exception, pubsub: Any, thread: Any) -> None:
        """The thread that listens for commands (stop-job) waits out outages quietly too;
        redis-py subscribes again once it reconnects."""
        if not isinstance(exc, REDIS_OUTAGE_ERRORS):
            super()._pubsub_exception_handler(exc, pubsub, thread)  # type: ignore[misc]
            return
        time.sleep(self._outage().lost(exc))

    # (c) the job's end
    def handle_execution_ended(self, job: Any, queue: Any, heartbeat_ttl: int) -> None:
        self._through_outage(super().handle_execution_ended,  # type: ignore[misc]
                             job, queue, heartbeat_ttl)

    # (d) stopping during an outage
    def set_shutdown_requested_date(self) -> None:
        try:
            super().set_shutdown_requested_date()  # type: ignore[misc]
        except REDIS_OUTAGE_ERRORS:
            pass  # informational only; the stop itself goes on

    def teardown(self) -> None:
        try:
            super().teardown()  # type: ignore[misc]
        except REDIS_OUTAGE_ERRORS as error:
            log.warning("worker %s: stopped without recording it in Redis (unreachable: %s)",
                        self.name, error)


class OutageProofScheduler(RQScheduler):
    """RQ's scheduler (the process that enqueues due scheduled jobs and retries), whose
    loop waits out Redis outages (f) instead of dying with a traceback."""

    def __init__(self, queues: Any, connection: Any, **kwargs: Any) -> None:
        super().__init__(queues, connection, **kwargs)
        self._given_connection = connection

    @property
    def connection(self) -> Any:
        # RQ rebuilds the client in its forked process from the pool's keyword arguments,
        # which cannot rebuild a Sentinel pool (its connections need the pool that asks the
        # sentinels where the primary is). The given client works in the fork as it is:
        # redis-py drops the connections of a pool whose process id changed.
        return self._connection or self._given_connection

    def work(self) -> None:
        self._install_signal_handlers()
        # this process is forked from the worker, with a copy of its Redis socket: if the
        # worker dies, Redis would keep serving the dead worker's blocked dequeue (jobs sent
        # to nobody) for as long as this process lives on. SIGTERM stops it cleanly.
        die_with_parent(os.getppid())
        outage = OutageLog("RQ scheduler", log)
        registered = False
        while not self._stop_requested:
            try:
                if not registered:
                    self.register_birth()
                    registered = True
                if self.should_reacquire_locks:
                    self.acquire_locks()
                self.heartbeat()
                self.enqueue_scheduled_jobs()
            except REDIS_OUTAGE_ERRORS as error:
                time.sleep(outage.lost(error))
                continue
            outage.back()
            time.sleep(self.interval)
        try:
            self.stop()
        except REDIS_OUTAGE_ERRORS as error:
            log.warning("RQ scheduler: stopped without releasing its locks (Redis unreachable: "
                        "%s); they expire on their own", error)


def create_worker(worker_class: type[T], queues: list[str], connection: Any,
                  name: str | None = None) -> T:
    """`worker_class(queues, ...)`, once Redis answers: RQ's constructor names its
    connection in Redis, and a worker started during an outage must wait, not exit."""
    outage = OutageLog(f"worker {name or '(starting)'}", log)
    while True:
        try:
            worker = worker_class(queues, connection=connection, name=name)  # type: ignore[call-arg]
        except REDIS_OUTAGE_ERRORS as error:
            time.sleep(outage.lost(error))
            continue
        outage.back()
        return worker


def work_until_stopped(worker: Any, *, burst: bool = False) -> None:
    """RQ's work loop until the worker is asked to stop (or, with `burst`, runs out of
    jobs); restarted if it ends for any other reason (e). RQ's scheduler runs for the
    worker's `scheduler_queues` (f)."""
    while True:
        try:
            worker.work(burst=burst, logging_level="INFO",
                        with_scheduler=worker.scheduler_queues != [])
        except REDIS_OUTAGE_ERRORS as error:  # raised by RQ's bootstrap
            worker._outage().lost(error)
        if burst or worker._shutdown_requested_date is not None or worker._stop_requested:
            return
        log.warning("worker %s: RQ's work loop ended without a stop request; starting it "
                    "again once Redis answers", worker.name)
        try:
            wait_for_redis(worker.connection, name=f"worker {worker.name}", log=log,
                           outage=worker._outage())
        except StopRequested:  # (d) RQ's signal handler, still installed
            return
