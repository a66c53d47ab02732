"""The action catalogue: what an automation does when it fires, discriminated by `type`.

Field names are Prefect's, with names instead of ids (`deployment`, `notifier`,
`automation`). Run-control actions take `source`: "inferred" (the run or
deployment the triggering event is about, as in Prefect) or "selected" (named in
the action); without `source`, naming a run or deployment selects it and
naming none infers it. Templated fields (subject, body, text, the string values
of `payload` and `parameters`) must parse as Jinja templates in a sandbox; they
are rendered when the action runs, never here.
"""

from __future__ import annotations

from typing import Annotated, Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from automations.triggers import invalid
from notifiers import sandbox
from notifiers.redact import HARMLESS_HEADERS, MASK, mask_url

# The states a flow run can be in (services.core.models.StateType mirrors them;
# automations may not import services, and a test keeps the two in step).
FLOW_RUN_STATES = ("Scheduled", "Pending", "Running", "Completed", "Failed", "Crashed",
                   "Cancelling", "Cancelled", "AwaitingRetry", "Retrying", "Late", "Paused",
                   "Resuming")
FlowRunState = Literal["Scheduled", "Pending", "Running", "Completed", "Failed", "Crashed",
                       "Cancelling", "Cancelled", "AwaitingRetry", "Retrying", "Late", "Paused",
                       "Resuming"]
Source = Literal["inferred", "selected"]
HttpMethod = Literal["GET", "POST", "PUT", "PATCH", "DELETE"]

# how long a suspended run may stay Paused before it fails: by default, and at most
# (services.core.suspension mirrors them; a test keeps the two in step)
DEFAULT_SUSPEND_TIMEOUT_S = 3600.0
MAX_SUSPEND_TIMEOUT_S = 7 * 24 * 3600.0

NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]*$"
DeploymentName = Annotated[str, Field(min_length=1, max_length=200, pattern=NAME_PATTERN)]
NotifierName = Annotated[str, Field(min_length=1, max_length=200, pattern=NAME_PATTERN)]
# the fields a notification action may leave out: without them the useful default message
# is sent (what failed, the error, the failed task, the last log lines, a link), and
# without `notifier` an email or Slack action goes through the channel's configured
# notifier (else the outbox); the README lists them and a test keeps the two in step
OPTIONAL_MESSAGE_FIELDS = ("notifier", "subject", "body", "text")


def template_problem(text: str) -> str | None:
    """Why `text` does not parse as a Jinja template, or None when it does."""
    return sandbox.parse_problem(text)


def _check_template(text: str | None) -> str | None:
    if text is not None:
        problem = template_problem(text)
        if problem:
            raise invalid(problem)
    return text


def _check_templates_in(value: Any, path: str = "") -> None:
    if isinstance(value, str):
        problem = template_problem(value)
        if problem:
            raise invalid(f"{path}: {problem}" if path else problem)
    elif isinstance(value, dict):
        for key, item in value.items():
            _check_templates_in(item, f"{path}.{key}" if path else str(key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            _check_templates_in(item, f"{path}[{index}]")


def _check_addresses(addresses: list[str] | None) -> list[str] | None:
    for address in addresses or []:
        local, _, domain = address.partition("@")
        if not local or "." not in domain.strip("."):
            raise invalid(f"'{address}' is not an email address")
    return addresses


class _Action(BaseModel):
    model_config = ConfigDict(extra="forbid")

    # each action narrows it to its own literal; declared here so that it comes first
    type: str


class _SourcedAction(_Action):
    """An action on a run or deployment that is inferred from the event or selected by name."""

    # the field that names the target when the source is "selected"
    target_field: ClassVar[str] = "flow_run_id"

    source: Source = "inferred"

    @model_validator(mode="before")
    @classmethod
    def _default_source(cls, data: Any) -> Any:
        if isinstance(data, dict) and "source" not in data:
            named = data.get(cls.target_field) is not None
            return {"source": "selected" if named else "inferred", **data}
        return data

    @model_validator(mode="after")
    def _selected_names_one(self) -> _SourcedAction:
        field = self.target_field
        named = getattr(self, field) is not None
        if self.source == "selected" and not named:
            raise invalid(f"source 'selected' needs '{field}'")
        if self.source == "inferred" and named:
            raise invalid(f"'{field}' names a target, so source must be 'selected', not "
                          "'inferred'")
        return self


class DoNothing(_Action):
    """Record the firing and do nothing else."""

    type: Literal["do-nothing"] = "do-nothing"


class CancelFlowRun(_SourcedAction):
    """Cancel the run: Cancelling, then Cancelled once its process stops."""

    type: Literal["cancel-flow-run"] = "cancel-flow-run"
    flow_run_id: str | None = None


class ResumeFlowRun(_SourcedAction):
    """Resume a run that paused itself (pause_flow_run): Resuming, then Running."""

    type: Literal["resume-flow-run"] = "resume-flow-run"
    flow_run_id: str | None = None


class SuspendFlowRun(_SourcedAction):
    """Pause the run at its next task start (Prefect's suspend), until a resume or
    `timeout_s` passes (then the run fails)."""

    type: Literal["suspend-flow-run"] = "suspend-flow-run"
    flow_run_id: str | None = None
    timeout_s: float = Field(DEFAULT_SUSPEND_TIMEOUT_S, gt=0, le=MAX_SUSPEND_TIMEOUT_S,
                             allow_inf_nan=False)


class RetryFlowRun(_SourcedAction):
    """Start a new run of the same deployment with the same parameters, linked to the original."""

    type: Literal["retry-flow-run"] = "retry-flow-run"
    flow_run_id: str | None = None
    # retries per lineage (the original and its retries); None: the installation's default
    max_retries: int | None = Field(None, ge=1, le=100)


class ChangeFlowRunState(_SourcedAction):
    """Move the run to `state`, with a message."""

    type: Literal["change-flow-run-state"] = "change-flow-run-state"
    flow_run_id: str | None = None
    state: FlowRunState
    message: str | None = None


class RunDeployment(_SourcedAction):
    """Enqueue a run of a deployment, with (templated) parameters."""

    target_field: ClassVar[str] = "deployment"

    type: Literal["run-deployment"] = "run-deployment"
    deployment: DeploymentName | None = None
    parameters: dict[str, Any] | None = None

    @field_validator("parameters")
    @classmethod
    def _parameters_parse(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        if value is not None:
            _check_templates_in(value)
        return value


class PauseAutomation(_Action):
    """Pause an automation by name (this one when `automation` is omitted)."""

    type: Literal["pause-automation"] = "pause-automation"
    automation: str | None = Field(None, min_length=1, max_length=200)


class ResumeAutomation(_Action):
    """Resume an automation by name (this one when `automation` is omitted)."""

    type: Literal["resume-automation"] = "resume-automation"
    automation: str | None = Field(None, min_length=1, max_length=200)


class _NotificationAction(_Action):
    """Fields every notification shares; the grouping ones drive delivery (dedup, batching)."""

    # labels whose values split notifications into groups (Alertmanager's group_by)
    group_by: list[str] | None = None
    # seconds to wait before the first notification of a new group
    group_wait: float | None = Field(None, ge=0, allow_inf_nan=False)
    # seconds between notifications of a group that got new firings
    group_interval: float | None = Field(None, ge=0, allow_inf_nan=False)
    # seconds before a group that got nothing new is notified again
    repeat_interval: float | None = Field(None, ge=0, allow_inf_nan=False)


class SendNotification(_NotificationAction):
    """Send a message through a named notifier."""

    type: Literal["send-notification"] = "send-notification"
    notifier: NotifierName
    # None: the default subject and body
    subject: str | None = None
    body: str | None = None

    @field_validator("subject", "body")
    @classmethod
    def _templates_parse(cls, value: str | None) -> str | None:
        return _check_template(value)


class SendEmail(_NotificationAction):
    """Send an email through a named notifier (SendGrid or SMTP)."""

    type: Literal["send-email"] = "send-email"
    # None: the configured email notifier (sendgrid, then smtp), else the outbox
    notifier: NotifierName | None = None
    # None: the notifier's default recipients
    to: list[str] | None = None
    cc: list[str] = Field(default_factory=list)
    # None: the default subject and body
    subject: str | None = None
    body: str | None = None

    @field_validator("subject", "body")
    @classmethod
    def _templates_parse(cls, value: str | None) -> str | None:
        return _check_template(value)

    @field_validator("to")
    @classmethod
    def _some_recipient(cls, value: list[str] | None) -> list[str] | None:
        if value is not None and not value:
            raise invalid("give at least one address, or omit 'to' for the notifier's recipients")
        return _check_addresses(value)

    @field_validator("cc")
    @classmethod
    def _cc_addresses(cls, value: list[str]) -> list[str]:
        return _check_addresses(value)


class SendSlack(_NotificationAction):
    """Post to Slack through a named notifier."""

    type: Literal["send-slack"] = "send-slack"
    # None: the configured Slack notifier (slack, then slack-webhook), else the outbox
    notifier: NotifierName | None = None
    # None: the notifier's default channel
    channel: str | None = Field(None, min_length=1)
    # None: the default message
    text: str | None = None

    @field_validator("text")
    @classmethod
    def _text_parses(cls, value: str | None) -> str | None:
        return _check_template(value)


class CallWebhook(_NotificationAction):
    """Call a webhook: a named notifier, or a URL."""

    type: Literal["call-webhook"] = "call-webhook"
    notifier: NotifierName | None = None
    url: str | None = None
    method: HttpMethod = "POST"
    # header values are secrets unless harmless (Content-Type, Accept, User-Agent)
    headers: dict[str, str] = Field(default_factory=dict)
    # a JSON body whose string values are templates, or a templated raw body (as Prefect)
    payload: dict[str, Any] | str | None = None
    # the URL and header values, encrypted by the store (a webhook URL is a credential);
    # `url` and `headers` then show only their masked forms. Sent back as it was shown,
    # with the masked values, it keeps them.
    sealed: str | None = Field(None, max_length=100_000)

    @field_validator("url")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("http://", "https://")):
            raise invalid("expected an http:// or https:// URL")
        return value

    @field_validator("headers")
    @classmethod
    def _header_values(cls, value: dict[str, str]) -> dict[str, str]:
        for name, item in value.items():
            if not name or any(c in name for c in ":\r\n ") or any(c in item for c in "\r\n"):
                raise invalid(f"header '{name}' is not a valid header")
        return value

    @field_validator("payload")
    @classmethod
    def _payload_parses(cls, value: Any) -> Any:
        _check_templates_in(value)
        return value

    @model_validator(mode="after")
    def _one_target(self) -> CallWebhook:
        if (self.notifier is None) == (self.url is None):
            raise invalid("a webhook needs exactly one of 'notifier' or 'url'")
        return self

    def secrets(self) -> dict[str, Any]:
        """What is secret in this action, in clear: its URL and header values."""
        return {"url": self.url, "headers": dict(self.headers)}

    def shows_masked(self) -> bool:
        """Whether the URL or a header value is a masked form (sent back as shown)."""
        return MASK in (self.url or "") or any(MASK in item for item in self.headers.values())

    def masked(self, sealed: str | None) -> CallWebhook:
        """This action as stored: the secrets masked, and `sealed` (their encrypted form;
        None for an action stored before secrets were sealed, shown masked all the same)."""
        headers = {name: item if name.lower() in HARMLESS_HEADERS else MASK
                   for name, item in self.headers.items()}
        return self.model_copy(update={"url": mask_url(self.url) if self.url else None,
                                       "headers": headers, "sealed": sealed})

    def revealed(self, secrets: dict[str, Any]) -> CallWebhook:
        """This action with the secrets that `sealed` held put back, to send."""
        return self.model_copy(update={"url": secrets.get("url"),
                                       "headers": dict(secrets.get("headers") or {}),
                                       "sealed": None})


Action = Annotated[
    DoNothing | CancelFlowRun | SuspendFlowRun | ResumeFlowRun | RetryFlowRun
    | ChangeFlowRunState | RunDeployment | PauseAutomation | ResumeAutomation
    | SendNotification | SendEmail | SendSlack | CallWebhook,
    Field(discriminator="type"),
]

RUN_CONTROL_ACTIONS = (CancelFlowRun, SuspendFlowRun, ResumeFlowRun, RetryFlowRun,
                       ChangeFlowRunState, RunDeployment, PauseAutomation, ResumeAutomation)
NOTIFICATION_ACTIONS = (SendNotification, SendEmail, SendSlack, CallWebhook)
ACTION_TYPES = ("do-nothing", "cancel-flow-run", "suspend-flow-run", "resume-flow-run",
                "retry-flow-run",
                "change-flow-run-state", "run-deployment", "pause-automation", "resume-automation", "send-notification",
                "send-email", "send-slack", "call-webhook")
