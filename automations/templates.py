"""Rendering the templated fields of actions (Jinja in a sandbox), when an action runs.

The context is small and holds no secret: `event`, `flow_run`, `automation`,
`firing` (plain dicts). A field the context lacks (`flow_run.name` when the
event is about no run) renders as an empty string; an unknown name used as an
object (`deployment.name`), and what the sandbox forbids (attributes starting
with `_`, calls of unsafe methods, huge values, long loops, long renders: the
rules of `notifiers.sandbox`, the one sandbox of every template) raise RenderError.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from automations.errors import RenderError
from notifiers import sandbox
from notifiers.errors import TemplateProblem, TemplateRefused

# the templated fields of actions, checked by a trial render when an automation is saved
TEMPLATED_FIELDS = ("subject", "body", "text", "payload", "parameters")


def render_template(text: str, context: Mapping[str, Any]) -> str:
    """One template rendered over `context` in the one sandbox (`notifiers.sandbox`)."""
    if "{" not in text:
        return text
    try:
        return sandbox.render(text, context, lenient=False)
    except TemplateProblem as error:
        raise RenderError(f"template {text[:200]!r}: {error}") from None


def render_value(value: Any, context: Mapping[str, Any], path: str = "") -> Any:
    """Every string inside `value` (dicts and lists walked) rendered over `context`."""
    if isinstance(value, str):
        try:
            return render_template(value, context)
        except RenderError as error:
            raise RenderError(f"{path}: {error}" if path else str(error)) from None
    if isinstance(value, dict):
        return {key: render_value(item, context, f"{path}.{key}" if path else str(key))
                for key, item in value.items()}
    if isinstance(value, list):
        return [render_value(item, context, f"{path}[{index}]")
                for index, item in enumerate(value)]
    return value



def refusal_problems(actions: list[tuple[str, Any]]) -> list[tuple[str, str]]:
    """(field path, why) for each templated field of these actions that the sandbox refuses
    even with nothing to render from (`'a' * 10**8`, a loop over `range(10**6)`): such a
    template can never render, so saving it is refused rather than each alert falling back
    to the default text. `actions` pairs each action's path ("actions[0]") with it."""
    problems: list[tuple[str, str]] = []

    def walk(value: Any, path: str) -> None:
        if isinstance(value, str):
            if "{" in value:
                try:
                    sandbox.render(value, {}, lenient=True)
                except TemplateRefused as error:
                    problems.append((path, str(error)))
                except TemplateProblem:
                    pass  # fails without a context only: the real one may well fill it
        elif isinstance(value, dict):
            for key, item in value.items():
                walk(item, f"{path}.{key}")
        elif isinstance(value, list):
            for index, item in enumerate(value):
                walk(item, f"{path}[{index}]")

    for prefix, action in actions:
        for name in TEMPLATED_FIELDS:
            value = getattr(action, name, None)
            if value is not None:
                walk(value, f"{prefix}.{name}")
    return problems
