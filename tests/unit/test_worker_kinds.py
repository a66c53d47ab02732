"""A worker serving only the action queues runs jobs without forking; one that runs flow
runs forks a work horse per job."""

from __future__ import annotations

import pytest
from rq.worker import SimpleWorker

from services.cli.process_cmds import DEFAULT_QUEUES
from services.core.queues import CONTROL_QUEUE, FLOW_RUNS_QUEUE, NOTIFY_QUEUE
from services.worker.runner import FlowWorker, worker_class_for


@pytest.mark.parametrize("queues", [[CONTROL_QUEUE], [NOTIFY_QUEUE], [CONTROL_QUEUE, NOTIFY_QUEUE]])
def test_a_worker_of_action_queues_does_not_fork(queues):
    assert issubclass(worker_class_for(queues), SimpleWorker)


@pytest.mark.parametrize("queues", [[FLOW_RUNS_QUEUE], [FLOW_RUNS_QUEUE, CONTROL_QUEUE],
                                    ["gpu"], DEFAULT_QUEUES])
def test_a_worker_that_runs_flow_runs_forks_a_horse_per_job(queues):
    assert worker_class_for(queues) is FlowWorker

