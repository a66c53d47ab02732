"""Errors of the notifiers package.

NotifierError                    root of every error this package raises on purpose
 ├── DeliveryFailed              a message was not delivered; `status` is the provider's
 │    │                          answer (HTTP or SMTP code), None for a network error
 │    ├── RetryableDelivery      try again later, not before `retry_after` seconds if set
 │    └── PermanentDelivery      trying again will not help (bad token, unknown channel)
 │         └── OutboundRefused    the outbound policy refuses the address (notifiers.outbound)
 ├── InvalidNotifierConfig       a notifier configuration that does not validate
 ├── InvalidSilence              a silence or matcher that does not parse
 └── TemplateProblem             a template that does not parse, render, or is refused

`notifiers` imports no other flowkeeper package, so its root is a plain
Exception; the services map these onto their own errors at their edge.
Messages carry context (channel, status, the provider's short answer), never a
secret: provider answers are redacted before they get here.
"""

from __future__ import annotations


class NotifierError(Exception):
    """Root of the notifiers package's errors."""


class DeliveryFailed(NotifierError):
    """A message was not delivered: what the provider answered, if anything."""

    def __init__(self, status: int | None, detail: str) -> None:
        self.status = status
        self.detail = detail
        super().__init__(f"{detail} (status {status})" if status is not None else detail)


class RetryableDelivery(DeliveryFailed):
    """A delivery that may succeed later: network errors, 5xx, 408/425/429, SMTP 4xx."""

    def __init__(self, retry_after: float | None, status: int | None, detail: str) -> None:
        self.retry_after = retry_after
        super().__init__(status, detail)


class PermanentDelivery(DeliveryFailed):
    """A delivery that will fail again as it is: other 4xx, SMTP 5xx, missing recipients."""


class InvalidNotifierConfig(NotifierError):
    """A notifier configuration that does not validate; the message names the field."""


class InvalidSilence(NotifierError):
    """A silence, matcher or duration that does not parse; the message says which and why."""


class TemplateProblem(NotifierError):
    """A template that does not parse or render, or that the sandbox refuses."""


class TemplateRefused(TemplateProblem):
    """A template that breaks one of the sandbox's limits (size, loops, time, attributes)."""


class OutboundRefused(PermanentDelivery):
    """The outbound policy refuses where a request would go: the message says why."""

    def __init__(self, detail: str) -> None:
        super().__init__(None, detail)
