"""The notifiers page: masked configurations (no configured secret in the HTML), the
Test button (admin scope, CSRF) showing the provider's answer."""

from __future__ import annotations

import pytest

from services.core.tokens import Scope
from services.notify.configs import parse_document
from services.notify.delivery import Deliveries
from tests.integration.notify_helpers import (  # noqa: F401 - http_stub_fixture
    SENDGRID_KEY,
    fast,
    http_stub_fixture,
    sendgrid_document,
)
from tests.integration.web_helpers import csrf_token, signed_in_client


@pytest.fixture()
def app(settings, redis_client):
    from services.api import create_app

    return create_app(fast(settings), redis_client)


def add_notifier(store, document) -> None:
    name, config = parse_document(document)
    Deliveries(store.client, store.settings).notifiers.put(name, config, replace=True)


def test_the_page_lists_notifiers_and_contains_none_of_their_secrets(app, store, http_stub):
    add_notifier(store, sendgrid_document(http_stub.url))
    browser = signed_in_client(app, Scope.ADMIN)

    page = browser.get("/notifiers")

    assert page.status_code == 200 and "<title>Notifiers · flowkeeper</title>" in page.text
    assert "team-email" in page.text and "ml-team@example.com" in page.text
    for secret in (SENDGRID_KEY, SENDGRID_KEY[3:], SENDGRID_KEY[-12:]):
        assert secret not in page.text


def test_the_test_button_shows_the_providers_answer(app, store, http_stub):
    http_stub.play(then=(202, {"X-Message-Id": "sg-42"}))
    add_notifier(store, sendgrid_document(http_stub.url))
    browser = signed_in_client(app, Scope.ADMIN)
    token = csrf_token(browser, "/notifiers")

    swapped = browser.post("/notifiers/team-email/test", data={"csrf_token": token},
                           headers={"HX-Request": "true"})
    plain = browser.post("/notifiers/team-email/test", data={"csrf_token": token})

    assert swapped.status_code == 200 and 'data-testid="test-ok"' in swapped.text
    assert "<code>202</code>" in swapped.text and "sg-42" in swapped.text
    assert "<html" not in swapped.text
    assert plain.status_code == 200 and "<title>Notifiers" in plain.text
    assert 'data-testid="test-ok"' in plain.text
    assert len(http_stub.requests) == 2 and SENDGRID_KEY not in swapped.text + plain.text


def test_a_failed_test_shows_the_status_and_an_unknown_notifier_is_404(app, store, http_stub):
    http_stub.play(then=(401, {}))
    add_notifier(store, sendgrid_document(http_stub.url))
    browser = signed_in_client(app, Scope.ADMIN)
    token = csrf_token(browser, "/notifiers")

    failed = browser.post("/notifiers/team-email/test", data={"csrf_token": token},
                          headers={"HX-Request": "true"})
    unknown = browser.post("/notifiers/nobody/test", data={"csrf_token": token})

    assert 'data-testid="test-failed"' in failed.text and "<code>401</code>" in failed.text
    assert unknown.status_code == 404 and "nobody" in unknown.text


def test_testing_needs_admin_scope_and_the_csrf_token(app, store, http_stub):
    add_notifier(store, sendgrid_document(http_stub.url))
    reader = signed_in_client(app, Scope.READ)
    admin = signed_in_client(app, Scope.ADMIN)

    page = reader.get("/notifiers").text
    refused = reader.post("/notifiers/team-email/test",
                          data={"csrf_token": csrf_token(reader, "/notifiers")})
    forged = admin.post("/notifiers/team-email/test", data={"csrf_token": "forged"})

    assert 'data-testid="test-team-email" disabled' in page and "needs the admin scope" in page
    assert refused.status_code == 403 and forged.status_code == 403
    assert http_stub.requests == []
