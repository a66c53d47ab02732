"""The action executor: the actions of firings, carried out by the workers of the RQ
`control` queue (run control) and the `notify` queue (notifications, through
services.notify): one job per action of a firing, so that one failing action never
blocks the others, and a cancel never waits behind a notification.

Implementation notes:
- [1] A `done` key per (firing, action index) makes a redelivered or re-enqueued job
  skip; a lease (services.core.leases) is taken before the side effect, with the
  `done` check in the same step, so two copies of a job never act at once and a copy
  that comes after another finished acts not. The outcome, the `done` key and the
  release are written in one MULTI. A copy that finds the lease taken raises
  ActionBusy, and RQ retries it later. The lease outlives the action: a notification
  action holds it as long as its delivery's own lease (the send's deadline and more).
- [2] Expected failures are recorded as the outcome and not retried: a target that
  does not exist or bad parameters (failed), a run that already ended or a retry cap
  reached (skipped). Redis unreachable releases the lease and raises, so RQ retries
  the job. Any other exception is recorded as failed, with its message.
- [3] Every outcome is kept on the firing record and emitted as
  `automation.action.<done|skipped|failed>`.
- Targets: source "inferred" takes the run (or deployment) of the firing's events,
  newest first; "selected" takes the one named in the action.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import redis
from pydantic import TypeAdapter, ValidationError

from automations.errors import RenderError
from automations.events import AUTOMATION, Event, flow_run_resource_id, resource_id
from automations.schema import (
    NOTIFICATION_ACTIONS,
    Action,
    CancelFlowRun,
    ChangeFlowRunState,
    DoNothing,
    PauseAutomation,
    ResumeAutomation,
    ResumeFlowRun,
    RetryFlowRun,
    RunDeployment,
    SuspendFlowRun,
)
from automations.state import EventRef
from automations.templates import render_value
from services import control
from services.core import leases, metrics, stream
from services.core.automation_store import AutomationStore
from services.core.connection import connect
from services.core.errors import InvalidInput, InvalidTransition, NotFound
from services.core.firings import FIRING_RETENTION_S, ActionOutcome, FiringRecord
from services.core.models import FINAL_STATES, StateType
from services.core.queues import NOTIFICATION_ACTION_TYPES
from services.core.settings import Settings
from services.core.store import Store
from services.notify.actions import deliver_action

log = logging.getLogger("flowkeeper.actions")

ACTION_LEASE_MS = 30_000
# a notification action holds its lease while its delivery holds the notification's
NOTIFY_ACTION_LEASE_MS = 330_000
_ACTION = TypeAdapter(Action)
NOT_FINAL = frozenset(StateType) - FINAL_STATES


class ActionBusy(RuntimeError):
    """Another copy of this action job holds its lease: RQ retries this one later."""


@dataclass
class Result:
    """What an action did: its outcome, in words, and what it made."""

    outcome: str
    detail: str
    made: dict[str, Any] = field(default_factory=dict)


@dataclass
class ActionContext:
    """What a handler needs: the stores, the firing record, and the action."""

    store: Store
    automations: AutomationStore
    record: FiringRecord
    index: int
    action: Any

    def refs(self) -> list[EventRef]:
        return [EventRef.from_json(ref) for ref in reversed(self.record.events)]

    def flow_run_id(self) -> str | None:
        if self.action.source == "selected":
            return self.action.flow_run_id
        return next((run for ref in self.refs() if (run := ref.flow_run_id())), None)

    def deployment(self) -> str | None:
        if self.action.source == "selected":
            return self.action.deployment
        return next((name for ref in self.refs() if (name := ref.deployment())), None)

    def by(self) -> str:
        return f"by automation '{self.record.automation_name}' ({self.record.reason})"


def run_action(automation_id: str, firing_id: str, action_index: int) -> str:
    """The RQ job: carry out one action of a firing (once); returns its outcome."""
    settings = Settings()
    client = connect(settings)
    try:
        return carry_out(Store(client, settings), automation_id, firing_id, action_index)
    finally:
        client.close()


def carry_out(store: Store, automation_id: str, firing_id: str, index: int) -> str:
    """Carry out action `index` of a firing unless it was done already [1]."""
    keys = store.keys
    client = store.client
    automations = AutomationStore(client, store.settings)
    record = automations.firing(automation_id, firing_id)
    if record is None:
        log.error("firing %s of automation %s is not recorded; action %d dropped",
                  firing_id, automation_id, index)
        return "missing"
    taken, lease = leases.take(client, keys.action_lease(automation_id, firing_id, index),
                               keys.action_done(automation_id, firing_id, index),
                               _lease_ms(record, index))
    if taken is leases.Taken.DONE:
        return "duplicate"
    if taken is leases.Taken.BUSY:
        raise ActionBusy(f"action {index} of firing {firing_id} is being carried out elsewhere")
    try:
        result = _attempt(store, automations, record, index)
    except (redis.ConnectionError, redis.TimeoutError):
        leases.release(client, lease)
        raise
    _finish(store, record, index, result, lease)
    return result.outcome


def _lease_ms(record: FiringRecord, index: int) -> int:
    action_type = dict(record.actions).get(index, {}).get("type")
    return NOTIFY_ACTION_LEASE_MS if action_type in NOTIFICATION_ACTION_TYPES else ACTION_LEASE_MS


def _attempt(store: Store, automations: AutomationStore, record: FiringRecord,
             index: int) -> Result:
    document = dict(record.actions).get(index)
    if document is None:
        return Result("failed", f"the firing has no action {index}")
    try:
        action = _ACTION.validate_python(document)
    except ValidationError as error:
        return Result("failed", f"the action no longer validates: {error.errors()[0]['msg']}")
    context = ActionContext(store, automations, record, index, action)
    try:
        return _handler(action)(context)
    except (NotFound, InvalidInput, RenderError) as error:
        return Result("failed", str(error))
    except InvalidTransition as error:
        return Result("skipped", str(error))
    except (redis.ConnectionError, redis.TimeoutError):
        raise
    except Exception as error:
        log.exception("action %d (%s) of firing %s failed", index, action.type, record.id)
        return Result("failed", f"{type(error).__name__}: {error}")


def _finish(store: Store, record: FiringRecord, index: int, result: Result,
            lease: leases.Lease) -> None:
    action_type = dict(record.actions).get(index, {}).get("type", "?")
    outcome = ActionOutcome(index=index, type=action_type, outcome=result.outcome,
                            detail=result.detail, result=result.made)
    pipe = store.client.pipeline(transaction=True)
    AutomationStore(store.client, store.settings).record_outcome(
        record.automation_id, record.id, outcome, pipe)
    stream.append(pipe, store.keys, outcome_event(record, outcome), store.settings.events_maxlen)
    leases.finish_ops(pipe, lease, result.outcome, FIRING_RETENTION_S * 1000)
    held = pipe.execute()[-1]
    metrics.count(store.client, store.keys, metrics.ACTIONS, action_type, result.outcome)
    if not held:
        log.warning("action %d of firing %s outlived its lease: another copy may have acted "
                    "too", index, record.id)
    log.info("automation %s, firing %s: %s %s (%s)", record.automation_name, record.id,
             action_type, result.outcome, result.detail)


def outcome_event(record: FiringRecord, outcome: ActionOutcome) -> Event:
    """`automation.action.<outcome>` for one action of a firing."""
    related = []
    run_id = outcome.result.get("flow_run_id") or outcome.result.get("target_flow_run_id")
    for target in dict.fromkeys(filter(None, [run_id, *record.flow_run_ids()])):
        related.append({"resource.id": flow_run_resource_id(target), "resource.role": "flow-run"})
    return Event(event=f"automation.action.{outcome.outcome}",
                 resource={"resource.id": resource_id(AUTOMATION, record.automation_id),
                           "resource.name": record.automation_name},
                 related=related,
                 payload={"firing_id": record.id, "action_index": outcome.index,
                          "action_type": outcome.type, "outcome": outcome.outcome,
                          "detail": outcome.detail, "result": outcome.result})


# --- the handlers ------------------------------------------------------------------------


def _handler(action: Any) -> Callable[[ActionContext], Result]:
    if isinstance(action, NOTIFICATION_ACTIONS):
        return _notify
    return _HANDLERS[type(action)]


def _notify(context: ActionContext) -> Result:
    delivery = deliver_action(context.store, context.record, context.index, context.action)
    return Result(delivery.outcome, delivery.detail, delivery.made)


def _target_run(context: ActionContext) -> str:
    run_id = context.flow_run_id()
    if run_id is None:
        raise _NoTarget("the firing's events are about no flow run, so there is none to act on")
    return run_id


class _NoTarget(InvalidTransition):
    """Nothing to act on: the action is skipped."""


def _cancel(context: ActionContext) -> Result:
    run_id = _target_run(context)
    run = context.store.require_flow_run(run_id)
    if run.state.is_final:
        return Result("skipped", f"flow run {run.name} already ended {run.state.value}",
                      {"target_flow_run_id": run_id})
    run = control.cancel_flow_run(context.store, run_id, f"cancelled {context.by()}")
    return Result("done", f"flow run {run.name} is {run.state.value}",
                  {"target_flow_run_id": run_id})


def _resume(context: ActionContext) -> Result:
    run_id = _target_run(context)
    run = context.store.require_flow_run(run_id)
    if run.state not in (StateType.PAUSED, StateType.RESUMING):
        return Result("skipped", f"flow run {run.name} is {run.state.value}, not Paused",
                      {"target_flow_run_id": run_id})
    run = control.resume_flow_run(context.store, run_id, f"resumed {context.by()}")
    return Result("done", f"flow run {run.name} is {run.state.value}",
                  {"target_flow_run_id": run_id})


def _suspend(context: ActionContext) -> Result:
    run_id = _target_run(context)
    run = context.store.require_flow_run(run_id)
    if run.state.is_final or run.state in (StateType.CANCELLING, StateType.PAUSED):
        return Result("skipped", f"flow run {run.name} is {run.state.value}; there is nothing "
                                 "to suspend", {"target_flow_run_id": run_id})
    run = control.suspend_flow_run(context.store, run_id, f"suspended {context.by()}",
                                   context.action.timeout_s)
    return Result("done", f"flow run {run.name} pauses at its next task start (for at most "
                          f"{context.action.timeout_s:g} s)", {"target_flow_run_id": run_id})


def _retry(context: ActionContext) -> Result:
    run_id = _target_run(context)
    retry = control.retry_flow_run(context.store, run_id, max_retries=context.action.max_retries)
    return Result("done", f"flow run {retry.name} retries {run_id}",
                  {"flow_run_id": retry.id, "target_flow_run_id": run_id})


def _change_state(context: ActionContext) -> Result:
    run_id = _target_run(context)
    state = StateType(context.action.state)
    message = context.action.message or f"set {context.by()}"
    if state.is_final:
        run = control.end_flow_run(context.store, run_id, state, message, allowed_from=NOT_FINAL)
    else:
        run = context.store.transition(run_id, state, message)
    if run is None:
        current = context.store.require_flow_run(run_id)
        return Result("skipped", f"flow run {current.name} already ended {current.state.value}",
                      {"target_flow_run_id": run_id})
    return Result("done", f"flow run {run.name} is {state.value}", {"target_flow_run_id": run_id})


def _run_deployment(context: ActionContext) -> Result:
    name = context.deployment()
    if name is None:
        raise _NoTarget("the firing's events are about no deployment, so there is none to run")
    parameters = render_value(context.action.parameters or {}, template_context(context),
                              "parameters")
    key = f"{context.record.automation_id}-{context.record.id}-{context.index}"
    run = control.run_deployment(context.store, name, parameters, idempotency_key=key)
    return Result("done", f"flow run {run.name} of deployment {name} enqueued",
                  {"flow_run_id": run.id, "deployment": name})


def _set_enabled(enabled: bool) -> Callable[[ActionContext], Result]:
    def handle(context: ActionContext) -> Result:
        target = context.action.automation or context.record.automation_id
        automation = context.automations.set_enabled(target, enabled)
        return Result("done", f"automation {automation.name} "
                              f"{'resumed' if enabled else 'paused'}",
                      {"automation_id": automation.id})

    return handle


_HANDLERS: dict[type, Callable[[ActionContext], Result]] = {
    DoNothing: lambda _context: Result("done", "nothing to do"),
    CancelFlowRun: _cancel,
    SuspendFlowRun: _suspend,
    ResumeFlowRun: _resume,
    RetryFlowRun: _retry,
    ChangeFlowRunState: _change_state,
    RunDeployment: _run_deployment,
    PauseAutomation: _set_enabled(False),
    ResumeAutomation: _set_enabled(True),
}


def template_context(context: ActionContext) -> dict[str, Any]:
    """What templates see: the event, the flow run, the automation and the firing; no secret."""
    record = context.record
    run_id = next((run for ref in context.refs() if (run := ref.flow_run_id())), None)
    run = context.store.get_flow_run(run_id) if run_id else None
    return {
        "event": record.event,
        "flow_run": run.model_dump(mode="json") if run is not None else {},
        "automation": {"id": record.automation_id, "name": record.automation_name},
        "firing": {"id": record.id, "reason": record.reason, "count": record.count,
                   "threshold": record.threshold, "labels": record.labels,
                   "states": record.states, "occurred": record.occurred.isoformat(),
                   "fired_at": record.fired_at.isoformat()},
    }
