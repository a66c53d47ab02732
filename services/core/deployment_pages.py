"""What a deployment's page shows, read in one place: its next run times, its recent runs,
the durations of its recent completed runs with the deadline an `expected_duration`
automation would draw from them, and its parameters as the fields of a form.

The decisions are pure functions (`parameter_fields`, `expected_deadline`,
`duration_points`); `deployment_overview` reads Redis and calls them.

Implementation notes:
1. Recent runs come from the deployment's own index of run ids (newest
   DEPLOYMENT_RUNS_KEPT of the store, written with each run's record), so the page costs the same
   with 10 or 10,000 runs of other deployments. Runs created before that index existed
   are found by the store's scan instead, when the index is empty.
2. The durations are the engine's own record (`run_durations`, written when a
   `flow-run.Completed` is recorded), and the deadline is the engine's own
   `resolve_within` over them: the page shows what an automation would use, never a
   second computation of it.
3. A form field's default is the deployment's own parameter when it has one, else the
   schema's default; a parameter the schema requires is not required in the form when
   the deployment gives it a default.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, Field

from automations.events import UtcDatetime
from automations.triggers import ExpectedDuration
from automations.windows import EXPECTED_DURATION_HISTORY_RUNS, describe_within, resolve_within
from services.core.errors import InvalidInput
from services.core.models import Deployment, FlowRun
from services.core.schedules import next_run_times
from services.core.store import Store, decode_run

# the most next run times and recent runs one overview may ask for
MAX_OVERVIEW_ITEMS = 100
_JSON_TYPES = ("string", "integer", "number", "boolean", "array", "object", "null")


class ParameterField(BaseModel):
    """One parameter of a flow, as a form shows it."""

    name: str
    type: str = Field(description="a JSON type (string, integer, number, boolean, array, "
                                  "object), or 'any' when the schema says nothing")
    nullable: bool = Field(False, description="whether null is accepted too")
    required: bool = Field(description="a run must give it (no default anywhere)")
    has_default: bool
    default: Any = Field(None, description="the deployment's value, else the schema's")
    title: str | None = None
    description: str | None = None
    enum: list[Any] | None = Field(None, description="the allowed values, for a select")
    schema_: dict[str, Any] = Field(default_factory=dict, alias="schema",
                                    description="the parameter's own JSON schema, for "
                                                "arrays and objects edited as JSON")

    model_config = {"populate_by_name": True, "serialize_by_alias": True}


class DurationPoint(BaseModel):
    """One completed run of the deployment: when it completed, and how long it ran."""

    run_id: str
    completed: UtcDatetime
    duration_s: float


class ExpectedDeadline(BaseModel):
    """The window an `expected_duration` automation on this deployment would use now."""

    deadline_s: float
    explanation: str
    quantile: float
    factor: float
    min_runs: int
    runs_counted: int


class DeploymentOverview(BaseModel):
    """Everything a deployment's page shows, in one answer."""

    deployment: Deployment
    next_runs: list[UtcDatetime] = Field(description="the schedule's next due times (UTC)")
    schedule_problem: str | None = Field(None, description="why the schedule yields no "
                                                           "times (an unknown timezone)")
    recent_runs: list[FlowRun] = Field(description="the newest runs first")
    durations: list[DurationPoint] = Field(description="recent completed runs, oldest first")
    expected_deadline: ExpectedDeadline
    parameters: list[ParameterField]


def _field_type(schema: dict[str, Any]) -> tuple[str, bool]:
    """(JSON type, nullable) of a parameter's schema; `Optional[int]` is anyOf int|null."""
    declared = schema.get("type")
    types = declared if isinstance(declared, list) else [declared] if declared else []
    for option in schema.get("anyOf", []) if isinstance(schema.get("anyOf"), list) else []:
        if isinstance(option, dict) and isinstance(option.get("type"), str):
            types.append(option["type"])
    nullable = "null" in types
    concrete = [kind for kind in types if kind in _JSON_TYPES and kind != "null"]
    if len(concrete) == 1:
        return concrete[0], nullable
    if {*concrete} == {"integer", "number"}:
        return "number", nullable
    return "any", nullable


def parameter_fields(schema: dict[str, Any] | None,
                     defaults: dict[str, Any]) -> list[ParameterField]:
    """The form of a flow's parameters from its JSON schema and the deployment's own values
    (note 3); without a schema, one untyped field per deployment parameter."""
    if not schema:
        return [ParameterField(name=name, type="any", required=False, has_default=True,
                               default=value) for name, value in defaults.items()]
    properties = schema.get("properties") or {}
    required = set(schema.get("required") or [])
    fields = []
    for name, spec in properties.items():
        spec = spec if isinstance(spec, dict) else {}
        kind, nullable = _field_type(spec)
        has_default = name in defaults or "default" in spec
        enum = spec.get("enum")
        fields.append(ParameterField(
            name=name, type=kind, nullable=nullable,
            required=name in required and not has_default, has_default=has_default,
            default=defaults[name] if name in defaults else spec.get("default"),
            title=spec.get("title") if isinstance(spec.get("title"), str) else None,
            description=spec.get("description")
            if isinstance(spec.get("description"), str) else None,
            enum=enum if isinstance(enum, list) else None, schema=spec))
    return fields


def duration_points(members_with_scores: list[tuple[str, float]]) -> list[DurationPoint]:
    """The engine's durations set ('<run id>:<duration>' scored by completion) as points."""
    points = []
    for member, score in members_with_scores:
        run_id, _, duration = member.rpartition(":")
        points.append(DurationPoint(run_id=run_id, completed=datetime.fromtimestamp(score, UTC),
                                    duration_s=float(duration)))
    return points


def expected_deadline(durations: list[float],
                      spec: ExpectedDuration | None = None) -> ExpectedDeadline:
    """The deadline the engine resolves for `spec` (the defaults: 2 x p95) from these
    durations, oldest first (note 2)."""
    from automations.triggers import EventTrigger

    spec = spec or ExpectedDuration()
    trigger = EventTrigger.model_validate({
        "posture": "Proactive", "after": ["flow-run.Running"], "expect": ["flow-run.Completed"],
        "within": {"expected_duration": spec.model_dump()}})
    counted = len([value for value in durations[-EXPECTED_DURATION_HISTORY_RUNS:]
                   if value >= 0])
    return ExpectedDeadline(deadline_s=resolve_within(trigger, durations),
                            explanation=describe_within(trigger, durations),
                            quantile=spec.quantile, factor=spec.factor,
                            min_runs=spec.min_runs, runs_counted=counted)


def recent_deployment_runs(store: Store, name: str, limit: int) -> list[FlowRun]:
    """The newest runs of a deployment, from its index (note 1)."""
    key = store.keys.deployment_runs(name)
    ids = store.client.zrevrange(key, 0, limit - 1)
    if not ids:
        return store.list_flow_runs(deployment=name, limit=limit)
    pipe = store.client.pipeline(transaction=False)
    for run_id in ids:
        pipe.hgetall(store.keys.flow_run(run_id))
    raws = pipe.execute()
    gone = [run_id for run_id, raw in zip(ids, raws, strict=True) if not raw]
    if gone:
        store.client.zrem(key, *gone)  # expired by retention
    return [decode_run(raw) for raw in raws if raw]


def deployment_overview(store: Store, name: str, now: datetime, *, next_count: int = 10,
                        runs: int = 20) -> DeploymentOverview:
    """A deployment's page (NotFound when there is no such deployment)."""
    deployment = store.require_deployment(name)
    members = store.client.zrange(store.keys.run_durations("deployment", name), 0, -1,
                                  withscores=True)
    points = duration_points(members)
    next_runs: list[datetime] = []
    problem = None
    if deployment.schedule is not None:
        try:
            next_runs = next_run_times(deployment.schedule, now, next_count)
        except InvalidInput as error:  # registered before timezones were checked, or edited
            problem = str(error)
    return DeploymentOverview(
        deployment=deployment, next_runs=next_runs, schedule_problem=problem,
        recent_runs=recent_deployment_runs(store, name, runs),
        durations=points,
        expected_deadline=expected_deadline([point.duration_s for point in points]),
        parameters=parameter_fields(deployment.parameter_schema, deployment.parameters))
