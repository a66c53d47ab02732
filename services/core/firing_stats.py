"""How often each automation fired and when it last did: kept as firings are recorded, so
a list of thousands of automations reads one small hash per automation, never their
firings.

Implementation notes:
1. The engine may record a firing twice (an outbox drained again after a crash): the
   count moves only the first time, marked by a `counted` field set with HSETNX on the
   firing's own hash, in one script with the increment.
2. Only firings that trigger count; a firing that only resolves (`automation.resolved`)
   does not, as people mean "it went off" when they read the count.
3. The stats hash shares the automation's hash tag with its firings. It expires as the
   automation's index of firings does, the retention after the latest firing: an
   automation deleted keeps it as long as its firings.
4. One script call counts a batch's firings (each firing as note 1 says), so it touches
   the slots of several automations (flowkeeper runs on one primary, docs/SCALING.md).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime

import redis
from pydantic import BaseModel

from automations.state import TRIGGERED
from services.core.firings import FIRING_RETENTION_S
from services.core.keys import Keys

# KEYS, per firing: its hash, its automation's stats hash; ARGV[1] the retention (s),
# ARGV[1 + i] the time of the i-th firing (epoch s)
_COUNT_ONCE = """
for i = 1, #KEYS / 2 do
  local firing, stats, at = KEYS[2 * i - 1], KEYS[2 * i], ARGV[i + 1]
  if redis.call('HSETNX', firing, 'counted', '1') == 1 then
    redis.call('HINCRBY', stats, 'count', 1)
    local last = tonumber(redis.call('HGET', stats, 'last_fired') or '0')
    if tonumber(at) > last then redis.call('HSET', stats, 'last_fired', at) end
    redis.call('EXPIRE', stats, ARGV[1])
  end
end
return 1
"""


class FiringStats(BaseModel):
    """How many times an automation fired, and when it last did (None: never)."""

    firing_count: int = 0
    last_fired: datetime | None = None


def count_firings_ops(pipe: redis.client.Pipeline, keys: Keys,
                      firings: Iterable[tuple[str, str, datetime, Iterable[str]]]) -> None:
    """Count recorded firings, each (automation id, firing id, fired at, states), in their
    automations' stats, with one script call (notes 1, 2, 4)."""
    keys_of: list[str] = []
    times: list[str] = []
    for automation_id, firing_id, fired_at, states in firings:
        if TRIGGERED not in states:
            continue
        keys_of += [keys.automation_firing(automation_id, firing_id),
                    keys.automation_stats(automation_id)]
        times.append(repr(fired_at.timestamp()))
    if keys_of:  # EVAL, not EVALSHA: a pipeline of EVALSHA costs a SCRIPT EXISTS round trip
        pipe.eval(_COUNT_ONCE, len(keys_of), *keys_of, FIRING_RETENTION_S, *times)


def firing_stats(client: redis.Redis, keys: Keys,
                 automation_ids: list[str]) -> dict[str, FiringStats]:
    """The stats of each automation, in one round trip."""
    pipe = client.pipeline(transaction=False)
    for automation_id in automation_ids:
        pipe.hmget(keys.automation_stats(automation_id), "count", "last_fired")
    found = {}
    for automation_id, (count, last) in zip(automation_ids, pipe.execute(), strict=True):
        found[automation_id] = FiringStats(
            firing_count=int(count or 0),
            last_fired=datetime.fromtimestamp(float(last), UTC) if last else None)
    return found
