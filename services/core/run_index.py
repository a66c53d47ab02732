"""Indexes of flow runs by state, flow, deployment and tag, for the runs page's filters and
paging, and the queries over them.

Implementation notes:
1. Each index is a sorted set of run ids scored by creation time, like the set of all runs
   (`Keys.flow_runs`), so that any combination of filters is an intersection (ZINTERSTORE,
   keeping the score) and a time range and a page are one ZREVRANGEBYSCORE ... LIMIT on
   it: a page costs O(log n + page) after the intersection, never a scan of run records.
2. They are written where runs are written, in the same pipeline: the flow, deployment and
   tag indexes with the run's full record (`flow_run_ops`), the state index with every
   state change (`flow_run_state_ops`), which removes the run from the other states' sets
   because a state change does not know the state before it.
3. An index may hold a stale member: a run expired by retention, or whose flow name was
   corrected afterwards. Readers check the records they load against the filter and
   leave out those that do not match (`matches`), so a stale member costs a row on one
   page at worst, never a wrong row; a run found expired is removed from the sets the
   reader knows it was in (`forget_expired`: all runs, the states, the filter's own),
   so counts heal as pages are read.
4. An intersection goes to a key of its own, read and deleted in one MULTI, so concurrent
   queries never see each other's results and nothing is left behind.
5. An installation that ran before these indexes has runs in none of them: the API builds
   them once at its start (`build_missing_indexes`, claimed with SET NX, so two API
   processes do not both do it); runs written meanwhile are indexed by their writers.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterable
from dataclasses import dataclass

import redis

from services.core.keys import Keys
from services.core.models import FlowRun, StateType

FACETS = ("state", "flow", "deployment", "tag")
INDEX_VERSION = "1"


@dataclass(frozen=True)
class RunFilter:
    """Which runs a page lists: exact state, flow, deployment and tag, and a creation time
    range in epoch seconds (None: unbounded)."""

    state: StateType | None = None
    flow: str | None = None
    deployment: str | None = None
    tag: str | None = None
    since: float | None = None
    until: float | None = None

    def facets(self) -> list[tuple[str, str]]:
        values = (self.state.value if self.state else None, self.flow, self.deployment,
                  self.tag)
        return [(facet, value) for facet, value in zip(FACETS, values, strict=True) if value]

    def matches(self, run: FlowRun) -> bool:
        """Whether a loaded run still belongs to this filter (note 3)."""
        return ((self.state is None or run.state is self.state)
                and (self.flow is None or run.flow_name == self.flow)
                and (self.deployment is None or run.deployment == self.deployment)
                and (self.tag is None or self.tag in run.tags))


def index_ops(pipe: redis.client.Pipeline, keys: Keys, run: FlowRun) -> None:
    """Index a run's flow, deployment, tags and the run it retries (with its full record:
    note 2); `retry-of` answers "retried as" on a run's page."""
    score = run.created.timestamp()
    for facet, value in (("flow", run.flow_name), ("deployment", run.deployment),
                         ("retry-of", run.retry_of), *(("tag", tag) for tag in run.tags)):
        if value:
            pipe.zadd(keys.flow_runs_by(facet, value), {run.id: score})


def state_index_ops(pipe: redis.client.Pipeline, keys: Keys, run: FlowRun) -> None:
    """Move a run to its current state's index (note 2)."""
    for state in StateType:
        if state is not run.state:
            pipe.zrem(keys.flow_runs_by("state", state.value), run.id)
    pipe.zadd(keys.flow_runs_by("state", run.state.value), {run.id: run.created.timestamp()})


def flow_index_ops(pipe: redis.client.Pipeline, keys: Keys, run_id: str, flow_name: str,
                   created: float) -> None:
    """Index a run under a corrected flow name (the old entry goes stale: note 3)."""
    pipe.zadd(keys.flow_runs_by("flow", flow_name), {run_id: created})


def _bounds(run_filter: RunFilter) -> tuple[str | float, str | float]:
    low = run_filter.since if run_filter.since is not None else "-inf"
    high = run_filter.until if run_filter.until is not None else "+inf"
    return low, high


def _sets(keys: Keys, facets: Iterable[tuple[str, str]]) -> list[str]:
    return [keys.flow_runs_by(facet, value) for facet, value in facets] or [keys.flow_runs]


def _query(client: redis.Redis, keys: Keys, sets: list[str], read) -> list:
    """Run `read(pipe, key)` on the intersection of `sets` (note 4)."""
    with client.pipeline(transaction=True) as pipe:
        if len(sets) == 1:
            read(pipe, sets[0])
            return pipe.execute()
        scratch = keys.flow_runs_by("query", secrets.token_hex(8))
        pipe.zinterstore(scratch, sets, aggregate="MAX")
        read(pipe, scratch)
        pipe.delete(scratch)
        return pipe.execute()[1:-1]


def page_of_run_ids(client: redis.Redis, keys: Keys, run_filter: RunFilter, offset: int,
                    limit: int) -> tuple[list[str], int]:
    """The ids of one page of matching runs, newest first, and how many match in all."""
    low, high = _bounds(run_filter)

    def read(pipe: redis.client.Pipeline, key: str) -> None:
        pipe.zrevrangebyscore(key, high, low, start=offset, num=limit)
        pipe.zcount(key, low, high)

    ids, total = _query(client, keys, _sets(keys, run_filter.facets()), read)
    return ids, int(total)


def creation_times_by_state(client: redis.Redis, keys: Keys, run_filter: RunFilter,
                            max_runs: int) -> dict[StateType, list[float]]:
    """For each state, the creation times of the matching runs now in it (at most
    `max_runs` newest of each): what the runs-per-state chart counts."""
    low, high = _bounds(run_filter)
    others = [(facet, value) for facet, value in run_filter.facets() if facet != "state"]
    states = [run_filter.state] if run_filter.state else list(StateType)
    found: dict[StateType, list[float]] = {}
    for state in states:

        def read(pipe: redis.client.Pipeline, key: str) -> None:
            pipe.zrevrangebyscore(key, high, low, start=0, num=max_runs, withscores=True)

        sets = _sets(keys, [("state", state.value), *others])
        [pairs] = _query(client, keys, sets, read)
        found[state] = [score for _member, score in pairs]
    return found


def forget_expired(client: redis.Redis, keys: Keys, run_ids: Iterable[str],
                   run_filter: RunFilter) -> None:
    """Remove runs whose records expired from the sets a page read them through (note 3)."""
    run_ids = list(run_ids)
    if not run_ids:
        return
    pipe = client.pipeline(transaction=False)
    for key in {keys.flow_runs, *(keys.flow_runs_by("state", state.value) for state in StateType),
                *_sets(keys, run_filter.facets())}:
        pipe.zrem(key, *run_ids)
    pipe.execute()


def build_missing_indexes(client: redis.Redis, keys: Keys, batch: int = 500) -> int:
    """Index the runs written before these indexes existed, once per installation (note 5);
    returns how many runs it indexed (0 when the indexes were built already)."""
    if not client.set(keys.flow_runs_by("meta", "built"), INDEX_VERSION, nx=True):
        return 0
    indexed = 0
    for start in range(0, client.zcard(keys.flow_runs), batch):
        runs = load_runs(client, keys, client.zrange(keys.flow_runs, start, start + batch - 1))
        pipe = client.pipeline(transaction=False)
        for run in runs:
            index_ops(pipe, keys, run)
            state_index_ops(pipe, keys, run)
        pipe.execute()
        indexed += len(runs)
    return indexed


def load_runs(client: redis.Redis, keys: Keys, ids: list[str]) -> list[FlowRun]:
    """The records of `ids` in one round trip, in order; runs gone (retention) left out."""
    pipe = client.pipeline(transaction=False)
    for run_id in ids:
        pipe.hgetall(keys.flow_run(run_id))
    return [FlowRun.model_validate({name: json.loads(value) for name, value in raw.items()})
            for raw in pipe.execute() if raw]
