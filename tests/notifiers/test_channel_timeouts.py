"""Every channel honours its notifier's timeout: a provider that accepts the connection and
never answers fails the attempt (retryable) after about `timeout_s`, and one that trickles
its answer a byte at a time is cut off by the send's deadline (the clients' own timeouts
apply to each socket operation, so they never fire)."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator

import pytest

from notifiers import RetryableDelivery, RetryPolicy, attempt_delivery, build_notifier
from notifiers.config import SmtpConfig
from tests.notifiers.channel_cases import (
    failure_message,
    sendgrid_config,
    slack_config,
    slack_webhook_config,
    webhook_config,
)

TIMEOUT_S = 0.5
# how much later than its timeout a failed send may end (a loaded machine)
SLACK_S = 2.0


class QuietServer:
    """Accepts connections and then only `speak`s (forever) or says nothing at all."""

    def __init__(self, speak: Callable[[socket.socket, threading.Event], None] | None = None
                 ) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.speak = speak
        self.stopped = threading.Event()
        threading.Thread(target=self._serve, daemon=True).start()

    @property
    def port(self) -> int:
        return self.listener.getsockname()[1]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _serve(self) -> None:
        while not self.stopped.is_set():
            try:
                connection, _ = self.listener.accept()
            except OSError:
                return
            threading.Thread(target=self._hold, args=(connection,), daemon=True).start()

    def _hold(self, connection: socket.socket) -> None:
        with connection:
            try:
                if self.speak is not None:
                    self.speak(connection, self.stopped)
                else:
                    self.stopped.wait(30)
            except OSError:
                pass

    def close(self) -> None:
        self.stopped.set()
        self.listener.close()


def trickle_http(connection: socket.socket, stopped: threading.Event) -> None:
    """An HTTP answer whose headers never end: one byte every 0.1 s."""
    connection.recv(65536)
    connection.sendall(b"HTTP/1.1 200 OK\r\nX-Slow: ")
    while not stopped.wait(0.1):
        connection.sendall(b"a")


def trickle_smtp(connection: socket.socket, stopped: threading.Event) -> None:
    """An SMTP greeting that never ends: a continuation line every 0.1 s."""
    while not stopped.wait(0.1):
        connection.sendall(b"220-still greeting you\r\n")


def configs(url: str, port: int) -> dict[str, object]:
    timeout = {"timeout_s": TIMEOUT_S}
    return {
        "sendgrid": sendgrid_config(url).model_copy(update=timeout),
        "slack": slack_config(url).model_copy(update=timeout),
        "slack-webhook": slack_webhook_config(url).model_copy(update=timeout),
        "webhook": webhook_config(url, **timeout),
        "smtp": SmtpConfig(host="127.0.0.1", port=port, starttls=False,
                           from_email="flowkeeper@example.com", to=["ml-team@example.com"],
                           **timeout),
    }


CHANNELS = ["sendgrid", "slack", "slack-webhook", "webhook", "smtp"]


@pytest.fixture()
def silent() -> Iterator[QuietServer]:
    server = QuietServer()
    yield server
    server.close()


@pytest.mark.parametrize("channel", CHANNELS)
def test_a_provider_that_never_answers_fails_the_send_after_the_timeout(channel, silent):
    notifier = build_notifier(configs(silent.url, silent.port)[channel])

    started = time.monotonic()
    with pytest.raises(RetryableDelivery):
        notifier.send(failure_message())

    assert time.monotonic() - started < TIMEOUT_S + SLACK_S


@pytest.mark.parametrize("channel", CHANNELS)
def test_a_provider_that_trickles_its_answer_is_cut_off_by_the_deadline(channel):
    server = QuietServer(trickle_smtp if channel == "smtp" else trickle_http)
    try:
        notifier = build_notifier(configs(server.url, server.port)[channel])

        started = time.monotonic()
        delivery = attempt_delivery(notifier, failure_message(), attempt=1,
                                    policy=RetryPolicy(max_attempts=3), deadline_s=TIMEOUT_S)
        took = time.monotonic() - started
    finally:
        server.close()

    assert delivery.status == "retrying"
    assert f"no answer within {TIMEOUT_S:g} s" in delivery.error
    assert took < TIMEOUT_S + SLACK_S
