"""Claiming the due members of a "due at" sorted set: one Lua script for every process
that works through such a set (the engine's proactive deadlines, the notification
dispatcher's due notifications and groups).

Implementation notes:
- [1] The script reads the members scored at or before `due_by` and moves each to
  `lease_until` in the same step, so two claimers never get the same member: the
  second one finds it scored in the future.
- [2] A claimer that dies keeps nothing: its members come due again when the lease
  ends, and another claimer takes them (at-least-once).
- [3] The claimer settles each member afterwards: it sets the member's real next time,
  or removes it. The lease score is returned (and sent to the script exactly as
  returned, `repr` of one float), so a settle step can tell "still my lease" from "moved
  meanwhile" by comparing scores.
- [4] The due cutoff may differ from the clock the lease runs on: the engine's timer
  claims what is due on the events' clock (`due_by`), and leases on the wall clock.
"""

from __future__ import annotations

from dataclasses import dataclass

import redis

_CLAIM_SCRIPT = """
-- KEYS[1] the sorted set; ARGV[1] due up to this score, ARGV[2] lease score,
-- ARGV[3] at most this many
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[3]))
for _, member in ipairs(due) do redis.call('ZADD', KEYS[1], 'XX', ARGV[2], member) end
return due
"""


@dataclass(frozen=True)
class Claim:
    """The members one claim took, and the score they hold until settled [3]."""

    members: list[str]
    lease_until: float


def claim_due(client: redis.Redis, key: str, now: float, lease_s: float, limit: int, *,
              due_by: float | None = None) -> Claim:
    """Take up to `limit` members of `key` due at `due_by` (default `now`), pushing them
    to `now + lease_s` atomically [1][2][4]."""
    lease_until = now + lease_s
    cutoff = now if due_by is None else due_by
    script = client.register_script(_CLAIM_SCRIPT)
    members = script(keys=[key], args=[repr(cutoff), repr(lease_until), limit])
    return Claim(list(members), lease_until)
