"""Leases: at most one process acts on a piece of work at a time, and work marked done is
never acted on again. Every side effect that a redelivery could repeat (an action of a
firing, a delivery step of a notification) goes through this one helper.

Implementation notes:
- [1] Taking a lease is one script: if the work's `done` key exists the answer is DONE;
  else SET NX PX with a random token. The check runs after the lease is taken in the
  same atomic step, so a copy that looked before another copy finished, and takes the
  lease right after that copy released it, still sees `done` and acts not. (Checking
  `done` only before SET NX leaves exactly that gap: the copy repeats the side effect.)
- [2] Finishing is one script: set `done` and delete the lease only if it still holds
  our token. `done` is set even when the token no longer matches (the lease expired
  while we acted, and another copy may hold it now): the side effect happened, so every
  later copy must skip it; the other copy's lease is left alone. The caller learns
  whether it still held the lease, and says so in its log: an expired lease means the
  work may have been done twice, which only a lease shorter than the work allows.
  The finishing script may run inside the caller's MULTI (`finish_ops`), so the work's
  record and its `done` key are written together, or not at all.
- [3] Releasing after a failure (the side effect did not happen, or its outcome is
  unknown and a retry should decide) deletes the lease only if it holds our token: a
  GET then DEL would delete the lease of a copy that took it after ours expired, and
  let a third copy act beside it.
- [4] A process that dies holding a lease leaves it to expire: the TTL is the longest
  the work may take, so a live holder never loses its lease to a copy. Once the work's
  own bound is known (a send's deadline), `renew` sets the TTL to it, so a copy takes
  over soon after a crash; renewing a lease that is no longer ours fails (LeaseLost),
  and the copy that holds it does the work.
- [5] Redis unreachable while releasing: the lease expires by itself; the error is
  swallowed so it does not hide the one that made us release.
"""

from __future__ import annotations

import enum
import uuid
from dataclasses import dataclass
from typing import Any

import redis

TAKE_SCRIPT = """
-- KEYS[1] lease, KEYS[2] done; ARGV[1] token, ARGV[2] lease ttl ms
if redis.call('EXISTS', KEYS[2]) == 1 then return 0 end
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then return 1 end
return -1
"""

FINISH_SCRIPT = """
-- KEYS[1] lease, KEYS[2] done; ARGV[1] token, ARGV[2] done value, ARGV[3] done ttl ms
redis.call('SET', KEYS[2], ARGV[2], 'PX', ARGV[3])
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('DEL', KEYS[1])
  return 1
end
return 0
"""

RENEW_SCRIPT = """
-- KEYS[1] lease; ARGV[1] token, ARGV[2] new ttl ms
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0
"""

RELEASE_SCRIPT = """
-- KEYS[1] lease; ARGV[1] token
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


class LeaseLost(RuntimeError):
    """The lease expired and another copy may hold it: this copy must not act."""


class Taken(enum.Enum):
    """What an attempt to take a lease found."""

    TAKEN = "taken"
    BUSY = "busy"  # another copy holds the lease
    DONE = "done"  # the work was done already


@dataclass(frozen=True)
class Lease:
    """A lease on one piece of work (`key`), whose completion is marked by `done_key`."""

    key: str
    done_key: str
    token: str


def take(client: redis.Redis, key: str, done_key: str, ttl_ms: int) -> tuple[Taken, Lease]:
    """Take the lease unless the work is done or another copy holds it [1]."""
    lease = Lease(key, done_key, uuid.uuid4().hex)
    answer = int(client.eval(TAKE_SCRIPT, 2, key, done_key, lease.token, int(ttl_ms)))
    return {1: Taken.TAKEN, 0: Taken.DONE, -1: Taken.BUSY}[answer], lease


def finish_ops(pipe: Any, lease: Lease, done_value: str, done_ttl_ms: int) -> None:
    """Queue the finishing script on `pipe` (a MULTI pipeline): mark done, release [2].
    Its result in `pipe.execute()` is 1 if the lease was still ours, 0 if it had expired."""
    pipe.eval(FINISH_SCRIPT, 2, lease.key, lease.done_key, lease.token, done_value,
              int(done_ttl_ms))


def finish(client: redis.Redis, lease: Lease, done_value: str, done_ttl_ms: int) -> bool:
    """Mark the work done and release the lease [2]; False if the lease had expired."""
    return bool(client.eval(FINISH_SCRIPT, 2, lease.key, lease.done_key, lease.token,
                            done_value, int(done_ttl_ms)))


def renew(client: redis.Redis, lease: Lease, ttl_ms: int) -> bool:
    """Set the lease to expire `ttl_ms` from now, if it is still ours (False if not) [4]."""
    return bool(client.eval(RENEW_SCRIPT, 1, lease.key, lease.token, int(ttl_ms)))


def release(client: redis.Redis, lease: Lease) -> bool:
    """Give the lease back without marking the work done, if it is still ours [3], [5]."""
    try:
        return bool(client.eval(RELEASE_SCRIPT, 1, lease.key, lease.token))
    except redis.RedisError:
        return False


def release_ops(pipe: Any, lease: Lease) -> None:
    """Queue the compare-and-delete release on `pipe` (a MULTI pipeline) [3]."""
    pipe.eval(RELEASE_SCRIPT, 1, lease.key, lease.token)
