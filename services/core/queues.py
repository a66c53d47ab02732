"""The names of the RQ work queues, in one place.

Three kinds of job, three queues, so that no kind waits behind another:
- flow runs go to their deployment's work queue (`default` unless it names one);
- run control (cancel, retry, change state, run a deployment, pause or resume an
  automation) goes to `control`, which a worker of its own serves: a cancel never
  waits behind a notification to a provider that hangs;
- notifications go to `notify`, served by a pool of workers (`notify_workers`), each
  delivery bounded by its notifier's own timeout.
"""

from __future__ import annotations

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
