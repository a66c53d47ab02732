"""`return_state=True`: the final state of a flow or task call as an object, as in
Prefect (`state.is_completed()`, `state.result()` raising the run's error).

A call with `return_state=True` never raises for a run that did not complete; an
interrupt (its own flow run cancelled, timed out or terminated) still goes on up,
since it stops the caller too.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, Generic, TypeVar

from flows.errors import CancelledRun, CrashedRun
from services.core.states import StateType

R = TypeVar("R")


class State(Generic[R]):
    """How a flow or task call ended: its state type and message, and its result."""

    __slots__ = ("type", "message", "_result", "_error")

    def __init__(self, type: StateType, message: str | None = None, result: Any = None,
                 error: BaseException | None = None) -> None:
        self.type = type
        self.message = message
        self._result = result
        self._error = error

    @property
    def name(self) -> str:
        return self.type.value

    def is_completed(self) -> bool:
        return self.type is StateType.COMPLETED

    def is_failed(self) -> bool:
        return self.type is StateType.FAILED

    def is_crashed(self) -> bool:
        return self.type is StateType.CRASHED

    def is_cancelled(self) -> bool:
        return self.type is StateType.CANCELLED

    def is_final(self) -> bool:
        return self.type.is_final

    def result(self, raise_on_failure: bool = True) -> R:
        """The run's return value; raises its error if it did not complete (unless
        raise_on_failure is False, which returns the error)."""
        if self._error is None:
            return self._result
        if raise_on_failure:
            raise self._error
        return self._error  # type: ignore[return-value]

    def __repr__(self) -> str:
        return f"{self.name}(message={self.message!r})"


def state_of_error(error: Exception) -> State:
    if isinstance(error, CancelledRun):
        return State(StateType.CANCELLED, str(error), error=error)
    if isinstance(error, CrashedRun):
        return State(StateType.CRASHED, str(error), error=error)
    return State(StateType.FAILED, f"{type(error).__name__}: {error}", error=error)


def capture_state(call: Callable[[], Any]) -> State:
    """Run a flow or task call; its final state instead of its result or error."""
    try:
        return State(StateType.COMPLETED, result=call())
    except Exception as error:  # noqa: BLE001 - the caller asked for the state, not the raise
        return state_of_error(error)


async def capture_state_async(call: Awaitable[Any]) -> State:
    """`capture_state` for an awaited call."""
    try:
        return State(StateType.COMPLETED, result=await call)
    except Exception as error:  # noqa: BLE001 - the caller asked for the state, not the raise
        return state_of_error(error)
