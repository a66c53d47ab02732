"""Helpers for the web pages' tests: a browser-like client signed in with a token."""

from __future__ import annotations

import re

from fastapi import FastAPI
from fastapi.testclient import TestClient

from services.core.tokens import Scope
from tests.integration.api_helpers import issue_token

CSRF_IN_PAGE = re.compile(r'name="csrf_token" value="([^"]+)"')


def signed_in_client(app: FastAPI, scope: Scope | str = Scope.ADMIN) -> TestClient:
    """A TestClient that signed in through the form with a fresh token of `scope`."""
    client = TestClient(app, raise_server_exceptions=False)
    answer = client.post("/signin", data={"token": issue_token(app.state.store, scope),
                                          "next": "/runs"}, follow_redirects=False)
    assert answer.status_code == 303, answer.text
    return client


def csrf_token(client: TestClient, path: str = "/runs") -> str:
    page = client.get(path)
    match = CSRF_IN_PAGE.search(page.text)
    assert match, page.text[:500]
    return match.group(1)
