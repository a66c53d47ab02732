"""The engine process's policy for Python's cyclic garbage collector.

The automations an engine has loaded live as long as their version: left in the
collector's sight, every full collection walks them (about 0.5 s at 10,000 automations, a
pause in the middle of a batch). So the engine process freezes them (`gc.freeze`) each
time a version is installed. On a whole reload it unfreezes and collects first, so that
the previous version's cycles are freed; one changed automation is not worth a full
collection: its old objects wait for the next reload.

This is the process's choice, made where the engine process starts (service.py) and by
the benchmarks that run an engine in their own process; an engine built elsewhere (the
tests, `explain`) leaves its process's collector alone.
"""

from __future__ import annotations

import gc

from services.engine.engine import Engine


def freeze_installed_automations(whole_reload: bool) -> None:
    """Keep what is loaded now out of the collector's sight (after a whole reload, collect
    the previous version's garbage first)."""
    if whole_reload:
        gc.unfreeze()
        gc.collect()
    gc.freeze()


def keep_automations_out_of_the_collector(engine: Engine) -> None:
    """Freeze every version of the automations `engine` installs, from now on."""
    engine.automations.after_install = freeze_installed_automations
