"""The RQ side of every process, in one place: the queue names, the job each queue
runs (named by reference, so services.core imports no process), the job ids, and the
connection RQ needs.

Three kinds of job, three queues, so that no kind waits behind another:
- flow runs go to their deployment's work queue (`default` unless it names one);
- run control (cancel, suspend, resume, retry, change state, run a deployment, pause or
  resume an automation) goes to `control`, which a worker of its own serves: a cancel never
  waits behind a notification to a provider that hangs;
- notifications go to `notify`, served by a pool of workers (`notify_workers`), each
  delivery bounded by its notifier's own timeout.
"""

from __future__ import annotations

import weakref
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import redis

    from services.core.store import Store

FLOW_RUNS_QUEUE = "default"
CONTROL_QUEUE = "control"
NOTIFY_QUEUE = "notify"
# the queues whose jobs are short and trusted: their workers run each job in their own
# process instead of forking a work horse per job
ACTION_QUEUES = frozenset({CONTROL_QUEUE, NOTIFY_QUEUE})

# action types whose job goes to the notify queue; every other action is run control
NOTIFICATION_ACTION_TYPES = frozenset({
    "send-notification", "send-email", "send-slack", "call-webhook",
})


def queue_for_action(action_type: str) -> str:
    """The queue of one action's job: notifications apart from run control."""
    return NOTIFY_QUEUE if action_type in NOTIFICATION_ACTION_TYPES else CONTROL_QUEUE


# --- the jobs, named by reference ----------------------------------------------------------

# a flow run's job and the callbacks RQ runs when it is stopped or fails (services.worker)
FLOW_RUN_JOB = "services.worker.jobs.execute_flow_run"
FLOW_RUN_STOPPED_CALLBACK = "services.worker.jobs.on_job_stopped"
FLOW_RUN_FAILED_CALLBACK = "services.worker.jobs.on_job_failed"
# one action of a firing (services.actions), on the queue `queue_for_action` names
ACTION_JOB = "services.actions.executor.run_action"


def job_id_for(run_id: str) -> str:
    """The RQ job id of a flow run: derived, so the job of a run is found without a lookup."""
    return f"flow-run-{run_id}"


def action_job_id(automation_id: str, firing_id: str, index: int) -> str:
    """The RQ job id of action `index` of a firing: derived, so enqueueing it twice (an
    outbox drained again after a crash) finds the same job."""
    return f"action-{automation_id}-{firing_id}-{index}"


# --- the connection ------------------------------------------------------------------------

# the CLI reads the queue names: redis is imported only when a connection is made
_rq_clients: weakref.WeakKeyDictionary[redis.Redis, redis.Redis] = weakref.WeakKeyDictionary()


def rq_connection(store: Store) -> redis.Redis:
    """A client on the store's server without decoded responses, as RQ needs: one per
    store client, kept while that client lives."""
    import redis

    client = _rq_clients.get(store.client)
    if client is None:
        pool = store.client.connection_pool
        kwargs = {**pool.connection_kwargs, "decode_responses": False}
        client = redis.Redis(connection_pool=redis.ConnectionPool(
            connection_class=pool.connection_class, **kwargs))
        _rq_clients[store.client] = client
    return client
