"""The worker process: an RQ worker that forks a work horse per flow run.

Implementation notes:
- RQ's stop-job command (what the scheduler sends after a cancellation's grace
  period) makes RQ 3.0 SIGKILL the work horse at once. This worker sends SIGTERM
  first, so the flow's process can record Cancelled and flush its buffered events
  and logs, and SIGKILLs it HORSE_STOP_GRACE_S later if it is still alive. Either
  way RQ then calls the job's on_stopped callback in this process
  (jobs.on_job_stopped), which ends the run Cancelled if the horse did not.
- A horse that dies without being asked to (OOM killer, kill -9) is reported by
  RQ through `handle_work_horse_killed`: the run ends Crashed at once, without
  waiting for its heartbeat to expire.
- If the whole worker dies, its work horse ends the run itself: the horse asks,
  right after the fork, to be signalled when the worker dies
  (services.core.lifeline), and the flow's heartbeat checks its parent too. The run
  ends Crashed (Cancelled if a cancellation was requested) and the horse exits, so no
  run goes on unowned. A horse killed along with its worker (a dead machine) is
  left to the scheduler's heartbeat reaper.
- A Redis outage of any length is waited out, with the horse still running
  (services.worker.outages).
"""

from __future__ import annotations

import os
import signal
import threading
from typing import Any

from rq.worker import SHUTDOWN_SIGNAL, SimpleWorker, Worker

from services.core.connection import connect
from services.core.lifeline import die_with_parent
from services.core.queues import ACTION_QUEUES, FLOW_RUN_JOB, NOTIFY_QUEUE
from services.core.settings import Settings
from services.worker.jobs import end_killed_run
from services.worker.outages import SurvivesRedisOutages, create_worker, work_until_stopped
from services.worker.presence import announce_worker

# a stopped flow gets this long to end itself after SIGTERM before it is killed
HORSE_STOP_GRACE_S = 3.0


class FlowWorker(SurvivesRedisOutages, Worker):
    """An RQ worker whose stop-job lets the flow's process end its run first, whose work
    horse does not outlive it, and which waits out Redis outages."""

    def fork_work_horse(self, job: Any, queue: Any) -> None:
        self._worker_pid = os.getpid()
        super().fork_work_horse(job, queue)

    def main_work_horse(self, job: Any, queue: Any) -> None:
        # first thing in the horse: from here on, a worker that dies takes the run down
        die_with_parent(self._worker_pid)
        super().main_work_horse(job, queue)

    def kill_horse(self, sig: signal.Signals = SHUTDOWN_SIGNAL) -> None:
        pid = self.horse_pid
        if not (pid and self._stopped_job_id and sig == SHUTDOWN_SIGNAL):
            super().kill_horse(sig)
            return
        try:
            os.killpg(os.getpgid(pid), signal.SIGTERM)
        except ProcessLookupError:
            return
        self.log.info("Worker %s: sent SIGTERM to horse %s, SIGKILL in %g s if it is still alive",
                      self.name, pid, HORSE_STOP_GRACE_S)
        timer = threading.Timer(HORSE_STOP_GRACE_S, self._kill_if_alive, args=(pid,))
        timer.daemon = True
        timer.start()

    def _kill_if_alive(self, pid: int) -> None:
        if self.horse_pid == pid:
            super().kill_horse(signal.SIGKILL)

    def execute_job(self, job: Any, queue: Any) -> None:
        try:
            super().execute_job(job, queue)
        finally:
            # RQ clears it only when the stopped horse exits non-zero
            self._stopped_job_id = None

    def handle_work_horse_killed(self, job: Any, retpid: Any, ret_val: Any, rusage: Any) -> None:
        super().handle_work_horse_killed(job, retpid, ret_val, rusage)
        if job.func_name != FLOW_RUN_JOB:
            return  # an action job: it has no flow run to end
        if ret_val is not None and os.WIFSIGNALED(ret_val):
            how = f"killed by {signal.Signals(os.WTERMSIG(ret_val)).name}"
        else:
            how = f"exit status {os.waitstatus_to_exitcode(ret_val) if ret_val is not None else '?'}"
        try:
            end_killed_run(job.args[0], how)
        except Exception:
            self.log.exception("Worker %s: could not record the crash of job %s", self.name, job.id)


class ActionWorker(SurvivesRedisOutages, SimpleWorker):
    """An RQ worker for short, trusted jobs (actions), run in its own process, which waits
    out Redis outages."""


def run_worker(settings: Settings, queues: list[str], *, burst: bool = False,
               name: str | None = None, scheduler_queues: list[str] | None = None) -> None:
    """Work on `queues` until stopped; with `burst`, until they are empty. The worker
    also runs RQ's scheduler, which enqueues the retries of action jobs (Retry with
    intervals) when they are due: for `scheduler_queues` (by default its own queues; none
    runs no scheduler, when another worker's serves them). Which queues by default is the
    `worker` command's choice (services.cli.process_cmds), the one entry point."""
    if not queues:
        raise ValueError("a worker needs at least one queue to take jobs from")
    _preload_job_code(queues)
    connection = connect(settings, decode_responses=False)
    worker = create_worker(worker_class_for(queues), queues, connection, name)
    worker.scheduler_queues = None if scheduler_queues is None else list(scheduler_queues)
    announce_stop = announce_worker(settings, worker)  # worker.started / worker.stopped
    try:
        work_until_stopped(worker, burst=burst)
    finally:
        announce_stop()
        connection.close()


def worker_class_for(queues: list[str]) -> type[Worker]:
    """Actions are short and trusted: a worker serving only action queues (control, notify)
    runs each job in its own process instead of forking a horse per job (a notification
    arrives ~50 ms sooner); a worker that runs flow runs forks one per job."""
    return ActionWorker if set(queues) <= ACTION_QUEUES else FlowWorker


def preloaded_modules(queues: list[str]) -> list[str]:
    """What the jobs of `queues` run, imported once in the worker (`_preload_job_code`):
    flow runs' code always; the actions' executor for a worker of an action queue; the
    notification providers' clients (~16 MB of an interpreter) only for a worker of the
    notify queue, the one queue whose jobs send."""
    modules = ["flows.runtime", "services.worker.jobs"]
    if set(queues) & ACTION_QUEUES:
        modules += ["services.actions.executor", "jinja2.sandbox"]
    if NOTIFY_QUEUE in queues:
        modules += ["services.notify.actions", "httpx", "sendgrid", "slack_sdk",
                    "slack_sdk.webhook"]
    return modules


def _preload_job_code(queues: list[str]) -> None:
    """Import what jobs run, once, in the worker: RQ forks a work horse per job, and a horse
    that imported these itself would spend ~0.25 s of every action (a notification's
    latency) on imports."""
    import importlib

    for module in preloaded_modules(queues):
        importlib.import_module(module)
