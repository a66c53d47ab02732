"""`@flow` and `@task`: Prefect's names and options on flowkeeper's engine.

This is the top of the SDK's layers: it calls into the engines (flows.flow_calls,
flows.task_engine, flows.task_runner), and they name `Flow` and `Task` for their
types only. Importing this module is cheap, because every flow script and the
CLI do: the engines (and with them Redis and pydantic) and the parameter checks
are imported where a flow or a task is first called, by the import statements in
the methods below.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Iterable
from datetime import timedelta
from typing import TYPE_CHECKING, Any, Generic, ParamSpec, TypeVar, overload

from flows.context import TaskRunContext
from flows.futures import FutureList, TaskRunFuture
from flows.policies import RetryDelay, resolve_retry_delays
from flows.state import capture_state, capture_state_async
from services.core.states import StateType

if TYPE_CHECKING:
    from flows.parameters import ParameterModel

P = ParamSpec("P")
R = TypeVar("R")

_UNSET: Any = object()


def _check_function(fn: Any, kind: str) -> None:
    if not callable(fn):
        raise TypeError(f"@{kind} decorates a function, not a {type(fn).__name__}")
    if inspect.isasyncgenfunction(fn) or inspect.isgeneratorfunction(fn):
        raise TypeError(f"@{kind} '{getattr(fn, '__name__', fn)}' is a generator; a {kind} "
                        "returns its result (return a list, or write an artifact)")


def _check_number(name: str, value: float | None, *, allow_none: bool = True) -> None:
    if value is None and allow_none:
        return
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
        raise ValueError(f"{name} must be a number of at least 0, not {value!r}")


def _check_serializer(value: str) -> None:
    if value not in ("json", "pickle"):
        raise ValueError("result_serializer must be 'json' or 'pickle' (pickle runs code when "
                         f"read back: use it for your own results), not {value!r}")


def _loop_running() -> bool:
    import asyncio

    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


async def _call_async_flow(flow: Flow, args: tuple, kwargs: dict[str, Any]) -> Any:
    """An async flow runs in a thread of its own, with its body on that thread's event
    loop (flows.aio); the caller's loop goes on meanwhile. The thread gets the caller's
    context, so a flow awaited inside a flow is its subflow."""
    import asyncio

    from flows.flow_calls import call_flow

    return await asyncio.to_thread(call_flow, flow, args, kwargs)


def _entrypoint(fn: Callable[..., Any]) -> str | None:
    qualname = getattr(fn, "__qualname__", "")
    if "<" in qualname or "." in qualname or fn.__module__ == "__main__":
        return None  # a nested function, a method or a script cannot be imported by name
    return f"{fn.__module__}:{qualname}"


class Task(Generic[P, R]):
    """A function whose calls inside a flow are recorded as task runs."""

    def __init__(self, fn: Callable[P, R], name: str | None = None,
                 description: str | None = None, tags: Iterable[str] | None = None,
                 retries: int = 0, retry_delay_seconds: RetryDelay | None = None,
                 retry_jitter_factor: float | None = None, timeout_seconds: float | None = None,
                 cache_key_fn: Callable[[TaskRunContext, dict[str, Any]], str | None] | None = None,
                 cache_expiration: timedelta | None = None, log_prints: bool | None = None,
                 persist_result: bool | None = None, result_serializer: str = "json",
                 refresh_cache: bool = False) -> None:
        _check_function(fn, "task")
        _check_serializer(result_serializer)
        if not isinstance(retries, int) or retries < 0:
            raise ValueError(f"retries must be an integer of at least 0, not {retries!r}")
        _check_number("retry_jitter_factor", retry_jitter_factor)
        _check_number("timeout_seconds", timeout_seconds)
        if cache_key_fn is not None and not callable(cache_key_fn):
            raise TypeError("cache_key_fn must be a function (context, parameters) -> str | None")
        if cache_expiration is not None and not isinstance(cache_expiration, timedelta):
            raise TypeError("cache_expiration must be a datetime.timedelta")
        functools.update_wrapper(self, fn)
        self.fn = fn
        self.name = name or fn.__name__
        self.description = description if description is not None else inspect.getdoc(fn)
        self.tags = sorted(set(tags or ()))
        self.retries = retries
        self.retry_delay_seconds = retry_delay_seconds
        self.retry_delays = resolve_retry_delays(retry_delay_seconds, retries)
        self.retry_jitter_factor = retry_jitter_factor
        self.timeout_seconds = timeout_seconds
        self.cache_key_fn = cache_key_fn
        self.cache_expiration = cache_expiration
        self.log_prints = log_prints
        # None: as the flow says (Flow.persist_result)
        self.persist_result = persist_result
        self.result_serializer = result_serializer
        self.refresh_cache = refresh_cache
        self.task_key = f"{fn.__module__}.{fn.__qualname__}"
        self.is_async = inspect.iscoroutinefunction(fn)
        self._signature: inspect.Signature | None = None

    @property
    def signature(self) -> inspect.Signature:
        if self._signature is None:
            self._signature = inspect.signature(self.fn)
        return self._signature

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> R:
        """Run the task (`wait_for=[...]`; `return_state=True` for its State, not its result)."""
        wait_for = kwargs.pop("wait_for", None)
        return_state = kwargs.pop("return_state", False)
        if self.is_async:  # a coroutine to await, as calling the async function gives
            from flows.async_tasks import call_task_async

            call = call_task_async(self, args, kwargs, wait_for)
            return capture_state_async(call) if return_state else call  # type: ignore[return-value]
        from flows.task_engine import call_task

        if return_state:
            return capture_state(lambda: call_task(self, args, kwargs, wait_for))  # type: ignore[return-value]
        return call_task(self, args, kwargs, wait_for)

    def submit(self, *args: P.args, **kwargs: P.kwargs) -> TaskRunFuture[R]:
        """Run the task concurrently; returns a future of its result (awaitable in async
        code). An async task submitted from async code runs on the same event loop."""
        wait_for = kwargs.pop("wait_for", None)
        if self.is_async and _loop_running():
            from flows.async_tasks import submit_task_async

            return submit_task_async(self, args, kwargs, wait_for)
        from flows.task_runner import submit_task

        return submit_task(self, args, kwargs, wait_for)

    def map(self, *args: Any, **kwargs: Any) -> FutureList:
        """Submit one task run per item of the iterable arguments (see `unmapped`)."""
        from flows.task_runner import map_task

        wait_for = kwargs.pop("wait_for", None)
        return map_task(self, args, kwargs, wait_for)

    def with_options(self, *, name: str | None = _UNSET, description: str | None = _UNSET,
                     tags: Iterable[str] | None = _UNSET, retries: int = _UNSET,
                     retry_delay_seconds: RetryDelay | None = _UNSET,
                     retry_jitter_factor: float | None = _UNSET,
                     timeout_seconds: float | None = _UNSET,
                     cache_key_fn: Callable[..., str | None] | None = _UNSET,
                     cache_expiration: timedelta | None = _UNSET,
                     log_prints: bool | None = _UNSET, persist_result: bool | None = _UNSET,
                     result_serializer: str = _UNSET,
                     refresh_cache: bool = _UNSET) -> Task[P, R]:
        """A copy of this task with some options changed."""
        changes = {key: value for key, value in locals().items()
                   if key != "self" and value is not _UNSET}
        options = {"name": self.name, "description": self.description, "tags": self.tags,
                   "retries": self.retries, "retry_delay_seconds": self.retry_delay_seconds,
                   "retry_jitter_factor": self.retry_jitter_factor,
                   "timeout_seconds": self.timeout_seconds, "cache_key_fn": self.cache_key_fn,
                   "cache_expiration": self.cache_expiration, "log_prints": self.log_prints,
                   "persist_result": self.persist_result,
                   "result_serializer": self.result_serializer,
                   "refresh_cache": self.refresh_cache}
        options.update(changes)
        return Task(self.fn, **options)

    def __repr__(self) -> str:
        return f"Task(name={self.name!r}, fn={self.fn.__qualname__})"


class Flow(Generic[P, R]):
    """A function whose calls are recorded as flow runs."""

    def __init__(self, fn: Callable[P, R], name: str | None = None,
                 description: str | None = None, tags: Iterable[str] | None = None,
                 retries: int = 0, retry_delay_seconds: float = 0,
                 timeout_seconds: float | None = None, log_prints: bool | None = None,
                 validate_parameters: bool = True, version: str | None = None,
                 persist_result: bool = False, result_serializer: str = "json") -> None:
        _check_function(fn, "flow")
        _check_serializer(result_serializer)
        if not isinstance(retries, int) or retries < 0:
            raise ValueError(f"retries must be an integer of at least 0, not {retries!r}")
        _check_number("retry_delay_seconds", retry_delay_seconds, allow_none=False)
        _check_number("timeout_seconds", timeout_seconds)
        functools.update_wrapper(self, fn)
        self.fn = fn
        self.name = name or fn.__name__.replace("_", "-")
        self.description = description if description is not None else inspect.getdoc(fn)
        self.tags = sorted(set(tags or ()))
        self.retries = retries
        self.retry_delay_seconds = float(retry_delay_seconds)
        self.timeout_seconds = timeout_seconds
        self.log_prints = log_prints
        self.should_validate_parameters = validate_parameters
        self.version = version
        # its own result (load_flow_result), and its tasks' that do not say
        self.persist_result = persist_result
        self.result_serializer = result_serializer
        self.entrypoint = _entrypoint(fn)
        self.is_async = inspect.iscoroutinefunction(fn)
        self._signature: inspect.Signature | None = None
        self._parameter_model: ParameterModel | None = None

    @property
    def signature(self) -> inspect.Signature:
        if self._signature is None:
            self._signature = inspect.signature(self.fn)
        return self._signature

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> R:
        """Run the flow (`return_state=True` for its State, not its result)."""
        from flows.flow_calls import call_flow

        return_state = kwargs.pop("return_state", False)
        if self.is_async:  # a coroutine to await, as calling the async function gives
            call = _call_async_flow(self, args, kwargs)
            return capture_state_async(call) if return_state else call  # type: ignore[return-value]
        if return_state:
            return capture_state(lambda: call_flow(self, args, kwargs))  # type: ignore[return-value]
        return call_flow(self, args, kwargs)

    def validate_parameters(self, parameters: dict[str, Any]) -> dict[str, Any]:
        """Check parameters given by name against the signature and its annotations; returns
        them coerced (e.g. "3" -> 3 for an int); raises InvalidInput naming the parameter."""
        from flows.parameters import ParameterModel, check_names

        check_names(self.signature, parameters, self.name)
        if self._parameter_model is None:
            self._parameter_model = ParameterModel(self.fn)
        return self._parameter_model.validate(parameters, self.name)

    def run_existing(self, flow_run_id: str, parameters: dict[str, Any] | None = None) -> StateType:
        """Run this flow as the existing flow run `flow_run_id`; returns its final state."""
        from flows.flow_calls import run_existing

        return run_existing(self, flow_run_id, parameters)

    def serve(self, name: str | None = None, *, cron: str | None = None,
              interval: float | None = None, parameters: dict[str, Any] | None = None,
              tags: Iterable[str] | None = None, description: str | None = None,
              work_queue_name: str | None = None, burst: bool = False) -> Any:
        """Register a deployment of this flow and run its runs in this process until
        interrupted, as Prefect's `serve` (`burst=True`: until its queue is empty)."""
        # the one way from the SDK into a process, loaded only here (see pyproject)
        from services.worker.serve import serve_flow

        return serve_flow(self, name or self.name, cron=cron, interval=interval,
                          parameters=parameters, tags=tags, description=description,
                          work_queue_name=work_queue_name, burst=burst)

    def with_options(self, *, name: str | None = _UNSET, description: str | None = _UNSET,
                     tags: Iterable[str] | None = _UNSET, retries: int = _UNSET,
                     retry_delay_seconds: float = _UNSET, timeout_seconds: float | None = _UNSET,
                     log_prints: bool | None = _UNSET, validate_parameters: bool = _UNSET,
                     version: str | None = _UNSET, persist_result: bool = _UNSET,
                     result_serializer: str = _UNSET) -> Flow[P, R]:
        """A copy of this flow with some options changed."""
        changes = {key: value for key, value in locals().items()
                   if key != "self" and value is not _UNSET}
        options = {"name": self.name, "description": self.description, "tags": self.tags,
                   "retries": self.retries, "retry_delay_seconds": self.retry_delay_seconds,
                   "timeout_seconds": self.timeout_seconds, "log_prints": self.log_prints,
                   "validate_parameters": self.should_validate_parameters,
                   "version": self.version, "persist_result": self.persist_result,
                   "result_serializer": self.result_serializer}
        options.update(changes)
        return Flow(self.fn, **options)

    def __repr__(self) -> str:
        return f"Flow(name={self.name!r}, fn={self.fn.__qualname__})"


@overload
def flow(__fn: Callable[P, R]) -> Flow[P, R]: ...


@overload
def flow(*, name: str | None = None, description: str | None = None,
         tags: Iterable[str] | None = None, retries: int = 0, retry_delay_seconds: float = 0,
         timeout_seconds: float | None = None, log_prints: bool | None = None,
         validate_parameters: bool = True, version: str | None = None,
         persist_result: bool = False,
         result_serializer: str = "json") -> Callable[[Callable[P, R]], Flow[P, R]]: ...


def flow(__fn: Callable[P, R] | None = None, **options: Any) -> Any:
    """Make a function a flow: `@flow` or `@flow(name=..., retries=..., ...)`."""
    if __fn is None:
        return lambda fn: Flow(fn, **options)
    return Flow(__fn, **options)


@overload
def task(__fn: Callable[P, R]) -> Task[P, R]: ...


@overload
def task(*, name: str | None = None, description: str | None = None,
         tags: Iterable[str] | None = None, retries: int = 0,
         retry_delay_seconds: RetryDelay | None = None,
         retry_jitter_factor: float | None = None, timeout_seconds: float | None = None,
         cache_key_fn: Callable[..., str | None] | None = None,
         cache_expiration: timedelta | None = None,
         log_prints: bool | None = None, persist_result: bool | None = None,
         result_serializer: str = "json",
         refresh_cache: bool = False) -> Callable[[Callable[P, R]], Task[P, R]]: ...


def task(__fn: Callable[P, R] | None = None, **options: Any) -> Any:
    """Make a function a task: `@task` or `@task(name=..., retries=..., ...)`."""
    if __fn is None:
        return lambda fn: Task(fn, **options)
    return Task(__fn, **options)
