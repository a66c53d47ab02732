"""Template bombs end in a clear refusal, quickly, on every path that renders a template:
notification subjects and bodies, webhook payloads, and action parameters."""

from __future__ import annotations

import time
import tracemalloc

import pytest

from automations.errors import RenderError
from automations.templates import render_value
from notifiers.errors import TemplateProblem
from notifiers.sandbox import MAX_OUTPUT_CHARS, render
from notifiers.templates import render_message, render_payload

BOMBS = {
    "repetition": "{{ 'a' * 10**8 }}",
    "nested loops without output":
        "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}",
    "nested loops within the range cap":
        "{% for i in range(10000) %}{% for j in range(10000) %}{% endfor %}{% endfor %}",
    "a huge list joined": "{{ range(10**6)|list|join }}",
    "a joined range within the cap, repeated":
        "{% for i in range(10000) %}{{ range(10000)|list|join }}{% endfor %}",
    "recursion through a macro": "{% macro f(n) %}{{ f(n) }}{% endmacro %}{{ f(1) }}",
    "exponential macro calls":
        "{% macro f(n) %}{% if n %}{{ f(n-1) }}{{ f(n-1) }}{% endif %}{% endmacro %}{{ f(60) }}",
    "doubling through a namespace":
        "{% set ns = namespace(s='ab') %}{% for i in range(64) %}"
        "{% set ns.s = ns.s ~ ns.s %}{% endfor %}{{ ns.s|length }}",
    "doubling with +":
        "{% set ns = namespace(s=[1]) %}{% for i in range(64) %}"
        "{% set ns.s = ns.s + ns.s %}{% endfor %}{{ ns.s|length }}",
    "squaring integers":
        "{% set ns = namespace(n=3) %}{% for i in range(64) %}"
        "{% set ns.n = ns.n * ns.n %}{% endfor %}{{ ns.n > 0 }}",
    "a huge padding filter": "{{ 'a'|center(10**9) }}",
    "a huge printf width": "{{ '%100000000d' % 1 }}",
    "a huge format width": "{{ '{:>100000000}'.format(1) }}",
    "a huge format filter width": "{{ '%*d'|format(10**9, 1) }}",
    "loop recursion":
        "{% for x in [1] recursive %}{{ loop([x]) }}{% endfor %}",
    "a huge str padding": "{{ 'a'.ljust(10**8)|length }}",
    "a huge replace filter": "{{ ('ab' * 30000)|replace('a', 'x' * 60000)|length }}",
    "a huge replace method": "{{ ('ab' * 30000).replace('a', 'x' * 60000)|length }}",
    "many format fields within the repetition cap":
        "{{ ('{0:>60000}' * 5000).format(1)|length }}",
    "a format width given as an argument": "{{ '{0:>{1}}'.format(1, 10**8)|length }}",
    "a huge join method": "{{ ('x' * 2000).join(['1'] * 60000)|length }}",
    "a huge join filter": "{{ range(5000)|map('string')|join('x' * 60000)|length }}",
    "joining one long string many times": "{{ (['x' * 60000] * 60000)|join|length }}",
    "a huge indent": "{{ ('a\n' * 30000)|indent(60000)|length }}",
    "str.translate": "{{ 'a'.translate({97: 'xx'}) }}",
}


@pytest.mark.parametrize("template", BOMBS.values(), ids=BOMBS.keys())
def test_a_template_bomb_is_refused_by_the_sandbox(template: str):
    started = time.monotonic()

    with pytest.raises(TemplateProblem, match="sandbox"):
        render(template, {})
    # generous: the limit is 0.1 s of CPU, the old code took minutes or all memory; a
    # refusal after the allocation would take seconds here (1.4 s for the replace)
    assert time.monotonic() - started < 10


@pytest.mark.parametrize("template", BOMBS.values(), ids=BOMBS.keys())
def test_a_template_bomb_is_refused_before_it_allocates_the_huge_value(template: str):
    # a check after the fact would refuse too, having built 100 MB to 4 GB first
    render("{{ 1 }}", {})  # jinja's own imports and caches are not the template's
    tracemalloc.start()
    try:
        with pytest.raises(TemplateProblem):
            render(template, {})
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()

    assert peak < 16 * 1024 * 1024, f"{peak / 1e6:.0f} MB"


@pytest.mark.parametrize("template", BOMBS.values(), ids=BOMBS.keys())
def test_a_template_bomb_in_run_deployment_parameters_is_a_render_error(template: str):
    with pytest.raises(RenderError, match=r"^parameters\.reason: template .*sandbox"):
        render_value({"reason": template}, {}, "parameters")


def test_a_template_bomb_in_a_notification_falls_back_to_the_default_message():
    context = {"flow_run": {"name": "swift-fox", "state": "Failed"}}

    message, problems = render_message(context, subject=BOMBS["repetition"],
                                       body=BOMBS["nested loops without output"])

    assert message.subject == "[flowkeeper] run swift-fox Failed"
    assert "Flow run swift-fox is Failed" in message.text or "swift-fox" in message.text
    assert [problem.split(":")[0] for problem in problems] == ["subject", "body"]
    assert all("sandbox" in problem for problem in problems)


def test_a_template_bomb_in_a_webhook_payload_names_its_path():
    payload, problem = render_payload({"data": {"text": BOMBS["a huge list joined"]}}, {})

    assert payload is None and problem.startswith("data.text: template refused by the sandbox")


def test_output_at_the_cap_renders_and_one_more_character_is_refused():
    exact = "{{ 'x' * " + str(MAX_OUTPUT_CHARS) + " }}"

    assert len(render(exact, {})) == MAX_OUTPUT_CHARS
    with pytest.raises(TemplateProblem, match=f"more than {MAX_OUTPUT_CHARS}|longer than"):
        render(exact + "y", {})


def test_ordinary_templates_still_render():
    context = {"flow_run": {"name": "nightly", "parameters": {"a": 1, "b": 2}},
               "tasks": [{"name": "load"}, {"name": "train"}]}
    template = ("{{ flow_run.name|upper }}: {% for t in tasks %}{{ loop.index }}.{{ t.name }}"
                "{% if not loop.last %}, {% endif %}{% endfor %}; "
                "{% for k, v in flow_run.parameters.items() %}{{ k }}={{ v }} {% endfor %}"
                "{{ '%05.1f' % 3.14159 }} {{ '{:>4}'.format(7) }} {{ range(3)|sum }} "
                "{{ 'rows {:,}'.format(1234567) }} {{ ', '.join(['x', 'y']) }} "
                "{{ 'ab'.replace('a', 'c') }} {{ 'l1\nl2'|indent(2) }}")

    assert render(template, context) == \
        "NIGHTLY: 1.load, 2.train; a=1 b=2 003.1    7 3 rows 1,234,567 x, y cb l1\n  l2"
