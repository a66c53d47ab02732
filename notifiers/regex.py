"""Regular expressions that users write (silence matchers `=~`, `!~`) run on RE2.

RE2 matches in time linear in the input, so a pattern such as `flow-run\\.(a+)+$` cannot
block a worker (Python's `re` backtracks: each extra character of a 28-character
subject doubled the time, 9 s there). The price is the syntax RE2 lacks: backreferences
and lookaround. `regex_problem` says so when the pattern is created, in words a person
can act on; `compile_regex` is for patterns that were checked.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

__all__ = ["MAX_PATTERN_CHARS", "compile_regex", "regex_problem"]

MAX_PATTERN_CHARS = 1_000
# RE2's default is 8 MiB per compiled program; a label matcher needs far less
_MAX_MEMORY_BYTES = 1 << 20

_UNSUPPORTED = (
    ("invalid perl operator: (?=", "lookahead (?=...) is not supported"),
    ("invalid perl operator: (?!", "negative lookahead (?!...) is not supported"),
    ("invalid perl operator: (?<", "lookbehind (?<=...) and (?<!...) are not supported"),
    ("bad repetition operator: ++", "possessive quantifiers such as ++ are not supported"),
)


def _options() -> Any:
    import re2

    options = re2.Options()
    # RE2 writes every syntax error to stderr by itself; the caller reports it instead
    options.log_errors = False
    options.max_mem = _MAX_MEMORY_BYTES
    return options


def _reason(error: Exception) -> str:
    raw = error.args[0] if error.args else str(error)
    text = raw.decode(errors="replace") if isinstance(raw, bytes) else str(raw)
    if text.startswith("invalid escape sequence: \\") and text[-1:].isdigit():
        text = "backreferences such as \\1 are not supported"
    for found, reason in _UNSUPPORTED:
        if text.startswith(found):
            text = reason
    if "not supported" in text:
        return f"{text} (regular expressions run on RE2, in linear time)"
    return text


def regex_problem(pattern: str) -> str | None:
    """Why `pattern` is not a regular expression that can run here, or None when it is."""
    import re2

    if len(pattern) > MAX_PATTERN_CHARS:
        return f"longer than {MAX_PATTERN_CHARS} characters"
    try:
        re2.compile(pattern, _options())
    except re2.error as error:
        return _reason(error)
    return None


@lru_cache(maxsize=1024)
def compile_regex(pattern: str) -> Any:
    """`pattern` compiled by RE2 (check it with `regex_problem` first)."""
    import re2

    return re2.compile(pattern, _options())
