"""User input that used to stall a worker: a backtracking silence matcher (Python's re,
each extra character doubling the time) against RE2, template bombs against the hardened
sandbox's limits, and what the sandbox costs an ordinary notification template."""

from __future__ import annotations

import re
import time

from bench.harness import Row, median_of

PATTERN = r"flow-run\.(a+)+$"
# Python's re on a subject this long already takes a noticeable time (x2 per character)
BACKTRACKING_CHARS = 20
LONG_SUBJECT_CHARS = 100_000
RUNS = 5
BOMBS = {
    "'a' * 10**8": "{{ 'a' * 10**8 }}",
    "nested range(100000) loops": "{% for i in range(100000) %}{% for j in range(100000) %}"
                                  "{% endfor %}{% endfor %}",
    "range(10**6), list and join filters": "{{ range(10**6)|list|join }}",
    "exponential macro calls": "{% macro f(n) %}{% if n %}{{ f(n-1) }}{{ f(n-1) }}{% endif %}"
                               "{% endmacro %}{{ f(60) }}",
    "~ doubling in a namespace": "{% set ns = namespace(s='ab') %}{% for i in range(64) %}"
                                 "{% set ns.s = ns.s ~ ns.s %}{% endfor %}",
}
ORDINARY = ("[flowkeeper] {{ flow.name }} run {{ flow_run.name }} {{ flow_run.state }}: "
            "{% for task in task_runs %}{{ task.name }}={{ task.state }} {% endfor %}"
            "{{ flow_run.message|truncate(80) }}")
CONTEXT = {"flow": {"name": "taxi-training"},
           "flow_run": {"name": "swift-fox", "state": "Failed", "message": "boom " * 40},
           "task_runs": [{"name": f"task-{i}", "state": "Completed"} for i in range(10)]}


def _time(call) -> float:
    started = time.perf_counter()
    call()
    return time.perf_counter() - started


def _regex_rows() -> list[Row]:
    from notifiers.silences import Matcher

    matcher = Matcher.parse(f"resource.id=~{PATTERN}")
    short = "flow-run." + "a" * BACKTRACKING_CHARS + "!"
    long = "flow-run." + "a" * LONG_SUBJECT_CHARS + "!"
    backtracking = re.compile(PATTERN)
    python_s = _time(lambda: backtracking.fullmatch(short))
    re2_short, _ = median_of(RUNS, lambda: _time(lambda: matcher.matches({"resource.id": short})))
    re2_long, _ = median_of(RUNS, lambda: _time(lambda: matcher.matches({"resource.id": long})))
    return [
        Row("sandbox", f"silence matcher =~{PATTERN} on a {len(short)}-char subject, RE2",
            f"{re2_short * 1e6:.0f} us", f"Python re {python_s * 1000:.0f} ms",
            f"{python_s / re2_short:,.0f}x faster", "linear time"),
        Row("sandbox", f"the same matcher on a {len(long):,}-char subject, RE2",
            f"{re2_long * 1000:.2f} ms", "Python re: x2 per char (9.1 s at 28)", "", ""),
    ]


def _template_rows() -> list[Row]:
    from jinja2.sandbox import SandboxedEnvironment

    from notifiers.errors import TemplateProblem
    from notifiers.sandbox import RENDER_CPU_S, render

    rows = []
    for label, template in BOMBS.items():
        def refuse(template: str = template, label: str = label) -> float:
            started = time.perf_counter()
            try:
                render(template, {})
            except TemplateProblem:
                return time.perf_counter() - started
            raise AssertionError(f"{label} was not refused")

        median, runs = median_of(RUNS, refuse)
        rows.append(Row("sandbox", f"template bomb {label}: refused after", f"{median * 1000:.0f} ms",
                        "", f"max {max(runs) * 1000:.0f} ms",
                        f"<= {RENDER_CPU_S * 1000:.0f} ms CPU + one step"))
    stock = SandboxedEnvironment().from_string(ORDINARY)
    render(ORDINARY, CONTEXT)  # compiled once, as the cache keeps it
    hardened, _ = median_of(RUNS, lambda: _time(lambda: [render(ORDINARY, CONTEXT)
                                                         for _ in range(1000)]) / 1000)
    plain, _ = median_of(RUNS, lambda: _time(lambda: [stock.render(**CONTEXT)
                                                      for _ in range(1000)]) / 1000)
    rows.append(Row("sandbox", "an ordinary notification subject (10-task loop), per render",
                    f"{hardened * 1e6:.0f} us", f"stock jinja sandbox {plain * 1e6:.0f} us",
                    f"{hardened / plain:.1f}x", ""))
    return rows


def run() -> list[Row]:
    return _regex_rows() + _template_rows()
