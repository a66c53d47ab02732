"""Silences, in the manner of Alertmanager: matchers over labels, for a time window.

A matcher is `name=value`, `name!=value`, `name=~regex` or `name!~regex`; a regex must
match the whole value (as Alertmanager anchors it) and runs on RE2 (`notifiers.regex`), as
Alertmanager's Go regexps do: no backreferences, no lookaround; a label the notification lacks
has the value "". A silence mutes a notification when it is active at `now`
(starts_at <= now < ends_at) and all of its matchers match its labels.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable, Mapping
from functools import cached_property
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from notifiers.errors import InvalidSilence
from notifiers.regex import compile_regex, regex_problem

MatchOp = Literal["=", "!=", "=~", "!~"]
# longest operators first, so that "!=" is not read as "!" then "="
_OPERATORS: tuple[MatchOp, ...] = ("=~", "!~", "!=", "=")
_DURATION = re.compile(r"(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)")
_UNIT_S = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 604800.0}


class Matcher(BaseModel):
    """One condition on one label."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1)
    op: MatchOp = "="
    value: str = ""

    @model_validator(mode="after")
    def _regex_compiles(self) -> Matcher:
        if self.op in ("=~", "!~"):
            problem = regex_problem(self.value)
            if problem:
                raise ValueError(f"'{self.value}' is not a valid regular expression: {problem}")
        return self

    @cached_property
    def _pattern(self) -> Any:
        # RE2 (linear time): a user's pattern must not be able to stall the notify worker
        return compile_regex(self.value)

    @classmethod
    def parse(cls, text: str) -> Matcher:
        """A matcher from `name=value` (or !=, =~, !~); InvalidSilence when it does not parse."""
        # the first operator in the text splits it (a value may contain "=")
        for index in range(1, len(text)):
            op = next((op for op in _OPERATORS if text.startswith(op, index)), None)
            if op is None:
                continue
            name, value = text[:index].strip(), text[index + len(op):].strip()
            if not name:
                break
            try:
                return cls(name=name, op=op, value=value.strip('"'))
            except ValueError as error:
                raise InvalidSilence(f"matcher '{text}': {_first_message(error)}") from None
        raise InvalidSilence(f"matcher '{text}' does not parse: expected name=value, "
                             "name!=value, name=~regex or name!~regex")

    def matches(self, labels: Mapping[str, str]) -> bool:
        """Whether the labels satisfy this condition."""
        value = str(labels.get(self.name, ""))
        if self.op == "=":
            return value == self.value
        if self.op == "!=":
            return value != self.value
        found = self._pattern.fullmatch(value) is not None
        return found if self.op == "=~" else not found

    def __str__(self) -> str:
        return f"{self.name}{self.op}{self.value}"


def _first_message(error: Exception) -> str:
    errors = getattr(error, "errors", None)
    if callable(errors):
        return str(errors()[0].get("msg", error)).removeprefix("Value error, ")
    return str(error)


class Silence(BaseModel):
    """Mutes the notifications whose labels match, from `starts_at` until `ends_at`."""

    model_config = ConfigDict(extra="forbid")

    id: str = Field(default_factory=lambda: uuid.uuid4().hex)
    matchers: list[Matcher] = Field(min_length=1)
    starts_at: float
    ends_at: float
    comment: str = ""
    created_by: str = ""

    @field_validator("matchers", mode="before")
    @classmethod
    def _parse_strings(cls, value: Any) -> Any:
        # the API and the CLI accept "name=value" strings as well as objects
        if isinstance(value, list):
            return [Matcher.parse(item) if isinstance(item, str) else item for item in value]
        return value

    @model_validator(mode="after")
    def _ends_after_start(self) -> Silence:
        if self.ends_at <= self.starts_at:
            raise ValueError("a silence must end after it starts")
        return self

    def active(self, now: float) -> bool:
        """Whether the silence is in force at `now`."""
        return self.starts_at <= now < self.ends_at

    def expired(self, now: float) -> bool:
        """Whether the silence has ended (it can be cleaned up)."""
        return self.ends_at <= now

    def matches(self, labels: Mapping[str, str]) -> bool:
        """Whether every matcher matches the labels, whatever the time."""
        return all(matcher.matches(labels) for matcher in self.matchers)


def is_silenced(labels: Mapping[str, str], silences: Iterable[Silence],
                now: float) -> Silence | None:
    """The silence that mutes a notification with these labels at `now`, if any (the one
    that ends last, so that the record says how long the muting lasts)."""
    found = [silence for silence in silences if silence.active(now) and silence.matches(labels)]
    return max(found, key=lambda silence: silence.ends_at, default=None)


def parse_duration(text: str) -> float:
    """Seconds in a duration such as "90s", "15m", "2h", "1d" or "1h30m"; InvalidSilence
    when it does not parse or is not positive."""
    compact = text.strip().lower().replace(" ", "")
    position, total = 0, 0.0
    for match in _DURATION.finditer(compact):
        if match.start() != position:
            break
        total += float(match.group(1)) * _UNIT_S[match.group(2)]
        position = match.end()
    if not compact or position != len(compact):
        raise InvalidSilence(f"'{text}' is not a duration (examples: 90s, 15m, 2h, 1d, 1h30m)")
    if total <= 0:
        raise InvalidSilence(f"'{text}' is not a positive duration")
    return total
