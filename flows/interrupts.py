"""Stopping a run's code from outside it: cancellation, timeouts and SIGTERM.

Implementation notes:
- An interrupt is a BaseException, so that `except Exception` in a flow does not
  swallow it. It is raised in the thread that runs the code: by a signal handler
  when that thread is the main thread (SIGALRM, SIGTERM: these also cut a
  `time.sleep` short), else with PyThreadState_SetAsyncExc from another thread
  (the heartbeat, a timer), which lands at the thread's next Python bytecode.
- Raising it while the thread is inside the SDK's own bookkeeping could leave a
  half-recorded state. So each thread that runs a flow's code has a ThreadGuard
  that knows whether the thread is in user code. An interrupt for a thread in
  SDK code is kept pending and raised when the thread next enters user code
  (the next task start, the return from a task to the flow body).
- An async exception is never withdrawn (PyThreadState_SetAsyncExc with NULL):
  on CPython 3.11 that leaves the interpreter's eval breaker set for good, and
  under a tracer (coverage, a debugger) the next traced call loops for ever.
  Only the guarded thread itself leaves user code (`leave`), and only while in
  user code is it sent one, under the guard's lock. So one sent but not landed
  when the thread leaves is already waiting on that very thread and lands at its
  next check for pending calls: `leave` lets it land there, inside a handler
  that catches exactly that class, and keeps it pending for the next `enter`.
  (The call of `leave` is itself such a check: one that lands there leaves the
  `finally` around the user code as the user code's own interrupt would, a
  bytecode later.) Whether it landed is known because landing
  instantiates the exception class, which marks the class `delivered`: every
  interrupt sent is a class of its own, made by `interrupt_class`, which also
  carries the message.
- An interrupt whose scope ended (`discard`) while it was on its way is marked
  `withdrawn`: `leave` absorbs it and keeps nothing pending.
- Async exceptions do not cut a blocking C call short (time.sleep, a socket
  read): the interrupt lands when the call returns.
"""

from __future__ import annotations

import signal
import threading
import time
from typing import Any, ClassVar

from flows.errors import RunTimeout
from services.core.states import StateType

# an alarm that fires this close to a deadline counts as that deadline's
ALARM_TOLERANCE_S = 0.002
# how long `leave` waits for an interrupt sent to its own thread to land; it lands at the
# next check for pending calls (microseconds), so this bound only ends a wait that a fault
# in CPython would make endless
LAND_TIMEOUT_S = 1.0


class Interrupt(BaseException):
    """Raised into a run's thread to stop it; `interrupt_class` makes one per cause."""

    message: ClassVar[str] = "interrupted"
    # how a task run that the interrupt passes through ends
    task_state: ClassVar[StateType] = StateType.CRASHED
    delivered: ClassVar[bool] = False
    # its scope ended before it landed: when it does, it is absorbed and not kept
    withdrawn: ClassVar[bool] = False

    def __init__(self, *args: object) -> None:
        super().__init__(*args)
        type(self).delivered = True

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else type(self).message


class CancelInterrupt(Interrupt):
    """The flow run was cancelled."""

    task_state = StateType.CANCELLED


class TimeoutInterrupt(Interrupt):
    """A timeout scope expired; the scope turns it into RunTimeout."""

    task_state = StateType.FAILED
    scope: ClassVar[Any] = None


class TerminateInterrupt(Interrupt):
    """The process received SIGTERM."""

    task_state = StateType.CRASHED


def interrupt_class(base: type[Interrupt], message: str, **attributes: Any) -> type[Interrupt]:
    """A fresh subclass of `base` carrying `message` (async exceptions are sent as classes)."""
    return type(base.__name__, (base,), {"message": message, "delivered": False,
                                         "withdrawn": False, **attributes})


def _send_async(thread_id: int, exc_class: type[BaseException]) -> None:
    # ctypes is loaded when an interrupt is first sent to another thread, not at import:
    # `import flows` loads this module (through flows.context), and most runs send none
    import ctypes

    ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(thread_id),
                                               ctypes.py_object(exc_class))


def _let_land(exc_class: type[Interrupt]) -> None:
    """Spin until `exc_class`, sent to this thread, lands (at the first check: the call's
    own start); the caller catches it."""
    deadline = time.monotonic() + LAND_TIMEOUT_S
    while not exc_class.delivered and time.monotonic() < deadline:
        pass


class ThreadGuard:
    """Whether one thread is running user code, and the interrupts waiting for it."""

    __slots__ = ("thread_id", "lock", "in_user_code", "_sent", "_pending")

    def __init__(self, thread_id: int) -> None:
        self.thread_id = thread_id
        self.lock = threading.RLock()
        self.in_user_code = False
        self._sent: type[Interrupt] | None = None
        self._pending: type[Interrupt] | None = None

    def enter(self) -> None:
        """The thread is about to run user code; raises an interrupt that was waiting."""
        with self.lock:
            self.in_user_code = True
            pending = self._pending
            if pending is not None:
                self._pending = None
                self.in_user_code = False
                raise pending()

    def leave(self) -> None:
        """The thread is back in SDK code; an interrupt sent meanwhile waits for `enter`.

        Nothing in the locked block calls Python code, so an interrupt on its way lands
        no earlier than the lock's release, inside the handler below (see the notes)."""
        sent: type[Interrupt] | None = None
        try:
            with self.lock:
                self.in_user_code = False
                sent, self._sent = self._sent, None
                if sent is not None and not sent.delivered:
                    if self._pending is None and not sent.withdrawn:
                        self._pending = sent
                else:
                    sent = None
            if sent is not None:
                _let_land(sent)
        except Interrupt as landed:
            if sent is None or type(landed) is not sent:
                raise

    def interrupt(self, exc_class: type[Interrupt]) -> None:
        """Stop the thread's user code with `exc_class`, now or when it next enters user code.

        From the guarded thread itself (a signal handler) it raises when in user code."""
        with self.lock:
            if threading.get_ident() == self.thread_id:
                if self.in_user_code:
                    raise exc_class()
                if self._pending is None:
                    self._pending = exc_class
                return
            if self.in_user_code and self._sent is None:
                self._sent = exc_class
                _send_async(self.thread_id, exc_class)
            elif self._pending is None and self._sent is not exc_class:
                self._pending = exc_class

    def take_pending(self) -> type[Interrupt] | None:
        """The interrupt waiting for the thread, if any, which the caller now handles (an
        event loop cancels its coroutine with it, see flows.aio)."""
        with self.lock:
            pending, self._pending = self._pending, None
            return pending

    def discard(self, exc_class: type[Interrupt]) -> None:
        """Forget `exc_class` if it has not landed (its scope ended first)."""
        with self.lock:
            if self._sent is exc_class:
                # on its way to a thread still in user code: it cannot be called back (see
                # the notes), but `leave` drops it instead of keeping it
                exc_class.withdrawn = True
            if self._pending is exc_class:
                self._pending = None


class TimeLimit:
    """A timeout around user code: raises RunTimeout(message) when `seconds` pass.

    In the main thread it uses SIGALRM (setitimer), saving the previous handler and
    the time left on a previous timer (RQ's job timeout uses SIGALRM too) and
    handing over to them; elsewhere a timer thread interrupts the guarded thread.
    """

    def __init__(self, seconds: float | None, message: str, guard: ThreadGuard) -> None:
        self.seconds = seconds
        self.message = message
        self.guard = guard
        self._exc: type[Interrupt] | None = None
        self._timer: threading.Timer | None = None
        self._previous_handler: Any = None
        self._previous_deadline: float | None = None
        self._previous_interval = 0.0
        self._previous_fired = False
        self._deadline = 0.0
        self._uses_alarm = False
        self._closed = False

    def __enter__(self) -> TimeLimit:
        if not self.seconds:
            return self
        self._exc = interrupt_class(TimeoutInterrupt, self.message, scope=self)
        now = time.monotonic()
        self._deadline = now + self.seconds
        if (threading.current_thread() is threading.main_thread()
                and hasattr(signal, "setitimer")):
            self._uses_alarm = True
            self._previous_handler = signal.getsignal(signal.SIGALRM)
            remaining, interval = signal.getitimer(signal.ITIMER_REAL)
            self._previous_interval = interval
            self._previous_deadline = now + remaining if remaining > 0 else None
            signal.signal(signal.SIGALRM, self._on_alarm)
            first = self.seconds if not remaining else min(self.seconds, remaining)
            signal.setitimer(signal.ITIMER_REAL, first)
        else:
            self._timer = threading.Timer(self.seconds, self._on_timer)
            self._timer.daemon = True
            self._timer.name = "flowkeeper-timeout"
            self._timer.start()
        return self

    def _on_timer(self) -> None:
        with self.guard.lock:  # the scope may have ended while the timer fired
            if not self._closed and self._exc is not None:
                self.guard.interrupt(self._exc)

    def _on_alarm(self, signum: int, frame: Any) -> None:
        now = time.monotonic()
        if (self._previous_deadline is not None and not self._previous_fired
                and now >= self._previous_deadline - ALARM_TOLERANCE_S):
            # the enclosing timer was due first: hand the signal to its owner, then re-arm ours
            self._previous_fired = True
            if now < self._deadline - ALARM_TOLERANCE_S:
                signal.setitimer(signal.ITIMER_REAL, self._deadline - now)
            self._call_previous(signum, frame)
            return
        if now >= self._deadline - ALARM_TOLERANCE_S:
            assert self._exc is not None
            self.guard.interrupt(self._exc)
        else:
            signal.setitimer(signal.ITIMER_REAL, self._deadline - now)

    def _call_previous(self, signum: int, frame: Any) -> None:
        handler = self._previous_handler
        if callable(handler):
            handler(signum, frame)
        elif handler == signal.SIG_DFL:
            # SIGALRM's default action ends the process; keep that meaning
            signal.signal(signal.SIGALRM, signal.SIG_DFL)
            signal.raise_signal(signal.SIGALRM)

    def __exit__(self, exc_type: Any, exc: BaseException | None, tb: Any) -> bool:
        if not self.seconds or self._exc is None:
            return False
        if self._uses_alarm:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, self._previous_handler)
            self._restore_previous_timer()
        elif self._timer is not None:
            self._timer.cancel()
        with self.guard.lock:
            self._closed = True
            self.guard.discard(self._exc)
        if exc_type is not None and issubclass(exc_type, self._exc):
            raise RunTimeout(self.message) from None
        return False

    def _restore_previous_timer(self) -> None:
        if self._previous_deadline is None:
            return
        if self._previous_fired:
            if self._previous_interval:
                signal.setitimer(signal.ITIMER_REAL, self._previous_interval,
                                 self._previous_interval)
            return
        remaining = self._previous_deadline - time.monotonic()
        # a deadline that passed inside the scope still fires, right away
        signal.setitimer(signal.ITIMER_REAL, max(remaining, 1e-4), self._previous_interval)
