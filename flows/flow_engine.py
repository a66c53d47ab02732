"""Running one flow run to a final state: its attempts and retries, its timeout,
the tasks it submitted, and, for a top-level run, the heartbeat and SIGTERM.
The ways in (calling a flow, a subflow, a deployment's existing run) are in
flows.flow_calls.

Implementation notes:
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
import signal
import threading
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from redis import RedisError

from flows.aio import run_coroutine
from flows.context import FLOW_RUN, LOG_PRINTS, FlowRunContext
from flows.errors import ResultNotPersisted, RunTimeout
from flows.flow_results import persist_flow_result
from flows.heartbeat import Heartbeat, interrupt_thread, parse_cancel_flag, withdraw_interrupts
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
from flows.parameters import jsonable
from flows.policies import timeout_message
from flows.recorder import TaskRunWrites, create_flow_run, set_flow_state
from flows.runtime import flush_or_warn
from flows.task_runner import end_unstarted
from services.core import lifeline
from services.core.models import StateType

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
        flush_or_warn(runtime)
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
        try:
            persist_flow_result(ctx, result)
        except ResultNotPersisted as error:
            set_flow_state(ctx, StateType.FAILED, str(error), error)
            logger.error("Flow run failed: %s", error)
            return Outcome(StateType.FAILED, error=error)
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
        if flow.is_async:
            guard.leave()  # interrupts now wait in the guard for the loop's watcher
            try:
                result = run_coroutine(result, ctx, guard)
            finally:
                guard.enter()
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
