"""Drill 5: the SendGrid and Slack stubs are down, then answer 429 with Retry-After, then
answer slowly (the first slow answers after the notifier's timeout).

Every firing owes one email and one Slack message. Each must be delivered (a 2xx the stub
recorded) or dead-lettered; none may be lost. A repeat is explained (README, "At least
once") only when an earlier request of that message got its 2xx after the notifier's
timeout: the provider took it, the answer never came back.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections import defaultdict
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

import tests.notifiers.conftest as notifier_stubs
from services.core import stream
from services.notify.configs import parse_document
from services.notify.delivery import Deliveries
from tests.conftest import wait_until
from tests.drills.harness import (
    DrillRow,
    Installation,
    apply_automation,
    custom_event,
    firings_by_label,
)
from tests.integration.notify_helpers import SLACK_TOKEN, sendgrid_document
from tests.notifiers.conftest import Recorded, StubServer

EVENT = "drill.provider"
TOKEN = re.compile(r"drill-msg:(drill\.provider\.\d+)")
NOTIFIER_TIMEOUT_S = 1.0


@dataclass(frozen=True)
class Counts:
    messages: int
    down_s: float
    rate_limited: int
    late_answers: int
    slow_s: float


FULL = Counts(messages=200, down_s=60.0, rate_limited=20, late_answers=5, slow_s=0.5)
SHORT = Counts(messages=20, down_s=5.0, rate_limited=4, late_answers=2, slow_s=0.2)


@dataclass
class SlowStub(StubServer):
    """The tests' stub server, answering each request after a delay (the next of `delays`,
    then `slow_s`), keeping for each request its status and whether it was answered after
    the notifier's timeout."""

    delays: list[float] = field(default_factory=list)
    slow_s: float = 0.0
    outcomes: list[tuple[Recorded, int, bool]] = field(default_factory=list)
    _answering: threading.local = field(default_factory=threading.local)

    def _next_answer(self) -> tuple[int, dict[str, str], Any]:
        answer = super()._next_answer()
        self._answering.status = answer[0]
        return answer

    def handle(self, handler: BaseHTTPRequestHandler) -> None:
        with self.lock:
            delay = self.delays.pop(0) if self.delays else self.slow_s
        time.sleep(delay)
        try:
            super().handle(handler)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the notifier gave up waiting (a late answer): the request still arrived
        port = handler.client_address[1]
        with self.lock:
            # one connection carries one request at a time: its newest record is this one
            record = next(r for r in reversed(self.requests) if r.client_port == port)
            self.outcomes.append((record, self._answering.status,
                                  delay >= NOTIFIER_TIMEOUT_S))


def stub_on(port: int) -> SlowStub:
    """A SlowStub listening on `port` (the provider coming back where it was)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(notifier_stubs, "ThreadingHTTPServer",
                      lambda address, handler: ThreadingHTTPServer((address[0], port), handler))
        server = SlowStub()
        server.start()
    return server


def automation() -> dict:
    text = "drill-msg:{{ firing.labels['resource.id'] }}"
    return {"name": "drill-provider-faults",
            "trigger": {"type": "event", "match": {"resource.id": "drill.provider.*"},
                        "expect": [EVENT], "for_each": ["resource.id"], "threshold": 1,
                        "within": 0},
            "actions": [{"type": "send-email", "notifier": "drill-email", "subject": "drill",
                         "body": text},
                        {"type": "send-slack", "notifier": "drill-slack", "text": text}]}


def run(counts: Counts = SHORT) -> DrillRow:
    row = DrillRow(f"5 providers down {counts.down_s:g} s, 429, slow")
    environment = {"FLOWKEEPER_NOTIFY_RETRY_BASE_S": "0.5", "FLOWKEEPER_NOTIFY_RETRY_MAX_S": "5",
                   "FLOWKEEPER_NOTIFY_MAX_ATTEMPTS": "30"}
    probe = StubServer()
    probe.start()
    port = int(probe.url.rsplit(":", 1)[1])
    probe.stop()  # the providers are down from the start
    url = f"http://127.0.0.1:{port}"
    stub = None
    with Installation(**environment) as site:
        notifiers = Deliveries(site.client, site.settings).notifiers
        notifiers.put(*parse_document(sendgrid_document(url, "drill-email",
                                                         timeout_s=NOTIFIER_TIMEOUT_S)))
        notifiers.put(*parse_document({"name": "drill-slack", "type": "slack",
                                       "token": SLACK_TOKEN, "channel": "#drill",
                                       "api_url": f"{url}/api/",
                                       "timeout_s": NOTIFIER_TIMEOUT_S}))
        apply_automation(site, automation())
        for label, args in (("engine", ("engine",)), ("notify", ("notify",)),
                            ("notify-worker-1", ("worker", "--queue", "notify")),
                            ("notify-worker-2", ("worker", "--queue", "notify"))):
            site.start(label, *args)
        site.wait_for_engines(1)
        site.wait_for_workers(2)
        resources = [f"drill.provider.{n:06d}" for n in range(counts.messages)]
        stream.append_many(site.client, site.keys,
                           [custom_event(EVENT, resource) for resource in resources])
        wait_until(lambda: len(firings_by_label(site)) >= len(resources), 120, interval=0.2,
                   message="every event to fire")
        time.sleep(counts.down_s)
        back_at = time.monotonic()
        stub = stub_on(port)
        try:
            with stub.lock:
                stub.script = [(429, {"Retry-After": "1"})] * counts.rate_limited
                stub.delays = [0.0] * counts.rate_limited + [NOTIFIER_TIMEOUT_S + 0.5] * \
                    counts.late_answers
                stub.slow_s = counts.slow_s
            owed = {(channel, resource) for resource in resources
                    for channel in ("email", "slack")}
            wait_until(lambda: owed <= set(_sent(stub)) | _dead(site), 300, interval=0.5,
                       message="every message to be delivered or dead-lettered")
            row.recover_s = time.monotonic() - back_at
            time.sleep(NOTIFIER_TIMEOUT_S * 3)  # a late repeat would arrive now
            _count(row, site, stub, owed, resources)
        finally:
            stub.stop()
    return row


def _token_of(body: bytes) -> str | None:
    found = TOKEN.search(body.decode(errors="replace"))
    return found.group(1) if found else None


def _channel(path: str) -> str:
    return "email" if path.endswith("/mail/send") else "slack"


def _sent(stub: SlowStub) -> dict[tuple[str, str], list[bool]]:
    """(channel, resource) -> for each 2xx the stub gave it, whether it came after the
    notifier's timeout."""
    with stub.lock:
        outcomes = list(stub.outcomes)
    sent: dict[tuple[str, str], list[bool]] = defaultdict(list)
    for record, status, late in outcomes:
        token = _token_of(record.body)
        if token and 200 <= status < 300:
            sent[(_channel(record.path), token)].append(late)
    return sent


def _dead(site: Installation) -> set[tuple[str, str]]:
    dead = set()
    for notification_id in site.client.zrange(site.keys.notifications_dead, 0, -1):
        raw = site.client.get(site.keys.notification(notification_id))
        if raw:
            document = json.loads(raw)
            token = TOKEN.search(json.dumps(document.get("message", {})))
            kind = "email" if document.get("action_type") == "send-email" else "slack"
            if token:
                dead.add((kind, token.group(1)))
    return dead


def _count(row: DrillRow, site: Installation, stub: SlowStub, owed: set, resources: list) \
        -> None:
    sent = _sent(stub)
    dead = _dead(site) - set(sent)
    delivered = [key for key, answers in sent.items() for _ in answers]
    # a repeat is explained when an earlier 2xx of the same message came too late
    explained = sum(1 for answers in sent.values() for late in answers[:-1] if late)
    with stub.lock:
        requests, late_answers = len(stub.outcomes), sum(1 for o in stub.outcomes if o[2])
    row.events_in = len(resources)
    row.firings = len(firings_by_label(site))
    row.actions = len(owed)
    row.deliveries = len(delivered)
    row.count_loss_and_duplicates("messages", owed, delivered + sorted(dead),
                                  explained=explained)
    row.notes.append(f"{len(sent)} delivered, {len(dead)} dead-lettered, {requests} requests "
                     f"({late_answers} answered after the {NOTIFIER_TIMEOUT_S:g} s timeout); "
                     "recover = providers back to every message delivered or dead")
