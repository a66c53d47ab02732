"""Futures of submitted task runs, and `unmapped` for `Task.map`."""

from __future__ import annotations

import concurrent.futures
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from flows.errors import CancelledRun
from services.core.states import StateType

if TYPE_CHECKING:
    # a type only: the recorder loads Redis, and `import flows` loads this module
    from flows.recorder import TaskRecord

R = TypeVar("R")

# a waiting thread wakes this often, so a cancellation or timeout sent to it lands
WAIT_SLICE_S = 0.1


class TaskRunFuture(Generic[R]):
    """The pending result of a submitted task run (`Task.submit`, `Task.map`)."""

    __slots__ = ("_record", "_future", "task_run_id", "task_run_name", "_loop")

    def __init__(self, record: TaskRecord | None, future: concurrent.futures.Future,
                 task_run_id: str, task_run_name: str, loop: Any = None) -> None:
        self._record = record
        self._future = future
        self.task_run_id = task_run_id
        self.task_run_name = task_run_name
        self._loop = loop  # the event loop an async task run was submitted on, if any

    @property
    def state(self) -> StateType:
        """The task run's current state."""
        if self._record is not None:
            return self._record.run.state
        if not self._future.done():
            return StateType.RUNNING if self._future.running() else StateType.PENDING
        if self._future.cancelled():
            return StateType.CANCELLED
        return StateType.FAILED if self._future.exception() else StateType.COMPLETED

    def done(self) -> bool:
        return self._future.done()

    def wait(self, timeout: float | None = None) -> None:
        """Wait until the task run ends (or `timeout` seconds pass)."""
        if not self._future.done() and self._loop is not None and _running_loop() is self._loop:
            raise RuntimeError(f"task run '{self.task_run_name}' runs on this event loop, "
                               "which a wait would block: use `await future` in async code")
        deadline = None if timeout is None else time.monotonic() + timeout
        while not self._future.done():
            step = WAIT_SLICE_S
            if deadline is not None:
                step = min(step, deadline - time.monotonic())
                if step <= 0:
                    return
            concurrent.futures.wait((self._future,), timeout=step)

    def result(self, timeout: float | None = None, raise_on_failure: bool = True) -> R:
        """The task's return value; raises its error if it failed (unless raise_on_failure
        is False, which returns the error)."""
        self.wait(timeout)
        if not self._future.done():
            raise TimeoutError(f"task run '{self.task_run_name}' did not finish within "
                               f"{timeout} seconds")
        if self._future.cancelled():
            error: BaseException = CancelledRun(
                f"task run '{self.task_run_name}' was cancelled before it started")
        else:
            error = self._future.exception()  # type: ignore[assignment]
        if error is None:
            return self._future.result()
        if raise_on_failure or not isinstance(error, Exception):
            raise error
        return error  # type: ignore[return-value]

    async def settled(self) -> None:
        """Wait, without blocking the running loop, until the task run ends."""
        if not self._future.done():
            import asyncio

            await asyncio.wait((asyncio.wrap_future(self._future),))

    def __await__(self) -> Any:
        """`await future` in async code: the result, or the task run's error."""
        yield from self.settled().__await__()
        return self.result()

    def add_done_callback(self, callback: Callable[[TaskRunFuture[R]], Any]) -> None:
        self._future.add_done_callback(lambda _: callback(self))

    def __repr__(self) -> str:
        return f"TaskRunFuture({self.task_run_name!r}, state={self.state.value})"


def _running_loop() -> Any:
    import asyncio  # loaded by async code only, not by `import flows`

    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None


class FutureList(list):
    """The futures `Task.map` returns, with `.result()` and `.wait()` over all of them."""

    def wait(self, timeout: float | None = None) -> None:
        deadline = None if timeout is None else time.monotonic() + timeout
        for future in self:
            future.wait(None if deadline is None else max(0.0, deadline - time.monotonic()))

    def result(self, timeout: float | None = None, raise_on_failure: bool = True) -> list[Any]:
        self.wait(timeout)
        return [future.result(0 if timeout is not None else None, raise_on_failure)
                for future in self]


class unmapped(Generic[R]):  # the name Prefect users know
    """Marks an argument of `Task.map` as the same for every mapped call."""

    __slots__ = ("value",)

    def __init__(self, value: R) -> None:
        self.value = value
