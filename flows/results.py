"""Persisted results (`persist_result=True`): files under FLOWKEEPER_HOME/results.

A persisted task result is found again by the flow run's lineage (the first run of a
chain of retries), the task and its inputs: so a retry of a flow run, in this
process or from a deployment in another one, skips the task runs that completed.
A flow's own result is kept by its run id (flows.flow_results: load_flow_result).

Implementation notes:
- JSON by default, for values that come back equal from JSON; anything else is
  refused with a message that names the task and the type, unless the task
  opted into pickle (`result_serializer="pickle"`), because unpickling runs code:
  only results the installation itself wrote are ever read back.
- A result is bounded (MAX_RESULT_BYTES); a larger one is refused the same way.
- Files are written to a temporary name, then `os.replace`d, as the task cache's.
- An unreadable entry is a miss (the task runs again), never a failure.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import pickle
import tempfile
from pathlib import Path
from typing import Any

from flows.cache import hash_objects
from flows.errors import ResultNotPersisted
from services.core.private_files import private_dir

log = logging.getLogger("flowkeeper.results")

MAX_RESULT_BYTES = 16 * 1024 * 1024
SERIALIZERS = ("json", "pickle")


def result_key(lineage: str, task_key: str, code: str, parameters: dict[str, Any]) -> str | None:
    """Where a task call's result is kept for a run lineage; None for inputs that cannot
    be hashed (the result is then not persisted)."""
    inputs = hash_objects(task_key, code, parameters)
    return None if inputs is None else f"{lineage}-{inputs}"


def flow_result_key(flow_run_id: str) -> str:
    """Where a flow run's own result is kept (persist_result on the flow)."""
    return f"flow-run-{flow_run_id}"


def serialize(value: Any, serializer: str, owner: str) -> bytes:
    """The bytes of a result, or ResultNotPersisted saying why not and what to do; `owner`
    names whose result it is (`task 'extract'`, `flow 'etl'`)."""
    kind = type(value).__name__
    if serializer == "pickle":
        try:
            body = pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
        except Exception as error:  # noqa: BLE001 - pickling runs the value's own code
            raise ResultNotPersisted(f"the result of {owner} ({kind}) cannot be "
                                     f"pickled: {error}") from None
    else:
        try:
            body = json.dumps(value).encode()
            faithful = json.loads(body) == value
        except (TypeError, ValueError):
            faithful = False
        if not faithful:
            raise ResultNotPersisted(
                f"the result of {owner} ({kind}) does not round-trip through JSON; "
                "return JSON data (dict, list, str, number, bool, None), or pass "
                "result_serializer='pickle' to persist it with pickle")
    if len(body) > MAX_RESULT_BYTES:
        raise ResultNotPersisted(f"the result of {owner} is {len(body)} bytes, over "
                                 f"the {MAX_RESULT_BYTES} bytes a persisted result may take; "
                                 "write large data to a file and return its path")
    return body


class ResultStore:
    """Persisted results in files under one folder, by result key."""

    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory)

    def _path(self, key: str, serializer: str) -> Path:
        return self.directory / f"{hashlib.sha256(key.encode()).hexdigest()}.{serializer}"

    def get(self, key: str) -> tuple[bool, Any]:
        """(True, value) for a persisted result; (False, None) otherwise."""
        for serializer in SERIALIZERS:
            path = self._path(key, serializer)
            try:
                body = path.read_bytes()
            except FileNotFoundError:
                continue
            except OSError as error:
                log.warning("persisted result %s is unreadable (%s)", path.name, error)
                continue
            try:
                return True, (pickle.loads(body) if serializer == "pickle" else json.loads(body))
            except Exception as error:  # noqa: BLE001 - unpickling runs the classes' own code
                log.warning("persisted result %s is unreadable (%s); running the task",
                            path.name, error)
        return False, None

    def put(self, key: str, body: bytes, serializer: str) -> None:
        private_dir(self.directory)  # results are the user's data: 0700, files 0600
        handle, temporary = tempfile.mkstemp(dir=self.directory, prefix=".tmp-")
        try:
            with os.fdopen(handle, "wb") as out:
                out.write(body)
            os.replace(temporary, self._path(key, serializer))
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise
