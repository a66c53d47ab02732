"""Links to a run's page are signed for that run and expire; the page's view of a run
says what failed."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

from services.core.run_links import check_run_link, signed_run_url
from services.core.settings import Settings

KEY = b"k" * 32
OTHER_KEY = b"o" * 32


def query(url: str) -> dict[str, str]:
    return {name: values[0] for name, values in parse_qs(urlsplit(url).query).items()}


def test_a_signed_link_opens_its_run_until_it_expires():
    url = signed_run_url("http://127.0.0.1:18100/", "run-1", KEY, now=1_000, ttl_s=60)
    given = query(url)

    assert url.startswith("http://127.0.0.1:18100/runs/run-1?exp=1060&sig=")
    assert check_run_link([KEY], "run-1", given["exp"], given["sig"], now=1_059) == "valid"
    assert check_run_link([KEY], "run-1", given["exp"], given["sig"], now=1_060) == "expired"


def test_a_link_for_another_run_a_changed_expiry_or_another_key_is_invalid():
    given = query(signed_run_url("http://x", "run-1", KEY, now=1_000, ttl_s=60))

    assert check_run_link([KEY], "run-2", given["exp"], given["sig"], 1_000) == "invalid"
    assert check_run_link([KEY], "run-1", "99999999", given["sig"], 1_000) == "invalid"
    assert check_run_link([OTHER_KEY], "run-1", given["exp"], given["sig"], 1_000) == "invalid"
    assert check_run_link([KEY], "run-1", "1x", given["sig"], 1_000) == "invalid"
    assert check_run_link([OTHER_KEY, KEY], "run-1", given["exp"], given["sig"], 1_000) == \
        "valid"


def test_no_signature_at_all_is_missing():
    assert check_run_link([KEY], "run-1", None, None, 1_000) == "missing"
    assert check_run_link([KEY], "run-1", "1060", None, 1_000) == "invalid"


def test_links_use_the_address_the_api_serves(monkeypatch):
    monkeypatch.setenv("FLOWKEEPER_API_HOST", "0.0.0.0")
    monkeypatch.setenv("FLOWKEEPER_API_PORT", "18100")
    served = Settings()
    monkeypatch.setenv("FLOWKEEPER_UI_URL", "https://flows.example.com/")
    behind_a_proxy = Settings()

    assert served.base_url == "http://127.0.0.1:18100"
    assert behind_a_proxy.base_url == "https://flows.example.com"
