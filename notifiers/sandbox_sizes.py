"""The size checks of the template sandbox (`notifiers.sandbox`, implementation note 3):
a template may not build a value larger than it could print.

A value is measured once built (`check_size`). What would allocate a huge value before
it could be measured is checked before it runs, from its operands alone: repetition and
powers (`check_binop`), format widths (`check_format`), padding (`check_arguments`),
`replace`, `join` and `indent`; `str.translate` and `expandtabs` are refused.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from notifiers.errors import TemplateRefused

MAX_OUTPUT_CHARS = 64 * 1024
MAX_RANGE = 10_000
MAX_EXPONENT = 100
# the largest integer a template may compute (a 4096-bit number prints as 1,234 digits)
MAX_INT_BITS = 4096
# a width or count given to a filter or a format above this would build a huge string
MAX_ARGUMENT = MAX_OUTPUT_CHARS
_DIGITS = re.compile(r"\d+")
# a replacement field, with one level of nesting ('{0:>{1}}')
_BRACE_FIELD = re.compile(r"\{[^{}]*(?:\{[^{}]*\}[^{}]*)*\}")
_PERCENT_DIRECTIVE = re.compile(r"%(?:\([^)]*\))?[#0 +-]*(\d+|\*)?(?:\.(\d+|\*))?")
_PADDING_STR_METHODS = frozenset({"ljust", "rjust", "center", "zfill"})
_REFUSED_STR_METHODS = frozenset({"translate", "maketrans", "expandtabs"})


def refuse(why: str) -> TemplateRefused:
    """The error of a template the sandbox refuses, saying `why`."""
    return TemplateRefused(f"template refused by the sandbox: {why}")


def check_size(value: Any) -> Any:
    """`value`, unless it is a string, sequence or integer too large for a template."""
    if isinstance(value, str | bytes | list | tuple | dict | set) and \
            len(value) > MAX_OUTPUT_CHARS:
        raise refuse(f"a value of more than {MAX_OUTPUT_CHARS} items or characters")
    if isinstance(value, int) and not isinstance(value, bool) and \
            value.bit_length() > MAX_INT_BITS:
        raise refuse(f"an integer of more than {MAX_INT_BITS} bits")
    return value


def check_arguments(args: Iterable[Any]) -> None:
    """Refuse a width or count (of a filter, of a padding method) that passes MAX_ARGUMENT."""
    for arg in args:
        if isinstance(arg, int) and not isinstance(arg, bool) and abs(arg) > MAX_ARGUMENT:
            raise refuse(f"an argument larger than {MAX_ARGUMENT}")


def _flat_ints(args: Any) -> list[int]:
    values = args.values() if isinstance(args, dict) else \
        args if isinstance(args, tuple | list) else (args,)
    return [abs(value) for value in values if isinstance(value, int)
            and not isinstance(value, bool)]


def check_format(text: Any, args: Any = ()) -> None:
    """Refuse a format ('%10d' % x, '{:>10}'.format(x)) whose widths and precisions add up
    to more than the cap: the result is allocated before any size check could run."""
    if not isinstance(text, str):
        return
    numbers: list[int] = []
    from_arguments = False
    for field in _BRACE_FIELD.findall(text):
        spec = field.partition(":")[2]
        numbers += [int(number) for number in _DIGITS.findall(spec)]
        from_arguments |= "{" in spec  # '{0:>{1}}': the width is an argument
    for width, precision in _PERCENT_DIRECTIVE.findall(text):
        for part in (width, precision):
            if part == "*":
                from_arguments = True
            elif part:
                numbers.append(int(part))
    if from_arguments:
        numbers += _flat_ints(args)
    if sum(numbers) > MAX_OUTPUT_CHARS:
        raise refuse(f"format widths and precisions adding up to more than {MAX_OUTPUT_CHARS}")


def check_binop(operator: str, left: Any, right: Any) -> None:
    """Refuse an operator whose result would be too large before it is computed: a power
    with a large exponent, a repetition past the cap, a `%` format with huge widths."""
    if operator == "**" and isinstance(right, int | float) and abs(right) > MAX_EXPONENT:
        raise refuse("exponent too large")
    if operator == "*":
        for sequence, times in ((left, right), (right, left)):
            if (isinstance(sequence, str | list | tuple) and isinstance(times, int)
                    and len(sequence) * times > MAX_OUTPUT_CHARS):
                raise refuse("repetition too large")
    if operator == "%":
        check_format(left, right)


def _text_length(value: Any) -> int:
    return len(value) if isinstance(value, str) else len(str(value))


def check_replace(text: Any, old: Any, new: Any, count: Any = -1) -> None:
    """Refuse a replace whose result would pass the cap ('ab' * 30000, 'a' -> 60,000 x)."""
    if not (isinstance(text, str) and isinstance(old, str) and isinstance(new, str)):
        return
    found = text.count(old) if old else len(text) + 1
    if isinstance(count, int) and count >= 0:
        found = min(found, count)
    if len(text) + found * (len(new) - len(old)) > MAX_OUTPUT_CHARS:
        raise refuse(f"a replacement longer than {MAX_OUTPUT_CHARS} characters")


def checked_join_items(separator: Any, items: Any) -> list[Any]:
    """`items` as a list, unless joining them with `separator` passes the cap."""
    listed = list(items)
    size = _text_length(separator) * max(len(listed) - 1, 0)
    if size > MAX_OUTPUT_CHARS or size + sum(_text_length(item) for item in listed) > \
            MAX_OUTPUT_CHARS:
        raise refuse(f"a join longer than {MAX_OUTPUT_CHARS} characters")
    return listed


def check_indent(text: Any, width: Any) -> None:
    """Refuse an `indent` whose result would pass the cap."""
    if isinstance(text, str):
        lines = text.count("\n") + 1
        step = _text_length(width) if isinstance(width, str) else \
            (width if isinstance(width, int) else 0)
        if len(text) + step * lines > MAX_OUTPUT_CHARS:
            raise refuse(f"an indented text longer than {MAX_OUTPUT_CHARS} characters")


def checked_str_call(method: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) \
        -> tuple[Any, ...]:
    """The arguments of a call of a str method, refused when the result would pass the
    cap before it could be measured (padding, replace, join) or the method could blow
    a string up (translate, expandtabs)."""
    text, name = getattr(method, "__self__", None), getattr(method, "__name__", "")
    if not isinstance(text, str):
        return args
    if name in _REFUSED_STR_METHODS:
        raise refuse(f"str.{name} is not allowed in templates")
    if name in _PADDING_STR_METHODS:
        check_arguments(list(args) + list(kwargs.values()))
    elif name == "replace" and len(args) >= 2:
        check_replace(text, args[0], args[1], args[2] if len(args) > 2 else -1)
    elif name == "join" and args:
        return (checked_join_items(text, args[0]), *args[1:])
    return args


def bounded_range(*args: int) -> range:
    """`range` for templates: at most MAX_RANGE items."""
    numbers = range(*args)
    if len(numbers) > MAX_RANGE:
        raise refuse(f"range of more than {MAX_RANGE} items")
    return numbers
