"""Delivery policy, pure: classify an answer, compute the next delay (a `RetryPolicy`),
rate-limit.

Time is passed in (`now`, seconds since the epoch) and randomness too (`rand`), so
tests replay a timeline without sleeping. Nothing here sleeps: a Retry-After is
returned to the caller, and waiting is the job of whoever schedules the next attempt.

Implementation notes (classify):
  (a) None: no answer at all (refused, reset, timeout) -> retry.
  (b) 2xx -> sent.
  (c) 429 -> retry, after Retry-After when the provider gives one.
  (d) 408, 425 and 5xx -> retry (a 503 may carry Retry-After too).
  (e) anything else (other 4xx, an unfollowed 3xx, 1xx) -> permanent: the request
      itself is wrong (bad token, unknown channel, malformed payload).
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from notifiers.errors import PermanentDelivery, RetryableDelivery

DEFAULT_MAX_ATTEMPTS = 8
DEFAULT_BASE_DELAY_S = 1.0
DEFAULT_MAX_DELAY_S = 300.0
DEFAULT_JITTER = 0.2
# a provider asking for more than this is capped: the delivery would look lost otherwise
MAX_RETRY_AFTER_S = 3600.0
RETRYABLE_STATUSES = frozenset({408, 425, 429})

OutcomeKind = Literal["sent", "retry", "permanent"]
Headers = Mapping[str, str] | Iterable[tuple[str, str]] | None


@dataclass(frozen=True, slots=True)
class Outcome:
    """What an answer means for the delivery: sent, retry (after `retry_after`), permanent."""

    kind: OutcomeKind
    status: int | None
    retry_after: float | None = None

    @property
    def sent(self) -> bool:
        return self.kind == "sent"

    def failure(self, detail: str) -> RetryableDelivery | PermanentDelivery:
        """The error to raise for a failed outcome, with `detail` (already redacted)."""
        if self.kind == "retry":
            return RetryableDelivery(self.retry_after, self.status, detail)
        return PermanentDelivery(self.status, detail)


def header(headers: Headers, name: str) -> str | None:
    """A header's value by case-insensitive name, from a dict, an HTTPMessage or pairs."""
    if headers is None:
        return None
    items = headers.items() if hasattr(headers, "items") else headers
    wanted = name.lower()
    for key, value in items:
        if str(key).lower() == wanted:
            # some clients keep every value of a header in a list
            return str(value[0] if isinstance(value, list | tuple) and value else value)
    return None


def parse_retry_after(value: str | None, now: float | None) -> float | None:
    """Seconds to wait from a Retry-After value: delay-seconds or an HTTP date (which
    needs `now`); None when absent or unreadable."""
    if value is None:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        seconds = None
    if seconds is not None:
        return max(0.0, seconds) if math.isfinite(seconds) else None
    if now is None:
        return None
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when is None or when.tzinfo is None:
        return None
    return max(0.0, when.timestamp() - now)


def classify(status: int | None, headers: Headers = None, *, now: float | None = None) -> Outcome:
    """What an HTTP answer means for a delivery (see the implementation notes)."""
    if status is None:  # (a)
        return Outcome("retry", None)
    if 200 <= status < 300:  # (b)
        return Outcome("sent", status)
    if status in RETRYABLE_STATUSES or 500 <= status < 600:  # (c), (d)
        return Outcome("retry", status, parse_retry_after(header(headers, "Retry-After"), now))
    return Outcome("permanent", status)  # (e)


def classify_smtp(code: int | None) -> Outcome:
    """What an SMTP reply code means: 2xx/3xx accepted, 4xx transient, 5xx permanent."""
    if code is None or 400 <= code < 500:
        return Outcome("retry", code)
    if 200 <= code < 400:
        return Outcome("sent", code)
    return Outcome("permanent", code)


def next_delay(attempt: int, retry_after: float | None = None, *,
               base: float = DEFAULT_BASE_DELAY_S, cap: float = DEFAULT_MAX_DELAY_S,
               jitter: float = DEFAULT_JITTER,
               rand: Callable[[], float] = random.random) -> float:
    """Seconds before the attempt after `attempt` (1 = the first send failed): base * 2^(n-1)
    spread by +-jitter and capped, never sooner than the provider's Retry-After."""
    exponent = min(max(attempt, 1) - 1, 64)
    delay = base * (2.0 ** exponent)
    delay *= 1.0 + jitter * (2.0 * rand() - 1.0)
    delay = min(cap, max(0.0, delay))
    if retry_after is not None:
        delay = max(delay, min(retry_after, MAX_RETRY_AFTER_S))
    return delay


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How a failed delivery is retried: at most `max_attempts` attempts in all, waiting
    `next_delay` between them (from `base_s`, doubling, capped at `cap_s`, spread by
    +-`jitter`)."""

    max_attempts: int = DEFAULT_MAX_ATTEMPTS
    base_s: float = DEFAULT_BASE_DELAY_S
    cap_s: float = DEFAULT_MAX_DELAY_S
    jitter: float = DEFAULT_JITTER

    def gives_up_after(self, attempt: int) -> bool:
        """Whether `attempt` (from 1) was the last one allowed."""
        return attempt >= self.max_attempts

    def delay(self, attempt: int, retry_after: float | None,
              rand: Callable[[], float] = random.random) -> float:
        """Seconds before the attempt after `attempt`: `next_delay` with this policy."""
        return next_delay(attempt, retry_after, base=self.base_s, cap=self.cap_s,
                          jitter=self.jitter, rand=rand)


DEFAULT_RETRY_POLICY = RetryPolicy()


class RateLimit(BaseModel):
    """A notifier's rate limit: `per_minute` messages on average, bursts of up to `burst`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    per_minute: float = Field(gt=0, allow_inf_nan=False)
    burst: int = Field(5, ge=1)


@dataclass(frozen=True, slots=True)
class BucketState:
    """A token bucket as stored between decisions: tokens left at `updated_at`."""

    tokens: float
    updated_at: float


@dataclass(frozen=True, slots=True)
class RateDecision:
    """Whether a message may go now; if not, how long until a token is there."""

    allowed: bool
    wait_s: float
    state: BucketState


def take_token(limit: RateLimit, state: BucketState | None, now: float) -> RateDecision:
    """Take one token from the bucket at `now`; a new bucket starts full. A refused message
    takes nothing, so retrying after `wait_s` succeeds unless another took the token."""
    rate_per_s = limit.per_minute / 60.0
    if state is None:
        tokens = float(limit.burst)
    else:
        # a clock that went back refills nothing rather than draining the bucket
        elapsed = max(0.0, now - state.updated_at)
        tokens = min(float(limit.burst), state.tokens + elapsed * rate_per_s)
    if tokens >= 1.0:
        return RateDecision(True, 0.0, BucketState(tokens - 1.0, now))
    return RateDecision(False, (1.0 - tokens) / rate_per_s, BucketState(tokens, now))
