"""Task result caching without Redis: cache keys and the file store."""

from __future__ import annotations

import json
import os
from types import SimpleNamespace

from flows import task, task_input_hash
from flows.cache import FileCache, hash_objects


def test_equal_arguments_hash_equal_whatever_the_dict_order():
    assert hash_objects({"a": 1, "b": [1, 2]}) == hash_objects({"b": [1, 2], "a": 1})


def test_different_arguments_hash_differently():
    assert hash_objects({"a": 1}) != hash_objects({"a": 2})


def test_objects_json_cannot_express_are_hashed_by_their_pickle():
    class Point:
        def __init__(self, x):
            self.x = x

        def __reduce__(self):
            return (Point, (self.x,))

    assert hash_objects(Point(1)) == hash_objects(Point(1))
    assert hash_objects(Point(1)) != hash_objects(Point(2))


def test_unhashable_objects_give_no_key():
    import threading

    assert hash_objects(threading.Lock()) is None


def _context(fn):
    return SimpleNamespace(task=task(fn))


def double(x):
    return 2 * x


def triple(x):
    return 3 * x


def test_task_input_hash_depends_on_the_task_and_its_arguments():
    key = task_input_hash(_context(double), {"x": 1})
    assert key == task_input_hash(_context(double), {"x": 1})
    assert key != task_input_hash(_context(double), {"x": 2})
    assert key != task_input_hash(_context(triple), {"x": 1})


def test_a_fresh_entry_is_a_hit(tmp_path):
    cache = FileCache(tmp_path)
    cache.put("k", {"rows": [1, 2]}, now=100.0, expires=200.0)
    assert cache.get("k", now=150.0) == (True, {"rows": [1, 2]})


def test_an_entry_past_its_expiry_is_a_miss_and_is_removed(tmp_path):
    cache = FileCache(tmp_path)
    cache.put("k", 42, now=100.0, expires=200.0)
    assert cache.get("k", now=200.0) == (False, None)
    assert not cache.path_for("k").exists()


def test_an_entry_without_expiry_never_expires(tmp_path):
    cache = FileCache(tmp_path)
    cache.put("k", "value", now=0.0, expires=None)
    assert cache.get("k", now=1e12) == (True, "value")


def test_an_unknown_key_is_a_miss(tmp_path):
    assert FileCache(tmp_path).get("nothing", now=0.0) == (False, None)


def test_a_corrupt_entry_is_a_miss_not_an_error(tmp_path):
    cache = FileCache(tmp_path)
    cache.put("k", 1, now=0.0, expires=None)
    cache.path_for("k").write_bytes(b"garbage")
    assert cache.get("k", now=1.0) == (False, None)


def test_entries_are_files_named_by_the_key_hash_with_metadata_first(tmp_path):
    cache = FileCache(tmp_path)
    cache.put("my key", [1], now=10.0, expires=20.0)
    path = cache.path_for("my key")
    assert path.parent == tmp_path and "my key" not in path.name
    meta = json.loads(path.read_bytes().split(b"\n", 1)[0])
    assert meta == {"key": "my key", "created": 10.0, "expires": 20.0}


def test_writes_leave_no_temporary_files(tmp_path):
    cache = FileCache(tmp_path)
    for value in range(5):
        cache.put("k", value, now=0.0, expires=None)
    assert os.listdir(tmp_path) == [cache.path_for("k").name]
    assert cache.get("k", now=0.0) == (True, 4)


def test_a_value_that_cannot_be_pickled_is_not_cached(tmp_path):
    import threading

    cache = FileCache(tmp_path)
    assert cache.put("k", threading.Lock(), now=0.0, expires=None) is False
    assert cache.get("k", now=0.0) == (False, None)
