"""Rendering the templated fields of actions (Jinja in a sandbox), when an action runs.

The context is small and holds no secret: `event`, `flow_run`, `automation`,
`firing` (plain dicts). A field the context lacks (`flow_run.name` when the
event is about no run) renders as an empty string; an unknown name used as an
object (`deployment.name`), and what the sandbox forbids (attributes starting
with `_`, calls of unsafe methods), raise RenderError.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import cache
from typing import Any

from automations.errors import RenderError


@cache
def _environment() -> Any:
    # jinja2 is imported on first use (`import flows` stays light)
    from jinja2.sandbox import SandboxedEnvironment

    return SandboxedEnvironment()


def render_template(text: str, context: Mapping[str, Any]) -> str:
    """One template rendered over `context`."""
    from jinja2 import TemplateError

    if "{" not in text:
        return text
    try:
        return _environment().from_string(text).render(**context)
    except TemplateError as error:
        raise RenderError(f"template {text!r}: {error}") from None


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
