"""Automations in Redis: create, replace, patch, delete, pause, resume, list, get (by id
or name; names are unique), and reading their firings (services/core/firings.py).

Implementation notes:
- The automations hash, the names hash and the version counter share one hash tag, so
  every change is one MULTI/EXEC on one slot (WATCH guards the name checks).
- Every change increments the version counter and, in the same MULTI/EXEC, appends a
  change entry (the automation's id and the new version) to the events stream
  (stream.py), before the caller answers: an event accepted after that is evaluated
  with the change, by whichever engine replica reads it (services/engine/loading.py
  [1]-[5]). WATCH on the counter gives the entry its version and keeps the entries in
  the order of the versions.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Any, Literal

import redis
from pydantic import BaseModel, Field, ValidationError

from automations.errors import FieldError, InvalidAutomation
from automations.loading import field_errors, refused_templates
from automations.schema import (
    Automation,
    AutomationCore,
    AutomationCreate,
    PauseAutomation,
    ResumeAutomation,
)
from services.core import stream
from services.core.action_secrets import seal_actions
from services.core.automation_references import missing_references
from services.core.errors import NameTaken, NotFound
from services.core.firings import (
    ActionOutcome,
    FiringRecord,
    decode_firing,
    parse_run_firing_member,
)
from services.core.keys import Keys
from services.core.settings import Settings

# the notifier that always exists: it keeps messages instead of sending them
OUTBOX_NOTIFIER = "outbox"

# whether a notifier of that name exists (the notify service knows every source of them)
NotifierCheck = Callable[[str], bool]


class ApplyResult(BaseModel):
    """What applying one automation did: created, updated or unchanged, and the warnings."""

    name: str
    id: str
    status: Literal["created", "updated", "unchanged"]
    warnings: list[str] = Field(default_factory=list)
    source: str = ""


def _now(now: datetime | None) -> datetime:
    return now or datetime.now(UTC)


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386 JSON merge patch: objects merge, null removes a member, anything else replaces."""
    if not isinstance(patch, dict):
        return patch
    merged = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            merged.pop(key, None)
        else:
            merged[key] = merge_patch(merged.get(key), value)
    return merged


def validate_spec(document: Any, source: str = "") -> AutomationCreate:
    """A document validated as AutomationCreate; InvalidAutomation names each field path."""
    if not isinstance(document, dict):
        raise InvalidAutomation(source, [FieldError("", "expected an automation (a JSON object)")])
    try:
        spec = AutomationCreate.model_validate(document)
    except ValidationError as error:
        raise InvalidAutomation(source, field_errors(error)) from None
    refused = refused_templates(spec)
    if refused:
        raise InvalidAutomation(source, refused)
    return spec


def _core(automation: AutomationCore) -> dict[str, Any]:
    return {name: value for name, value in automation.model_dump(mode="json").items()
            if name in AutomationCore.model_fields}


class AutomationStore:
    """Automations and their firings in one installation's Redis."""

    def __init__(self, client: redis.Redis, settings: Settings) -> None:
        self.client = client
        self.settings = settings
        self.keys = Keys(settings.key_prefix)

    # --- reading
    def version(self) -> int:
        return int(self.client.get(self.keys.automations_version) or 0)

    def get(self, ref: str) -> Automation | None:
        """An automation by id or by name."""
        raw = self.client.hget(self.keys.automations, ref)
        if raw is None:
            automation_id = self.client.hget(self.keys.automation_names, ref)
            raw = self.client.hget(self.keys.automations, automation_id) if automation_id else None
        return Automation.model_validate_json(raw) if raw else None

    def require(self, ref: str) -> Automation:
        automation = self.get(ref)
        if automation is None:
            raise NotFound(f"no automation with id or name '{ref}'")
        return automation

    def list(self) -> list[Automation]:
        """Every automation, by name; records that no longer validate are left out."""
        found = []
        for raw in self.client.hvals(self.keys.automations):
            try:
                found.append(Automation.model_validate_json(raw))
            except ValidationError:
                continue
        return sorted(found, key=lambda automation: automation.name)

    # --- writing
    def create(self, spec: AutomationCreate, *, now: datetime | None = None) -> Automation:
        """Store a new automation; its name must be free."""
        spec = seal_actions(self.settings, spec)
        automation = Automation.from_create(spec, id=str(uuid.uuid4()), now=_now(now))
        self._write(automation, previous=None)
        return automation

    def replace(self, ref: str, spec: AutomationCreate, *,
                now: datetime | None = None) -> Automation:
        """Replace an automation with a new version (same id); a new name must be free."""
        previous = self.require(ref)
        spec = seal_actions(self.settings, spec, previous)
        automation = previous.replaced_by(spec, now=_now(now))
        self._write(automation, previous=previous)
        return automation

    def patched(self, ref: str, changes: dict[str, Any]) -> AutomationCreate:
        """What the user wrote with a JSON merge patch applied, validated (not stored)."""
        previous = self.require(ref)
        return validate_spec(merge_patch(previous.model_dump(mode="json", include=set(
            AutomationCore.model_fields)), changes))

    def patch(self, ref: str, changes: dict[str, Any], *,
              now: datetime | None = None) -> Automation:
        """Apply a JSON merge patch to what the user wrote, and store the result."""
        return self.replace(self.require(ref).id, self.patched(ref, changes), now=now)

    def set_enabled(self, ref: str, enabled: bool, *, now: datetime | None = None) -> Automation:
        """Pause (False) or resume (True) an automation."""
        previous = self.require(ref)
        if previous.enabled == enabled:
            return previous
        # validated again: some checks (run-deployment loops) only hold for enabled ones
        spec = validate_spec({**_core(previous), "enabled": enabled})
        # one stored before secrets were sealed is sealed now
        spec = seal_actions(self.settings, spec, previous)
        automation = previous.replaced_by(spec, now=_now(now))
        self._write(automation, previous=previous)
        return automation

    def pause(self, ref: str) -> Automation:
        return self.set_enabled(ref, False)

    def resume(self, ref: str) -> Automation:
        return self.set_enabled(ref, True)

    def delete(self, ref: str) -> Automation:
        """Remove an automation; its firings stay until they expire."""
        automation = self.require(ref)
        keys = self.keys
        with self.client.pipeline(transaction=True) as pipe:
            while True:
                try:
                    pipe.watch(keys.automations_version)
                    if not pipe.hexists(keys.automations, automation.id):
                        pipe.unwatch()
                        raise NotFound(f"no automation with id '{automation.id}' (deleted "
                                       "meanwhile)")
                    version = int(pipe.get(keys.automations_version) or 0) + 1
                    pipe.multi()
                    pipe.hdel(keys.automations, automation.id)
                    pipe.hdel(keys.automation_names, automation.name)
                    self._changed(pipe, automation.id, version)
                    pipe.execute()
                    return automation
                except redis.WatchError:
                    continue

    def apply(self, spec: AutomationCreate, *, known_names: Iterable[str] = (),
              now: datetime | None = None, source: str = "", force: bool = False,
              notifier_exists: NotifierCheck | None = None) -> ApplyResult:
        """Create the automation, or update the one with its name.

        A notifier or deployment it names that does not exist refuses it (InvalidAutomation
        naming the field) unless `force`, when it is applied with a warning instead."""
        problems = self.reference_problems(spec, notifier_exists=notifier_exists)
        if problems and not force:
            raise InvalidAutomation(source, problems)
        warnings = [f"{problem} (applied anyway)" for problem in problems]
        warnings += self.reference_warnings(spec, known_names=known_names)
        existing = self.get(spec.name)
        # sealed first: the same secrets given again compare equal to the stored ones
        spec = seal_actions(self.settings, spec, existing)
        if existing is None:
            created = self.create(spec, now=now)
            return ApplyResult(name=created.name, id=created.id, status="created",
                               warnings=warnings, source=source)
        if _core(existing) == _core(spec):
            return ApplyResult(name=existing.name, id=existing.id, status="unchanged",
                               warnings=warnings, source=source)
        updated = self.replace(existing.id, spec, now=now)
        return ApplyResult(name=updated.name, id=updated.id, status="updated",
                           warnings=warnings, source=source)

    def reference_problems(self, spec: AutomationCore, *,
                           notifier_exists: NotifierCheck | None = None) -> list[FieldError]:
        """The named notifiers and deployments that do not exist: the action would fail.

        `notifier_exists` knows every source of notifiers (stored, the environment's, the
        outbox); without it only the stored ones and the outbox count."""
        exists = notifier_exists or (lambda name: name == OUTBOX_NOTIFIER or bool(
            self.client.hexists(self.keys.notifiers, name)))
        return missing_references(spec, notifier_exists=exists, deployment_exists=lambda name:
                                  bool(self.client.hexists(self.keys.deployments, name)))

    def reference_warnings(self, spec: AutomationCore, *,
                           known_names: Iterable[str] = ()) -> list[str]:
        """Named automations that do not exist (yet): pausing one that is applied later is
        fine, so this warns and never refuses."""
        names = set(known_names) | {spec.name}
        warnings = []
        for where, index, action in spec.all_actions():
            if isinstance(action, PauseAutomation | ResumeAutomation) and action.automation:
                if action.automation not in names and not self.get(action.automation):
                    warnings.append(f"{where}[{index}].automation: no automation named "
                                    f"'{action.automation}' (yet)")
        return warnings

    def _write(self, automation: Automation, previous: Automation | None) -> None:
        keys = self.keys
        with self.client.pipeline(transaction=True) as pipe:
            while True:
                try:
                    pipe.watch(keys.automation_names, keys.automations_version)
                    owner = pipe.hget(keys.automation_names, automation.name)
                    if owner is not None and owner != automation.id:
                        pipe.unwatch()
                        raise NameTaken(f"name: an automation named '{automation.name}' "
                                        "already exists")
                    if previous is not None and not pipe.hexists(keys.automations, previous.id):
                        pipe.unwatch()
                        raise NotFound(f"no automation with id '{previous.id}' (deleted "
                                       "meanwhile)")
                    version = int(pipe.get(keys.automations_version) or 0) + 1
                    pipe.multi()
                    if previous is not None and previous.name != automation.name:
                        pipe.hdel(keys.automation_names, previous.name)
                    pipe.hset(keys.automation_names, automation.name, automation.id)
                    pipe.hset(keys.automations, automation.id, automation.model_dump_json())
                    self._changed(pipe, automation.id, version)
                    pipe.execute()
                    return
                except redis.WatchError:
                    continue

    def _changed(self, pipe: redis.client.Pipeline, automation_id: str, version: int) -> None:
        """Within the change's MULTI: the new version, and its change entry on the stream."""
        pipe.set(self.keys.automations_version, version)
        stream.append_change(pipe, self.keys, automation_id, version, self.settings.events_maxlen)

    # --- firings
    def firings(self, automation_id: str, limit: int = 50) -> list[FiringRecord]:
        """The latest firings of an automation, newest first."""
        ids = self.client.zrevrange(self.keys.automation_firings(automation_id), 0, limit - 1)
        pipe = self.client.pipeline(transaction=False)
        for firing_id in ids:
            pipe.hgetall(self.keys.automation_firing(automation_id, firing_id))
        return [record for raw in pipe.execute() if (record := decode_firing(raw))]

    def firings_on_run(self, run_id: str, limit: int = 50) -> list[FiringRecord]:
        """The latest firings about a flow run, oldest first, from the run's index."""
        members = self.client.zrevrange(self.keys.flow_run_firings(run_id), 0, limit - 1)
        pipe = self.client.pipeline(transaction=False)
        for member in reversed(members):
            pipe.hgetall(self.keys.automation_firing(*parse_run_firing_member(member)))
        return [record for raw in pipe.execute() if (record := decode_firing(raw))]

    def firing(self, automation_id: str, firing_id: str) -> FiringRecord | None:
        return decode_firing(self.client.hgetall(
            self.keys.automation_firing(automation_id, firing_id)))

    def record_outcome(self, automation_id: str, firing_id: str, outcome: ActionOutcome,
                       pipe: redis.client.Pipeline | None = None) -> None:
        """Keep the outcome of one action on its firing."""
        target = pipe if pipe is not None else self.client
        target.hset(self.keys.automation_firing(automation_id, firing_id),
                    f"outcome:{outcome.index}", outcome.model_dump_json())

