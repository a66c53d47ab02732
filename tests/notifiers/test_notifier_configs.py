"""Notifier configurations: JSON, the environment, SMTP URLs, and the notifiers they build."""

from __future__ import annotations

import pytest

from notifiers import (
    InvalidNotifierConfig,
    Message,
    OutboxConfig,
    RetryableDelivery,
    SendGridConfig,
    SlackConfig,
    SlackWebhookConfig,
    SmtpConfig,
    WebhookConfig,
    build_notifier,
    configs_from_env,
    parse_config,
)
from notifiers.message import sample_message
from notifiers.notifier import Notifier
from notifiers.outbox import OutboxNotifier


def test_each_type_parses_to_its_model():
    assert isinstance(parse_config({"type": "outbox"}), OutboxConfig)
    assert isinstance(parse_config({"type": "slack", "token": "xoxb-1"}), SlackConfig)
    assert isinstance(parse_config({"type": "slack-webhook", "url": "https://h.test/x"}),
                      SlackWebhookConfig)
    webhook = parse_config({"type": "webhook", "url": "https://h.test/x", "method": "PUT",
                            "rate_limit": {"per_minute": 30}})
    assert isinstance(webhook, WebhookConfig)
    assert webhook.rate_limit is not None and webhook.rate_limit.burst == 5


@pytest.mark.parametrize(("data", "says"), [
    ({"type": "pager"}, "type"),
    ({"type": "slack", "token": "x", "chanel": "#typo"}, "chanel: Extra inputs"),
    ({"type": "sendgrid", "api_key": "k", "from_email": "fk@example.com", "to": ["nope"]},
     "to: 'nope' is not an email address"),
    ({"type": "webhook", "url": "https://h.test", "headers": {"X-A": 3}},
     "headers.X-A: Input should be a valid string"),
    ({"type": "sendgrid", "api_key": "k", "from_email": "fk@example.com", "cc": [3]},
     "cc[0]: Input should be a valid string"),
    ({"type": "sendgrid", "from_email": "fk@example.com"}, "api_key: Field required"),
    ({"type": "webhook", "url": "https://h.test", "method": "SEND"}, "method"),
    ({"type": "webhook", "url": "https://h.test", "headers": {"Bad Name": "v"}}, "header"),
    ({"type": "smtp", "host": "mail.test", "from_email": "fk@example.com", "password": "p"},
     "a password needs a username"),
    ({"type": "slack", "token": "x", "api_url": "slack.com/api"}, "api_url: expected an http"),
])
def test_a_bad_configuration_names_the_field(data: dict, says: str):
    with pytest.raises(InvalidNotifierConfig, match="invalid notifier configuration") as raised:
        parse_config(data)

    assert says in str(raised.value)


def test_an_smtp_url_fills_the_fields():
    config = parse_config({"type": "smtp", "url": "smtp://bob%40corp:p%40ss@mail.corp.test:2525"
                                                  "?starttls=false&from=Alerts <al@corp.test>"
                                                  "&to=a@corp.test,b@corp.test&timeout=3"})

    assert isinstance(config, SmtpConfig)
    assert (config.host, config.effective_port, config.username) == ("mail.corp.test", 2525,
                                                                     "bob@corp")
    assert config.password is not None and config.password.get_secret_value() == "p@ss"
    assert (config.starttls, config.tls) == (False, False)
    assert (config.from_email, config.from_name) == ("al@corp.test", "Alerts")
    assert config.to == ["a@corp.test", "b@corp.test"]
    assert config.timeout_s == 3.0


def test_smtp_defaults_are_secure_and_ports_follow_the_mode():
    plain = SmtpConfig(url="smtp://mail.test?from=fk@example.com")
    implicit = SmtpConfig(url="smtps://mail.test?from=fk@example.com")

    assert (plain.starttls, plain.tls, plain.effective_port) == (True, False, 587)
    assert (implicit.starttls, implicit.tls, implicit.effective_port) == (False, True, 465)
    assert plain.model_copy(update={"starttls": False}).effective_port == 25


def test_fields_beside_the_url_win():
    config = SmtpConfig(url="smtp://mail.test?from=a@example.com", from_email="b@example.com")

    assert config.from_email == "b@example.com"


def test_the_environment_configures_every_channel():
    env = {
        "SENDGRID_API_KEY": "SG.key", "SENDGRID_FROM": "Flowkeeper <fk@example.com>",
        "SENDGRID_TO": "a@example.com, b@example.com", "SENDGRID_API_HOST": "http://sg.test",
        "SLACK_BOT_TOKEN": "xoxb-1", "SLACK_CHANNEL": "#ml-alerts",
        "SLACK_API_URL": "http://slack.test/api/",
        "SLACK_WEBHOOK_URL": "https://hooks.slack.com/services/T/B/X",
        "SMTP_URL": "smtp://u:p@mail.test:25?starttls=false&from=fk@example.com",
        "SMTP_TO": "ops@example.com",
        "WEBHOOK_URL": "https://hooks.test/in", "WEBHOOK_SECRET": "s3cret",
        "UNRELATED": "x",
    }

    configs = configs_from_env(env)

    assert sorted(configs) == ["sendgrid", "slack", "slack-webhook", "smtp", "webhook"]
    sendgrid = configs["sendgrid"]
    assert isinstance(sendgrid, SendGridConfig)
    assert (sendgrid.from_email, sendgrid.from_name) == ("fk@example.com", "Flowkeeper")
    assert sendgrid.to == ["a@example.com", "b@example.com"]
    assert sendgrid.api_host == "http://sg.test"
    slack = configs["slack"]
    assert isinstance(slack, SlackConfig) and slack.channel == "#ml-alerts"
    smtp = configs["smtp"]
    assert isinstance(smtp, SmtpConfig) and smtp.to == ["ops@example.com"]
    webhook = configs["webhook"]
    assert isinstance(webhook, WebhookConfig) and webhook.secret is not None


def test_an_empty_environment_configures_nothing():
    assert configs_from_env({"SENDGRID_API_KEY": "  ", "HOME": "/root"}) == {}


def test_sendgrid_without_a_sender_says_which_variable_is_missing():
    with pytest.raises(InvalidNotifierConfig, match="SENDGRID_FROM"):
        configs_from_env({"SENDGRID_API_KEY": "SG.key"})


def test_a_bad_variable_is_named():
    with pytest.raises(InvalidNotifierConfig, match="SENDGRID_TO: 'nobody' is not an email"):
        configs_from_env({"SENDGRID_API_KEY": "k", "SENDGRID_FROM": "fk@example.com",
                          "SENDGRID_TO": "nobody"})


def test_every_built_notifier_has_the_one_method():
    configs = [parse_config(data) for data in (
        {"type": "sendgrid", "api_key": "k", "from_email": "fk@example.com"},
        {"type": "smtp", "host": "mail.test", "from_email": "fk@example.com"},
        {"type": "slack", "token": "xoxb-1"},
        {"type": "slack-webhook", "url": "https://hooks.test/x"},
        {"type": "webhook", "url": "https://hooks.test/x"},
        {"type": "outbox"},
    )]

    notifiers = [build_notifier(config, outbox_store=lambda message: None)
                 for config in configs]

    assert all(isinstance(notifier, Notifier) for notifier in notifiers)
    for notifier in notifiers:
        notifier.close()


def test_the_outbox_needs_a_store():
    with pytest.raises(InvalidNotifierConfig, match="store"):
        build_notifier(OutboxConfig())


def test_the_outbox_hands_the_message_to_its_store():
    kept: list[Message] = []

    def store(message: Message) -> str:
        kept.append(message)
        return f"outbox-{len(kept)}"

    message = Message(subject="run failed", text="details")
    answer = build_notifier(OutboxConfig(), outbox_store=store).send(message)

    assert kept == [message]
    assert (answer.channel, answer.status) == ("outbox", None)
    assert answer.summary == "stored in the outbox as outbox-1"


def test_an_outbox_whose_store_fails_is_retryable():
    def broken(message: Message) -> None:
        raise ConnectionError("redis is down")

    with pytest.raises(RetryableDelivery, match="ConnectionError"):
        OutboxNotifier(broken).send(Message(subject="s", text="t"))


def test_the_sample_message_reaches_the_outbox_and_names_the_notifier():
    kept: list[Message] = []

    answer = build_notifier(OutboxConfig(), outbox_store=kept.append).send(
        sample_message("team<email>"))

    assert answer.summary == "stored in the outbox"
    assert kept[0].subject == "flowkeeper test notification (team<email>)"
    assert "team&lt;email&gt;" in (kept[0].html or "")
    assert kept[0].severity == "info"
