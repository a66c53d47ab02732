"""Label and event-name matching, with Prefect 3's semantics.

A label spec maps a label to one value or a list of values:

- a value matches exactly; a value ending in `*` matches every value starting
  with what precedes it (`flow-run.*`); a lone `*` matches any value;
- a value starting with `!` is a negation (`!tag.dev`, `!test-*`);
- in a list, positive values are ORed and negations ANDed: the label must match
  at least one positive value (when the list has one) and none of the negated
  ones, so `["prod-*", "!prod-test-*"]` means "starts with prod-, but not
  prod-test-";
- a label the resource does not carry never matches, negated or not;
- all the labels of a spec must match (AND); an empty spec matches everything.

`match` applies one spec to an event's resource. `match_related` applies each of
its specs to the related resources: a spec holds when at least one related
resource matches all its labels. Hence
`{"resource.role": "tag", "resource.id": "!tag.dev"}` reads "related to some tag
other than dev" (a run tagged dev and prod matches; an untagged run does not):
that is how Prefect evaluates it, and `explain` shows it.

Event names (`after`, `expect`) match exactly, or by prefix with a trailing `*`.
Patterns are compiled once (`LabelSpec`, `NamePatterns`): matching is set
lookups and one `str.startswith` with a tuple of prefixes.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

WILDCARD = "*"
NEGATION = "!"

SpecInput = Mapping[str, "str | Sequence[str]"]


def pattern_problem(value: str, *, negation_allowed: bool) -> str | None:
    """Why `value` is not a valid pattern, or None when it is."""
    if not isinstance(value, str):
        return f"{value!r} is not a string"
    body = value
    if value.startswith(NEGATION):
        if not negation_allowed:
            return f"'{value}': negation ('!') is not supported here"
        body = value[1:]
    if not body:
        return "a value must not be empty"
    if WILDCARD in body[:-1]:
        return f"'{value}': '*' is only allowed at the end of a value"
    return None


def value_matches(pattern: str, value: str | None) -> bool:
    """One pattern against one value (`!` negates, a trailing `*` matches a prefix)."""
    if value is None:
        return False
    positive = not pattern.startswith(NEGATION)
    body = pattern if positive else pattern[1:]
    found = value.startswith(body[:-1]) if body.endswith(WILDCARD) else value == body
    return found if positive else not found


def _split(patterns: Iterable[str]) -> tuple[frozenset[str], tuple[str, ...]]:
    exact, prefixes = set(), []
    for pattern in patterns:
        if pattern.endswith(WILDCARD):
            prefixes.append(pattern[:-1])
        else:
            exact.add(pattern)
    return frozenset(exact), tuple(prefixes)


def _quote(values: Sequence[str]) -> str:
    shown = ", ".join(f"'{value}'" for value in values)
    return shown if len(values) == 1 else f"any of {shown}"


@dataclass(frozen=True, slots=True)
class LabelCheck:
    """The verdict on one label of a spec for one resource."""

    label: str
    expected: tuple[str, ...]
    value: str | None
    ok: bool
    reason: str


class LabelRule:
    """One label of a spec, compiled."""

    __slots__ = ("label", "values", "exact", "prefixes", "not_exact", "not_prefixes", "positive")

    def __init__(self, label: str, values: Sequence[str]) -> None:
        self.label = label
        self.values = tuple(values)
        positives = [value for value in values if not value.startswith(NEGATION)]
        negations = [value[1:] for value in values if value.startswith(NEGATION)]
        self.exact, self.prefixes = _split(positives)
        self.not_exact, self.not_prefixes = _split(negations)
        self.positive = bool(positives)

    def accepts(self, value: str | None) -> bool:
        if value is None:
            return False
        if self.positive and value not in self.exact and not (
                self.prefixes and value.startswith(self.prefixes)):
            return False
        if value in self.not_exact or (self.not_prefixes and value.startswith(self.not_prefixes)):
            return False
        return True

    def check(self, value: str | None) -> LabelCheck:
        if value is None:
            return LabelCheck(self.label, self.values, None, False, f"{self.label} is missing")
        if self.accepts(value):
            return LabelCheck(self.label, self.values, value, True,
                              f"{self.label} '{value}' matches {_quote(self.values)}")
        excluded = [pattern for pattern in self.values
                    if pattern.startswith(NEGATION) and not value_matches(pattern, value)]
        if excluded:
            reason = f"{self.label} '{value}' is excluded by '{excluded[0]}'"
        else:
            positives = [pattern for pattern in self.values if not pattern.startswith(NEGATION)]
            reason = f"{self.label} '{value}' is not {_quote(positives)}"
        return LabelCheck(self.label, self.values, value, False, reason)


@dataclass(frozen=True, slots=True)
class SpecReport:
    """The verdict on a whole spec: for `match_related`, on the best related candidate."""

    where: str
    ok: bool
    checks: tuple[LabelCheck, ...]
    candidate: int | None
    reason: str


class LabelSpec:
    """A compiled label spec: `matches(labels)` for one resource, `includes(candidates)` for many."""

    __slots__ = ("spec", "rules", "_flat")

    def __init__(self, spec: SpecInput) -> None:
        self.spec = {label: values for label, values in spec.items()}
        self.rules = tuple(LabelRule(label, [values] if isinstance(values, str) else list(values))
                           for label, values in spec.items())
        # the rules as plain tuples: `matches` runs for every candidate event
        self._flat = tuple((rule.label, rule.positive, rule.exact, rule.prefixes or None,
                            rule.not_exact or None, rule.not_prefixes or None)
                           for rule in self.rules)

    def __bool__(self) -> bool:
        return bool(self.rules)

    def matches(self, labels: Mapping[str, str]) -> bool:
        get = labels.get
        for label, positive, exact, prefixes, not_exact, not_prefixes in self._flat:
            value = get(label)
            if value is None:
                return False
            if positive and value not in exact and not (
                    prefixes is not None and value.startswith(prefixes)):
                return False
            if not_exact is not None and value in not_exact:
                return False
            if not_prefixes is not None and value.startswith(not_prefixes):
                return False
        return True

    def includes(self, candidates: Iterable[Mapping[str, str]]) -> bool:
        if not self._flat:
            return True
        matches = self.matches
        for candidate in candidates:
            if matches(candidate):
                return True
        return False

    def check(self, labels: Mapping[str, str]) -> tuple[LabelCheck, ...]:
        return tuple(rule.check(labels.get(rule.label)) for rule in self.rules)

    def report(self, where: str, labels: Mapping[str, str]) -> SpecReport:
        """Explain `matches` on one resource."""
        checks = self.check(labels)
        failed = [check for check in checks if not check.ok]
        reason = failed[0].reason if failed else "matches"
        return SpecReport(where, not failed, checks, 0, reason)

    def report_includes(self, where: str, candidates: Sequence[Mapping[str, str]]) -> SpecReport:
        """Explain `includes`: the matching candidate, or the closest one and its first failure."""
        if not self.rules:
            return SpecReport(where, True, (), None, "matches every event (empty)")
        if not candidates:
            return SpecReport(where, False, (), None, "the event has no related resources")
        best: tuple[int, int, tuple[LabelCheck, ...]] | None = None
        for index, candidate in enumerate(candidates):
            checks = self.check(candidate)
            passed = sum(check.ok for check in checks)
            if passed == len(checks):
                return SpecReport(where, True, checks, index, "matches")
            if best is None or passed > best[0]:
                best = (passed, index, checks)
        assert best is not None
        _, index, checks = best
        first = next(check for check in checks if not check.ok)
        described = ", ".join(f"{label} {_quote([v] if isinstance(v, str) else list(v))}"
                              for label, v in self.spec.items())
        reason = (f"no related resource has {described}; closest: "
                  f"related[{index}] ({first.reason})")
        return SpecReport(where, False, checks, index, reason)


class NamePatterns:
    """Compiled event-name patterns (exact names and `prefix*` wildcards)."""

    __slots__ = ("patterns", "exact", "prefixes")

    def __init__(self, patterns: Iterable[str]) -> None:
        self.patterns = tuple(dict.fromkeys(patterns))
        self.exact, self.prefixes = _split(self.patterns)

    def __bool__(self) -> bool:
        return bool(self.patterns)

    def matches(self, name: str) -> bool:
        return name in self.exact or bool(self.prefixes and name.startswith(self.prefixes))


def parse_label_path(label: str) -> tuple[str | None, str]:
    """`related:<role>:<label>` -> (role, label); a plain label -> (None, label)."""
    directive, _, related_label = label.rpartition(":")
    directive, _, role = directive.partition(":")
    if directive == "related":
        return role, related_label
    return None, label


def find_label(resource: Mapping[str, str], related: Sequence[Mapping[str, str]],
               role: str | None, label: str) -> str | None:
    """A label of the resource, or of the first related resource in `role` (as Prefect)."""
    if role is None:
        return resource.get(label)
    for candidate in related:
        if candidate.get("resource.role") == role:
            return candidate.get(label)
    return None


LabelKey = tuple[str, str, str]
"""An index key: ("resource" | "related", label, value)."""
