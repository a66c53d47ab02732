"""The automations an engine has loaded, and the index that finds an event's candidates.

Implementation notes:
- Candidates are looked up by the event's name (exact names in a dict, wildcard
  prefixes in a short list, automations that take every name apart), then, inside
  each name group, by the exact label values the automations' `match` and
  `match_related` require (`Automation.index_labels`): an automation is a candidate
  only when the event carries one of its index keys. The cost per event follows the
  automations that can match it, not all of them.
- The index is rebuilt from scratch when the automations change (rare), and the
  group list of each event name is cached until then.
- The index is a superset: `covers(event)` still decides.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from automations.evaluation import needs_arming
from automations.events import Event
from automations.schema import Automation, Trigger

MAX_CACHED_NAMES = 10_000
_WARM_UP = Event(event="flowkeeper.warm-up", resource={"resource.id": "flowkeeper.engine"})


@dataclass(eq=False, slots=True)
class Loaded:
    """One automation as the engine uses it, with what the hot path asks of it, computed once."""

    automation: Automation
    fingerprint: str
    scopes: frozenset[str]
    arming: bool
    id: str

    @classmethod
    def of(cls, automation: Automation) -> Loaded:
        # matching compiles each trigger's patterns on first use: do it now, not on the hot path
        for _, trigger in automation.event_triggers():
            trigger.covers(_WARM_UP)
        return cls(automation, automation.trigger_fingerprint(), automation.history_scopes(),
                   needs_arming(automation.trigger), automation.id)

    @property
    def trigger(self) -> Trigger:
        return self.automation.trigger


@dataclass(slots=True)
class _Group:
    """The automations listening to one event name (or pattern), by index label."""

    unlabeled: list[Loaded] = field(default_factory=list)
    # (scope, label) -> value -> automations
    labeled: dict[tuple[str, str], dict[str, list[Loaded]]] = field(default_factory=dict)

    def add(self, loaded: Loaded, keys: frozenset[tuple[str, str, str]] | None) -> None:
        if keys is None:
            self.unlabeled.append(loaded)
            return
        for scope, label, value in keys:
            self.labeled.setdefault((scope, label), {}).setdefault(value, []).append(loaded)

    def collect(self, event: Event, found: dict[str, Loaded]) -> None:
        for loaded in self.unlabeled:
            found[loaded.id] = loaded
        for (scope, label), by_value in self.labeled.items():
            if scope == "resource":
                hits = by_value.get(event.resource.get(label, ""))
                if hits:
                    for loaded in hits:
                        found[loaded.id] = loaded
                continue
            for labels in event.related:
                hits = by_value.get(labels.get(label, ""))
                if hits:
                    for loaded in hits:
                        found[loaded.id] = loaded


class CandidateIndex:
    """Finds the automations that may cover an event."""

    def __init__(self, automations: Iterable[Loaded]) -> None:
        self._exact: dict[str, _Group] = {}
        self._wildcards: dict[str, _Group] = {}
        self._any = _Group()
        self._groups_of: dict[str, tuple[_Group, ...]] = {}
        self.size = 0
        for loaded in automations:
            self._add(loaded)
            self.size += 1

    def _add(self, loaded: Loaded) -> None:
        names = loaded.automation.required_event_names()
        keys = loaded.automation.index_labels()
        if names.any_name:
            self._any.add(loaded, keys)
            return
        for name in names.exact:
            self._exact.setdefault(name, _Group()).add(loaded, keys)
        for pattern in names.wildcards:
            self._wildcards.setdefault(pattern[:-1], _Group()).add(loaded, keys)

    def _groups(self, name: str) -> tuple[_Group, ...]:
        groups = self._groups_of.get(name)
        if groups is None:
            found = [self._exact[name]] if name in self._exact else []
            found += [group for prefix, group in self._wildcards.items()
                      if name.startswith(prefix)]
            if self._any.unlabeled or self._any.labeled:
                found.append(self._any)
            if len(self._groups_of) >= MAX_CACHED_NAMES:  # users may post any event name
                self._groups_of.clear()
            groups = self._groups_of[name] = tuple(found)
        return groups

    def listens_to(self, name: str) -> bool:
        """Whether some automation may evaluate an event of this name."""
        return bool(self._groups(name))

    def candidates(self, event: Event) -> list[Loaded]:
        """The automations to evaluate the event with (each once)."""
        groups = self._groups(event.event)
        if not groups:
            return []
        found: dict[str, Loaded] = {}
        for group in groups:
            group.collect(event, found)
        return list(found.values())
