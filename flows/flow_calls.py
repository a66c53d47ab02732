"""Calling a flow and running an existing flow run: the ways into the flow engine
(flows.flow_engine), which runs a flow run to its final state.

Implementation notes:
- A flow called inside a flow is a subflow run: linked to its parent run, and,
  when called from the flow body, represented in the parent by a task run (so
  the task graph shows it) whose id is the subflow's parent_task_run_id.
- A deployment's run exists before its job starts (created Pending): the worker
  claims it Running in one checked step, so a cancellation that arrives while
  the job starts is never overwritten (`_claim_start`).
- A call raises like Prefect when the run does not complete; running an
  existing run returns its final state and never raises for a failing flow.
"""

from __future__ import annotations

import random
import threading
from typing import TYPE_CHECKING, Any

from flows.context import FLOW_RUN, TASK_RUN, FlowRunContext
from flows.errors import CancelledRun, CrashedRun, InvalidInput
from flows.flow_engine import Outcome, execute
from flows.inputs import find_inputs, track_result
from flows.interrupts import CancelInterrupt, Interrupt
from flows.parameters import bind_arguments, call_arguments, jsonable_parameters
from flows.policies import generate_run_name
from flows.recorder import new_task_run, set_flow_state, set_task_state
from flows.runtime import Runtime, flush_or_warn, get_runtime
from services.core.models import FINAL_STATES, WAITING_STATES, FlowRun, StateType

if TYPE_CHECKING:
    from flows.decorators import Flow


def call_flow(flow: Flow, args: tuple, kwargs: dict[str, Any]) -> Any:
    """`flow(...)`: a new flow run (a subflow run inside a flow); returns its result or
    raises its error."""
    parameters = bind_arguments(flow.signature, args, kwargs)
    if flow.should_validate_parameters:
        parameters = flow.validate_parameters(parameters)
    call_args, call_kwargs = call_arguments(flow.signature, parameters)
    parent = FLOW_RUN.get()
    runtime = parent.runtime if parent is not None else get_runtime()
    run = FlowRun(name=generate_run_name(random.choice), flow_name=flow.name,
                  parameters=jsonable_parameters(parameters), tags=list(flow.tags),
                  entrypoint=flow.entrypoint)
    if parent is None:
        ctx = FlowRunContext(flow, run, runtime, None, threading.get_ident())
        outcome = execute(flow, ctx, call_args, call_kwargs, created=True)
        return _result_or_raise(ctx, outcome)
    return _call_subflow(flow, parent, run, parameters, call_args, call_kwargs)


def run_existing(flow: Flow, flow_run_id: str, parameters: dict[str, Any] | None = None) -> StateType:
    """Run the flow against an existing FlowRun record (created Pending by a deployment);
    returns the final state and never raises for a failing flow."""
    runtime = get_runtime()
    run = runtime.store.require_flow_run(flow_run_id)
    if run.state in FINAL_STATES:
        return run.state
    ctx = FlowRunContext(flow, run, runtime, None, threading.get_ident())
    if run.cancel_requested is not None or run.state is StateType.CANCELLING:
        set_flow_state(ctx, StateType.CANCELLED, "Flow run was cancelled before it started")
        flush_or_warn(runtime)
        return StateType.CANCELLED
    try:
        validated = flow.validate_parameters(run.parameters if parameters is None else parameters)
        call_args, call_kwargs = call_arguments(flow.signature, validated)
    except InvalidInput as error:
        set_flow_state(ctx, StateType.FAILED, f"Invalid parameters: {error}", error)
        flush_or_warn(runtime)
        return StateType.FAILED
    started = _claim_start(runtime, run.id)
    if started is None:
        return _not_started(ctx, runtime)
    ctx.run = started
    return execute(flow, ctx, call_args, call_kwargs, created=False).state


def _claim_start(runtime: Runtime, run_id: str) -> FlowRun | None:
    """Move a waiting run to Running in one checked step, so that a cancel arriving while
    the job starts is never overwritten by a buffered Running; None if it was not waiting."""
    flush_or_warn(runtime)
    return runtime.store.transition(run_id, StateType.RUNNING, allowed_from=WAITING_STATES)


def _not_started(ctx: FlowRunContext, runtime: Runtime) -> StateType:
    store = runtime.store
    current = store.require_flow_run(ctx.run.id)
    if current.state is StateType.CANCELLING or current.cancel_requested is not None:
        ended = store.transition(current.id, StateType.CANCELLED,
                                 "Flow run was cancelled before it started",
                                 allowed_from={StateType.CANCELLING})
        return ended.state if ended else store.require_flow_run(current.id).state
    return current.state


def _call_subflow(flow: Flow, parent: FlowRunContext, run: FlowRun, parameters: dict[str, Any],
                  call_args: tuple, call_kwargs: dict[str, Any]) -> Any:
    guard = parent.guard()
    from_user_code = guard.in_user_code
    if from_user_code:
        guard.leave()
    try:
        task_ctx = TASK_RUN.get()
        run.parent_run_id = parent.run.id
        stand_in = None
        if task_ctx is not None and task_ctx.flow_run_context is parent:
            run.parent_task_run_id = task_ctx.task_run.id
        else:
            # the subflow appears in the parent's task graph as a task run of its own
            upstream, _ = find_inputs(parent, (), parameters, None)
            stand_in = new_task_run(parent, flow.name, parent.next_task_run_name(flow.name),
                                    list(flow.tags), upstream)
            set_task_state(stand_in, StateType.RUNNING)
            run.parent_task_run_id = stand_in.run.id
        ctx = FlowRunContext(flow, run, parent.runtime, parent, threading.get_ident())
        token = TASK_RUN.set(None)
        try:
            outcome = execute(flow, ctx, call_args, call_kwargs, created=True)
        finally:
            TASK_RUN.reset(token)
        if stand_in is not None:
            set_task_state(stand_in, outcome.state, ctx.run.state_message, outcome.error
                           if isinstance(outcome.error, Exception) else None)
            if outcome.state is StateType.COMPLETED:
                track_result(parent, stand_in.run.id, outcome.result)
        return _result_or_raise(ctx, outcome)
    finally:
        if from_user_code:
            guard.enter()


def _result_or_raise(ctx: FlowRunContext, outcome: Outcome) -> Any:
    if outcome.state is StateType.COMPLETED:
        return outcome.result
    error = outcome.error
    if isinstance(error, Interrupt):
        parent = ctx.parent
        if parent is not None and (parent.cancel_event.is_set()
                                   or not isinstance(error, CancelInterrupt)):
            raise error  # it stops the parent too (its cancellation, timeout or SIGTERM)
        if outcome.state is StateType.CANCELLED:
            raise CancelledRun(f"flow run '{ctx.run.name}' was cancelled") from None
        raise CrashedRun(f"flow run '{ctx.run.name}' crashed: {ctx.run.state_message}") from None
    if error is None:
        raise CancelledRun(f"flow run '{ctx.run.name}' ended {outcome.state.value}")
    raise error
