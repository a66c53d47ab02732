"""No secret ever shows: configurations built with known secret strings, then every way of
looking at them (mask, repr, str, JSON, notifiers, errors, rendered messages) searched."""

from __future__ import annotations

import json
import logging

import pytest

from notifiers import (
    InvalidNotifierConfig,
    Message,
    attempt_delivery,
    build_notifier,
    configs_from_env,
    mask,
    parse_config,
)
from notifiers.redact import MASK, mask_url
from notifiers.templates import render_message

SECRETS = {
    "sendgrid": "SG.known-sendgrid-secret-0001",
    "slack": "xoxb-known-slack-secret-0002",
    "slack_hook": "known-slack-hook-secret-0003",
    "smtp": "known-smtp-password-0004",
    "hook_token": "known-webhook-url-token-0005",
    "hook_hmac": "known-webhook-hmac-secret-0006",
    "hook_header": "known-webhook-header-secret-0007",
    "hook_user": "known-webhook-basic-user-0008",
}
CONFIGS = {
    "sendgrid": {"type": "sendgrid", "api_key": SECRETS["sendgrid"],
                 "from_email": "fk@example.com", "to": ["a@example.com"],
                 "api_host": "http://127.0.0.1:9"},
    "slack": {"type": "slack", "token": SECRETS["slack"], "channel": "#ml",
              "api_url": "http://127.0.0.1:9/api/"},
    "slack-webhook": {"type": "slack-webhook",
                      "url": f"https://hooks.slack.com/services/T0/B0/{SECRETS['slack_hook']}"},
    "smtp": {"type": "smtp", "url": f"smtp://fk:{SECRETS['smtp']}@127.0.0.1:9?starttls=false"
                                    "&from=fk@example.com", "to": ["a@example.com"]},
    "webhook": {"type": "webhook",
                "url": f"https://{SECRETS['hook_user']}@hooks.example.com/in/"
                       f"{SECRETS['hook_token']}?key={SECRETS['hook_token']}",
                "secret": SECRETS["hook_hmac"],
                "headers": {"X-Api-Key": SECRETS["hook_header"],
                            "Authorization": f"Bearer {SECRETS['hook_header']}",
                            "Content-Type": "application/json"}},
}


def assert_no_secret(*texts: str) -> None:
    for text in texts:
        for name, secret in SECRETS.items():
            assert secret not in text, f"the {name} secret leaks in: {text[:200]}"


@pytest.mark.parametrize("kind", sorted(CONFIGS))
def test_no_view_of_a_configuration_shows_a_secret(kind: str):
    config = parse_config(CONFIGS[kind])
    notifier = build_notifier(config)

    assert_no_secret(json.dumps(mask(config)), repr(config), str(config),
                     config.model_dump_json(), json.dumps(config.model_dump(mode="json")),
                     repr(notifier), str(notifier))


@pytest.mark.parametrize("kind", sorted(CONFIGS))
def test_mask_keeps_what_people_need_to_recognise_a_notifier(kind: str):
    shown = mask(parse_config(CONFIGS[kind]))

    assert shown["type"] == kind
    assert MASK in json.dumps(shown)


def test_masked_urls_keep_only_where_they_point():
    assert mask_url("https://hooks.slack.com/services/T0/B0/xyz") == \
        "https://hooks.slack.com/********"
    assert mask_url("https://user:pw@example.com:8443/in?k=v") == \
        "https://********@example.com:8443/********"
    assert mask_url("https://example.com") == "https://example.com"
    assert mask_url("not a url") == MASK


def test_only_harmless_header_values_are_shown():
    headers = mask(parse_config(CONFIGS["webhook"]))["headers"]

    assert headers == {"X-Api-Key": MASK, "Authorization": MASK,
                       "Content-Type": "application/json"}


@pytest.mark.parametrize("kind", sorted(CONFIGS))
def test_a_validation_error_never_echoes_a_secret(kind: str):
    broken = dict(CONFIGS[kind], timeout_s="soon", rate_limit={"per_minute": -1})
    if kind == "webhook":
        broken["url"] = f"ftp://{SECRETS['hook_token']}"

    with pytest.raises(InvalidNotifierConfig) as raised:
        parse_config(broken)

    assert_no_secret(str(raised.value), repr(raised.value))
    assert "timeout_s" in str(raised.value)


def test_environment_errors_name_the_variable_not_the_value():
    with pytest.raises(InvalidNotifierConfig) as bad_url:
        configs_from_env({"WEBHOOK_URL": f"ftp://x/{SECRETS['hook_token']}"})
    with pytest.raises(InvalidNotifierConfig) as bad_smtp:
        configs_from_env({"SMTP_URL": f"smtp://fk:{SECRETS['smtp']}@mail.example.com"
                                      f"?nope=1"})

    assert "WEBHOOK_URL" in str(bad_url.value)
    assert "unknown SMTP URL option 'nope'" in str(bad_smtp.value)
    assert_no_secret(str(bad_url.value), str(bad_smtp.value))


@pytest.mark.parametrize("kind", ["sendgrid", "slack", "smtp", "webhook"])
def test_a_failed_delivery_record_shows_no_secret(kind: str):
    # every configuration points at a port nobody listens on
    config = parse_config(CONFIGS[kind] | ({"url": CONFIGS[kind]["url"].replace(
        "hooks.example.com", "127.0.0.1:9")} if kind == "webhook" else {}))
    message = Message(subject="s", text="t", to=["a@example.com"])

    record = attempt_delivery(build_notifier(config), message, attempt=1,
                              secrets=config.secret_values())

    assert record.status == "retrying"
    assert_no_secret(record.model_dump_json())


def test_a_secret_that_reaches_a_template_is_redacted_from_the_message():
    # the context should never hold a secret; if one slips in, redaction is the last defence
    context = {"flow_run": {"name": "r", "state": "Failed",
                            "message": f"token {SECRETS['slack']} refused"}}
    secrets = [SECRETS["slack"]]

    message, problems = render_message(context, subject="{{ flow_run.message }}",
                                       body="{{ flow_run.message }}", secrets=secrets)
    default, _ = render_message(context, secrets=secrets)

    assert problems == []
    assert_no_secret(message.model_dump_json(), default.model_dump_json())
    assert MASK in message.subject


def test_the_clients_logs_show_no_secret_even_at_debug(stub, caplog):
    stub.play(then=202)
    sendgrid = parse_config(CONFIGS["sendgrid"] | {"api_host": stub.url})
    webhook = parse_config(CONFIGS["webhook"] | {"url": CONFIGS["webhook"]["url"].replace(
        "https://", "http://").replace("hooks.example.com", stub.url.removeprefix("http://"))})
    caplog.set_level(logging.DEBUG)

    build_notifier(sendgrid).send(Message(subject="s", text="t"))
    build_notifier(webhook).send(Message(subject="s", text="t"))

    logged = "\n".join(record.getMessage() for record in caplog.records)
    assert "HTTP Request: POST" in logged, "httpx logs each request's URL"
    assert "HEADERS" in logged, "python_http_client logs each request's headers"
    assert len(stub.requests) == 2
    assert_no_secret(logged, caplog.text)
