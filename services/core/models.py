"""Records of flow runs, task runs, deployments, logs and artifacts: one schema
each, shared by the SDK, the worker, the scheduler, the API and the CLI."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator

from automations.events import check_json_size

# the states live apart, without pydantic (services.core.states); they are named through
# here as before
from services.core.states import ACTIVE_STATES as ACTIVE_STATES
from services.core.states import FINAL_STATES as FINAL_STATES
from services.core.states import WAITING_STATES as WAITING_STATES
from services.core.states import StateType as StateType

# Bounds on what a user gives a deployment or a run. Parameters travel in every
# flow-run event's payload, so they stay well below MAX_EVENT_PAYLOAD_BYTES; each tag
# becomes a related resource of the run's events.
MAX_PARAMETERS_BYTES = 64 * 1024
MAX_TAGS = 50
MAX_TAG_CHARS = 200

Tag = Annotated[str, Field(min_length=1, max_length=MAX_TAG_CHARS)]
Tags = Annotated[list[Tag], Field(max_length=MAX_TAGS)]


def check_parameters(value: dict[str, Any]) -> dict[str, Any]:
    """Parameters of user input unchanged, when they are JSON of a bounded size."""
    return check_json_size(value, "parameters", MAX_PARAMETERS_BYTES)


Parameters = Annotated[dict[str, Any], AfterValidator(check_parameters)]


def utcnow() -> datetime:
    return datetime.now(UTC)


def new_id() -> str:
    return str(uuid.uuid4())


_new_object = object.__new__
_set_slot = object.__setattr__


def construct(model: type[BaseModel], values: dict[str, Any]) -> Any:
    """`model.model_construct(**values)` for trusted data naming every field, without its
    per-field loop: the SDK builds several of these for every task run (~1 us here, ~14 us
    through model_construct).

    pydantic has no public way to do this: it fills the four slots that pydantic 2 gives
    every model (BaseModel.__slots__). pyproject pins pydantic below 3 for it, and
    tests/unit/test_sdk_event_building.py fails on an upgrade that changes those slots."""
    instance = _new_object(model)
    _set_slot(instance, "__dict__", values)
    _set_slot(instance, "__pydantic_fields_set__", set(values))
    _set_slot(instance, "__pydantic_extra__", None)
    _set_slot(instance, "__pydantic_private__", None)
    return instance


class StateRecord(BaseModel):
    """One entry of a run's state history."""

    type: StateType
    timestamp: datetime = Field(default_factory=utcnow)
    message: str | None = None


class ErrorInfo(BaseModel):
    type: str
    message: str
    traceback: str | None = None


class FlowRun(BaseModel):
    """A run of a flow, with its latest state; the history is stored beside it."""

    id: str = Field(default_factory=new_id)
    name: str
    # the name its @flow declares; None for a run of a deployment whose flow has not been
    # read yet (registered through the API): the worker records it when it loads the flow
    flow_name: str | None = None
    deployment: str | None = None
    work_queue: str | None = None
    entrypoint: str | None = None
    parameters: dict[str, Any] = Field(default_factory=dict)
    tags: list[str] = Field(default_factory=list)
    state: StateType = StateType.PENDING
    state_message: str | None = None
    error: ErrorInfo | None = None
    created: datetime = Field(default_factory=utcnow)
    expected_start: datetime | None = None
    start_time: datetime | None = None
    end_time: datetime | None = None
    parent_run_id: str | None = None
    parent_task_run_id: str | None = None
    retry_of: str | None = None
    # the first run of a chain of retries, for limits per lineage
    lineage_root: str | None = None
    job_id: str | None = None
    run_count: int = 0
    cancel_requested: datetime | None = None
    result_summary: str | None = None

    @property
    def duration_s(self) -> float | None:
        if self.start_time and self.end_time:
            return (self.end_time - self.start_time).total_seconds()
        return None


class TaskRun(BaseModel):
    id: str = Field(default_factory=new_id)
    flow_run_id: str
    task_name: str
    name: str
    state: StateType = StateType.PENDING
    state_message: str | None = None
    history: list[StateRecord] = Field(default_factory=list)
    error: ErrorInfo | None = None
    start_time: datetime | None = None
    end_time: datetime | None = None
    run_count: int = 0
    cache_key: str | None = None
    cached: bool = False
    upstream: list[str] = Field(default_factory=list)
    tags: list[str] = Field(default_factory=list)

    @property
    def duration_s(self) -> float | None:
        if self.start_time and self.end_time:
            return (self.end_time - self.start_time).total_seconds()
        return None


class Schedule(BaseModel):
    """A cron expression or an interval, in UTC unless a timezone is given."""

    model_config = ConfigDict(extra="forbid")

    cron: str | None = None
    interval_seconds: float | None = Field(default=None, gt=0)
    timezone: str = "UTC"
    active: bool = True

    @field_validator("cron")
    @classmethod
    def _valid_cron(cls, value: str | None) -> str | None:
        if value is None:
            return value
        from croniter import croniter

        if not croniter.is_valid(value):
            raise ValueError(f"'{value}' is not a valid cron expression")
        return value

    def model_post_init(self, __context: Any) -> None:
        if (self.cron is None) == (self.interval_seconds is None):
            raise ValueError("a schedule needs exactly one of 'cron' or 'interval_seconds'")


MODULE_ENTRYPOINT = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$")
FILE_ENTRYPOINT = re.compile(r"^[\w./-]+\.py:[A-Za-z_]\w*$")
MAX_ENTRYPOINT_CHARS = 500


def is_file_entrypoint(entrypoint: str) -> bool:
    """Whether `entrypoint` names a file (`tiny.py:flow`, `jobs/etl.py:flow`) rather than
    a module (`jobs.etl:flow`): `tiny.py` would otherwise read as module `py` of `tiny`."""
    return bool(FILE_ENTRYPOINT.match(entrypoint))


def entrypoint_problem(entrypoint: str) -> str | None:
    """Why `entrypoint` is not a well-formed entrypoint, or None when it is one. Checks the
    form only: whether it names a flow is known where its code is (the CLI, the worker)."""
    if MODULE_ENTRYPOINT.match(entrypoint) and not is_file_entrypoint(entrypoint):
        return None
    if not FILE_ENTRYPOINT.match(entrypoint):
        return (f"'{entrypoint}' must look like 'package.module:function' or "
                "'path/to/file.py:function'")
    path = entrypoint.rpartition(":")[0]
    if path.startswith("/") or ".." in path.split("/"):
        # the worker loads it from the folder it was started from, and from nowhere else
        return (f"'{entrypoint}': a file entrypoint is a path inside the worker's folder: "
                "relative, without '..'")
    return None


class DeploymentCreate(BaseModel):
    """What a user gives to register a deployment.

    `flow_name` and `parameter_schema` are facts about the flow's code: the CLI reads them
    from the flow it imports, and the worker records them when it first runs a deployment
    registered without them (the API never imports user code)."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200, pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
    entrypoint: str = Field(max_length=MAX_ENTRYPOINT_CHARS)
    parameters: Parameters = Field(default_factory=dict)
    work_queue: str = Field("default", min_length=1, max_length=200)
    schedule: Schedule | None = None
    tags: Tags = Field(default_factory=list)
    description: str | None = Field(None, max_length=10_000)
    # an RQ job timeout in seconds; the flow's own timeout_seconds is enforced by the SDK
    job_timeout_s: int | None = None
    # the name declared by @flow(name=...): what runs, events and automations carry
    flow_name: str | None = Field(default=None, min_length=1, max_length=200)
    # the JSON schema of the flow's parameters, to check them where the code is not
    parameter_schema: dict[str, Any] | None = None

    @field_validator("entrypoint")
    @classmethod
    def _well_formed_entrypoint(cls, value: str) -> str:
        problem = entrypoint_problem(value)
        if problem:
            raise ValueError(problem)
        return value

    @field_validator("parameter_schema")
    @classmethod
    def _valid_schema(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        if value is None:
            return value
        from services.core.parameter_schemas import schema_problem

        problem = schema_problem(value)
        if problem:
            raise ValueError(problem)
        return value


class Deployment(DeploymentCreate):
    """A registered deployment."""

    model_config = ConfigDict(extra="ignore")

    @field_validator("parameter_schema")
    @classmethod
    def _valid_schema(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        # checked once, as a DeploymentCreate, when registered (or read from the flow's
        # code by the worker): checking it again on every read made a list of 20
        # deployments cost 50 ms (jsonschema's check of each schema)
        return value

    created: datetime = Field(default_factory=utcnow)
    updated: datetime = Field(default_factory=utcnow)


class LogRecord(BaseModel):
    time: datetime
    level: str
    message: str
    logger: str | None = None
    task_run_id: str | None = None


class ArtifactType(StrEnum):
    MARKDOWN = "markdown"
    TABLE = "table"
    LINK = "link"


class Artifact(BaseModel):
    key: str
    type: ArtifactType
    data: Any
    description: str | None = None
    created: datetime = Field(default_factory=utcnow)
    flow_run_id: str
    task_run_id: str | None = None

