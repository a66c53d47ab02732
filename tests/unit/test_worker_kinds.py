"""A worker serving only the action queues runs jobs without forking; one that runs flow
runs forks a work horse per job. Each preloads what its queues' jobs run, and only that."""

from __future__ import annotations

import pytest
from rq.worker import SimpleWorker

from services.cli.process_cmds import DEFAULT_QUEUES
from services.core.queues import CONTROL_QUEUE, FLOW_RUNS_QUEUE, NOTIFY_QUEUE
from services.worker.runner import FlowWorker, preloaded_modules, worker_class_for


@pytest.mark.parametrize("queues", [[CONTROL_QUEUE], [NOTIFY_QUEUE], [CONTROL_QUEUE, NOTIFY_QUEUE]])
def test_a_worker_of_action_queues_does_not_fork(queues):
    assert issubclass(worker_class_for(queues), SimpleWorker)


@pytest.mark.parametrize("queues", [[FLOW_RUNS_QUEUE], [FLOW_RUNS_QUEUE, CONTROL_QUEUE],
                                    ["gpu"], DEFAULT_QUEUES])
def test_a_worker_that_runs_flow_runs_forks_a_horse_per_job(queues):
    assert worker_class_for(queues) is FlowWorker



def test_only_a_worker_of_the_notify_queue_preloads_the_providers_clients():
    providers = {"httpx", "sendgrid", "slack_sdk", "services.notify.actions"}
    for queues in ([NOTIFY_QUEUE], [CONTROL_QUEUE, NOTIFY_QUEUE], DEFAULT_QUEUES):
        assert providers <= set(preloaded_modules(list(queues)))
    for queues in ([FLOW_RUNS_QUEUE], [CONTROL_QUEUE], ["gpu"]):
        assert not providers & set(preloaded_modules(queues))


def test_a_worker_of_an_action_queue_preloads_the_executor_and_every_worker_the_flow_code():
    executor = {"services.actions.executor", "jinja2.sandbox"}
    for queues in ([CONTROL_QUEUE], [NOTIFY_QUEUE], DEFAULT_QUEUES):
        assert executor <= set(preloaded_modules(list(queues)))
    assert not executor & set(preloaded_modules([FLOW_RUNS_QUEUE, "gpu"]))
    for queues in ([FLOW_RUNS_QUEUE], [CONTROL_QUEUE], [NOTIFY_QUEUE]):
        assert {"flows.runtime", "services.worker.jobs"} <= set(preloaded_modules(queues))
