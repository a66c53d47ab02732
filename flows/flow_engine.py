"""Running flow runs: states, retries, timeouts, subflows, the heartbeat and
SIGTERM of a top-level run, and the two ways in: calling a flow, and running a
flow run that already exists (a deployment's run, from the worker).

Implementation notes:
- A flow called inside a flow is a subflow run: linked to its parent run, and,
  when called from the flow body, represented in the parent by a task run (so
  the task graph shows it) whose id is the subflow's parent_task_run_id.
- Tasks submitted in an attempt are waited for before the attempt ends, inside
  the timeout. An attempt that fails interrupts the ones still running and
  cancels the ones not started.
- A top-level run in the main thread handles SIGTERM: the run ends Cancelled if
  a cancellation was requested, Crashed otherwise; the records are flushed;
  then the previous handler gets the signal (the default one ends the process).
- `execute` never raises for a failing flow: it returns the outcome, and the
  callers decide (raise like Prefect for a call, return the state for a worker).
"""

from __future__ import annotations

import json
import logging
import random
import signal
import threading
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from flows.context import FLOW_RUN, LOG_PRINTS, TASK_RUN, FlowRunContext
from flows.errors import CancelledRun, CrashedRun, InvalidInput, RunTimeout
from flows.heartbeat import Heartbeat, interrupt_thread, parse_cancel_flag, withdraw_interrupts
from flows.inputs import find_inputs, track_result
from flows.interrupts import (
    CancelInterrupt,
    Interrupt,
    TerminateInterrupt,
    ThreadGuard,
    TimeLimit,
    interrupt_class,
)
from flows.log_store import LogBuffer
from flows.logs import run_logger, start_print_capture, stop_print_capture
from flows.parameters import bind_arguments, call_arguments, jsonable, jsonable_parameters
from flows.policies import generate_run_name, timeout_message
from flows.recorder import (
    TaskRunWrites,
    create_flow_run,
    new_task_run,
    set_flow_state,
    set_task_state,
)
from flows.runtime import DEFAULT_FLUSH_TIMEOUT_S, Runtime, get_runtime
from flows.task_runner import end_unstarted
from services.core import lifeline
from services.core.models import FINAL_STATES, WAITING_STATES, FlowRun, StateType

if TYPE_CHECKING:
    from flows.decorators import Flow

log = logging.getLogger("flowkeeper.sdk")

TERMINATED_MESSAGE = "Flow run's process received SIGTERM"
WORKER_DIED_MESSAGE = "Flow run's worker died; its work horse stopped the run"
MAX_SUMMARY_CHARS = 500


@dataclass
class Outcome:
    """How a flow run ended: its final state, and its result or error."""

    state: StateType
    result: Any = None
    error: BaseException | None = None


# --- the ways in -------------------------------------------------------------------------


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
    from services.core.store import Store

    runtime = get_runtime()
    run = Store(runtime.client, runtime.settings).require_flow_run(flow_run_id)
    if run.state in FINAL_STATES:
        return run.state
    ctx = FlowRunContext(flow, run, runtime, None, threading.get_ident())
    if run.cancel_requested is not None or run.state is StateType.CANCELLING:
        set_flow_state(ctx, StateType.CANCELLED, "Flow run was cancelled before it started")
        _flush(runtime)
        return StateType.CANCELLED
    try:
        validated = flow.validate_parameters(run.parameters if parameters is None else parameters)
        call_args, call_kwargs = call_arguments(flow.signature, validated)
    except InvalidInput as error:
        set_flow_state(ctx, StateType.FAILED, f"Invalid parameters: {error}", error)
        _flush(runtime)
        return StateType.FAILED
    started = _claim_start(runtime, run.id)
    if started is None:
        return _not_started(ctx, runtime)
    ctx.run = started
    return execute(flow, ctx, call_args, call_kwargs, created=False).state


def _claim_start(runtime: Runtime, run_id: str) -> FlowRun | None:
    """Move a waiting run to Running in one checked step, so that a cancel arriving while
    the job starts is never overwritten by a buffered Running; None if it was not waiting."""
    from services.core.store import Store

    store = Store(runtime.client, runtime.settings)
    _flush(runtime)
    return store.transition(run_id, StateType.RUNNING, allowed_from=WAITING_STATES)


def _not_started(ctx: FlowRunContext, runtime: Runtime) -> StateType:
    from services.core.store import Store

    store = Store(runtime.client, runtime.settings)
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


# --- one flow run ------------------------------------------------------------------------


def execute(flow: Flow, ctx: FlowRunContext, call_args: tuple, call_kwargs: dict[str, Any],
            *, created: bool) -> Outcome:
    """Run the flow run of `ctx` to a final state."""
    runtime = ctx.runtime
    is_root = ctx.parent is None
    ctx.log_buffer = LogBuffer(ctx)
    ctx.task_run_writes = TaskRunWrites(ctx)
    with ctx.lock:
        ctx.active[ctx.run.id] = ctx
    process = _RootProcess(ctx) if is_root else None
    if is_root:
        runtime.active_runs += 1
    if created:
        create_flow_run(ctx)
        set_flow_state(ctx, StateType.PENDING)
    logger = run_logger(ctx)
    logger.info("Beginning %s %r for flow %r", "subflow run" if ctx.parent else "flow run",
                ctx.run.name, flow.name)
    flow_token = FLOW_RUN.set(ctx)
    log_prints = flow.log_prints if flow.log_prints is not None else LOG_PRINTS.get()
    prints_token = LOG_PRINTS.set(log_prints)
    if log_prints:
        start_print_capture()
    try:
        if process is not None:
            process.start()
        outcome = _attempts(flow, ctx, call_args, call_kwargs, process)
    finally:
        if log_prints:
            stop_print_capture()
        LOG_PRINTS.reset(prints_token)
        FLOW_RUN.reset(flow_token)
        with ctx.lock:
            ctx.active.pop(ctx.run.id, None)
        withdraw_interrupts(ctx)
        if process is not None:
            process.stop()
            runtime.active_runs -= 1
    message = f" ({ctx.run.state_message})" if ctx.run.state_message else ""
    level = logging.INFO if outcome.state is StateType.COMPLETED else logging.ERROR
    logger.log(level, "Finished in state %s%s", outcome.state.value, message)
    if process is not None:
        _flush(runtime)
        process.pass_on_sigterm()
    return outcome


def _attempts(flow: Flow, ctx: FlowRunContext, call_args: tuple, call_kwargs: dict[str, Any],
              process: _RootProcess | None) -> Outcome:
    guard = ctx.guard()
    logger = run_logger(ctx)
    retries_done = 0
    while True:
        if ctx.run.state is not StateType.RUNNING:  # run_existing claims the first start itself
            set_flow_state(ctx, StateType.RUNNING)
        try:
            result = _call_body(flow, ctx, call_args, call_kwargs, guard)
        except Interrupt as interrupt:
            _close_task_runner(ctx, completed=False, message=str(interrupt))
            return _interrupted(ctx, interrupt, process)
        except Exception as error:
            _close_task_runner(ctx, completed=False,
                               message=f"Flow run ended first: {type(error).__name__}: {error}")
            if retries_done < flow.retries and not ctx.cancel_event.is_set():
                retries_done += 1
                delay = flow.retry_delay_seconds
                set_flow_state(ctx, StateType.AWAITING_RETRY,
                               f"Retry {retries_done}/{flow.retries} in {delay:.3g} s after "
                               f"{type(error).__name__}: {error}", error)
                logger.info("Flow run failed with exception: %r - Retry %d/%d will start "
                            "%.3g second(s) from now", error, retries_done, flow.retries, delay)
                try:
                    _retry_wait(ctx, guard, delay)
                except Interrupt as interrupt:
                    return _interrupted(ctx, interrupt, process)
                set_flow_state(ctx, StateType.RETRYING, f"Retry {retries_done}/{flow.retries}")
                continue
            message = (str(error) if isinstance(error, RunTimeout)
                       else f"Flow run encountered an exception: {type(error).__name__}: {error}")
            set_flow_state(ctx, StateType.FAILED, message, error)
            logger.error("Flow run failed: %s", message, exc_info=error)
            return Outcome(StateType.FAILED, error=error)
        except BaseException as error:  # noqa: BLE001 - the run must end recorded
            # whatever else ends the body (KeyboardInterrupt, SystemExit, a user's own
            # BaseException) ends the run Crashed, with its record written
            _close_task_runner(ctx, completed=False, message=f"Flow run crashed: "
                                                             f"{type(error).__name__}")
            set_flow_state(ctx, StateType.CRASHED, f"Crashed: {type(error).__name__}", error)
            return Outcome(StateType.CRASHED, error=error)
        _close_task_runner(ctx, completed=True, message="")
        ctx.run.result_summary = _summary(result)
        set_flow_state(ctx, StateType.COMPLETED)
        return Outcome(StateType.COMPLETED, result=result)


def _summary(result: Any) -> str | None:
    """A short text of a flow's return value, for the run's record."""
    if result is None:
        return None
    value = jsonable(result, max_chars=MAX_SUMMARY_CHARS)
    return value if isinstance(value, str) else json.dumps(value)


def _call_body(flow: Flow, ctx: FlowRunContext, call_args: tuple, call_kwargs: dict[str, Any],
               guard: ThreadGuard) -> Any:
    if flow.timeout_seconds:
        with TimeLimit(flow.timeout_seconds, timeout_message("Flow", flow.timeout_seconds),
                       guard):
            return _user_body(flow, ctx, call_args, call_kwargs, guard)
    return _user_body(flow, ctx, call_args, call_kwargs, guard)


def _user_body(flow: Flow, ctx: FlowRunContext, call_args: tuple, call_kwargs: dict[str, Any],
               guard: ThreadGuard) -> Any:
    guard.enter()
    try:
        if ctx.cancel_event.is_set():
            raise (ctx.cancel_class or CancelInterrupt)()
        result = flow.fn(*call_args, **call_kwargs)
        for handle in list(ctx.futures):
            handle.wait()
        return result
    finally:
        guard.leave()


def _retry_wait(ctx: FlowRunContext, guard: ThreadGuard, seconds: float) -> None:
    if seconds > 0:
        guard.enter()
        try:
            ctx.cancel_event.wait(seconds)
        finally:
            guard.leave()
    if ctx.cancel_event.is_set():
        raise (ctx.cancel_class or CancelInterrupt)()


def _interrupted(ctx: FlowRunContext, interrupt: Interrupt,
                 process: _RootProcess | None) -> Outcome:
    if isinstance(interrupt, TerminateInterrupt):
        if not ctx.cancel_event.is_set() and process is not None:
            ctx.run.cancel_requested = ctx.run.cancel_requested or process.cancel_requested()
        if ctx.cancel_event.is_set() or ctx.run.cancel_requested is not None:
            state, message = StateType.CANCELLED, f"{interrupt} after a cancellation request"
        else:
            state, message = StateType.CRASHED, str(interrupt)
    elif isinstance(interrupt, CancelInterrupt):
        state, message = StateType.CANCELLED, str(interrupt)
    else:  # an enclosing run's timeout
        state, message = interrupt.task_state, str(interrupt)
    set_flow_state(ctx, state, message)
    return Outcome(state, error=interrupt)


def _close_task_runner(ctx: FlowRunContext, *, completed: bool, message: str) -> None:
    """End the attempt's task runner: wait for its tasks, or stop them when it failed."""
    executor = ctx.executor
    if executor is None:
        return
    if not completed:
        with ctx.lock:
            running = list(ctx.task_threads)
        for thread_id in running:
            interrupt_thread(ctx, thread_id, interrupt_class(CancelInterrupt, message))
    executor.shutdown(wait=True, cancel_futures=not completed)
    end_unstarted(ctx, message or "Flow run ended before this task run started")
    ctx.executor = None
    ctx.futures = []
    withdraw_interrupts(ctx)


def _flush(runtime: Runtime) -> None:
    if not runtime.writer.flush(DEFAULT_FLUSH_TIMEOUT_S):
        log.warning("%d flowkeeper writes are still waiting for Redis; they are sent when it "
                    "answers (or dropped if this process exits first)", runtime.writer.pending)


class _RootProcess:
    """What a top-level run owns in its process: the heartbeat, and SIGTERM handling."""

    def __init__(self, ctx: FlowRunContext) -> None:
        self.ctx = ctx
        self.heartbeat = Heartbeat(ctx)
        self._previous_sigterm: Any = None
        self._handles_sigterm = False

    def start(self) -> None:
        self.heartbeat.start()
        if threading.current_thread() is threading.main_thread():
            self._previous_sigterm = signal.getsignal(signal.SIGTERM)
            signal.signal(signal.SIGTERM, self._on_sigterm)
            self._handles_sigterm = True

    def _on_sigterm(self, signum: int, frame: Any) -> None:
        self.ctx.terminate_requested = True
        message = TERMINATED_MESSAGE
        if lifeline.watching() and lifeline.parent_gone(lifeline.PARENT_EXIT_SETTLE_S):
            message = WORKER_DIED_MESSAGE
        self.ctx.guard().interrupt(interrupt_class(TerminateInterrupt, message))

    def cancel_requested(self) -> datetime | None:
        """When the run's record asked for cancellation (the heartbeat may not have seen it)."""
        from redis import RedisError  # here: importing flows stays light

        runtime = self.ctx.runtime
        try:
            raw = runtime.client.hget(runtime.keys.flow_run(self.ctx.run.id), "cancel_requested")
            return parse_cancel_flag(raw)
        except (RedisError, ValueError):
            return None  # Redis unreachable, or a flag that does not parse: none can be seen

    def stop(self) -> None:
        self.heartbeat.stop()
        if self._handles_sigterm:
            signal.signal(signal.SIGTERM, self._previous_sigterm)

    def pass_on_sigterm(self) -> None:
        """After the run is recorded, give a SIGTERM it received to the previous handler."""
        if not (self._handles_sigterm and self.ctx.terminate_requested):
            return
        previous = self._previous_sigterm
        if callable(previous):
            previous(signal.SIGTERM, None)
        elif previous in (signal.SIG_DFL, None):
            signal.raise_signal(signal.SIGTERM)
