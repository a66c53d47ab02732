"""Redaction masks secret values (tokens, keys, passwords, secret URLs as a whole) and
never an ordinary word that happens to be part of a webhook's URL."""

from __future__ import annotations

import pytest

from notifiers import build_notifier, parse_config
from notifiers.redact import MASK, header_secrets, looks_like_token, redact, url_secrets
from notifiers.templates import render_message, render_payload

SLACK_HOOK = "https://hooks.slack.com/services/T00000000/B00000000/XXXXXXXXXXXXXXXXXXXXXXXX"
SLACK_HOOK_SECRET = "XXXXXXXXXXXXXXXXXXXXXXXX"
BOT_TOKEN = "xoxb-17653672481-19874698323-pdFZKVeTuE8sk7oOcBrzbqgy"
SENDGRID_KEY = "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"
PROSE = ("payment services are down in region B000; the data.arrived event for dataset "
         "T00000000 says: services hooks slack com https retry later")


def test_a_slack_webhook_text_arrives_intact(stub):
    config = parse_config({"type": "slack-webhook", "url": stub.url + SLACK_HOOK.split(
        "hooks.slack.com", 1)[1]})
    context = {"flow_run": {"name": "payments", "state": "Failed"}}

    message, problems = render_message(
        context, subject="payment services are down",
        body="payment services are down in region B000", secrets=config.secret_values())
    build_notifier(config).send(message)

    assert problems == []
    assert message.subject == "payment services are down"
    assert message.text == "payment services are down in region B000"
    assert "payment services are down in region B000" in stub.requests[0].body.decode()


def test_a_webhook_at_a_plain_path_leaves_payload_keys_and_subjects_alone():
    config = parse_config({"type": "webhook", "url": "https://example.com/hooks/data"})
    secrets = config.secret_values()

    payload, problem = render_payload({"dataset": "{{ event.event }}", "note": "data ok"},
                                      {"event": {"event": "data.arrived"}}, secrets=secrets)
    message, _ = render_message({}, subject="data.arrived", body="hooks data", secrets=secrets)

    assert problem is None
    assert payload == {"dataset": "data.arrived", "note": "data ok"}
    assert (message.subject, message.text) == ("data.arrived", "hooks data")


@pytest.mark.parametrize("config", [
    {"type": "slack-webhook", "url": SLACK_HOOK},
    {"type": "slack", "token": BOT_TOKEN, "channel": "#ml"},
    {"type": "sendgrid", "api_key": SENDGRID_KEY, "from_email": "fk@example.com"},
    {"type": "webhook", "url": "https://example.com/in/data?token=short-tok",
     "headers": {"Authorization": "Bearer abc123-not-long", "X-Team": "payments data",
                 "Content-Type": "application/json"}},
], ids=["slack-webhook", "slack", "sendgrid", "webhook"])
def test_ordinary_prose_survives_every_channels_secrets(config: dict):
    secrets = parse_config(config).secret_values()

    assert redact(PROSE, secrets) == PROSE


def test_the_secrets_themselves_are_masked_wherever_they_appear():
    text = (f"hook {SLACK_HOOK} path {SLACK_HOOK_SECRET} bot {BOT_TOKEN} key {SENDGRID_KEY} "
            "query short-tok header abc123-not-long")
    secrets = [*url_secrets(SLACK_HOOK), BOT_TOKEN, SENDGRID_KEY,
               *url_secrets("https://example.com/in/data?token=short-tok"),
               *header_secrets("Authorization", "Bearer abc123-not-long")]

    redacted = redact(text, secrets)

    assert redacted == (f"hook {MASK} path {MASK} bot {MASK} key {MASK} query {MASK} "
                        f"header {MASK}")


@pytest.mark.parametrize(("piece", "token"), [
    (SLACK_HOOK_SECRET, True), ("aB3dE6gH9jK2mN5pQ8rS1tU4", True), (BOT_TOKEN, True),
    ("known-slack-hook-secret-0003", True), ("T00000000", False), ("B000", False),
    ("services", False), ("internationalization", False),
    ("hooks-for-the-data-team", False), ("a sentence with spaces 12345678", False),
])
def test_a_token_is_told_from_a_word(piece: str, token: bool):
    assert looks_like_token(piece) is token


def test_a_harmless_header_is_no_secret_and_a_credential_header_is_one_whole():
    assert header_secrets("Content-Type", "application/json") == []
    assert header_secrets("X-Api-Key", "plainword") == ["plainword"]
    assert header_secrets("X-Team", "payments data") == []
