"""One pass of the scheduler: create runs from schedules, enqueue due runs, mark late
runs, reap runs whose heartbeat expired, force cancellations past their grace, and
announce lost workers and work queues ready or not (queue_readiness).

Implementation notes:
- Several schedulers may tick at once against one Redis; each step stays correct:
  (a) a schedule slot (deployment, due time) is claimed with SET NX before its run
      is created, so each slot makes one run;
  (b) a due run is enqueued by the one process that wins its enqueue claim
      (control.enqueue_flow_run);
  (c, d, e) every state change goes through Store.transition (WATCH), so a run
      moves once, and a run that finished meanwhile is left alone;
  (f) one scheduler at a time announces queue readiness, under a lease.
- The schedule cursor (how far a schedule has been expanded) only saves work: a
  stale cursor recomputes slots that SET NX then refuses.
- After a scheduler outage, slots more than `late_after_s` old are not created
  (no catch-up burst); runs created ahead before the outage still start, Late.
- A step (or one deployment) that fails is logged and counted; the rest still run.
  Except for Redis being unreachable: that error leaves the tick at once, so that the
  process's loop logs one line for the outage and waits it out (services.core.loop),
  instead of a traceback per step and per tick.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta

from services import control
from services.core.loop import REDIS_OUTAGE_ERRORS
from services.core.models import ACTIVE_STATES, Deployment, StateType
from services.core.schedules import due_times
from services.core.store import Store
from services.scheduler.queue_readiness import check_queue_readiness

log = logging.getLogger("flowkeeper.scheduler")

# one tick creates at most this many runs per deployment; the next tick goes on
MAX_RUNS_PER_TICK = 100
# a claimed slot is remembered this long after its due time has passed
SLOT_MARGIN_S = 24 * 3600
HEARTBEAT_EXPIRED = ("heartbeat expired: the run's process stopped responding "
                     "(no heartbeat for {timeout:g} s; the worker or its machine may have died)")


@dataclass
class TickReport:
    """What one tick did, for tests and logs."""

    created: int = 0
    enqueued: int = 0
    late: int = 0
    crashed: int = 0
    cancelled: int = 0
    stop_requests: int = 0
    queue_events: int = 0  # worker.stopped (lost), work-queue.ready / not-ready
    errors: int = 0

    def summary(self) -> str:
        return ", ".join(f"{name} {count}" for name, count in asdict(self).items() if count)


def tick(store: Store, now: datetime, *, reap_heartbeats: bool = True) -> TickReport:
    """Run every step once, at `now`; without `reap_heartbeats`, expired heartbeats are left
    for a later tick (right after a Redis outage, when runs could not renew them)."""
    report = TickReport()
    steps: list[Callable[[Store, datetime, TickReport], None]] = [
        create_scheduled_runs, enqueue_due_runs, mark_late_runs, reap_expired_heartbeats,
        force_cancellations, announce_queue_readiness,
    ]
    if not reap_heartbeats:
        steps.remove(reap_expired_heartbeats)
    for step in steps:
        try:
            step(store, now, report)
        except REDIS_OUTAGE_ERRORS:
            raise
        except Exception:
            report.errors += 1
            log.exception("scheduler step %s failed", step.__name__)
    return report


def announce_queue_readiness(store: Store, now: datetime, report: TickReport) -> None:
    """(f) Workers lost, and work queues that became ready or not ready."""
    report.queue_events += check_queue_readiness(store, now)


def create_scheduled_runs(store: Store, now: datetime, report: TickReport) -> None:
    """(a) Create the runs of active schedules due up to now + the horizon."""
    for deployment in store.list_deployments():
        if deployment.schedule is None or not deployment.schedule.active:
            continue
        try:
            report.created += _expand_schedule(store, deployment, now)
        except REDIS_OUTAGE_ERRORS:
            raise
        except Exception:
            report.errors += 1
            log.exception("could not create the scheduled runs of deployment '%s'",
                          deployment.name)


def _expand_schedule(store: Store, deployment: Deployment, now: datetime) -> int:
    assert deployment.schedule is not None
    settings = store.settings
    cursor_key = store.keys.schedule_cursor(deployment.name)
    raw_cursor = store.client.get(cursor_key)
    after = now
    if raw_cursor is not None:
        oldest_worth_running = now - timedelta(seconds=settings.late_after_s)
        after = max(datetime.fromtimestamp(float(raw_cursor), UTC), oldest_worth_running)
    until = now + timedelta(seconds=settings.schedule_horizon_s)
    times = due_times(deployment.schedule, after, until, limit=MAX_RUNS_PER_TICK)
    created = 0
    for due in times:
        slot = store.keys.schedule_slot(deployment.name, int(due.timestamp()))
        ttl_s = int((due - now).total_seconds() + settings.late_after_s + SLOT_MARGIN_S)
        if store.client.set(slot, "claimed", nx=True, ex=max(ttl_s, 60)):
            control.schedule_run(store, deployment, due)
            created += 1
    expanded_to = times[-1] if len(times) == MAX_RUNS_PER_TICK else until
    store.client.set(cursor_key, repr(expanded_to.timestamp()))
    return created


def enqueue_due_runs(store: Store, now: datetime, report: TickReport) -> None:
    """(b) Enqueue the jobs of Scheduled runs that are due (and of Late ones never enqueued)."""
    for run_id in store.waiting_runs_due_before(now):
        run = store.get_flow_run(run_id)
        if run is None:
            store.client.zrem(store.keys.scheduled_runs, run_id)
            continue
        never_enqueued = run.state is StateType.SCHEDULED or (
            run.state is StateType.LATE and run.job_id is None)
        if never_enqueued and control.enqueue_flow_run(store, run.id) is not None:
            report.enqueued += 1


def mark_late_runs(store: Store, now: datetime, report: TickReport) -> None:
    """(c) Scheduled or Pending runs that have not started late_after_s after they were due."""
    late_after_s = store.settings.late_after_s
    for run_id in store.waiting_runs_due_before(now - timedelta(seconds=late_after_s)):
        run = store.get_flow_run(run_id)
        if run is None or run.state not in (StateType.SCHEDULED, StateType.PENDING):
            continue
        message = f"not started {late_after_s:g} s after it was due"
        if store.transition(run.id, StateType.LATE, message,
                            allowed_from={StateType.SCHEDULED, StateType.PENDING}) is not None:
            report.late += 1


def reap_expired_heartbeats(store: Store, now: datetime, report: TickReport) -> None:
    """(d) Runs whose process stopped sending heartbeats: Crashed (Cancelled if Cancelling)."""
    message = HEARTBEAT_EXPIRED.format(timeout=store.settings.heartbeat_timeout_s)
    for run_id in store.expired_heartbeats(now):
        run = store.get_flow_run(run_id)
        if run is None or run.state not in ACTIVE_STATES:
            store.client.zrem(store.keys.heartbeats, run_id)
            continue
        deadline = store.client.zscore(store.keys.heartbeats, run_id)
        if deadline is not None and deadline > now.timestamp():
            continue  # a heartbeat arrived since the read
        if run.state is StateType.CANCELLING:
            if control.end_flow_run(store, run.id, StateType.CANCELLED, message,
                                    allowed_from={StateType.CANCELLING}) is not None:
                report.cancelled += 1
        elif control.end_flow_run(store, run.id, StateType.CRASHED, message,
                                  allowed_from=ACTIVE_STATES - {StateType.CANCELLING},
                                  error={"type": "HeartbeatExpired", "message": message}):
            report.crashed += 1


def force_cancellations(store: Store, now: datetime, report: TickReport) -> None:
    """(e) Cancelling runs past their grace period: stop their job, or end them when it
    is not running."""
    from rq.command import send_stop_job_command
    from rq.exceptions import InvalidJobOperation, NoSuchJobError
    from rq.job import Job, JobStatus

    grace_s = store.settings.cancel_grace_s
    connection = control.rq_connection(store)
    for run_id in store.due_cancellations(now):
        run = store.get_flow_run(run_id)
        if run is None or run.state is not StateType.CANCELLING:
            store.client.zrem(store.keys.cancelling_runs, run_id)
            continue
        if not run.job_id:
            # started outside a worker: only its own process can stop it (or the reaper)
            store.client.zrem(store.keys.cancelling_runs, run_id)
            continue
        try:
            job = Job.fetch(run.job_id, connection=connection)
            status = job.get_status()
        except NoSuchJobError:
            job, status = None, None
        if job is not None and status is JobStatus.STARTED:
            try:
                send_stop_job_command(connection, job.id)
                report.stop_requests += 1
            except InvalidJobOperation:
                pass  # it finished meanwhile; the next tick sees the run's final state
            # look again after another grace period, in case no worker got the command
            store.client.zadd(store.keys.cancelling_runs, {run_id: now.timestamp() + grace_s},
                              xx=True)
            continue
        if job is not None and status in (JobStatus.QUEUED, JobStatus.SCHEDULED,
                                          JobStatus.DEFERRED):
            control.cancel_job(store, run)
        ended = control.end_flow_run(store, run.id, StateType.CANCELLED,
                                     "cancelled: its job was no longer running",
                                     allowed_from={StateType.CANCELLING})
        if ended is not None:
            report.cancelled += 1
