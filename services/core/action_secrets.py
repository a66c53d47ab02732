"""The secrets of call-webhook actions (URL, header values) encrypted at rest, as stored
notifiers' are, and put back only by the process that sends.

Implementation notes (`seal_actions`, called by the automation store before it writes):
 1. A URL or header given in clear is encrypted into the action's `sealed` field, and the
    action keeps only the masked forms (`https://hooks.slack.com/********`): Redis, the
    firing records that copy the action, the API and the CLI never hold it in clear.
 2. Sent back as shown (masked values, with `sealed`), the action keeps its secrets:
    `automation show`, edit, `apply` works. Masked values without `sealed` are refused:
    there is nothing they could stand for.
 3. Applying the same clear values again reuses the stored `sealed` of the action at the
    same place, so that an unchanged file is "unchanged" (Fernet tokens differ each time).
"""

from __future__ import annotations

from typing import Any, TypeVar

from automations.schema import AutomationCore, CallWebhook
from notifiers.redact import MASK
from services.core import crypto
from services.core.errors import InvalidInput, SecretKeyMismatch
from services.core.settings import Settings

Spec = TypeVar("Spec", bound=AutomationCore)


def reveal_webhook(settings: Settings, action: CallWebhook) -> CallWebhook:
    """The action with its URL and headers in clear, to send (SecretKeyMismatch when the
    key differs). An action stored before secrets were sealed is returned as it is."""
    if action.sealed is None:
        return action
    return action.revealed(crypto.unseal(settings, action.sealed, "a call-webhook action"))


def _unseal(settings: Settings, sealed: str, path: str) -> dict[str, Any]:
    try:
        return crypto.unseal(settings, sealed, path)
    except SecretKeyMismatch:
        raise InvalidInput(f"{path}: does not decrypt with this installation's secret key; "
                           "give the URL and headers in clear") from None


def _previous_secrets(settings: Settings, previous: AutomationCore | None,
                      where: str, index: int) -> tuple[str, dict[str, Any]] | None:
    if previous is None:
        return None
    actions = getattr(previous, where)
    if index >= len(actions) or not isinstance(actions[index], CallWebhook):
        return None
    sealed = actions[index].sealed
    if sealed is None:
        return None
    try:
        return sealed, crypto.unseal(settings, sealed, "a call-webhook action")
    except SecretKeyMismatch:
        return None


def _unmasked(settings: Settings, action: CallWebhook, path: str) -> dict[str, Any]:
    """The action's secrets, each masked value taken from `sealed` (note 2)."""
    if action.sealed is None:
        raise InvalidInput(f"{path}: the URL or a header is masked ('{MASK}'): give it in "
                           "clear, or send the action back as shown, with 'sealed'")
    stored = _unseal(settings, action.sealed, f"{path}.sealed")
    stored_headers = stored.get("headers") or {}
    url = stored.get("url") if MASK in (action.url or "") else action.url
    headers = {}
    for name, value in action.headers.items():
        if MASK in value:
            if name not in stored_headers:
                raise InvalidInput(f"{path}.headers.{name}: masked, but no value was stored "
                                   "for it: give it in clear")
            value = stored_headers[name]
        headers[name] = value
    return {"url": url, "headers": headers}


def _sealed(settings: Settings, action: CallWebhook, path: str,
            previous: tuple[str, dict[str, Any]] | None) -> CallWebhook:
    if action.url is None and not action.headers:
        return action.model_copy(update={"sealed": None})
    if action.shows_masked():
        secrets = _unmasked(settings, action, path)
        if secrets == _unseal(settings, action.sealed or "", f"{path}.sealed"):
            return action.revealed(secrets).masked(action.sealed or "")
    else:
        secrets = action.secrets()
    if previous is not None and previous[1] == secrets:  # note 3
        return action.revealed(secrets).masked(previous[0])
    return action.revealed(secrets).masked(crypto.seal(settings, secrets))  # note 1


def seal_actions(settings: Settings, spec: Spec, previous: AutomationCore | None = None) -> Spec:
    """`spec` with the secrets of its call-webhook actions encrypted and masked (notes 1-3);
    InvalidInput naming the action when masked values stand for nothing."""
    changes: dict[str, list[Any]] = {}
    for where, index, action in spec.all_actions():
        if isinstance(action, CallWebhook):
            actions = changes.setdefault(where, list(getattr(spec, where)))
            actions[index] = _sealed(settings, action, f"{where}[{index}]",
                                     _previous_secrets(settings, previous, where, index))
    return spec.model_copy(update=changes) if changes else spec
