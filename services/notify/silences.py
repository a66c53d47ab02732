"""Silences in Redis: create (matchers, a duration or an end), list, get, expire.

A silence is kept until SILENCE_KEPT_S after it ended, so people can see what was muted;
expiring one ends it now (one that has not started yet is removed at once).
"""

from __future__ import annotations

import time
from datetime import datetime
from typing import Any, Literal

import redis
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from notifiers import InvalidSilence
from notifiers.silences import Silence, parse_duration
from services.core.errors import InvalidInput, NotFound, validation_messages
from services.core.keys import Keys

SILENCE_KEPT_S = 7 * 24 * 3600
# every notification is checked against every matcher of every active silence
MAX_MATCHERS = 50
SilenceState = Literal["pending", "active", "expired"]


class SilenceCreate(BaseModel):
    """What people give to mute notifications: matchers, and how long (or until when)."""

    model_config = ConfigDict(extra="forbid")

    # objects are checked when the silence is built, so that an error names the matcher
    # rather than each branch of a str-or-object union
    matchers: list[str | dict[str, Any]] = Field(min_length=1, max_length=MAX_MATCHERS,
                                                 description='"name=value", "name!=value",'
                                          ' "name=~regex", "name!~regex", or objects')
    duration: str | float | None = Field(None, description='"2h", "30m", "1d" or seconds')
    starts_at: datetime | None = Field(None, description="default: now")
    ends_at: datetime | None = None
    comment: str = Field("", max_length=2_000)
    created_by: str = Field("", max_length=200)


class SilencePublic(Silence):
    """A silence with its state at the time it was read."""

    state: SilenceState


def state_of(silence: Silence, now: float) -> SilenceState:
    if silence.expired(now):
        return "expired"
    return "active" if silence.active(now) else "pending"


def public(silence: Silence, now: float, state: SilenceState | None = None) -> SilencePublic:
    """The silence with its state at `now` (or the state given)."""
    return SilencePublic(**silence.model_dump(), state=state or state_of(silence, now))


def build_silence(spec: SilenceCreate, now: float) -> Silence:
    """The silence `spec` asks for; InvalidInput naming the field when it does not hold."""
    starts_at = spec.starts_at.timestamp() if spec.starts_at is not None else now
    if (spec.duration is None) == (spec.ends_at is None):
        raise InvalidInput("duration: give exactly one of 'duration' or 'ends_at'")
    if spec.duration is not None:
        try:
            seconds = (parse_duration(spec.duration) if isinstance(spec.duration, str)
                       else float(spec.duration))
        except InvalidSilence as error:
            raise InvalidInput(f"duration: {error}") from None
        if not seconds > 0:
            raise InvalidInput("duration: must be positive")
        ends_at = starts_at + seconds
    else:
        ends_at = spec.ends_at.timestamp()  # type: ignore[union-attr]
    if ends_at <= now:
        raise InvalidInput("ends_at: the silence would already be over")
    try:
        return Silence(matchers=spec.matchers, starts_at=starts_at, ends_at=ends_at,
                       comment=spec.comment, created_by=spec.created_by)
    except InvalidSilence as error:
        raise InvalidInput(f"matchers: {error}") from None
    except ValidationError as error:
        raise InvalidInput("; ".join(validation_messages(error.errors()))) from None


class SilenceStore:
    """The silences of one installation."""

    def __init__(self, client: redis.Redis, keys: Keys) -> None:
        self.client = client
        self.keys = keys

    def create(self, spec: SilenceCreate, now: float | None = None) -> Silence:
        silence = build_silence(spec, time.time() if now is None else now)
        self.client.hset(self.keys.silences, silence.id, silence.model_dump_json())
        return silence

    def all(self, now: float | None = None) -> list[Silence]:
        """Every silence kept, by end time; those ended long ago are dropped."""
        now = time.time() if now is None else now
        found, stale = [], []
        for silence_id, raw in self.client.hgetall(self.keys.silences).items():
            silence = Silence.model_validate_json(raw)
            if silence.ends_at + SILENCE_KEPT_S <= now:
                stale.append(silence_id)
            else:
                found.append(silence)
        if stale:
            self.client.hdel(self.keys.silences, *stale)
        return sorted(found, key=lambda silence: silence.ends_at)

    def in_force(self, now: float) -> list[Silence]:
        """The silences that have not ended (the delivery stage checks which are active)."""
        return [silence for silence in self.all(now) if not silence.expired(now)]

    def get(self, ref: str) -> Silence:
        """A silence by id or a unique prefix of it."""
        raw = self.client.hget(self.keys.silences, ref)
        if raw:
            return Silence.model_validate_json(raw)
        matches = [key for key in self.client.hkeys(self.keys.silences) if key.startswith(ref)]
        if len(matches) == 1 and ref:
            return Silence.model_validate_json(self.client.hget(self.keys.silences, matches[0]))
        if len(matches) > 1 and ref:
            raise NotFound(f"'{ref}' matches {len(matches)} silences; give more of the id")
        raise NotFound(f"no silence with id '{ref}'")

    def expire(self, ref: str, now: float | None = None) -> Silence:
        """End a silence now; one that has not started yet is removed."""
        now = time.time() if now is None else now
        silence = self.get(ref)
        if silence.starts_at >= now:
            # never in force: nothing to keep (its planned window is returned as it was)
            self.client.hdel(self.keys.silences, silence.id)
            return silence
        if silence.ends_at > now:
            silence = silence.model_copy(update={"ends_at": now})
            self.client.hset(self.keys.silences, silence.id, silence.model_dump_json())
        return silence
