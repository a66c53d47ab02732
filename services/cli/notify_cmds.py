"""`flowkeeper notifier ...` (add, ls, show, test, rm), `flowkeeper notifications ...` (ls,
show, resend), `flowkeeper silence ...` (add, ls, rm). The dispatcher process is `flowkeeper notify`
(process_cmds).

Everything heavy (pydantic, redis, the notifiers) is imported inside the commands, so
that `flowkeeper --help` stays light. Configurations are only ever shown masked.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from typer.core import TyperCommand

from services.cli.common import console, load_settings, plain
from services.cli.errors import EXIT_BAD_INPUT, EXIT_FAILURE, fail

if TYPE_CHECKING:
    from services.notify.delivery import Deliveries

notifier_app = typer.Typer(help="Notifiers (where notifications go): add, ls, show, test, rm.",
                           no_args_is_help=True)
notifications_app = typer.Typer(help="Notifications: ls (deliveries, outbox, dead letters), "
                                     "show, resend.", no_args_is_help=True)
silence_app = typer.Typer(help="Silences (mute matching notifications for a while): add, ls, "
                               "rm.", no_args_is_help=True)

Name = Annotated[str, typer.Argument(help="the notifier's name")]
# fields that hold a list: a --set value is split on commas
LIST_FIELDS = frozenset({"to", "cc"})


def open_deliveries() -> Deliveries:
    from services.core.connection import connect
    from services.notify.delivery import Deliveries

    settings = load_settings()
    return Deliveries(connect(settings), settings)


# --- notifier ----------------------------------------------------------------------------


def read_document(path: Path) -> dict[str, Any]:
    """A notifier configuration from a .json, .yaml or .yml file; exits naming the file."""
    from automations.documents import load_document_file
    from automations.errors import AutomationError, MalformedDocument

    try:
        document = load_document_file(path).document
    except MalformedDocument as error:
        raise fail(f"{path}: does not parse: {error.errors[0].message}", EXIT_BAD_INPUT) \
            from None
    except AutomationError as error:  # unreadable: the message names the file and why
        raise fail(str(error), EXIT_BAD_INPUT) from None
    if not isinstance(document, dict):
        raise fail(f"{path}: expected a notifier configuration (a mapping)", EXIT_BAD_INPUT)
    return document


def apply_settings(document: dict[str, Any], assignments: list[str]) -> dict[str, Any]:
    """`document` with each `key=value` (dotted keys for nested fields: headers.X,
    rate_limit.per_minute) set; `to` and `cc` take comma-separated addresses."""
    for item in assignments:
        key, sep, value = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise fail(f"--set {item}: expected key=value", EXIT_BAD_INPUT)
        *parents, last = key.split(".")
        target = document
        for part in parents:
            target = target.setdefault(part, {})
            if not isinstance(target, dict):
                raise fail(f"--set {key}: '{part}' is not a group of fields", EXIT_BAD_INPUT)
        target[last] = ([address.strip() for address in value.split(",") if address.strip()]
                        if not parents and last in LIST_FIELDS else value)
    return document


def notifier_fields_help() -> str:
    """The fields of every notifier type, from their schemas (notifiers.config)."""
    from notifiers.config import field_guide

    lines = ["Fields of each type (--set KEY=VALUE, or keys of --file):"]
    for kind, (description, fields) in field_guide().items():
        lines += ["", f"{kind}: {description}", "  " + "; ".join(fields)]
    return "\n".join(lines)


class _WithNotifierFields(TyperCommand):
    """A command whose help ends with every notifier type's fields, built when the help is
    shown (so that `flowkeeper --help` does not load the schemas)."""

    def format_help(self, ctx: Any, formatter: Any) -> Any:
        # "\b" keeps click from re-wrapping the lines of a paragraph
        self.epilog = "\n\n".join("\b\n" + part for part in
                                   notifier_fields_help().split("\n\n"))
        return super().format_help(ctx, formatter)


@notifier_app.command("add", cls=_WithNotifierFields)
def add_notifier(
    name: Name,
    type_: Annotated[str | None, typer.Option(
        "--type", "-t", help="sendgrid, smtp, slack, slack-webhook, webhook or outbox")] = None,
    set_: Annotated[list[str] | None, typer.Option(
        "--set", "-s", metavar="KEY=VALUE",
        help="a field (repeatable): api_key=..., from=..., to=a@x,b@y, headers.X=...")] = None,
    file: Annotated[Path | None, typer.Option(
        "--file", "-f", help="the configuration as a JSON or YAML file")] = None,
    replace: Annotated[bool, typer.Option("--replace", help="replace a notifier of that name")]
    = False,
) -> None:
    """Store a notifier (its secrets encrypted at rest)."""
    from services.core.errors import InvalidInput
    from services.notify.configs import parse_document

    document = read_document(file) if file is not None else {}
    if type_ is not None:
        document["type"] = type_
    document = apply_settings(document, set_ or [])
    where = f"{file}: " if file is not None else ""
    try:
        name, config = parse_document(document, name)
    except InvalidInput as error:
        raise fail(f"{where}{error}", EXIT_BAD_INPUT) from None
    stored = open_deliveries().notifiers.put(name, config, replace=replace)
    out = console()
    out.print(f"stored notifier {plain(stored.name)} ({stored.type}, version {stored.version})")
    out.print(json.dumps(stored.config, indent=2), markup=False, highlight=False)


@notifier_app.command("ls")
def list_notifiers() -> None:
    """List the notifiers (the outbox, stored ones, the environment's), masked."""
    from services.cli.notify_render import notifiers_table

    deliveries = open_deliveries()
    console().print(notifiers_table(deliveries.notifiers.list()))
    _configs, problem = deliveries.notifiers.env_configs()
    if problem:
        typer.secho(f"warning: {problem}", err=True, fg="yellow")


@notifier_app.command("show")
def show_notifier(name: Name) -> None:
    """One notifier's configuration, masked, as JSON."""
    found = open_deliveries().notifiers.get(name)
    typer.echo(found.model_dump_json(indent=2))


@notifier_app.command("test")
def test_notifier(name: Name) -> None:
    """Send a test message through the notifier and show what the provider answered."""
    answer = open_deliveries().send_test(name)
    out = console()
    if answer.ok and answer.answer is not None:
        status = f" (status {answer.answer.status})" if answer.answer.status is not None else ""
        out.print(f"[green]sent[/green] through {plain(name)}{status}: "
                  f"{plain(answer.answer.summary)}",
                  highlight=False)
        return
    kind = "permanent failure" if answer.permanent else "failed (may succeed later)"
    status = f" (status {answer.error_status})" if answer.error_status is not None else ""
    raise fail(f"{name}: {kind}{status}: {answer.error}", EXIT_FAILURE)


@notifier_app.command("rm")
def remove_notifier(name: Name) -> None:
    """Remove a stored notifier."""
    removed = open_deliveries().notifiers.delete(name)
    console().print(f"removed notifier {plain(removed.name)}")


# --- notifications -----------------------------------------------------------------------


# the outbox messages `notifications ls` shows under its table
OUTBOX_SHOWN = 5


@notifications_app.command("ls")
def list_notifications(
    dead: Annotated[bool, typer.Option("--dead", help="only the dead letters")] = False,
    outbox: Annotated[bool, typer.Option(
        "--outbox", help="only the outbox's latest messages (at most --limit)")] = False,
    status: Annotated[str | None, typer.Option(help="only this status (sent, retrying, "
                                                    "deferred, silenced, grouped, dead)")] = None,
    limit: Annotated[int, typer.Option(
        "--limit", "-n", min=1, max=1000,
        help="at most this many notifications (and outbox messages)")] = 20,
) -> None:
    """Recent notifications with their last answer, and the outbox's latest messages (at
    most 5 of them, and no more than --limit)."""
    from services.cli.notify_render import notifications_table, outbox_view

    deliveries = open_deliveries()
    out = console()
    if outbox:
        out.print(outbox_view(deliveries.outbox.entries(limit)))
        return
    items = (deliveries.notifications.dead(limit) if dead
             else deliveries.notifications.recent(limit, status))
    if not items:
        out.print("no dead letters" if dead else "no notifications yet")
    else:
        out.print(notifications_table(items))
    if not dead and status is None:
        entries = deliveries.outbox.entries(min(limit, OUTBOX_SHOWN))
        if entries:
            out.print()
            out.print(outbox_view(entries, title=f"Outbox (latest {len(entries)}; more "
                                                 "with --outbox)"))


@notifications_app.command("show")
def show_notification(
    ref: Annotated[str, typer.Argument(metavar="ID", help="a notification id (or prefix)")],
) -> None:
    """One notification: its message and every delivery step, as JSON."""
    found = open_deliveries().notifications.require(ref)
    typer.echo(found.public().model_dump_json(indent=2))


@notifications_app.command("resend")
def resend(
    ref: Annotated[str, typer.Argument(metavar="ID", help="a dead notification's id (or prefix)")],
) -> None:
    """Deliver a dead notification again, with the same message."""
    from services.cli.notify_render import step_line

    notification = open_deliveries().resend(ref)
    line = step_line(notification)
    if notification.status == "dead":
        raise fail(f"notification {notification.id}: {line}", EXIT_FAILURE)
    console().print(f"notification {notification.id}: {plain(line)}", highlight=False)


# --- silences ----------------------------------------------------------------------------


@silence_app.command("add")
def add_silence(
    match: Annotated[list[str], typer.Option(
        "--match", "-m", metavar="LABEL=VALUE",
        help="a matcher (repeatable, all must match): k=v, k!=v, k=~regex, k!~regex")],
    for_: Annotated[str | None, typer.Option("--for", help="how long: 30m, 2h, 1d")] = None,
    until: Annotated[str | None, typer.Option(help="until when (ISO 8601)")] = None,
    comment: Annotated[str, typer.Option(help="why")] = "",
    author: Annotated[str, typer.Option(help="who (default: $USER)")] = "",
) -> None:
    """Mute the notifications whose labels match, for a while."""
    import getpass

    from pydantic import ValidationError

    from services.core.errors import validation_messages
    from services.notify.silences import SilenceCreate, SilenceStore

    if (for_ is None) == (until is None):
        raise fail("give exactly one of --for or --until", EXIT_BAD_INPUT)
    try:
        spec = SilenceCreate(matchers=match, duration=for_, ends_at=until, comment=comment,
                             created_by=author or getpass.getuser())
    except ValidationError as error:
        raise fail("; ".join(validation_messages(error.errors())), EXIT_BAD_INPUT) from None
    deliveries = open_deliveries()
    silence = SilenceStore(deliveries.client, deliveries.keys).create(spec)
    from services.cli.notify_render import when

    matchers = ", ".join(str(matcher) for matcher in silence.matchers)
    console().print(f"silence {silence.id} mutes {plain(matchers)} until {when(silence.ends_at)}",
                    highlight=False)


@silence_app.command("ls")
def list_silences(
    all_: Annotated[bool, typer.Option("--all", help="include ended silences")] = False,
) -> None:
    """The silences in force (and pending); with --all, the ended ones too."""
    import time

    from services.cli.notify_render import silences_table
    from services.notify.silences import SilenceStore

    deliveries = open_deliveries()
    now = time.time()
    found = [silence for silence in SilenceStore(deliveries.client, deliveries.keys).all(now)
             if all_ or not silence.expired(now)]
    if not found:
        console().print("no silences")
        return
    console().print(silences_table(found, now))


@silence_app.command("rm")
def remove_silence(
    ref: Annotated[str, typer.Argument(metavar="ID", help="a silence id (or prefix)")],
) -> None:
    """End a silence now."""
    from services.notify.silences import SilenceStore

    deliveries = open_deliveries()
    silence = SilenceStore(deliveries.client, deliveries.keys).expire(ref)
    console().print(f"silence {silence.id} expired")
