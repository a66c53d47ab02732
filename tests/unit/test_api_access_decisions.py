"""Who may reach the API when it starts: the pure decision and the addresses it trusts."""

from __future__ import annotations

import pytest

from services.core.api_access import Start, decide, is_loopback, refusal_message
from services.core.tokens import Scope


@pytest.mark.parametrize("host", ["127.0.0.1", "127.0.0.2", "localhost", "::1", "[::1]"])
def test_loopback_addresses_are_trusted(host):
    assert is_loopback(host)


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.168.1.10", "10.0.0.1", "example.com",
                                  ""])
def test_any_other_address_is_not(host):
    assert not is_loopback(host)


@pytest.mark.parametrize(("host", "env_token", "has_token", "expected"), [
    ("0.0.0.0", True, False, Start.SEED_ENV_TOKEN),
    ("127.0.0.1", True, True, Start.SEED_ENV_TOKEN),
    ("0.0.0.0", False, True, Start.KEEP),
    ("127.0.0.1", False, True, Start.KEEP),
    ("127.0.0.1", False, False, Start.CREATE_ADMIN),
    ("localhost", False, False, Start.CREATE_ADMIN),
    ("0.0.0.0", False, False, Start.REFUSE),
    ("192.168.1.10", False, False, Start.REFUSE),
])
def test_the_start_decision(host, env_token, has_token, expected):
    assert decide(host, env_token, has_token) is expected


def test_the_refusal_says_what_to_do():
    message = refusal_message("0.0.0.0")

    assert "0.0.0.0" in message
    assert "flowkeeper token create --scope admin" in message
    assert "FLOWKEEPER_ADMIN_TOKEN" in message and "127.0.0.1" in message


def test_each_scope_includes_the_lower_ones():
    assert Scope.ADMIN.includes(Scope.RUN) and Scope.ADMIN.includes(Scope.READ)
    assert Scope.RUN.includes(Scope.READ) and Scope.RUN.includes(Scope.RUN)
    assert not Scope.READ.includes(Scope.RUN) and not Scope.RUN.includes(Scope.ADMIN)
