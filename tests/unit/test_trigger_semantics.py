"""The trigger semantics table: a trigger, a timeline of events, the firings expected.

Times are seconds from the start of the timeline; timers fire exactly at their
deadlines (the engine's resolution is tested with the engine). Each row is
(trigger JSON, timeline of (t, event name[, labels]), firings as (t, bucket)
[, options]). Options: `until` runs the timers to that time at the end,
`resolved` lists the firings that only resolve, `timers=False` runs no timer,
`durations` gives the run history of adaptive deadlines.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.unit.trigger_timeline import event, fired, replay

RUN1, RUN2 = ("flow-run.1",), ("flow-run.2",)
NO_KEY: tuple[str, ...] = ()
FINAL = ["flow-run.Completed", "flow-run.Failed", "flow-run.Crashed", "flow-run.Cancelled"]

FAILURES = {"expect": ["flow-run.Failed"], "threshold": 3, "within": 60}
STUCK = {"posture": "Proactive", "match": {"resource.id": "flow-run.*"},
         "match_related": {"resource.role": "flow", "resource.name": "taxi-training"},
         "after": ["flow-run.Running"], "expect": FINAL, "for_each": ["resource.id"],
         "within": 600}
FAILED_AFTER_RUNNING = {"after": ["flow-run.Running"], "expect": ["flow-run.Failed"],
                        "for_each": ["resource.id"], "within": 60}
A = {"expect": ["a"]}
B = {"expect": ["b"]}
C = {"expect": ["c"]}
ADAPTIVE = {**STUCK, "within": {"expected_duration": {
    "quantile": 0.95, "factor": 2.0, "min_runs": 5, "default": 600, "scope": "deployment"}}}

CASES: list[tuple[str, dict[str, Any], list[tuple], list[tuple], dict[str, Any]]] = [
    # -- reactive thresholds and window edges --------------------------------------------
    ("reactive threshold fires on the event that reaches it inside the window",
     FAILURES, [(0, "flow-run.Failed"), (10, "flow-run.Failed"), (59.9, "flow-run.Failed")],
     [(59.9, NO_KEY)], {}),
    ("an event at exactly start plus within falls outside the window and starts the next",
     FAILURES, [(0, "flow-run.Failed"), (10, "flow-run.Failed"), (60, "flow-run.Failed"),
                (61, "flow-run.Failed"), (62, "flow-run.Failed")],
     [(62, NO_KEY)], {}),
    ("after a firing the next window starts where the fired one ends",
     {**FAILURES, "threshold": 2},
     [(0, "flow-run.Failed"), (5, "flow-run.Failed"), (30, "flow-run.Failed"),
      (40, "flow-run.Failed"), (65, "flow-run.Failed"), (70, "flow-run.Failed")],
     [(5, NO_KEY), (70, NO_KEY)], {}),
    ("events of other names do not count",
     FAILURES, [(0, "flow-run.Failed"), (1, "flow-run.Completed"), (2, "flow-run.Failed"),
                (3, "flow-run.Crashed")],
     [], {}),
    ("within 0 and threshold 1 fires on every event",
     {"expect": ["flow-run.Failed"]},
     [(0, "flow-run.Failed"), (0, "flow-run.Failed"), (1, "flow-run.Failed")],
     [(0, NO_KEY), (0, NO_KEY), (1, NO_KEY)], {}),
    ("within 0 and threshold 3 counts without a window",
     {"expect": ["flow-run.Failed"], "threshold": 3},
     [(0, "flow-run.Failed"), (1000, "flow-run.Failed"), (100000, "flow-run.Failed"),
      (100001, "flow-run.Failed")],
     [(100000, NO_KEY)], {}),
    ("an empty expect counts every covered event",
     {"threshold": 2, "within": 10}, [(0, "anything"), (1, "flow-run.Running")],
     [(1, NO_KEY)], {}),
    # -- for_each buckets -------------------------------------------------------------------
    ("for_each keeps one bucket per run",
     {**FAILURES, "threshold": 2, "for_each": ["resource.id"]},
     [(0, "flow-run.Failed", {"run": "1"}), (1, "flow-run.Failed", {"run": "2"}),
      (2, "flow-run.Failed", {"run": "1"}), (70, "flow-run.Failed", {"run": "2"})],
     [(2, RUN1)], {}),
    ("several for_each buckets fire independently",
     {**FAILURES, "threshold": 2, "for_each": ["resource.id"]},
     [(0, "flow-run.Failed", {"run": "1"}), (1, "flow-run.Failed", {"run": "2"}),
      (2, "flow-run.Failed", {"run": "2"}), (3, "flow-run.Failed", {"run": "1"})],
     [(2, RUN2), (3, RUN1)], {}),
    ("for_each on a related label buckets by flow",
     {**FAILURES, "threshold": 2, "for_each": ["related:flow:resource.name"]},
     [(0, "flow-run.Failed", {"run": "1", "flow": "a"}),
      (1, "flow-run.Failed", {"run": "2", "flow": "b"}),
      (2, "flow-run.Failed", {"run": "3", "flow": "a"})],
     [(2, ("a",))], {}),
    # -- after, then expect -------------------------------------------------------------------
    ("a reactive after opens a window that an expected event fires in",
     FAILED_AFTER_RUNNING,
     [(0, "flow-run.Running"), (30, "flow-run.Failed"), (40, "flow-run.Failed")],
     [(30, RUN1)], {}),
    ("an expected event without a preceding after is ignored",
     FAILED_AFTER_RUNNING, [(0, "flow-run.Failed")], [], {}),
    ("an expected event at the end of the after window is too late",
     FAILED_AFTER_RUNNING, [(0, "flow-run.Running"), (60, "flow-run.Failed")], [], {}),
    ("an after event does not restart an open window",
     FAILED_AFTER_RUNNING,
     [(0, "flow-run.Running"), (50, "flow-run.Running"), (70, "flow-run.Failed")], [], {}),
    ("an event in both after and expect opens the window without counting in it",
     {"after": ["x"], "expect": ["x"], "within": 60}, [(0, "x"), (10, "x")],
     [(10, NO_KEY)], {}),
    # -- proactive ------------------------------------------------------------------------------
    ("proactive fires at the deadline when the expected event never arrives",
     STUCK, [(0, "flow-run.Running")], [(600, RUN1)], {"until": 700}),
    ("proactive does not fire when the expected event arrives before the deadline",
     STUCK, [(0, "flow-run.Running"), (599, "flow-run.Completed")], [], {"until": 2000}),
    ("an expected event at exactly the deadline is too late and resolves the firing",
     STUCK, [(0, "flow-run.Running"), (600, "flow-run.Completed")], [(600, RUN1)],
     {"resolved": [(600, RUN1)]}),
    ("proactive deadlines are kept per run",
     STUCK, [(0, "flow-run.Running", {"run": "1"}), (100, "flow-run.Running", {"run": "2"}),
             (200, "flow-run.Completed", {"run": "1"})],
     [(700, RUN2)], {"until": 800}),
    ("proactive does not fire for runs of another flow",
     STUCK, [(0, "flow-run.Running", {"flow": "other"})], [], {"until": 700}),
    ("proactive threshold 2 fires when only one expected event arrives",
     {**STUCK, "expect": ["task-run.Completed"], "threshold": 2, "within": 60,
      "match": {}},
     [(0, "flow-run.Running"), (10, "task-run.Completed")], [(60, RUN1)], {"until": 100}),
    ("an event that notices a passed deadline fires it without a timer",
     STUCK, [(0, "flow-run.Running"), (650, "flow-run.Completed")], [(600, RUN1)],
     {"timers": False}),
    ("a late expected event resolves a proactive firing",
     STUCK, [(0, "flow-run.Running"), (700, "flow-run.Completed")], [(600, RUN1)],
     {"resolved": [(700, RUN1)]}),
    ("a new after event replaces a bucket that fired",
     STUCK, [(0, "flow-run.Running"), (700, "flow-run.Running")], [(600, RUN1), (1300, RUN1)],
     {"until": 1400}),
    ("proactive without after fires once per window without the expected event",
     {"posture": "Proactive", "expect": ["data.arrived"], "within": 100},
     [(0, "flow-run.Running"), (50, "data.arrived"), (250, "data.arrived")],
     [(200, NO_KEY), (400, NO_KEY)], {"until": 450, "resolved": [(250, NO_KEY)]}),
    # -- compound -----------------------------------------------------------------------------------
    ("compound all fires when every child fired within the window",
     {"type": "compound", "require": "all", "within": 60, "triggers": [A, B]},
     [(0, "a"), (30, "b")], [(30, NO_KEY)], {}),
    ("compound all drops a child firing older than within",
     {"type": "compound", "require": "all", "within": 60, "triggers": [A, B]},
     [(0, "a"), (61, "b"), (70, "a")], [(70, NO_KEY)], {}),
    ("compound any fires on each child firing",
     {"type": "compound", "require": "any", "triggers": [A, B]},
     [(5, "a"), (6, "b")], [(5, NO_KEY), (6, NO_KEY)], {}),
    ("compound 2 of 3 needs two different children",
     {"type": "compound", "require": 2, "triggers": [A, B, C]},
     [(0, "a"), (1, "a"), (2, "c")], [(2, NO_KEY)], {}),
    ("compound resets after firing",
     {"type": "compound", "require": "all", "triggers": [A, B]},
     [(0, "a"), (1, "b"), (2, "b"), (3, "a")], [(1, NO_KEY), (3, NO_KEY)], {}),
    ("compound with a proactive child fires when the deadline passes",
     {"type": "compound", "require": "all", "within": 120, "triggers": [
         {**STUCK, "within": 60}, {"expect": ["flow-run.Failed"]}]},
     [(0, "flow-run.Running", {"run": "1"}), (30, "flow-run.Failed", {"run": "2"})],
     [(60, NO_KEY)], {"until": 100}),
    # -- sequence -----------------------------------------------------------------------------------
    ("sequence fires when its children fire in order",
     {"type": "sequence", "triggers": [A, B]}, [(0, "a"), (10, "b")], [(10, NO_KEY)], {}),
    ("sequence waits for the order, not just the set",
     {"type": "sequence", "triggers": [A, B]}, [(0, "b"), (10, "a"), (20, "b")],
     [(20, NO_KEY)], {}),
    ("sequence children must fire within its window",
     {"type": "sequence", "within": 60, "triggers": [A, B]}, [(0, "a"), (100, "b")], [], {}),
    ("a sequence of a completion then a compound needs the compound to fire after it",
     {"type": "sequence", "within": 7200, "triggers": [
         {"expect": ["flow-run.Completed"]},
         {"type": "compound", "require": "all", "triggers": [A, B]}]},
     [(0, "a"), (1, "b"), (5, "flow-run.Completed"), (10, "a"), (20, "b")],
     [(20, NO_KEY)], {}),
    # -- wildcards and negation ---------------------------------------------------------------------
    ("a wildcard event name matches every name with its prefix",
     {"expect": ["flow-run.*"]}, [(0, "flow-run.Failed"), (1, "task-run.Failed")],
     [(0, NO_KEY)], {}),
    ("a wildcard label matches by prefix",
     {"expect": ["flow-run.Failed"], "match": {"resource.id": "flow-run.*"}},
     [(0, "flow-run.Failed", {"resource": {"resource.id": "task-run.9"}}),
      (1, "flow-run.Failed")], [(1, NO_KEY)], {}),
    ("a negated related label leaves out the flows it names",
     {"expect": ["flow-run.Failed"],
      "match_related": {"resource.role": "flow", "resource.name": "!taxi-*"}},
     [(0, "flow-run.Failed", {"flow": "taxi-training"}), (1, "flow-run.Failed", {"flow": "etl"})],
     [(1, NO_KEY)], {}),
    ("positive and negated values in one list combine",
     {"expect": ["flow-run.Failed"], "match": {"resource.name": ["prod-*", "!prod-test-*"]}},
     [(0, "flow-run.Failed", {"resource": {"resource.name": "prod-a"}}),
      (1, "flow-run.Failed", {"resource": {"resource.name": "prod-test-b"}}),
      (2, "flow-run.Failed", {"resource": {"resource.name": "dev-c"}})],
     [(0, NO_KEY)], {}),
    ("a negated label does not match a resource without the label",
     {"expect": ["flow-run.Failed"], "match": {"env": "!dev"}},
     [(0, "flow-run.Failed"), (1, "flow-run.Failed", {"resource": {"env": "prod"}}),
      (2, "flow-run.Failed", {"resource": {"env": "dev"}})],
     [(1, NO_KEY)], {}),
    # -- out of order -------------------------------------------------------------------------------
    ("an event older than its window's start moves it back, and the firing is at the latest",
     {**FAILURES, "threshold": 2}, [(100, "flow-run.Failed"), (90, "flow-run.Failed"),
                                    (110, "flow-run.Failed")],
     [(100, NO_KEY)], {}),
    ("an event older than within before the latest counted is ignored",
     {**FAILURES, "threshold": 2}, [(100, "flow-run.Failed"), (40, "flow-run.Failed"),
                                    (110, "flow-run.Failed")],
     [(110, NO_KEY)], {}),
    ("a redelivered event is not counted twice",
     {**FAILURES, "threshold": 2},
     [(0, "flow-run.Failed", {"id": "00000000-0000-0000-0000-000000000001"}),
      (0, "flow-run.Failed", {"id": "00000000-0000-0000-0000-000000000001"}),
      (5, "flow-run.Failed")],
     [(5, NO_KEY)], {}),
    ("an expected event older than its after event does not close the window",
     STUCK, [(100, "flow-run.Running"), (90, "flow-run.Completed")], [(700, RUN1)],
     {"until": 800}),
    # -- adaptive deadline --------------------------------------------------------------------------
    ("an adaptive deadline uses its default without enough history",
     ADAPTIVE, [(0, "flow-run.Running")], [(600, RUN1)],
     {"until": 1000, "durations": {"deployment": [100.0, 100.0, 100.0]}}),
    ("an adaptive deadline is factor times the quantile of the last runs",
     ADAPTIVE, [(0, "flow-run.Running")], [(310, RUN1)],
     {"until": 1000, "durations": {"deployment": [100.0] * 9 + [200.0]}}),
    ("an adaptive deadline reads the history of its own scope",
     {**ADAPTIVE, "within": {"expected_duration": {"min_runs": 1, "scope": "flow"}}},
     [(0, "flow-run.Running")], [(100, RUN1)],
     {"until": 1000, "durations": {"deployment": [1000.0], "flow": [50.0]}}),
]


def _timeline(rows: list[tuple]) -> list:
    items = []
    for row in rows:
        t, name, *rest = row
        items.append(event(t, name, **(rest[0] if rest else {})))
    return items


@pytest.mark.parametrize(("trigger", "timeline", "expected", "options"),
                         [case[1:] for case in CASES], ids=[case[0] for case in CASES])
def test_trigger_semantics(trigger, timeline, expected, options):
    options = dict(options)
    until = options.pop("until", None)
    resolved = options.pop("resolved", None)
    run = replay(trigger, _timeline(timeline), until, **options)
    assert fired(run) == expected
    if resolved is not None:
        assert fired(run, "resolved") == resolved


def test_the_table_covers_every_kind_of_case():
    names = " ".join(case[0] for case in CASES)
    for word in ("window", "for_each", "after", "proactive", "compound", "sequence",
                 "wildcard", "negated", "older", "adaptive"):
        assert word in names
