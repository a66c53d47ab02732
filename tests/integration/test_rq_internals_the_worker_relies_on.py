"""The one RQ internal the worker relies on: when RQ is told to stop a job, it marks the
job on the worker as `_stopped_job_id` (services/worker/runner.py reads it to give a
stopped flow a grace period before its horse is killed). RQ offers no public way to
know it; pyproject pins RQ's major version, and this test fails on an RQ that changes it."""

from __future__ import annotations

from rq import SimpleWorker
from rq.command import handle_stop_job_command

from services.core.queues import FLOW_RUNS_QUEUE, rq_connection


def test_rq_marks_the_stopped_job_on_the_worker_where_the_runner_reads_it(store):
    worker = SimpleWorker([FLOW_RUNS_QUEUE], connection=rq_connection(store))
    assert worker._stopped_job_id is None
    killed = []
    worker.get_current_job_id = lambda: "flow-run-1"  # type: ignore[method-assign]
    worker.kill_horse = lambda *args, **kwargs: killed.append(args)  # type: ignore[method-assign]

    handle_stop_job_command(worker, {"job_id": "flow-run-1"})

    assert worker._stopped_job_id == "flow-run-1"
    assert killed == [()]
