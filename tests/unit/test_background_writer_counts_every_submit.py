"""The background writer counts every op that threads submit at once, so `flush()` waits
for all of them: a lost count made it return while ops were still queued."""

from __future__ import annotations

import threading
import time

from services.core.writer import BackgroundWriter

THREADS = 8
OPS_PER_THREAD = 200


class SlowCount(int):
    """A count whose `+ 1` lets other threads run in the middle of `count += 1`, as a
    free-threaded Python (or a finalizer run by the collector) may: without a lock
    around it, two threads read the same count and one submit is not counted."""

    def __add__(self, other: int) -> SlowCount:
        time.sleep(0.0002)
        return SlowCount(int(self) + other)


class RecordingPipeline:
    """Stands in for a Redis pipeline: an op adds a command, execute runs them all."""

    def __init__(self, written: list[int]) -> None:
        self.written = written
        self.commands: list[int] = []

    def execute(self, raise_on_error: bool = True) -> list[None]:
        self.written.extend(self.commands)
        return [None] * len(self.commands)


class RecordingClient:
    def __init__(self) -> None:
        self.written: list[int] = []

    def pipeline(self, transaction: bool = True) -> RecordingPipeline:
        return RecordingPipeline(self.written)


def test_flush_returns_only_after_every_op_that_many_threads_submitted_is_written():
    client = RecordingClient()
    writer = BackgroundWriter(client)  # type: ignore[arg-type]
    writer._submitted = SlowCount(0)
    start = threading.Barrier(THREADS)

    def submit_many(worker: int) -> None:
        start.wait()
        for index in range(OPS_PER_THREAD):
            value = worker * OPS_PER_THREAD + index
            writer.submit(lambda pipe, value=value: pipe.commands.append(value))

    threads = [threading.Thread(target=submit_many, args=(n,)) for n in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    try:
        assert writer.flush(timeout=30)
        # flush waited for the count of submitted ops: the count lost none
        assert len(client.written) == THREADS * OPS_PER_THREAD
        assert writer.pending == 0
    finally:
        writer.close()
    # each thread's ops were written in the order it submitted them
    for worker in range(THREADS):
        mine = [v for v in client.written if v // OPS_PER_THREAD == worker]
        assert mine == sorted(mine)
