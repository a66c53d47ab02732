"""The event: one schema for the SDK, the stream, the engine, the API and JSON files.

It follows Prefect 3's event model (names such as `flow-run.Failed`, a
`resource` of labels with `resource.id`, `related` resources with a
`resource.role`) so that Prefect automations import with their `prefect.`
prefixes mapped.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

MAX_EVENT_NAME_LENGTH = 1024
MAX_LABELS = 500


def _check_labels(labels: dict[str, str], where: str, required: tuple[str, ...]) -> dict[str, str]:
    if len(labels) > MAX_LABELS:
        raise ValueError(f"{where} has {len(labels)} labels; at most {MAX_LABELS} are allowed")
    for name in required:
        if not labels.get(name):
            raise ValueError(f"{where} needs a non-empty '{name}' label")
    return labels


class Event(BaseModel):
    """Something that happened to a resource, at a time."""

    model_config = ConfigDict(extra="forbid")

    id: uuid.UUID = Field(default_factory=uuid.uuid4)
    occurred: datetime = Field(default_factory=lambda: datetime.now(UTC))
    event: str = Field(min_length=1, max_length=MAX_EVENT_NAME_LENGTH)
    resource: dict[str, str]
    related: list[dict[str, str]] = Field(default_factory=list)
    payload: dict[str, Any] = Field(default_factory=dict)
    follows: uuid.UUID | None = None

    @field_validator("occurred")
    @classmethod
    def _utc(cls, value: datetime) -> datetime:
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)

    @field_validator("resource")
    @classmethod
    def _resource_has_id(cls, value: dict[str, str]) -> dict[str, str]:
        return _check_labels(value, "resource", ("resource.id",))

    @field_validator("related")
    @classmethod
    def _related_have_roles(cls, value: list[dict[str, str]]) -> list[dict[str, str]]:
        for index, labels in enumerate(value):
            _check_labels(labels, f"related[{index}]", ("resource.id", "resource.role"))
        return value

    @property
    def resource_id(self) -> str:
        return self.resource["resource.id"]

    def related_by_role(self, role: str) -> list[dict[str, str]]:
        return [labels for labels in self.related if labels.get("resource.role") == role]
