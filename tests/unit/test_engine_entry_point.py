"""`python -m services.engine [--consumer NAME]` starts one replica with this
installation's settings (from the environment) under the name given."""

from __future__ import annotations

import pytest

from services.engine import __main__ as entry_point


def test_the_replica_runs_under_the_name_given_with_the_environments_settings(monkeypatch):
    started = []
    monkeypatch.setenv("FLOWKEEPER_KEY_PREFIX", "fk-entry")
    monkeypatch.setattr(entry_point, "run_engine",
                        lambda settings, consumer: started.append((settings, consumer)))

    entry_point.main(["--consumer", "replica-2"])
    entry_point.main([])

    [(settings, named), (_, default)] = started
    assert settings.key_prefix == "fk-entry"
    assert (named, default) == ("replica-2", None)  # None: the engine names itself


def test_an_unknown_option_is_refused_with_usage(capsys):
    with pytest.raises(SystemExit) as exit_info:
        entry_point.main(["--consumers", "x"])

    assert exit_info.value.code == 2
    assert "unrecognized arguments: --consumers" in capsys.readouterr().err
