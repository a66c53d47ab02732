"""Signing in to the web pages: sessions, cookies, sign-in codes, CSRF and scopes."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from services.core.tokens import Scope, TokenStore
from services.core.web_sessions import WebSessions, signin_link
from tests.integration.api_helpers import issue_token, make_run
from tests.integration.web_helpers import csrf_token, signed_in_client


@pytest.fixture()
def app(settings, redis_client):
    from services.api import create_app

    return create_app(settings, redis_client)


def test_a_page_without_a_session_sends_the_browser_to_sign_in_and_back(app):
    browser = TestClient(app)

    answer = browser.get("/runs?state=Failed", follow_redirects=False)

    assert answer.status_code == 303
    assert answer.headers["location"] == "/signin?next=/runs%3Fstate%3DFailed"
    token = issue_token(app.state.store, Scope.READ)
    signed_in = browser.post("/signin", data={"token": token, "next": "/runs?state=Failed"},
                             follow_redirects=False)
    assert signed_in.headers["location"] == "/runs?state=Failed"
    cookie = signed_in.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=strict" in cookie and "secure" not in cookie
    assert browser.get("/runs").status_code == 200


def test_a_wrong_token_is_refused_with_the_form_again(app):
    answer = TestClient(app).post("/signin", data={"token": "fk_nope"})

    assert answer.status_code == 401
    assert "unknown, expired or revoked" in answer.text and "set-cookie" not in answer.headers


@pytest.mark.parametrize("target", ["//evil.example/x", "https://evil.example/",
                                    "/\\evil.example", "runs"])
def test_after_sign_in_only_a_local_path_is_followed(app, target):
    token = issue_token(app.state.store, Scope.READ)

    answer = TestClient(app).post("/signin", data={"token": token, "next": target},
                                  follow_redirects=False)

    assert answer.headers["location"] == "/"


def test_the_cookie_is_secure_over_https_and_behind_a_trusted_proxy_only(app, settings):
    token = issue_token(app.state.store, Scope.READ)
    proxied = {"X-Forwarded-Proto": "https"}

    def cookie(client: TestClient, **headers: str) -> str:
        return client.post("/signin", data={"token": token}, headers=headers,
                           follow_redirects=False).headers["set-cookie"].lower()

    assert "secure" in cookie(TestClient(app, base_url="https://testserver"))
    assert "secure" not in cookie(TestClient(app), **proxied)
    settings.trust_forwarded_proto = True
    assert "secure" in cookie(TestClient(app), **proxied)


def test_a_sign_in_code_works_once_and_never_carries_the_token(app, store):
    token = issue_token(store, Scope.ADMIN)
    link = signin_link(store.client, store.keys, "http://127.0.0.1:8000", token)
    path = link.removeprefix("http://127.0.0.1:8000")

    first = TestClient(app).get(path, follow_redirects=False)
    second = TestClient(app).get(path, follow_redirects=False)

    assert token not in link and path.startswith("/signin?code=")
    assert first.status_code == 303 and "fk_session=" in first.headers["set-cookie"]
    assert second.status_code == 401 and "used already or has expired" in second.text


def test_revoking_the_token_ends_its_sessions(app, store):
    browser = signed_in_client(app, Scope.READ)
    [name] = [token.name for token in TokenStore(store.client, store.keys).list()]

    TokenStore(store.client, store.keys).revoke(name)

    assert browser.get("/runs", follow_redirects=False).status_code == 303


def test_sign_out_ends_the_session(app):
    browser = signed_in_client(app, Scope.READ)

    answer = browser.post("/signout", data={"csrf_token": csrf_token(browser)},
                          follow_redirects=False)

    assert answer.status_code == 303
    assert browser.get("/runs", follow_redirects=False).status_code == 303


def test_a_post_without_the_csrf_token_is_refused(app, store):
    browser = signed_in_client(app, Scope.ADMIN)
    run = make_run(store, name="steady-fox")

    without = browser.post(f"/runs/{run.id}/cancel", follow_redirects=False)
    wrong = browser.post(f"/runs/{run.id}/cancel", headers={"X-CSRF-Token": "guess"},
                         follow_redirects=False)
    signout = browser.post("/signout", follow_redirects=False)

    assert without.status_code == 403 and "CSRF" in without.text
    assert wrong.status_code == 403 and signout.status_code == 403
    assert store.require_flow_run(run.id).state.value == "Pending"


def test_the_csrf_token_in_a_header_or_a_form_field_lets_a_post_through(app, store):
    browser = signed_in_client(app, Scope.RUN)
    first, second = make_run(store, name="one"), make_run(store, name="two")
    token = csrf_token(browser)

    by_form = browser.post(f"/runs/{first.id}/cancel", data={"csrf_token": token},
                           follow_redirects=False)
    by_header = browser.post(f"/runs/{second.id}/cancel", headers={"X-CSRF-Token": token},
                             follow_redirects=False)

    assert by_form.status_code == by_header.status_code == 303
    assert store.require_flow_run(first.id).state.value == "Cancelled"
    assert store.require_flow_run(second.id).state.value == "Cancelled"


def test_a_read_session_sees_cancel_disabled_with_the_reason_and_cannot_post_it(app, store):
    browser = signed_in_client(app, Scope.READ)
    run = make_run(store, name="steady-fox")

    page = browser.get(f"/runs/{run.id}")
    refused = browser.post(f"/runs/{run.id}/cancel",
                           data={"csrf_token": csrf_token(browser, f"/runs/{run.id}")})

    assert 'data-testid="cancel" disabled' in page.text
    assert "needs the run scope" in page.text
    assert refused.status_code == 403 and "needs the run scope" in refused.text
    assert store.require_flow_run(run.id).state.value == "Pending"


def test_sessions_expire_with_their_token(store):
    sessions = WebSessions(store.client, store.keys)
    session = sessions.open(issue_token(store, Scope.READ), now=1_000.0)

    assert session is not None
    assert sessions.get(session.session_id, now=1_000.0 + 1) is not None
    assert sessions.get(session.session_id, now=session.expires + 1) is None
    assert sessions.get("no-such-session", now=1_000.0) is None


def test_up_prints_a_single_use_sign_in_link_for_the_admin_token(app, store, settings):
    from services.core.api_access import admin_token_file, write_private
    from services.core.web_sessions import admin_signin_line

    without = admin_signin_line(settings, "http://127.0.0.1:8000")
    token = issue_token(store, Scope.ADMIN)
    write_private(admin_token_file(settings), token + "\n")
    line = admin_signin_line(settings, "http://127.0.0.1:8000")
    path = line.split("http://127.0.0.1:8000", 1)[1].split(" ", 1)[0]

    assert without == "web pages: http://127.0.0.1:8000/signin (sign in with an API token)"
    assert path.startswith("/signin?code=") and token not in line
    assert TestClient(app).get(path, follow_redirects=False).status_code == 303


def test_another_sites_form_cannot_sign_a_browser_in(app):
    token = issue_token(app.state.store, Scope.READ)

    foreign = TestClient(app).post("/signin", data={"token": token},
                                   headers={"Origin": "https://evil.example"},
                                   follow_redirects=False)
    own = TestClient(app).post("/signin", data={"token": token},
                               headers={"Origin": "http://testserver"},
                               follow_redirects=False)

    assert foreign.status_code == 403 and "set-cookie" not in foreign.headers
    assert own.status_code == 303
