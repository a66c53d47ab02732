"""The rules engine: evaluates automations against the event stream, fires proactive
deadlines, records firings and enqueues their actions: run control on the RQ `control`
queue, notifications on `notify`.

`run_engine(settings)` is the process (`python -m services.engine`, `flowkeeper
engine`); `Engine(settings, client)` processes batches in-process (tests, benchmarks).
It evaluates and records, nothing else: the workers carry out the actions
(services.actions).
"""

from services.engine.engine import ENGINE_GROUP, BatchReport, Engine
from services.engine.service import run_engine

__all__ = ["ENGINE_GROUP", "BatchReport", "Engine", "run_engine"]
