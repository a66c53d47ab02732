"""A suspension asked of a run from outside its process (Prefect's `suspend-flow-run`):
the request on the run's record, which the run's heartbeat reads (flows.suspend).

Implementation notes:
- [1] The request is one field of the run's hash (SUSPEND_FIELD), JSON with the time it
  was asked, the pause's timeout and a message. It is written with WATCH on the record,
  so a run that ends or is cancelled meanwhile is not asked.
- [2] A run already Paused is left as it is (asking twice pauses once); Cancelling and
  ended runs cannot be suspended. A run that has not started yet can: it pauses at its
  first task start.
- [3] Each request carries its own time, so the run tells a new request from one it
  has already paused for; a resume removes the field.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass

import redis

from services.core.errors import InvalidInput, InvalidTransition, NotFound
from services.core.models import FlowRun, StateType, utcnow
from services.core.store import Store, decode_run

SUSPEND_FIELD = "suspend_requested"
# the action's limits (automations.actions) are the same; the SDK, which reads this
# module, does not load the action schema, and a test keeps the two in step
DEFAULT_SUSPEND_TIMEOUT_S = 3600.0
MAX_SUSPEND_TIMEOUT_S = 7 * 24 * 3600.0
_NOT_SUSPENDABLE = frozenset({StateType.CANCELLING, StateType.COMPLETED, StateType.FAILED,
                              StateType.CRASHED, StateType.CANCELLED})


@dataclass(frozen=True)
class Suspension:
    """What a suspension asks: when, for how long at most, and why."""

    requested: str  # ISO time: tells one request from the next [3]
    timeout_s: float
    message: str

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def parse(cls, raw: str | bytes | None) -> Suspension | None:
        """The request in a record's field; None when there is none or it does not parse."""
        if not raw:
            return None
        try:
            data = json.loads(raw)
            return cls(str(data["requested"]), float(data["timeout_s"]), str(data["message"]))
        except (TypeError, ValueError, KeyError):
            return None


def check_timeout(timeout_s: float) -> float:
    """The timeout of a suspension, or InvalidInput saying what it may be."""
    if isinstance(timeout_s, bool) or not 0 < timeout_s <= MAX_SUSPEND_TIMEOUT_S:
        raise InvalidInput(f"timeout_s must be above 0 and at most {MAX_SUSPEND_TIMEOUT_S:g} "
                           f"seconds, not {timeout_s!r}")
    return float(timeout_s)


def request_suspend(store: Store, run_id: str, message: str | None = None,
                    timeout_s: float = DEFAULT_SUSPEND_TIMEOUT_S) -> FlowRun:
    """Ask a run to pause at its next task start [1][2]; returns the run as it is."""
    timeout = check_timeout(timeout_s)
    key = store.keys.flow_run(run_id)
    request = Suspension(utcnow().isoformat(), timeout, message or "suspend requested")
    with store.client.pipeline(transaction=True) as pipe:
        while True:
            try:
                pipe.watch(key)
                raw = pipe.hgetall(key)
                if not raw:
                    raise NotFound(f"no flow run with id '{run_id}'")
                run = decode_run(raw)
                if run.state in _NOT_SUSPENDABLE:
                    pipe.unwatch()
                    raise InvalidTransition(f"flow run '{run_id}' is {run.state.value}; a run "
                                            "that has ended or is being cancelled cannot be "
                                            "suspended")
                if run.state is StateType.PAUSED:
                    pipe.unwatch()
                    return run
                pipe.multi()
                pipe.hset(key, SUSPEND_FIELD, request.to_json())
                pipe.execute()
                return run
            except redis.WatchError:
                continue


def clear_suspend_request(store: Store, run_id: str) -> None:
    """Remove a run's suspension request (a resume does) [3]."""
    store.client.hdel(store.keys.flow_run(run_id), SUSPEND_FIELD)
