"""Run logs: `get_run_logger()`, `log_prints` capturing `print`, and the console echo.

Records of the run loggers go to the run's log buffer (stored in Redis per flow
run, see flows.log_store) and to the console, formatted as Prefect formats them:
`12:01:02.345 | INFO    | Flow run 'brave-otter' - message`.

Implementation notes:
- `print` is captured by patching `builtins.print` while at least one run with
  log_prints is in progress. The patched print looks at a context variable, so
  only code of such a run is captured, in whichever thread it runs; everything
  else prints as before. A captured line still goes to stdout, once, and is
  stored as an INFO record (not echoed a second time by the console handler).
"""

from __future__ import annotations

import builtins
import logging
import sys
import threading
from typing import TYPE_CHECKING, Any

from flows.context import FLOW_RUN, LOG_PRINTS, TASK_RUN, FlowRunContext
from flows.errors import MissingContext

if TYPE_CHECKING:
    from services.core.models import TaskRun

FLOW_RUN_LOGGER = "flowkeeper.flow_runs"
TASK_RUN_LOGGER = "flowkeeper.task_runs"
CONTEXT_ATTRIBUTE = "flowkeeper_context"
PRINT_ATTRIBUTE = "flowkeeper_print"
CONSOLE_TIME_FORMAT = "%H:%M:%S"

__all__ = ["get_run_logger", "RunLogger"]


class RunLogger(logging.LoggerAdapter):
    """A logger bound to one flow or task run (what `get_run_logger()` returns)."""

    def process(self, msg: Any, kwargs: Any) -> tuple[Any, Any]:
        extra = kwargs.get("extra")
        kwargs["extra"] = {**self.extra, **extra} if extra else self.extra
        return msg, kwargs


def run_logger(flow_ctx: FlowRunContext, task_run: TaskRun | None = None) -> RunLogger:
    """A logger bound to a flow run, or to one of its task runs."""
    ensure_handlers()
    run = flow_ctx.run
    extra: dict[str, Any] = {CONTEXT_ATTRIBUTE: flow_ctx, "flow_run_id": run.id,
                             "flow_run_name": run.name, "flow_name": run.flow_name}
    if task_run is None:
        return RunLogger(logging.getLogger(FLOW_RUN_LOGGER), extra)
    extra.update(task_run_id=task_run.id, task_run_name=task_run.name,
                 task_name=task_run.task_name)
    return RunLogger(logging.getLogger(TASK_RUN_LOGGER), extra)


def get_run_logger() -> RunLogger:
    """A logger for the current flow or task run: records are stored with the run."""
    flow_ctx = FLOW_RUN.get()
    if flow_ctx is None:
        raise MissingContext("get_run_logger() needs a running flow or task: there is no "
                             "active flow or task run context")
    return run_logger(flow_ctx, _current_task_run())


def _current_task_run() -> TaskRun | None:
    task_ctx = TASK_RUN.get()
    return task_ctx.task_run if task_ctx is not None else None


class ConsoleFormatter(logging.Formatter):
    """`HH:MM:SS.mmm | LEVEL   | Flow run 'name' - message`, as Prefect prints."""

    def __init__(self) -> None:
        super().__init__(datefmt=CONSOLE_TIME_FORMAT)

    def format(self, record: logging.LogRecord) -> str:
        if getattr(record, "task_run_name", None):
            who = f"Task run {record.task_run_name!r}"
        elif getattr(record, "flow_run_name", None):
            who = f"Flow run {record.flow_run_name!r}"
        else:
            who = record.name
        line = (f"{self.formatTime(record, self.datefmt)}.{int(record.msecs):03d} | "
                f"{record.levelname:<7s} | {who} - {record.getMessage()}")
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line


class ConsoleHandler(logging.Handler):
    """Echoes run logs to stderr (looked up at each record, so redirections apply)."""

    def __init__(self) -> None:
        super().__init__()
        self.setFormatter(ConsoleFormatter())

    def emit(self, record: logging.LogRecord) -> None:
        if getattr(record, PRINT_ATTRIBUTE, False):
            return
        try:
            stream = sys.stderr
            stream.write(self.format(record) + "\n")
            stream.flush()
        except Exception:  # noqa: BLE001 - a handler reports its own failure (logging's contract)
            self.handleError(record)


class StoreHandler(logging.Handler):
    """Hands records of run loggers to their flow run's log buffer."""

    def emit(self, record: logging.LogRecord) -> None:
        flow_ctx = getattr(record, CONTEXT_ATTRIBUTE, None)
        if flow_ctx is None or flow_ctx.log_buffer is None:
            return
        try:
            flow_ctx.log_buffer.add(record, self.format_text(record))
        except Exception:  # noqa: BLE001 - a handler reports its own failure (logging's contract)
            self.handleError(record)

    @staticmethod
    def format_text(record: logging.LogRecord) -> str:
        text = record.getMessage()
        if record.exc_info:
            text += "\n" + logging.Formatter().formatException(record.exc_info)
        return text


_handlers_lock = threading.Lock()
_handlers_installed = False


def ensure_handlers() -> None:
    """Attach the store and console handlers to the run loggers (once per process)."""
    global _handlers_installed
    if _handlers_installed:
        return
    with _handlers_lock:
        if _handlers_installed:
            return
        store, console = StoreHandler(), ConsoleHandler()
        for name in (FLOW_RUN_LOGGER, TASK_RUN_LOGGER):
            logger = logging.getLogger(name)
            if logger.level == logging.NOTSET:
                logger.setLevel(logging.INFO)
            logger.addHandler(store)
            logger.addHandler(console)
            logger.propagate = False
        _handlers_installed = True


# --- print capture -----------------------------------------------------------------------

_original_print = builtins.print
_print_lock = threading.Lock()
_print_users = 0


def _captured_print(*values: Any, sep: str | None = " ", end: str | None = "\n",
                    file: Any = None, flush: bool = False) -> None:
    if not LOG_PRINTS.get() or (file is not None and file is not sys.stdout):
        _original_print(*values, sep=sep, end=end, file=file, flush=flush)
        return
    flow_ctx = FLOW_RUN.get()
    _original_print(*values, sep=sep, end=end, file=file, flush=flush)
    if flow_ctx is None:
        return
    text = (" " if sep is None else sep).join(str(value) for value in values)
    logger = run_logger(flow_ctx, _current_task_run())
    logger.info(text, extra={PRINT_ATTRIBUTE: True})


def start_print_capture() -> None:
    """Route print() of log_prints runs to their logs (reference-counted)."""
    global _print_users
    with _print_lock:
        _print_users += 1
        if _print_users == 1:
            builtins.print = _captured_print


def stop_print_capture() -> None:
    global _print_users
    with _print_lock:
        _print_users = max(0, _print_users - 1)
        if _print_users == 0 and builtins.print is _captured_print:
            builtins.print = _original_print

