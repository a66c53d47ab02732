"""The one hardened Jinja sandbox that renders every user template: notification subjects
and bodies, webhook payloads, action parameters (run-deployment's and the others).

The rules live here and nowhere else; `notifiers.templates` and `automations.templates`
only choose how a missing name renders (`lenient`: as ""; strict: an error).

Implementation notes (what a template may not do, and where each rule is enforced):
 1. Reach Python internals: attributes starting with "_" and unsafe callables are refused
    (jinja's sandbox), and built-in lists and dicts are immutable (`ImmutableSandbox...`).
 2. Produce more than MAX_OUTPUT_CHARS of output: `render` counts what the template yields
    and stops at the cap with an error naming the limit.
 3. Build a huge value without printing it: every intercepted operator (`*`, `**`, `%`,
    `+`), every `~` concatenation (the code generator wraps it), every call and every
    filter result is measured (`check_size`). What would allocate the huge value before
    it could be measured is checked *before* it runs: `*` and `**`, format widths (`%`,
    `str.format`, the `format` filter), padding (`ljust`, `center`, ...), `replace` and
    `join` (method and filter), `indent`; `str.translate` and `expandtabs` are refused.
    These checks are `notifiers.sandbox_sizes`; this module wires them into jinja.
 4. Loop for ever: the code generator wraps the iterable of every `{% for %}` so that each
    iteration ticks the render's budget, nested loops without output included; `range` is
    capped at MAX_RANGE items; calls (macros, `loop()` recursion) tick it too.
 5. Run for long: the budget also holds a CPU deadline (RENDER_CPU_S of this thread's CPU
    time, so a busy machine does not fail a template that is merely slow to be scheduled),
    read every 64 loop iterations or operations (calls, lookups, operators, filters).
A breach raises TemplateProblem; it never stalls the caller beyond the deadline.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping
from contextvars import ContextVar
from functools import lru_cache
from typing import Any

from notifiers.errors import TemplateProblem
from notifiers.sandbox_sizes import (
    MAX_OUTPUT_CHARS,
    MAX_RANGE,
    bounded_range,
    check_arguments,
    check_binop,
    check_format,
    check_indent,
    check_replace,
    check_size,
    checked_join_items,
    checked_str_call,
    refuse,
)

__all__ = ["MAX_LOOP_ITERATIONS", "MAX_OUTPUT_CHARS", "MAX_RANGE", "RENDER_CPU_S",
           "parse_problem", "render"]

# one render's CPU time; a notification template needs well under a millisecond
RENDER_CPU_S = 0.1
MAX_LOOP_ITERATIONS = 100_000
_CHECK_CLOCK_EVERY = 64


class _Budget:
    """What one render may still spend: loop iterations and CPU time."""

    __slots__ = ("deadline", "steps", "ticks")

    def __init__(self) -> None:
        self.ticks = 0
        self.steps = 0
        self.deadline = time.thread_time() + RENDER_CPU_S

    def step(self) -> None:
        """One operation (a lookup, a call, an operator): the clock is read now and then,
        each operation between two readings being bounded by the size checks."""
        self.steps += 1
        if self.steps % _CHECK_CLOCK_EVERY == 0:
            self.check_clock()

    def tick(self) -> None:
        self.ticks += 1
        if self.ticks > MAX_LOOP_ITERATIONS:
            raise TemplateProblem(f"template refused by the sandbox: more than "
                                  f"{MAX_LOOP_ITERATIONS} loop iterations")
        if self.ticks % _CHECK_CLOCK_EVERY == 0:
            self.check_clock()

    def check_clock(self) -> None:
        if time.thread_time() > self.deadline:
            raise TemplateProblem(f"template refused by the sandbox: rendering took more than "
                                  f"{RENDER_CPU_S * 1000:.0f} ms")


_BUDGET: ContextVar[_Budget | None] = ContextVar("flowkeeper_template_budget", default=None)


def _budget() -> _Budget:
    budget = _BUDGET.get()
    if budget is None:
        # compiled templates are only run through `render`; this keeps a stray call bounded
        budget = _Budget()
        _BUDGET.set(budget)
    return budget


@lru_cache(maxsize=4)
def _environment(html: bool, lenient: bool) -> Any:
    # jinja2 is imported on first use: importing notifiers (and flows) stays light
    from jinja2 import ChainableUndefined, Undefined
    from jinja2.compiler import CodeGenerator
    from jinja2.sandbox import ImmutableSandboxedEnvironment, SecurityError

    class _Generator(CodeGenerator):
        # jinja forbids new node types, so the loop's iterable is marked by its identity
        _bounded: set[int]

        def visit_For(self, node: Any, frame: Any) -> None:
            if not hasattr(self, "_bounded"):
                self._bounded = set()
            self._bounded.add(id(node.iter))
            super().visit_For(node, frame)

        def visit(self, node: Any, *args: Any, **kwargs: Any) -> Any:
            if id(node) in getattr(self, "_bounded", ()):
                self.write("environment.bounded_iteration(")
                result = super().visit(node, *args, **kwargs)
                self.write(")")
                return result
            return super().visit(node, *args, **kwargs)

        def visit_Concat(self, node: Any, frame: Any) -> None:
            self.write("environment.sized(")
            super().visit_Concat(node, frame)
            self.write(")")

    class Sandbox(ImmutableSandboxedEnvironment):
        code_generator_class = _Generator
        intercepted_binops = frozenset({"*", "**", "%", "+", "//"})

        @staticmethod
        def bounded_iteration(iterable: Any) -> Iterator[Any]:
            budget = _budget()
            for item in iterable:
                budget.tick()
                yield item

        @staticmethod
        def sized(value: Any) -> Any:
            return check_size(value)

        def unsafe_undefined(self, obj: Any, attribute: Any) -> Any:
            # the stock sandbox returns an Undefined that renders as "": refuse instead
            raise SecurityError(f"access to attribute {attribute!r} of a "
                                f"{type(obj).__name__} is not allowed")

        def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
            _budget().step()
            check_binop(operator, left, right)
            return check_size(super().call_binop(context, operator, left, right))

        def call(__self, __context: Any, __obj: Any, *args: Any, **kwargs: Any) -> Any:
            _budget().step()
            args = checked_str_call(__obj, args, kwargs)
            return check_size(super().call(__context, __obj, *args, **kwargs))

        def wrap_str_format(self, value: Any) -> Any:
            # jinja hands templates a sandboxed str.format / format_map: measured first
            wrapped = super().wrap_str_format(value)
            if wrapped is None:
                return None
            text = value.__self__

            def checked(*args: Any, **kwargs: Any) -> str:
                mapping = args[0].values() if args and isinstance(args[0], dict) else ()
                check_format(text, [*args, *kwargs.values(), *mapping])
                return wrapped(*args, **kwargs)

            return checked

        def getattr(self, obj: Any, attribute: str) -> Any:
            _budget().step()
            return super().getattr(obj, attribute)

        def getitem(self, obj: Any, argument: Any) -> Any:
            _budget().step()
            return super().getitem(obj, argument)

    environment = Sandbox(autoescape=html, keep_trailing_newline=True,
                          undefined=ChainableUndefined if lenient else Undefined)
    for name in ("lipsum", "cycler", "joiner"):
        environment.globals.pop(name, None)
    environment.globals["range"] = bounded_range
    environment.filters = {name: _guarded_filter(name, function)
                           for name, function in environment.filters.items()}
    return environment


def _guarded_filter(name: str, function: Any) -> Any:
    """`function` (a filter) with its arguments and its result checked, and the clock."""

    # jinja passes the context, eval context or environment first to filters marked so
    passed = hasattr(function, "jinja_pass_arg")
    value_at = 1 if passed else 0

    def guarded(*args: Any, **kwargs: Any) -> Any:
        _budget().step()
        # after the value come the arguments, where a huge width or count would be
        check_arguments(list(args[value_at + 1:]) + list(kwargs.values()))
        value, rest = (args[value_at], args[value_at + 1:]) if len(args) > value_at \
            else (None, ())
        if name == "format":
            check_format(value, [*rest, *kwargs.values()])
        elif name == "replace" and len(rest) >= 2:
            check_replace(str(value), str(rest[0]), str(rest[1]),
                           rest[2] if len(rest) > 2 else kwargs.get("count", -1))
        elif name == "indent":
            check_indent(str(value), rest[0] if rest else kwargs.get("width", 4))
        elif name == "join" and len(args) > value_at:
            separator = rest[0] if rest else kwargs.get("d", "")
            items = list(args[value_at])
            if kwargs.get("attribute") is None and (len(rest) < 2 or rest[1] is None):
                checked_join_items(separator, items)
            args = (*args[:value_at], items, *rest)
        return check_size(function(*args, **kwargs))

    if passed:
        guarded.jinja_pass_arg = function.jinja_pass_arg  # type: ignore[attr-defined]
    guarded.__name__ = getattr(function, "__name__", name)
    return guarded


@lru_cache(maxsize=512)
def _compiled(template: str, html: bool, lenient: bool) -> Any:
    return _environment(html, lenient).from_string(template)


def parse_problem(template: str) -> str | None:
    """Why `template` does not parse as a sandboxed Jinja template, or None when it does."""
    from jinja2 import TemplateSyntaxError

    try:
        _environment(False, True).parse(template)
    except TemplateSyntaxError as error:
        return f"template does not parse: {error.message} (line {error.lineno})"
    return None


def render(template: str, context: Mapping[str, Any], *, html: bool = False,
           lenient: bool = True) -> str:
    """`template` rendered over `context` within the sandbox's limits (HTML-escaped values
    when `html`; a missing name renders as "" when `lenient`, else is an error);
    TemplateProblem when it does not parse, fails, or breaks a limit."""
    from jinja2 import TemplateSyntaxError
    from jinja2.sandbox import SecurityError

    try:
        compiled = _compiled(template, html, lenient)
    except TemplateSyntaxError as error:
        raise TemplateProblem(f"template does not parse: {error.message} (line {error.lineno})") \
            from None
    except Exception as error:  # noqa: BLE001 - any compile failure is the template's
        raise TemplateProblem(f"template does not compile: {type(error).__name__}") from None
    token = _BUDGET.set(_Budget())
    chunks: list[str] = []
    size = 0
    try:
        for chunk in compiled.generate(dict(context)):
            chunks.append(chunk)
            size += len(chunk)
            if size > MAX_OUTPUT_CHARS:
                raise refuse(f"output longer than {MAX_OUTPUT_CHARS} characters")
    except TemplateProblem:
        raise
    except SecurityError as error:
        raise refuse(str(error)) from None
    except RecursionError:
        raise refuse("recursion too deep") from None
    except MemoryError:
        raise refuse("out of memory") from None
    except Exception as error:  # noqa: BLE001 - a template bug can raise anything
        raise TemplateProblem(f"template failed to render: {type(error).__name__}: {error}") \
            from None
    finally:
        _BUDGET.reset(token)
    return "".join(chunks)
