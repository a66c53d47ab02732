"""Errors of the notification services, under the one root.

FlowkeeperError (services.core.errors)
 ├── NotFound                 no notifier, notification or silence by that name or id
 ├── InvalidInput             a notifier configuration or a silence that does not validate
 └── InvalidTransition        (409) a notification that is not dead cannot be resent
      └── SecretKeyMismatch   a stored notifier was encrypted with another secret key: it
                              cannot be used in this state of the installation

The notifiers library's own errors (InvalidNotifierConfig, InvalidSilence) become
InvalidInput at this edge; their messages name the field and never echo a secret.
"""

from __future__ import annotations

from services.core.errors import SecretKeyMismatch

# defined in services.core (action secrets are encrypted with the same key); raised here too
__all__ = ["SecretKeyMismatch"]
