"""The states of flow and task runs, and the one way to read a state's name.

Apart from the records (services.core.models) because it needs no pydantic: the SDK's
light modules (interrupts, futures) name states without loading it."""

from __future__ import annotations

from enum import StrEnum

from services.core.errors import InvalidInput

# the families of events that carry a state: `flow-run.Failed`, `task-run.Completed`
_STATE_EVENT_PREFIXES = ("flow-run.", "task-run.")


class StateType(StrEnum):
    SCHEDULED = "Scheduled"
    PENDING = "Pending"
    RUNNING = "Running"
    COMPLETED = "Completed"
    FAILED = "Failed"
    CRASHED = "Crashed"
    CANCELLING = "Cancelling"
    CANCELLED = "Cancelled"
    AWAITING_RETRY = "AwaitingRetry"
    RETRYING = "Retrying"
    LATE = "Late"
    # a flow paused itself (pause_flow_run) and waits, alive, for a resume or its timeout
    PAUSED = "Paused"
    # resumed from outside (CLI, API, action); the run goes on Running when it sees it
    RESUMING = "Resuming"

    @property
    def is_final(self) -> bool:
        return self in FINAL_STATES

    @classmethod
    def parse(cls, text: str) -> StateType:
        """The state named `text` in any case (`Failed`, `FAILED`, `awaitingretry`), or
        of a state event (`flow-run.Failed`); InvalidInput listing the states otherwise."""
        name = str(text)
        for prefix in _STATE_EVENT_PREFIXES:
            if name.startswith(prefix):
                name = name[len(prefix):]
                break
        state = _BY_FOLDED_NAME.get(name.casefold())
        if state is None:
            raise InvalidInput(f"'{text}' is not a state; one of "
                               + ", ".join(state.value for state in cls))
        return state


_BY_FOLDED_NAME = {state.value.casefold(): state for state in StateType}

FINAL_STATES = frozenset(
    {StateType.COMPLETED, StateType.FAILED, StateType.CRASHED, StateType.CANCELLED}
)
# states in which a run has not started yet (the scheduler may mark them Late)
WAITING_STATES = frozenset({StateType.SCHEDULED, StateType.PENDING, StateType.LATE})
# states in which a run's process is alive and sends heartbeats
ACTIVE_STATES = frozenset(
    {StateType.RUNNING, StateType.RETRYING, StateType.AWAITING_RETRY, StateType.CANCELLING,
     StateType.PAUSED, StateType.RESUMING}
)
