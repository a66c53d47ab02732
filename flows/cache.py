"""Task result caching: the `task_input_hash` key helper and the file store.

Implementation notes:
- An entry is one file named by the SHA-256 of its cache key, under the
  installation's cache folder. The file starts with one JSON line of metadata
  (the key, when it was written, when it expires) and the pickled value
  follows, so a lookup decides freshness without unpickling the value.
- Writes go to a temporary file in the same folder, then `os.replace`: a reader
  sees the old entry or the new one, never half of one, even across processes.
- A corrupt or unreadable entry is a miss (and is removed), never an error in
  the flow.
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

from services.core.private_files import private_dir

log = logging.getLogger("flowkeeper.cache")

CACHE_FILE_SUFFIX = ".pkl"


def hash_objects(*objects: Any) -> str | None:
    """A stable hash of JSON-able objects (pickled when JSON cannot express them), or None."""
    try:
        payload = json.dumps(objects, sort_keys=True, default=_strict_json).encode()
    except (TypeError, ValueError):
        try:
            payload = _dumps(objects)
        # pickling runs the objects' own code (__reduce__, __getstate__), which may raise
        # anything: then there is no cache key
        except Exception:  # noqa: BLE001 - user code
            return None
    return hashlib.sha256(payload).hexdigest()


def _strict_json(value: Any) -> Any:
    if isinstance(value, (set, frozenset)):
        return sorted(value, key=repr)
    if isinstance(value, tuple):
        return list(value)
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def task_input_hash(context: Any, arguments: dict[str, Any]) -> str | None:
    """Cache key of a task call: the task, its code and its arguments (as in Prefect)."""
    task = context.task
    return hash_objects(task.task_key, task.fn.__code__.co_code.hex(), arguments)


def _dumps(value: Any) -> bytes:
    try:
        import cloudpickle
    except ImportError:  # plain pickle covers module-level functions and data
        return pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
    return cloudpickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)


class FileCache:
    """Cached task results in files under one folder."""

    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory)

    def path_for(self, key: str) -> Path:
        return self.directory / (hashlib.sha256(key.encode()).hexdigest() + CACHE_FILE_SUFFIX)

    def get(self, key: str, now: float) -> tuple[bool, Any]:
        """(True, value) for a fresh entry at time `now` (epoch s); (False, None) otherwise."""
        path = self.path_for(key)
        try:
            with open(path, "rb") as handle:
                meta = json.loads(handle.readline())
                if meta.get("key") != key:
                    return False, None
                expires = meta.get("expires")
                if expires is not None and now >= expires:
                    self._remove(path)
                    return False, None
                return True, pickle.load(handle)
        except FileNotFoundError:
            return False, None
        except Exception as error:  # noqa: BLE001 - unpickling runs the classes' own code
            log.warning("cache entry %s is unreadable (%s); running the task", path.name, error)
            self._remove(path)
            return False, None

    def put(self, key: str, value: Any, now: float, expires: float | None) -> bool:
        """Store `value` under `key` until `expires` (epoch s, None: never); False if it cannot
        be pickled."""
        try:
            body = _dumps(value)
        except Exception as error:  # noqa: BLE001 - pickling runs the result's own code
            log.warning("the result of type %s cannot be cached: %s", type(value).__name__, error)
            return False
        meta = json.dumps({"key": key, "created": now, "expires": expires}).encode() + b"\n"
        # cached results are the user's data: 0700 here, and mkstemp makes the files 0600
        private_dir(self.directory)
        handle, temporary = tempfile.mkstemp(dir=self.directory, prefix=".tmp-")
        try:
            with os.fdopen(handle, "wb") as out:
                out.write(meta)
                out.write(body)
            os.replace(temporary, self.path_for(key))
        except BaseException:
            self._remove(Path(temporary))
            raise
        return True

    @staticmethod
    def _remove(path: Path) -> None:
        try:
            path.unlink()
        except OSError:
            pass
