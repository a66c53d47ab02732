"""The event: one schema for the SDK, the stream, the engine, the API and JSON files.

It follows Prefect 3's event model (names such as `flow-run.Failed`, a
`resource` of labels with `resource.id`, `related` resources with a
`resource.role`) so that Prefect automations import with their `prefect.`
prefixes mapped. An event given with Prefect's own label names (`prefect.resource.id`,
`.name`, `.role`, as code written for Prefect's `emit_event` sends them) is taken with
ours.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Annotated, Any

import pydantic_core
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
)

# Limits on one event, so that neither a producer nor the API can make Redis (and every
# reader of the stream) hold a huge entry. They follow Prefect's event limits in spirit,
# tighter where our own events need far less. The API's request body limit is larger
# than an event can be, so an oversized part answers 422 naming the field, not 413.
MAX_EVENT_NAME_LENGTH = 1024
# Names flowkeeper emits itself (run states, firings, deliveries, schedules, workers): an
# event posted from outside under one of these would look like the system's own word, fire
# automations and skew run histories, so the API takes them from admin tokens only.
SYSTEM_EVENT_PREFIXES = ("flow-run.", "task-run.", "deployment.", "automation.",
                         "notification.", "work-queue.", "worker.")
MAX_EVENT_PAYLOAD_BYTES = 256 * 1024  # the payload as stored (compact UTF-8 JSON)
# nesting of the payload's objects and lists: the stream's JSON reader stops at 200 levels,
# so a deeper payload would be stored but never read back by the engine
MAX_PAYLOAD_DEPTH = 32
MAX_LABELS = 100  # labels of the resource, and of each related resource
MAX_RELATED = 100  # related resources (the SDK adds one per tag)
MAX_LABEL_NAME_CHARS = 256
MAX_LABEL_VALUE_CHARS = 4096
# a whole event as stored: the SDK refuses to emit a larger one, the API's body limit
# (1 MiB by default) keeps a posted one smaller, and lists leave out a larger stored one
MAX_EVENT_BYTES = 1024 * 1024


def json_bytes(value: Any, what: str) -> int:
    """Size of `value` as compact UTF-8 JSON; a ValueError names `what` when it is not JSON
    text at all (e.g. a lone surrogate such as "\\ud800", which no UTF-8 text can hold)."""
    try:
        return len(pydantic_core.to_json(value))
    except pydantic_core.PydanticSerializationError as error:
        if "surrogates not allowed" in str(error):
            raise ValueError(f"{what} holds a lone surrogate (\\ud800-\\udfff), "
                             "which is not valid Unicode text") from None
        raise ValueError(f"{what} is not JSON: {error}") from None


def check_json_size(value: Any, what: str, max_bytes: int) -> Any:
    """`value` unchanged when its JSON fits in `max_bytes`, else a ValueError naming `what`."""
    size = json_bytes(value, what)
    if size > max_bytes:
        raise ValueError(f"{what} is {size} bytes as JSON; at most {max_bytes} bytes "
                         f"({max_bytes // 1024} KiB) are allowed")
    return value


def check_json_depth(value: Any, what: str, max_depth: int) -> Any:
    """`value` unchanged when its objects and lists nest at most `max_depth` levels."""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        children = item.values() if isinstance(item, dict) else item \
            if isinstance(item, list | tuple) else None
        if children is None:
            continue
        if depth > max_depth:
            raise ValueError(f"{what} nests objects and lists deeper than {max_depth} levels")
        stack.extend((child, depth + 1) for child in children)
    return value


def to_utc(value: datetime) -> datetime:
    """An aware UTC time (a naive one is taken as UTC); a ValueError, not an OverflowError,
    for a time that leaves the calendar once converted (e.g. 0001-01-01T00:01+06:05)."""
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    try:
        return value.astimezone(UTC)
    except OverflowError:
        raise ValueError(f"{value.isoformat()} is out of range once converted to UTC") from None


# a timestamp of user input: always aware and in UTC, and never a 500 for an extreme one
UtcDatetime = Annotated[datetime, AfterValidator(to_utc)]

# validation context of an event read back from the stream: its limits are not checked
STORED: dict[str, bool] = {"stored": True}

# Prefect's names of the resource labels, and ours
_PREFECT_LABELS = {"prefect.resource.id": "resource.id",
                   "prefect.resource.name": "resource.name",
                   "prefect.resource.role": "resource.role"}


def _with_our_label_names(labels: dict[str, str], where: str) -> dict[str, str]:
    """`labels` with Prefect's resource label names renamed to ours."""
    if not any(name in labels for name in _PREFECT_LABELS):
        return labels
    renamed = {}
    for name, value in labels.items():
        ours = _PREFECT_LABELS.get(name, name)
        if ours in renamed and renamed[ours] != value:
            raise ValueError(f"{where} has both '{ours}' and 'prefect.{ours}', with different "
                             "values")
        renamed[ours] = value
    return renamed


def _check_labels(labels: dict[str, str], where: str, required: tuple[str, ...],
                  bounded: bool) -> dict[str, str]:
    for name in required:
        if not labels.get(name):
            raise ValueError(f"{where} needs a non-empty '{name}' label")
    if not bounded:
        return labels
    if len(labels) > MAX_LABELS:
        raise ValueError(f"{where} has {len(labels)} labels; at most {MAX_LABELS} are allowed")
    for name, value in labels.items():
        if len(name) > MAX_LABEL_NAME_CHARS:
            raise ValueError(f"{where} has a label name of {len(name)} characters; at most "
                             f"{MAX_LABEL_NAME_CHARS} are allowed")
        if len(value) > MAX_LABEL_VALUE_CHARS:
            raise ValueError(f"{where} label '{name}' is {len(value)} characters; at most "
                             f"{MAX_LABEL_VALUE_CHARS} are allowed")
    return labels


class Event(BaseModel):
    """Something that happened to a resource, at a time."""

    model_config = ConfigDict(extra="forbid")

    id: uuid.UUID = Field(default_factory=uuid.uuid4)
    occurred: UtcDatetime = Field(default_factory=lambda: datetime.now(UTC))
    event: str = Field(min_length=1, max_length=MAX_EVENT_NAME_LENGTH)
    resource: dict[str, str]
    related: list[dict[str, str]] = Field(default_factory=list)
    payload: dict[str, Any] = Field(
        default_factory=dict,
        description=f"free JSON, at most {MAX_EVENT_PAYLOAD_BYTES} bytes once encoded")
    follows: uuid.UUID | None = None

    # The limits are checked on the way in (the API, emit_event, JSON files), not when an
    # event is read back from the stream (context STORED): the SDK builds its state events
    # without validation, and an entry written before a limit changed must stay readable
    # by the engine rather than be dead-lettered.

    @field_validator("resource")
    @classmethod
    def _resource_has_id(cls, value: dict[str, str], info: ValidationInfo) -> dict[str, str]:
        bounded = info.context is not STORED
        if bounded:  # what is stored already has our names
            value = _with_our_label_names(value, "resource")
        return _check_labels(value, "resource", ("resource.id",), bounded)

    @field_validator("related")
    @classmethod
    def _related_have_roles(cls, value: list[dict[str, str]],
                            info: ValidationInfo) -> list[dict[str, str]]:
        bounded = info.context is not STORED
        if bounded and len(value) > MAX_RELATED:
            raise ValueError(f"{len(value)} related resources; at most {MAX_RELATED} are "
                             "allowed")
        if bounded:
            value = [_with_our_label_names(labels, f"related[{index}]")
                     for index, labels in enumerate(value)]
        for index, labels in enumerate(value):
            _check_labels(labels, f"related[{index}]", ("resource.id", "resource.role"), bounded)
        return value

    @field_validator("payload")
    @classmethod
    def _payload_fits(cls, value: dict[str, Any], info: ValidationInfo) -> dict[str, Any]:
        if info.context is STORED:
            return value
        check_json_depth(value, "payload", MAX_PAYLOAD_DEPTH)
        return check_json_size(value, "payload", MAX_EVENT_PAYLOAD_BYTES)

    @property
    def resource_id(self) -> str:
        return self.resource["resource.id"]


# The kinds of resource flowkeeper names itself. A `resource.id` is `<kind>.<id>`, as in
# Prefect: `flow-run.<uuid>`, `deployment.<name>`; the id may hold dots, the kind does not.
FLOW_RUN = "flow-run"
TASK_RUN = "task-run"
FLOW = "flow"
DEPLOYMENT = "deployment"
WORK_QUEUE = "work-queue"
TAG = "tag"
AUTOMATION = "automation"
NOTIFICATION = "notification"
NOTIFIER = "notifier"


def resource_id(kind: str, ident: str) -> str:
    """The `resource.id` of the resource `ident` of `kind`: `flow-run.<uuid>`."""
    return f"{kind}.{ident}"


def resource_ident(value: str, kind: str) -> str | None:
    """The id in `value` when it is a `resource.id` of `kind` (`<kind>.<id>`), else None."""
    prefix = f"{kind}."
    if not value.startswith(prefix) or len(value) == len(prefix):
        return None
    return value[len(prefix):]


def flow_run_resource_id(run_id: str) -> str:
    """`flow-run.<run_id>`, the `resource.id` of a flow run."""
    return resource_id(FLOW_RUN, run_id)


def flow_run_id_from_resource(value: str) -> str | None:
    """The run id of a flow run's `resource.id`, None for any other resource."""
    return resource_ident(value, FLOW_RUN)


def is_system_event(name: str) -> bool:
    """Whether `name` is in a namespace flowkeeper emits itself (SYSTEM_EVENT_PREFIXES)."""
    return name.startswith(SYSTEM_EVENT_PREFIXES)
