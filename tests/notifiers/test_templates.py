"""Templates: the documented context, useful defaults, the sandbox, and the fallback."""

from __future__ import annotations

import pytest

from notifiers import TemplateProblem
from notifiers.templates import (
    default_html,
    default_subject,
    default_text,
    redact,
    render,
    render_message,
    render_payload,
    safe_render,
)

CONTEXT = {
    "flow_run": {"id": "run-123", "name": "swift-fox", "state": "Failed",
                 "message": "ValueError: no rows in 2024-03", "parameters": {"month": "2024-03"},
                 "start": "2024-04-01T02:00:00Z", "end": "2024-04-01T02:03:12Z",
                 "duration": 192.4, "url": "http://localhost:8000/runs/run-123"},
    "flow": {"name": "taxi-training"},
    "deployment": {"name": "taxi-nightly"},
    "task_runs": [{"id": "t1", "name": "read-data", "state": "Failed",
                   "message": "ValueError: no rows in 2024-03"},
                  {"id": "t0", "name": "download", "state": "Completed", "message": None}],
    "event": {"event": "flow-run.Failed", "resource": {"resource.id": "flow-run.run-123",
                                                      "resource.name": "swift-fox"},
              "payload": {"message": "ValueError: no rows in 2024-03"}},
    "automation": {"name": "email-on-failure"},
    "firing": {"id": "firing-1"},
    "logs": ["INFO reading green_tripdata_2024-03.parquet",
             {"timestamp": "02:03:11", "level": "ERROR", "message": "no rows <in> 2024-03"}],
}


def test_a_template_sees_the_documented_context():
    text = render("{{ flow.name }} run {{ flow_run.name }} ended {{ flow_run.state }} after "
                  "{{ flow_run.duration | round | int }} s; first failed task: "
                  "{{ task_runs[0].name }}; {{ event.resource['resource.id'] }}; "
                  "{{ automation.name }}", CONTEXT)

    assert text == ("taxi-training run swift-fox ended Failed after 192 s; first failed task: "
                    "read-data; flow-run.run-123; email-on-failure")


def test_missing_names_render_empty_even_deep_down():
    assert render("[{{ nothing }}|{{ flow_run.nope.deeper }}|{{ flow.name }}]",
                  CONTEXT) == "[||taxi-training]"


def test_text_is_not_escaped_and_html_is():
    context = {"flow_run": {"message": "<b>x</b> & y"}}

    assert render("{{ flow_run.message }}", context) == "<b>x</b> & y"
    assert render("{{ flow_run.message }}", context, html=True) == \
        "&lt;b&gt;x&lt;/b&gt; &amp; y"


@pytest.mark.parametrize("template", [
    "{{ ''.__class__.__mro__ }}",
    "{{ ''.__class__.__mro__[1].__subclasses__() }}",
    "{{ flow_run.__class__ }}",
    "{{ render.__globals__ }}",
    "{{ range.__init__.__globals__['os'] }}",
    "{{ ''|attr('__class__') }}",
    "{{ namespace.__init__.__globals__.sys.modules }}",
    "{{ flow['__class__'] }}",
    "{{ '{0.__class__}'.format(flow) }}",
    "{{ self._TemplateReference__context }}",
    "{{ 'x' * 1000000000 }}",
    "{{ 10 ** 100000000 }}",
    "{% set n = 100000000 %}{{ 9 ** n }}",
])
def test_sandbox_escapes_are_refused(template: str):
    context = dict(CONTEXT, render=render)

    with pytest.raises(TemplateProblem, match="sandbox"):
        render(template, context)


def test_a_refused_template_falls_back_to_the_default_and_says_why():
    fallback = default_text(CONTEXT)

    text, problem = safe_render("{{ ''.__class__.__mro__ }}", CONTEXT, fallback)

    assert text == fallback
    assert problem is not None and "not allowed" in problem


@pytest.mark.parametrize(("template", "why"), [
    ("{{ flow_run.name ", "does not parse"),
    ("{% for x in %}{% endfor %}", "does not parse"),
    ("{{ 1 / 0 }}", "ZeroDivisionError"),
    ("{{ flow_run.name.upper(1, 2, 3) }}", "failed to render"),
    ("{% include 'other.txt' %}", "failed to render"),
])
def test_a_broken_template_falls_back_and_the_problem_is_returned(template: str, why: str):
    text, problem = safe_render(template, CONTEXT, "fallback text")

    assert text == "fallback text"
    assert problem is not None and why in problem


def test_no_template_means_the_fallback_without_a_problem():
    assert safe_render(None, CONTEXT, "default") == ("default", None)


def test_a_huge_output_is_refused_and_the_message_falls_back_to_the_default():
    # 70 chunks of 1,000 (about 1 ms), not 9,000 of 10 (15 ms here, and past the 100 ms
    # rendering limit on a loaded machine, which then refused it for its time instead)
    template = "{% for i in range(70) %}{{ 'x' * 1000 }}{% endfor %}"

    with pytest.raises(TemplateProblem, match="output longer than 65536 characters"):
        render(template, {})
    assert safe_render(template, {}, "default")[0] == "default"


def test_the_default_subject_names_the_flow_the_run_and_the_state():
    assert default_subject(CONTEXT) == "[flowkeeper] taxi-training run swift-fox Failed"
    assert default_subject({"event": CONTEXT["event"]}) == \
        "[flowkeeper] flow-run.Failed swift-fox"
    assert default_subject({}) == "[flowkeeper] notification"


def test_the_default_text_says_what_failed_why_where_and_links_to_the_run():
    text = default_text(CONTEXT)

    assert text.startswith("Flow run swift-fox of taxi-training ended Failed.")
    assert "Error: ValueError: no rows in 2024-03" in text
    assert "Task read-data Failed: ValueError: no rows in 2024-03" in text
    assert "Failed task: read-data (Failed)" in text
    assert "Deployment: taxi-nightly" in text
    assert "Duration: 3 min 12 s" in text
    assert "month='2024-03'" in text
    assert "Last log lines:\n  INFO reading green_tripdata_2024-03.parquet\n" in text
    assert "02:03:11 ERROR no rows <in> 2024-03" in text
    assert "Open the run: http://localhost:8000/runs/run-123" in text
    assert 'automation "email-on-failure"' in text


def test_the_failed_task_is_found_wherever_it_is_listed():
    context = dict(CONTEXT, task_runs=list(reversed(CONTEXT["task_runs"])))

    assert "Failed task: read-data (Failed)" in default_text(context)


def test_the_default_html_escapes_every_value():
    html = default_html(CONTEXT)

    assert "no rows &lt;in&gt; 2024-03" in html
    assert '<a href="http://localhost:8000/runs/run-123">Open the run</a>' in html
    assert "<in>" not in html


def test_defaults_cope_with_an_almost_empty_or_odd_context():
    odd = {"flow_run": {"name": "r"}, "task_runs": "not a list?", "logs": None}

    assert default_text({}).startswith("An automation fired.")
    assert "Flow run r is in a new state." in default_text({"flow_run": {"name": "r"}})
    assert default_text(odd)
    assert default_html(odd)


def test_render_message_without_templates_is_the_default_message():
    message, problems = render_message(CONTEXT, to=["ml@example.com"],
                                       labels={"flow": "taxi-training"}, dedup_key="k")

    assert problems == []
    assert message.subject == default_subject(CONTEXT)
    assert message.text == default_text(CONTEXT)
    assert message.html == default_html(CONTEXT)
    assert message.link is not None and message.link.url == CONTEXT["flow_run"]["url"]
    assert message.fields["Failed task"] == "read-data (Failed)"
    assert message.severity == "error"
    assert (message.to, message.dedup_key) == (["ml@example.com"], "k")


def test_render_message_with_a_broken_body_sends_the_default_and_records_why():
    message, problems = render_message(CONTEXT, subject="{{ flow_run.name }} failed",
                                       body="{{ flow_run.name ")

    assert message.subject == "swift-fox failed"
    assert message.text == default_text(CONTEXT)
    assert message.html == default_html(CONTEXT)
    assert len(problems) == 1 and problems[0].startswith("body: template does not parse")


def test_a_custom_body_stays_plain_text():
    message, _ = render_message(CONTEXT, body="{{ flow_run.name }} failed")

    assert (message.text, message.html) == ("swift-fox failed", None)


def test_a_payload_renders_every_string_or_falls_back_whole():
    payload = {"text": "{{ flow_run.name }} failed", "tags": ["{{ flow.name }}", 3],
               "nested": {"state": "{{ flow_run.state }}"}}

    rendered, problem = render_payload(payload, CONTEXT)
    broken, why = render_payload({"a": {"b": "{{ ''.__class__ }}"}}, CONTEXT)

    assert problem is None
    assert rendered == {"text": "swift-fox failed", "tags": ["taxi-training", 3],
                        "nested": {"state": "Failed"}}
    assert broken is None and why is not None and why.startswith("a.b: ")


def test_redact_replaces_secrets_in_nested_values():
    value = {"text": "token xoxb-123456 and xoxb-123456", "list": ["k=sk-abcdef"], "n": 3}

    assert redact(value, ["xoxb-123456", "sk-abcdef", ""]) == {
        "text": "token ******** and ********", "list": ["k=********"], "n": 3}
