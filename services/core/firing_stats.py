"""How often each automation fired and when it last did: kept as firings are recorded, so
a list of thousands of automations reads one small hash per automation, never their
firings.

Implementation notes:
1. The engine may record a firing twice (an outbox drained again after a crash): the
   count moves only the first time, marked by a `counted` field set with HSETNX on the
   firing's own hash, in one script with the increment.
2. Only firings that trigger count; a firing that only resolves (`automation.resolved`)
   does not, as people mean "it went off" when they read the count.
3. The stats hash shares the automation's hash tag with its firings, so the script
   touches one slot. It expires as the automation's index of firings does, the retention
   after the latest firing: an automation deleted keeps it as long as its firings.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime

import redis
from pydantic import BaseModel

from automations.state import TRIGGERED
from services.core.firings import FIRING_RETENTION_S
from services.core.keys import Keys

# KEYS[1] the firing's hash, KEYS[2] the stats hash; ARGV[1] the firing time (epoch s),
# ARGV[2] the retention (s)
_COUNT_ONCE = """
if redis.call('HSETNX', KEYS[1], 'counted', '1') == 0 then return 0 end
redis.call('HINCRBY', KEYS[2], 'count', 1)
local last = tonumber(redis.call('HGET', KEYS[2], 'last_fired') or '0')
if tonumber(ARGV[1]) > last then redis.call('HSET', KEYS[2], 'last_fired', ARGV[1]) end
redis.call('EXPIRE', KEYS[2], ARGV[2])
return 1
"""


class FiringStats(BaseModel):
    """How many times an automation fired, and when it last did (None: never)."""

    firing_count: int = 0
    last_fired: datetime | None = None


def count_firing_ops(pipe: redis.client.Pipeline, keys: Keys, automation_id: str,
                     firing_id: str, fired_at: datetime, states: Iterable[str]) -> None:
    """Count one recorded firing in its automation's stats (notes 1, 2)."""
    if TRIGGERED not in states:
        return
    pipe.eval(_COUNT_ONCE, 2, keys.automation_firing(automation_id, firing_id),
              keys.automation_stats(automation_id), repr(fired_at.timestamp()),
              FIRING_RETENTION_S)


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
