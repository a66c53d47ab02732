"""The notifier tests' stubs: one HTTP server in a thread that records requests and plays
a script of answers, and an SMTP server (aiosmtpd) that keeps the mail it receives."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

# an answer: a status, (status, headers), or (status, headers, body)
Answer = int | tuple[int, dict[str, str]] | tuple[int, dict[str, str], Any]


@dataclass
class Recorded:
    """One request the stub received."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    client_port: int
    signature_ok: bool | None = None

    def header(self, name: str) -> str | None:
        return next((v for k, v in self.headers.items() if k.lower() == name.lower()), None)

    @property
    def json(self) -> Any:
        return json.loads(self.body) if self.body else None


def _slack_error(status: int) -> str:
    return {400: "invalid_arguments", 401: "invalid_auth", 403: "not_allowed_token_type",
            404: "channel_not_found", 429: "ratelimited"}.get(status, "internal_error")


def default_body(path: str, status: int) -> Any:
    """What each stubbed provider answers when the script gives no body."""
    ok = 200 <= status < 300
    if path.endswith("/mail/send"):
        return b"" if ok else {"errors": [{"message": f"stub answered {status}", "field": None}]}
    if "/api/" in path:
        return ({"ok": True, "channel": "C0STUB", "ts": "1700000000.000100"} if ok
                else {"ok": False, "error": _slack_error(status)})
    if path.startswith("/services/"):
        return "ok" if ok else _slack_error(status)
    return {"received": True} if ok else {"error": f"stub answered {status}"}


@dataclass
class StubServer:
    """A local HTTP server: records every request, answers from a script (then `then`)."""

    host: str = "127.0.0.1"
    requests: list[Recorded] = field(default_factory=list)
    script: list[Answer] = field(default_factory=list)
    then: Answer = 200
    secret: str | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)
    server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        assert self.server is not None
        return f"http://{self.host}:{self.server.server_address[1]}"

    def play(self, *answers: Answer, then: Answer = 200) -> StubServer:
        """Answer the next requests with `answers` in order, and every later one with `then`."""
        with self.lock:
            self.script = list(answers)
            self.then = then
        return self

    def verify_with(self, secret: str) -> None:
        """Check each request's HMAC signature with `secret`; a bad one gets a 401."""
        self.secret = secret

    def _next_answer(self) -> tuple[int, dict[str, str], Any]:
        with self.lock:
            answer = self.script.pop(0) if self.script else self.then
        if isinstance(answer, int):
            return answer, {}, None
        if len(answer) == 2:
            return answer[0], answer[1], None
        return answer  # type: ignore[return-value]

    def handle(self, handler: BaseHTTPRequestHandler) -> None:
        from notifiers.webhook import SIGNATURE_HEADER, TIMESTAMP_HEADER, verify_signature

        length = int(handler.headers.get("Content-Length") or 0)
        body = handler.rfile.read(length) if length else b""
        record = Recorded(handler.command, handler.path, dict(handler.headers.items()), body,
                          handler.client_address[1])
        status, headers, answer_body = self._next_answer()
        if self.secret is not None:
            record.signature_ok = verify_signature(
                self.secret, record.header(TIMESTAMP_HEADER), body,
                record.header(SIGNATURE_HEADER), now=time.time())
            if not record.signature_ok:
                status, answer_body = 401, {"error": "bad signature"}
        with self.lock:
            self.requests.append(record)
        if answer_body is None:
            answer_body = default_body(handler.path, status)
        if isinstance(answer_body, dict | list):
            payload, content_type = json.dumps(answer_body).encode(), "application/json"
        else:
            payload = answer_body if isinstance(answer_body, bytes) else str(answer_body).encode()
            content_type = "text/plain; charset=utf-8"
        handler.send_response(status)
        handler.send_header("Content-Type", content_type)
        handler.send_header("Content-Length", str(len(payload)))
        for name, value in headers.items():
            handler.send_header(name, value)
        handler.end_headers()
        handler.wfile.write(payload)

    def start(self) -> None:
        stub = self

        class Handler(BaseHTTPRequestHandler):
            # keep-alive, so that a client's connection reuse shows in `client_port`
            protocol_version = "HTTP/1.1"
            # headers and body leave in two writes: without this, Nagle and delayed ACKs
            # add 40 ms to every kept-alive request
            disable_nagle_algorithm = True

            def _any(self) -> None:
                stub.handle(self)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _any

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer((self.host, 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.02},
                         daemon=True).start()

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()


@pytest.fixture()
def stub() -> Iterator[StubServer]:
    server = StubServer()
    server.start()
    yield server
    server.stop()


def free_port() -> int:
    """A port nothing listens on (bound then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture()
def closed_url() -> str:
    """A base URL that refuses connections."""
    return f"http://127.0.0.1:{free_port()}"


# ---- SMTP -------------------------------------------------------------------------------

@dataclass
class ReceivedMail:
    mail_from: str
    rcpt_tos: list[str]
    content: bytes

    def parsed(self) -> Any:
        from email import message_from_bytes, policy

        return message_from_bytes(self.content, policy=policy.default)


@dataclass
class SmtpStub:
    """An aiosmtpd server that keeps what it receives; refuses some recipients by prefix."""

    port: int
    mails: list[ReceivedMail] = field(default_factory=list)
    logins: list[str] = field(default_factory=list)
    username: str = "flowkeeper"
    password: str = "smtp-password-for-tests"

    @property
    def host(self) -> str:
        return "127.0.0.1"

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str,
                          rcpt_options: list[str]) -> str:
        if address.startswith("nobody@"):
            return "550 5.1.1 no such user"
        if address.startswith("later@"):
            return "451 4.3.0 try again later"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.mails.append(ReceivedMail(envelope.mail_from, list(envelope.rcpt_tos),
                                       envelope.original_content or envelope.content))
        return "250 Message accepted for delivery"

    def authenticate(self, server: Any, session: Any, envelope: Any, mechanism: str,
                     auth_data: Any) -> Any:
        from aiosmtpd.smtp import AuthResult

        login = auth_data.login.decode()
        password = auth_data.password.decode()
        self.logins.append(login)
        # handled=False: aiosmtpd answers a refusal with 535 itself
        return AuthResult(success=login == self.username and password == self.password,
                          handled=False)


@pytest.fixture()
def smtp_server() -> Iterator[SmtpStub]:
    from aiosmtpd.controller import Controller

    stub = SmtpStub(port=free_port())
    controller = Controller(stub, hostname=stub.host, port=stub.port, auth_require_tls=False,
                            authenticator=stub.authenticate)
    controller.start()
    yield stub
    controller.stop()
