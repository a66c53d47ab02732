"""`flowkeeper up` runs one RQ scheduler (a process forked by the control worker), not one
per queue, and it serves every queue of `up`'s workers: a job enqueued for later and an
action's retry (Retry with an interval) still run on each queue."""

from __future__ import annotations

import os
from datetime import timedelta

import pytest

from services.core.queues import CONTROL_QUEUE, FLOW_RUNS_QUEUE, NOTIFY_QUEUE
from tests.conftest import wait_until
from tests.integration.up_process import UpProcess, children_of, command_line

pytestmark = pytest.mark.slow

QUEUES = (FLOW_RUNS_QUEUE, CONTROL_QUEUE, NOTIFY_QUEUE)


def forked_by_children(up_pid: int) -> list[int]:
    """The processes a child of `up` forked: RQ's scheduler while no job runs."""
    return [pid for child in children_of(up_pid) for pid in children_of(child)]


def test_up_runs_one_rq_scheduler_for_every_queue(settings, redis_client):
    from rq import Queue, Retry, Worker
    from rq.job import Job, JobStatus

    from services.core.queues import rq_connection
    from services.core.store import Store

    connection = rq_connection(Store(redis_client, settings))
    env = {**os.environ, "FLOWKEEPER_HOME": str(settings.home_dir)}
    with UpProcess(env) as up:
        up.wait_up()
        up.wait_workers(connection)
        locks = [f"rq:scheduler-lock:{queue}" for queue in QUEUES]
        wait_until(lambda: all(connection.get(lock) for lock in locks), 30,
                   message="a scheduler lock on every queue")
        # RQ starts a worker's scheduler (taking the locks, forking) before its first
        # dequeue marks it idle: once every worker is idle, every one has had its chance
        wait_until(lambda: all(worker.get_state() == "idle"
                               for worker in Worker.all(connection=connection)), 30,
                   message="every worker idle")

        # one scheduler holds every queue's lock, and it is the control worker's
        assert len({connection.get(lock) for lock in locks}) == 1
        (scheduler,) = forked_by_children(up.process.pid)
        assert f"--queue {CONTROL_QUEUE}" in command_line(scheduler)

        # jobs enqueued for later on each queue, and a failing job's retry, still run
        later = [Queue(queue, connection=connection).enqueue_in(
            timedelta(seconds=1), "os.getpid") for queue in QUEUES]
        retried = [Queue(queue, connection=connection).enqueue(
            "os.getpid", "one argument too many", retry=Retry(max=1, interval=1))
            for queue in QUEUES]
        wait_until(lambda: all(Job.fetch(job.id, connection=connection).get_status()
                               == JobStatus.FINISHED for job in later), 30,
                   message="the jobs enqueued for later to run")
        wait_until(lambda: all(Job.fetch(job.id, connection=connection).get_status()
                               == JobStatus.FAILED for job in retried), 30,
                   message="the failing jobs to run again and fail")
        for job in retried:
            assert Job.fetch(job.id, connection=connection).retries_left == 0, up.output
        assert forked_by_children(up.process.pid) == [scheduler]
    assert up.process.returncode == 0, up.output
