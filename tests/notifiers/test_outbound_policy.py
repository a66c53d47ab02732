"""The outbound policy: the pure decision, and every channel refusing before it connects."""

from __future__ import annotations

import time

import pytest

from notifiers import Message, build_notifier, parse_config
from notifiers.errors import OutboundRefused, PermanentDelivery
from notifiers.outbound import OutboundPolicy, is_allowed, parse_policy, pinned_transport
from notifiers.webhook import WebhookNotifier

OPEN = OutboundPolicy()


@pytest.mark.parametrize(("host", "addresses"), [
    ("169.254.169.254", ["169.254.169.254"]),
    ("metadata.google.internal", ["10.1.2.3"]),
    ("METADATA.google.internal.", ["10.1.2.3"]),
    ("fd00:ec2::254", ["fd00:ec2::254"]),
    ("hooks.example.com", ["203.0.113.9", "169.254.1.1"]),
    ("hooks.example.com", ["::ffff:169.254.169.254"]),
    ("hooks.example.com", ["fe80::1"]),
    ("100.100.100.200", ["100.100.100.200"]),
])
def test_link_local_and_metadata_are_refused_whatever_the_lists_say(host, addresses):
    policy = parse_policy(allow="0.0.0.0/0,::/0,*.internal,hooks.example.com")

    decision = is_allowed(host, addresses, policy)

    assert not decision.allowed
    assert "metadata" in decision.reason or "link-local" in decision.reason


def test_without_lists_public_private_and_loopback_addresses_are_allowed():
    for addresses in (["203.0.113.9"], ["10.0.0.5"], ["127.0.0.1"], ["::1"]):
        assert is_allowed("h.example.com", addresses, OPEN).allowed


def test_the_deny_list_refuses_networks_and_host_names_and_wins_over_the_allow_list():
    policy = parse_policy(allow="10.0.0.0/8,*.example.com",
                          deny="10.9.0.0/16, internal.example.com, *.corp.example.com")

    assert is_allowed("a.example.com", ["10.1.0.1"], policy).allowed
    assert not is_allowed("a.example.com", ["10.9.0.1"], policy).allowed
    assert not is_allowed("internal.example.com", ["10.1.0.1"], policy).allowed
    assert not is_allowed("x.corp.example.com", ["10.1.0.1"], policy).allowed
    assert "FLOWKEEPER_OUTBOUND_DENY" in is_allowed("b.example.com", ["10.9.0.1"], policy).reason


def test_an_allow_list_admits_only_what_it_lists_and_every_address_must_pass():
    policy = parse_policy(allow="192.0.2.0/24, hooks.slack.com")

    assert is_allowed("anything", ["192.0.2.7"], policy).allowed
    assert is_allowed("hooks.slack.com", ["198.51.100.1"], policy).allowed
    assert not is_allowed("anything", ["192.0.2.7", "198.51.100.1"], policy).allowed
    assert not is_allowed("localhost", ["127.0.0.1"], policy).allowed
    assert "FLOWKEEPER_OUTBOUND_ALLOW" in is_allowed("x", ["198.51.100.1"], policy).reason


def test_a_name_only_a_proxy_can_resolve_is_judged_by_the_lists_names():
    from notifiers.outbound import is_allowed_by_name

    assert is_allowed_by_name("hooks.example.com", OPEN).allowed
    assert not is_allowed_by_name("metadata.google.internal", OPEN).allowed
    assert not is_allowed_by_name("x.corp.example", parse_policy(deny="*.corp.example")).allowed
    assert is_allowed_by_name("a.example.com", parse_policy(allow="*.example.com")).allowed
    assert not is_allowed_by_name("a.example.org", parse_policy(allow="10.0.0.0/8")).allowed


def test_a_host_that_resolves_to_nothing_is_refused():
    assert not is_allowed("nowhere.example", [], OPEN).allowed


@pytest.mark.parametrize("entry", ["10.0.0.0/33", "http://x.example.com", "a b", "*"])
def test_a_bad_entry_is_refused_naming_the_setting(entry: str):
    with pytest.raises(ValueError, match=f"FLOWKEEPER_OUTBOUND_DENY: '{entry}'"):
        parse_policy(deny=entry)


# ---- the channels, at the edge ---------------------------------------------------------

METADATA_URL = "http://169.254.169.254/latest/meta-data/iam/security-credentials/"
CONFIGS = {
    "webhook": {"type": "webhook", "url": METADATA_URL},
    "slack-webhook": {"type": "slack-webhook", "url": METADATA_URL},
    "slack": {"type": "slack", "token": "xoxb-1", "channel": "#c",
              "api_url": "http://169.254.169.254/api/"},
    "sendgrid": {"type": "sendgrid", "api_key": "SG.x", "from_email": "a@example.com",
                 "to": ["b@example.com"], "api_host": "http://169.254.169.254"},
    "smtp": {"type": "smtp", "host": "169.254.169.254", "from_email": "a@example.com",
             "to": ["b@example.com"]},
}


@pytest.mark.parametrize("kind", sorted(CONFIGS))
def test_every_channel_refuses_the_metadata_address_as_a_permanent_failure(kind: str):
    notifier = build_notifier(parse_config(CONFIGS[kind]))
    started = time.monotonic()

    with pytest.raises(OutboundRefused, match="link-local or cloud metadata") as refused:
        notifier.send(Message(subject="s", text="t"))

    assert isinstance(refused.value, PermanentDelivery)
    # refused before any connection: no timeout was waited for
    assert time.monotonic() - started < 5


def test_the_deny_list_is_honoured_and_the_stub_never_hears_of_it(stub):
    config = parse_config({"type": "webhook", "url": f"{stub.url}/hook"})
    denied = build_notifier(config, outbound=parse_policy(deny="127.0.0.0/8,::1"))
    allowed = build_notifier(config, outbound=parse_policy(allow="127.0.0.1"))

    with pytest.raises(OutboundRefused, match="FLOWKEEPER_OUTBOUND_DENY"):
        denied.send(Message(subject="s", text="t"))
    allowed.send(Message(subject="s", text="t"))

    assert len(stub.requests) == 1


def test_the_allow_list_is_honoured_for_every_channel(stub):
    policy = parse_policy(allow="192.0.2.0/24")
    configs = [
        {"type": "webhook", "url": f"{stub.url}/hook"},
        {"type": "slack-webhook", "url": f"{stub.url}/services/T0/B0/x"},
        {"type": "slack", "token": "xoxb-1", "channel": "#c", "api_url": f"{stub.url}/api/"},
        {"type": "sendgrid", "api_key": "SG.x", "from_email": "a@example.com",
         "to": ["b@example.com"], "api_host": stub.url},
    ]

    for config in configs:
        with pytest.raises(OutboundRefused, match="not in FLOWKEEPER_OUTBOUND_ALLOW"):
            build_notifier(parse_config(config), outbound=policy).send(
                Message(subject="s", text="t"))

    assert stub.requests == []


def test_a_host_name_that_resolves_to_a_denied_address_is_refused(stub):
    # localhost resolves to 127.0.0.1: a name is judged by the addresses it resolves to
    port = stub.url.rsplit(":", 1)[1]
    config = parse_config({"type": "webhook", "url": f"http://localhost:{port}/hook"})

    with pytest.raises(OutboundRefused, match="at 127.0.0.1, denied"):
        build_notifier(config, outbound=parse_policy(deny="127.0.0.0/8")).send(
            Message(subject="s", text="t"))

    assert stub.requests == []


def test_the_webhook_connects_to_the_address_it_checked(stub):
    # a rebinding name would resolve again at connect time; the pinned client does not
    answers = {"rebinding.test": [["127.0.0.1"], ["169.254.169.254"]]}

    def resolver(host: str, port: int) -> list[str]:
        return answers[host].pop(0)

    port = stub.url.rsplit(":", 1)[1]
    config = parse_config({"type": "webhook", "url": f"http://rebinding.test:{port}/hook"})
    notifier = WebhookNotifier(config, transport=pinned_transport(OPEN, resolver=resolver))

    notifier.send(Message(subject="s", text="t"))

    assert len(stub.requests) == 1 and stub.requests[0].header("Host") == f"rebinding.test:{port}"
    assert answers["rebinding.test"] == [["169.254.169.254"]], "resolved once, not twice"


def test_the_answer_kept_is_at_most_2_kb_however_long_the_provider_answers(stub):
    stub.play(then=(400, {"Content-Type": "text/plain"}, "x" * 200_000))
    config = parse_config({"type": "webhook", "url": f"{stub.url}/hook"})

    with pytest.raises(PermanentDelivery) as failed:
        build_notifier(config).send(Message(subject="s", text="t"))

    assert failed.value.status == 400
    assert "xxxx" in failed.value.detail and len(failed.value.detail.encode()) <= 2048


def test_a_redirect_to_the_metadata_address_is_refused_not_followed(stub):
    # slack_sdk posts through urllib, which follows a 302 (as a GET) on its own
    stub.play(then=(302, {"Location": "http://169.254.169.254/latest/meta-data/"}, ""))
    config = parse_config({"type": "slack-webhook", "url": f"{stub.url}/services/T0/B0/x"})

    with pytest.raises(OutboundRefused, match="link-local or cloud metadata"):
        build_notifier(config).send(Message(subject="s", text="t"))

    assert len(stub.requests) == 1


def test_while_a_client_sends_each_connection_is_judged_by_its_address(stub):
    import socket

    from notifiers.outbound import connections_checked

    policy = parse_policy(allow="192.0.2.0/24")
    host, port = stub.url.removeprefix("http://").split(":")

    with connections_checked(policy, ["127.0.0.1"]):
        socket.create_connection((host, int(port)), timeout=5).close()  # checked before
        with pytest.raises(OutboundRefused, match="not in FLOWKEEPER_OUTBOUND_ALLOW"):
            socket.create_connection(("127.0.0.2", int(port)), timeout=5)
        with pytest.raises(OutboundRefused, match="metadata"):
            socket.create_connection(("169.254.169.254", 80), timeout=5)
    # outside the block nothing is judged
    socket.create_connection((host, int(port)), timeout=5).close()


def test_behind_a_proxy_the_webhook_goes_through_it_and_checks_the_name_first(
        monkeypatch, stub):
    # the proxy makes the connection, so the policy is applied to the name beforehand
    monkeypatch.setenv("HTTP_PROXY", stub.url)
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    refused = build_notifier(parse_config({"type": "webhook", "url": METADATA_URL}))
    proxied = build_notifier(parse_config({"type": "webhook",
                                           "url": "http://hooks.example.invalid/in"}),
                             outbound=parse_policy(allow="hooks.example.invalid"))

    with pytest.raises(OutboundRefused, match="link-local or cloud metadata"):
        refused.send(Message(subject="s", text="t"))
    proxied.send(Message(subject="s", text="t"))

    [request] = stub.requests
    assert request.path == "http://hooks.example.invalid/in", "sent to the proxy to fetch"
