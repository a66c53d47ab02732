"""Subjects and bodies: Jinja templates rendered in a sandbox, over a documented context.

The context (plain dicts, lists and strings, built by the services; it never holds a
secret, and `redact` runs over every rendered string as a last line of defence):
  flow_run     id, name, state, message, parameters (dict), start, end, duration
               (seconds), url (the run in the UI)
  flow         name
  deployment   name (and what else the services add: work_queue, ...)
  task_runs    list of {id, name, state, message}, the failed ones first
  event        the event that fired the automation: event, occurred, resource,
               related, payload
  automation   name, description
  firing       id, fired_at, and the trigger's counts
  logs         the run's last log lines: strings, or {timestamp, level, message}
A name the context lacks renders as "" (`{{ flow_run.nope.deeper }}` too). The
sandbox refuses attributes that start with "_" (`''.__class__.__mro__`,
`__globals__`, `__subclasses__`, attribute walks to os or sys), unsafe callables,
huge values, long loops and long renders (`notifiers.sandbox` holds every rule):
TemplateProblem, and `safe_render` falls back to the default.

`default_subject`, `default_text` and `default_html` make a useful message from the
same context: what failed, the error, the failed task, the last log lines, a link.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from html import escape
from typing import Any

from notifiers import sandbox
from notifiers.errors import TemplateProblem
from notifiers.message import Link, Message, Severity
from notifiers.redact import redact

__all__ = ["default_html", "default_subject", "default_text", "redact", "render",
           "render_message", "render_payload", "safe_render"]

MAX_LOG_LINES = 20
LOG_LINE_CHARS = 300
FAILED_STATES = ("Failed", "Crashed")
FINAL_STATES = ("Completed", "Failed", "Crashed", "Cancelled")
_WARNING_STATES = ("Cancelled", "Cancelling", "Late", "AwaitingRetry", "Retrying")


def render(template: str, context: Mapping[str, Any], *, html: bool = False) -> str:
    """`template` rendered over `context` in the sandbox (HTML-escaped values when `html`);
    TemplateProblem when it does not parse, fails, or breaks a limit of the sandbox."""
    return sandbox.render(template, context, html=html, lenient=True)


def safe_render(template: str | None, context: Mapping[str, Any], fallback: str, *,
                html: bool = False, secrets: Iterable[str] = ()) -> tuple[str, str | None]:
    """(text, None), or (fallback, the problem) when the template fails: a notification is
    never lost to a template bug. None renders the fallback. Secrets are redacted."""
    secrets = list(secrets)
    if template is None:
        return redact(fallback, secrets), None
    try:
        return redact(render(template, context, html=html), secrets), None
    except TemplateProblem as problem:
        return redact(fallback, secrets), redact(str(problem), secrets)


def render_payload(payload: dict[str, Any] | str | None, context: Mapping[str, Any], *,
                   secrets: Iterable[str] = ()) -> tuple[dict[str, Any] | str | None, str | None]:
    """A webhook payload with every string in it rendered; (None, problem) when one fails,
    so that the default body (the message as JSON) is sent instead."""
    secrets = list(secrets)

    def walk(value: Any, path: str) -> Any:
        if isinstance(value, str):
            try:
                return render(value, context)
            except TemplateProblem as problem:
                raise TemplateProblem(f"{path}: {problem}" if path else str(problem)) from None
        if isinstance(value, dict):
            return {key: walk(item, f"{path}.{key}" if path else str(key))
                    for key, item in value.items()}
        if isinstance(value, list):
            return [walk(item, f"{path}[{index}]") for index, item in enumerate(value)]
        return value

    try:
        return redact(walk(payload, ""), secrets), None
    except TemplateProblem as problem:
        return None, redact(str(problem), secrets)


# ---- the default message ---------------------------------------------------------------

def _dict(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _text(value: Any) -> str:
    return "" if value is None else " ".join(str(value).split())


def _failed_tasks(context: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    tasks = [_dict(task) for task in context.get("task_runs") or [] if isinstance(task, Mapping)]
    return [task for task in tasks if task.get("state") in FAILED_STATES]


def _duration(value: Any) -> str:
    if not isinstance(value, int | float):
        return _text(value)
    seconds = float(value)
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, seconds = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes} min {seconds} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min"


def _state(context: Mapping[str, Any]) -> str:
    state = _text(_dict(context.get("flow_run")).get("state"))
    if not state:
        state = _text(_dict(context.get("event")).get("event")).rpartition(".")[2]
    return state


def _error(context: Mapping[str, Any]) -> str:
    message = _dict(context.get("flow_run")).get("message")
    if not message:
        payload = _dict(_dict(context.get("event")).get("payload"))
        message = payload.get("error") or payload.get("message")
    return _text(message)


def _log_lines(context: Mapping[str, Any]) -> list[str]:
    lines = []
    for entry in list(context.get("logs") or [])[-MAX_LOG_LINES:]:
        if isinstance(entry, Mapping):
            parts = (entry.get("timestamp"), entry.get("level"), entry.get("message"))
            line = " ".join(_text(part) for part in parts if part)
        else:
            line = str(entry).rstrip()
        lines.append(line if len(line) <= LOG_LINE_CHARS else line[: LOG_LINE_CHARS - 1] + "…")
    return lines


def _facts(context: Mapping[str, Any]) -> dict[str, str]:
    run, flow = _dict(context.get("flow_run")), _dict(context.get("flow"))
    deployment = _dict(context.get("deployment"))
    facts = {"Flow": _text(flow.get("name")), "Run": _text(run.get("name") or run.get("id")),
             "State": _state(context), "Deployment": _text(deployment.get("name"))}
    failed = _failed_tasks(context)
    if failed:
        task = failed[0]
        facts["Failed task"] = f"{_text(task.get('name'))} ({_text(task.get('state'))})"
    facts["Error"] = _error(context)
    facts["Duration"] = _duration(run.get("duration")) if run.get("duration") is not None else ""
    parameters = run.get("parameters")
    if isinstance(parameters, Mapping) and parameters:
        shown = ", ".join(f"{key}={value!r}" for key, value in parameters.items())
        facts["Parameters"] = shown if len(shown) <= 300 else shown[:299] + "…"
    return {name: value for name, value in facts.items() if value}


def default_subject(context: Mapping[str, Any]) -> str:
    """`[flowkeeper] taxi-training run swift-fox Failed`, or the event and its resource."""
    run, event = _dict(context.get("flow_run")), _dict(context.get("event"))
    if run:
        owner = _text(_dict(context.get("flow")).get("name")
                      or _dict(context.get("deployment")).get("name"))
        name = _text(run.get("name") or run.get("id"))
        return " ".join(part for part in ("[flowkeeper]", owner, "run", name,
                                          _state(context) or "changed state") if part)
    if event:
        resource = _dict(event.get("resource"))
        what = _text(resource.get("resource.name") or resource.get("resource.id"))
        return f"[flowkeeper] {_text(event.get('event'))} {what}".strip()
    automation = _text(_dict(context.get("automation")).get("name"))
    return f"[flowkeeper] automation {automation} fired" if automation else \
        "[flowkeeper] notification"


def _headline(context: Mapping[str, Any]) -> str:
    run, event = _dict(context.get("flow_run")), _dict(context.get("event"))
    state = _state(context)
    if run:
        flow = _text(_dict(context.get("flow")).get("name"))
        name = _text(run.get("name") or run.get("id"))
        verb = "ended" if state in FINAL_STATES else "is"
        return f"Flow run {name}{f' of {flow}' if flow else ''} {verb} {state or 'in a new state'}."
    if event:
        resource = _dict(event.get("resource"))
        return f"Event {_text(event.get('event'))} on {_text(resource.get('resource.id'))}."
    return "An automation fired."


def default_text(context: Mapping[str, Any]) -> str:
    """A plain-text message that says what failed, the error, the failed task, the last
    log lines and where to look."""
    sections = [_headline(context)]
    facts = _facts(context)
    rows = [f"{name}: {value}" for name, value in facts.items() if name != "Error"]
    if facts.get("Error"):
        sections.append(f"Error: {facts['Error']}")
    for task in _failed_tasks(context)[:3]:
        if task.get("message"):
            sections.append(f"Task {_text(task.get('name'))} {_text(task.get('state'))}: "
                            f"{_text(task.get('message'))}")
    if rows:
        sections.append("\n".join(rows))
    logs = _log_lines(context)
    if logs:
        sections.append("Last log lines:\n" + "\n".join(f"  {line}" for line in logs))
    url = _text(_dict(context.get("flow_run")).get("url"))
    if url:
        sections.append(f"Open the run: {url}")
    automation = _text(_dict(context.get("automation")).get("name"))
    if automation:
        sections.append(f"Sent by the automation \"{automation}\".")
    return "\n\n".join(sections) + "\n"


def default_html(context: Mapping[str, Any]) -> str:
    """The default message as HTML (every value escaped)."""
    parts = [f"<p><strong>{escape(_headline(context))}</strong></p>"]
    facts = _facts(context)
    if facts.get("Error"):
        parts.append(f"<p>Error: <code>{escape(facts['Error'])}</code></p>")
    rows = "".join(f"<tr><th align=\"left\">{escape(name)}</th><td>{escape(value)}</td></tr>"
                   for name, value in facts.items() if name != "Error")
    if rows:
        parts.append(f"<table>{rows}</table>")
    logs = _log_lines(context)
    if logs:
        parts.append("<p>Last log lines:</p><pre>" + escape("\n".join(logs)) + "</pre>")
    url = _text(_dict(context.get("flow_run")).get("url"))
    if url:
        parts.append(f'<p><a href="{escape(url)}">Open the run</a></p>')
    automation = _text(_dict(context.get("automation")).get("name"))
    if automation:
        parts.append(f"<p><small>Sent by the automation \"{escape(automation)}\".</small></p>")
    return "\n".join(parts)


def _severity(context: Mapping[str, Any]) -> Severity:
    state = _state(context)
    if state in FAILED_STATES:
        return "error"
    return "warning" if state in _WARNING_STATES else "info"


def render_message(context: Mapping[str, Any], *, subject: str | None = None,
                   body: str | None = None, html: str | None = None,
                   secrets: Iterable[str] = (), **message_fields: Any) -> tuple[Message, list[str]]:
    """The message for a notification action: its templates rendered (None: the default),
    falling back to the default message for a template that fails; returns the message
    and the problems to record. `message_fields` (to, cc, channel, labels, dedup_key,
    payload, ...) go to the Message as they are."""
    secrets = list(secrets)
    problems: list[str] = []
    subject_text, problem = safe_render(subject, context, default_subject(context),
                                        secrets=secrets)
    problems += [f"subject: {problem}"] if problem else []
    text, body_problem = safe_render(body, context, default_text(context), secrets=secrets)
    problems += [f"body: {body_problem}"] if body_problem else []
    if html is not None:
        html_text, problem = safe_render(html, context, default_html(context), html=True,
                                         secrets=secrets)
        problems += [f"html: {problem}"] if problem else []
    elif body is None or body_problem:
        # the default text goes with the default HTML; a custom text stays plain
        html_text = redact(default_html(context), secrets)
    else:
        html_text = None
    url = _text(_dict(context.get("flow_run")).get("url"))
    fields = {name: value if len(value) <= 200 else value[:199] + "…"
              for name, value in _facts(context).items()}
    derived: dict[str, Any] = {
        "subject": subject_text, "text": text, "html": html_text,
        "link": Link(url=redact(url, secrets), label="Open the run") if url else None,
        "fields": redact(fields, secrets), "severity": _severity(context),
    }
    return Message(**(derived | message_fields)), problems
