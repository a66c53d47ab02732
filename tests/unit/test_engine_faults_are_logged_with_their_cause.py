"""An automation the engine cannot use is skipped and the engine goes on; when the cause
is a fault (not a document that fails validation), its traceback is logged, so a bug is
found where it is and not only as an automation that never fires."""

from __future__ import annotations

import logging

from services.core.keys import Keys
from services.engine.loading import LoadedAutomations


def loaded_automations() -> LoadedAutomations:
    return LoadedAutomations(client=None, keys=Keys("test"))  # type: ignore[arg-type]


def test_a_document_that_fails_validation_is_skipped_with_its_message_only(caplog):
    automations = loaded_automations()
    with caplog.at_level(logging.ERROR, logger="flowkeeper"):
        assert automations._parse("a1", '{"name": ""}') is None
    [record] = caplog.records
    assert record.getMessage().startswith("automation a1 cannot be loaded: ")
    assert record.exc_info is None


def test_a_fault_while_loading_is_logged_with_its_traceback(caplog, monkeypatch):
    from services.engine import loading

    def broken(_automation):
        raise KeyError("fingerprint")

    monkeypatch.setattr(loading.Loaded, "of", broken)
    automations = loaded_automations()
    document = ('{"id": "a2", "created": "2026-01-01T00:00:00Z", '
                '"updated": "2026-01-01T00:00:00Z", "name": "n", '
                '"trigger": {"type": "event", "expect": ["x"]}, '
                '"actions": [{"type": "do-nothing"}]}')
    with caplog.at_level(logging.ERROR, logger="flowkeeper"):
        assert automations._parse("a2", document) is None
    [record] = caplog.records
    assert record.getMessage() == "automation a2 cannot be loaded: 'fingerprint' (skipped)"
    assert record.exc_info is not None and record.exc_info[0] is KeyError
