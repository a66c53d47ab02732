"""Notifications: one small interface, one module per channel, and the delivery policy.

A self-contained library (it imports no other flowkeeper package): the services build
delivery jobs, storage and the API on top of it. The channel modules, and their
clients, load when a notifier of that type is built.
"""

from notifiers.config import (
    NOTIFIER_TYPES,
    NotifierConfig,
    OutboxConfig,
    SendGridConfig,
    SlackConfig,
    SlackWebhookConfig,
    SmtpConfig,
    WebhookConfig,
)
from notifiers.delivery import attempt_delivery
from notifiers.errors import (
    DeliveryFailed,
    InvalidNotifierConfig,
    InvalidSilence,
    NotifierError,
    PermanentDelivery,
    RetryableDelivery,
    TemplateProblem,
)
from notifiers.message import Delivery, Link, Message, ProviderAnswer, sample_message
from notifiers.notifier import Notifier
from notifiers.policy import (
    DEFAULT_MAX_ATTEMPTS,
    DEFAULT_RETRY_POLICY,
    BucketState,
    Outcome,
    RateDecision,
    RateLimit,
    RetryPolicy,
    classify,
    next_delay,
    take_token,
)
from notifiers.registry import build_notifier, configs_from_env, mask, parse_config

__all__ = [
    "DEFAULT_MAX_ATTEMPTS", "DEFAULT_RETRY_POLICY", "NOTIFIER_TYPES", "BucketState", "Delivery",
    "DeliveryFailed", "InvalidNotifierConfig", "InvalidSilence", "Link", "Message", "Notifier",
    "NotifierConfig", "NotifierError", "Outcome", "OutboxConfig", "PermanentDelivery",
    "ProviderAnswer", "RateDecision", "RateLimit", "RetryPolicy", "RetryableDelivery",
    "SendGridConfig", "SlackConfig", "SlackWebhookConfig", "SmtpConfig", "TemplateProblem",
    "WebhookConfig", "attempt_delivery", "build_notifier", "classify", "configs_from_env", "mask",
    "next_delay", "parse_config", "sample_message", "take_token",
]
