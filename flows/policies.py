"""Pure policies of the SDK: retry delays, artifact keys, run names.

No IO and no clock here; randomness is passed in so tests replay it.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence

from services.core.errors import InvalidInput

RetryDelay = float | int | Sequence[float | int] | Callable[[int], list[float]]

ARTIFACT_KEY_PATTERN = re.compile(r"^[a-z0-9-]+$")
MAX_ARTIFACT_KEY_CHARS = 200


def exponential_backoff(backoff_factor: float) -> Callable[[int], list[float]]:
    """Retry delays that double each time: `backoff_factor * 2**n` seconds (as in Prefect)."""
    if backoff_factor < 0:
        raise ValueError("backoff_factor must be at least 0")

    def delays(retries: int) -> list[float]:
        return [backoff_factor * 2**attempt for attempt in range(retries)]

    return delays


def resolve_retry_delays(retry_delay_seconds: RetryDelay | None, retries: int) -> list[float]:
    """The delay before each retry, from a number, a list, or a callable of the retry count."""
    if retry_delay_seconds is None:
        return [0.0] * retries
    if callable(retry_delay_seconds):
        retry_delay_seconds = retry_delay_seconds(retries)
    if isinstance(retry_delay_seconds, (int, float)):
        delays = [float(retry_delay_seconds)] * retries
    else:
        delays = [float(delay) for delay in retry_delay_seconds]
        if len(delays) > 50:
            raise ValueError("retry_delay_seconds accepts at most 50 delays")
    if any(delay < 0 for delay in delays):
        raise ValueError("retry delays must be at least 0 seconds")
    return delays


def retry_delay(delays: Sequence[float], retry_number: int, jitter_factor: float | None,
                rand: Callable[[], float]) -> float:
    """Seconds to wait before retry `retry_number` (1-based); the last delay repeats.

    With a jitter factor j the delay d is drawn uniformly from [d*(1-j), d*(1+j)],
    so that many runs failing together do not retry together.
    """
    if not delays:
        return 0.0
    base = delays[min(retry_number, len(delays)) - 1]
    if not jitter_factor:
        return base
    low = max(0.0, base * (1 - jitter_factor))
    high = base * (1 + jitter_factor)
    return low + (high - low) * rand()


def validate_artifact_key(key: str) -> str:
    """An artifact key: lowercase letters, digits and dashes (the rule Prefect applies)."""
    if not isinstance(key, str) or not ARTIFACT_KEY_PATTERN.match(key):
        raise InvalidInput(f"artifact key {key!r} must contain only lowercase letters, "
                           "numbers, and dashes")
    if len(key) > MAX_ARTIFACT_KEY_CHARS:
        raise InvalidInput(f"artifact key is {len(key)} characters long; at most "
                           f"{MAX_ARTIFACT_KEY_CHARS} are allowed")
    return key


def timeout_message(kind: str, seconds: float) -> str:
    """'Flow run exceeded timeout of 2.0 seconds'."""
    return f"{kind} run exceeded timeout of {float(seconds)} seconds"


ADJECTIVES = (
    "agile", "amber", "ancient", "arcane", "astute", "bold", "brave", "bright", "brisk",
    "calm", "candid", "cheerful", "clever", "cosmic", "crimson", "curious", "daring",
    "dazzling", "eager", "elegant", "fancy", "fearless", "fiery", "gentle", "glorious",
    "golden", "graceful", "hearty", "humble", "icy", "jolly", "keen", "lively", "lucky",
    "mellow", "merry", "mighty", "nimble", "noble", "olive", "patient", "placid", "proud",
    "quick", "quiet", "rapid", "resolute", "rustic", "sage", "scarlet", "serene", "silver",
    "sincere", "smart", "solid", "steady", "stoic", "sturdy", "swift", "tidy", "tranquil",
    "upbeat", "valiant", "vivid", "warm", "wise", "witty", "zealous",
)
ANIMALS = (
    "albatross", "alpaca", "badger", "beaver", "bison", "bobcat", "buffalo", "camel",
    "caribou", "cheetah", "condor", "coyote", "crane", "dingo", "dolphin", "eagle", "falcon",
    "ferret", "finch", "fox", "gazelle", "gecko", "gibbon", "heron", "hyena", "ibis",
    "jackal", "jaguar", "kestrel", "koala", "lemur", "leopard", "lynx", "macaw", "marmot",
    "meerkat", "mongoose", "moose", "narwhal", "ocelot", "okapi", "orca", "osprey", "otter",
    "panda", "pelican", "penguin", "puffin", "quail", "raven", "salamander", "seal",
    "sparrow", "stork", "swan", "tapir", "tiger", "toucan", "turtle", "vulture", "walrus",
    "weasel", "wolf", "wombat", "yak", "zebra",
)


def generate_run_name(choice: Callable[[Sequence[str]], str]) -> str:
    """A flow run name such as 'brave-otter' (as Prefect names runs)."""
    return f"{choice(ADJECTIVES)}-{choice(ANIMALS)}"
