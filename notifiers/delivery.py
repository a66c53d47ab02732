"""One delivery attempt: send, classify the failure, decide what comes next.

The services run the stages around it (idempotency, silences, grouping, rate limit,
scheduling the retry, the dead-letter list, recording); this is the one place that
turns a send into a `Delivery` record, so every channel is retried the same way.

Implementation notes:
  (a) sent -> status "sent" with the provider's answer.
  (b) RetryableDelivery before the policy's last attempt -> "retrying", `retry_at` from
      the policy's delay (`next_delay`: never sooner than the provider's Retry-After).
  (c) RetryableDelivery at the policy's last attempt -> "dead": nothing is lost, the
      services keep the message in the dead-letter list for a resend.
  (d) PermanentDelivery -> "dead" at once, `permanent` set.
  (e) any other exception is a bug in a notifier or its client: treated as (b)/(c),
      recorded by type with its message redacted, since a bug may go away with an
      upgrade and a lost notification never comes back.
  (f) `deadline_s` bounds the send as a whole: the clients' own timeouts apply to each
      socket operation, so a provider that trickles its answer, or an SMTP session of
      many replies, could hold a send far longer. Past the deadline the attempt is a
      RetryableDelivery (b)/(c); the abandoned send runs on in a daemon thread until its
      client's own timeout ends it, and whatever it delivers is a copy the receiver
      may see (at least once).
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

from notifiers.errors import DeliveryFailed, PermanentDelivery, RetryableDelivery
from notifiers.message import Delivery, Message
from notifiers.notifier import Notifier
from notifiers.policy import DEFAULT_RETRY_POLICY, RetryPolicy
from notifiers.redact import redact


def attempt_delivery(notifier: Notifier, message: Message, *, attempt: int,
                     policy: RetryPolicy = DEFAULT_RETRY_POLICY, secrets: Iterable[str] = (),
                     clock: Callable[[], float] = time.time,
                     rand: Callable[[], float] = random.random,
                     deadline_s: float | None = None) -> Delivery:
    """Send `message` once (attempt number `attempt`, from 1) and return the record, its
    retry scheduled by `policy`; with `deadline_s`, a send still going after that many
    seconds failed (f)."""
    try:
        answer = notifier.send(message) if deadline_s is None else \
            send_within(notifier, message, deadline_s)
    except PermanentDelivery as error:  # (d)
        return _dead(message, attempt, clock(), error, permanent=True)
    except RetryableDelivery as error:  # (b), (c)
        return _retry_or_dead(message, attempt, clock(), error, policy, rand)
    except Exception as error:  # (e)  # noqa: BLE001 - isolate a notifier's bug
        detail = redact(f"{type(error).__name__}: {error}", secrets)
        return _retry_or_dead(message, attempt, clock(), RetryableDelivery(None, None, detail),
                              policy, rand)
    return Delivery(message_id=message.id, status="sent", attempt=attempt, at=clock(),
                    answer=answer)  # (a)


def send_within(notifier: Notifier, message: Message, deadline_s: float) -> Any:
    """`notifier.send(message)`, or RetryableDelivery once `deadline_s` has passed (f)."""
    finished = threading.Event()
    result: dict[str, Any] = {}

    def send() -> None:
        try:
            result["answer"] = notifier.send(message)
        except BaseException as error:  # noqa: BLE001 - handed to the caller's thread
            result["error"] = error
        finally:
            finished.set()

    threading.Thread(target=send, name="notifier-send", daemon=True).start()
    if not finished.wait(deadline_s):
        channel = getattr(notifier, "channel", "notifier")
        raise RetryableDelivery(None, None, f"{channel}: no answer within {deadline_s:g} s "
                                            "(the notifier's timeout)")
    if "error" in result:
        raise result["error"]
    return result["answer"]


def _dead(message: Message, attempt: int, now: float, error: DeliveryFailed, *,
          permanent: bool) -> Delivery:
    return Delivery(message_id=message.id, status="dead", attempt=attempt, at=now,
                    error=error.detail, error_status=error.status, permanent=permanent)


def _retry_or_dead(message: Message, attempt: int, now: float, error: RetryableDelivery,
                   policy: RetryPolicy, rand: Callable[[], float]) -> Delivery:
    """A retryable failure: retried after the policy's delay, or dead at its last attempt."""
    record = _dead(message, attempt, now, error, permanent=False)
    if policy.gives_up_after(attempt):  # (c)
        return record
    delay = policy.delay(attempt, error.retry_after, rand)  # (b)
    return record.model_copy(update={"status": "retrying", "retry_at": now + delay})
