"""flows.aio: an async timeout raises RunTimeout only for its own expiry, and an interrupt
for the thread cancels the coroutine it runs (no thread async exception)."""

from __future__ import annotations

import asyncio
import threading
from types import SimpleNamespace

import pytest

from flows.aio import run_coroutine, with_timeout
from flows.errors import RunTimeout
from flows.interrupts import CancelInterrupt, ThreadGuard, interrupt_class


def test_the_timeouts_own_expiry_becomes_run_timeout():
    async def slow() -> None:
        await asyncio.sleep(5)

    with pytest.raises(RunTimeout, match="too slow"):
        asyncio.run(with_timeout(slow(), 0.05, "too slow"))


def test_a_timeout_error_of_the_users_code_stays_the_users():
    async def failing() -> None:
        raise TimeoutError("the API timed out")

    with pytest.raises(TimeoutError, match="the API timed out") as raised:
        asyncio.run(with_timeout(failing(), 5, "too slow"))
    assert not isinstance(raised.value, RunTimeout)


def test_an_interrupt_for_the_thread_cancels_the_awaiting_coroutine():
    guard = ThreadGuard(threading.get_ident())
    ctx = SimpleNamespace(cancel_event=threading.Event(), cancel_class=None)
    unwound = []

    async def waiting() -> None:
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            unwound.append(True)
            raise

    stop = interrupt_class(CancelInterrupt, "stopped by a test")
    threading.Timer(0.1, guard.interrupt, (stop,)).start()
    with pytest.raises(stop, match="stopped by a test"):
        run_coroutine(waiting(), ctx, guard)
    assert unwound == [True]
