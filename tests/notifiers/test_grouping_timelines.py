"""Grouping replayed on timelines: group_wait, group_interval, repeat_interval, dedup."""

from __future__ import annotations

import pytest

from notifiers import Link, Message
from notifiers.grouping import (
    GroupPolicy,
    GroupState,
    add,
    due,
    flush,
    group_key,
    needs_update,
    new_group,
    render_group,
)

POLICY = GroupPolicy(group_by=("flow",), group_wait_s=30, group_interval_s=300,
                     repeat_interval_s=3600)


def failure(run: str, **fields: object) -> Message:
    values: dict = {
        "subject": f"taxi-training run {run} Failed", "text": f"run {run} failed",
        "labels": {"flow": "taxi-training", "event": "flow-run.Failed", "resource.name": run},
        "dedup_key": f"flow-run.{run}.Failed",
        "link": Link(url=f"http://ui/runs/{run}", label="Open the run"), "to": ["t@example.com"],
    }
    return Message(**(values | fields))


def replay(state: GroupState, timeline: list[tuple[float, Message | None]]
           ) -> tuple[list[tuple[float, list[str]]], GroupState]:
    """Feed messages at their times, flushing whenever the group is due on the way; a None
    entry only lets time pass. Returns (when, dedup keys) of every notification."""
    sent = []

    def flush_until(now: float) -> None:
        nonlocal state
        while state.next_flush_at is not None and state.next_flush_at <= now:
            at = state.next_flush_at
            items, state = flush(state, at)
            if items:
                sent.append((at, [item.dedup_key for item in items]))

    for now, message in timeline:
        flush_until(now)
        if message is not None:
            state = add(state, message, now)
    return sent, state


def test_the_group_key_names_the_group_by_labels_in_order():
    labels = {"flow": "taxi", "state": "Failed", "run": "a"}

    assert group_key(labels, ["state", "flow"]) == '{flow="taxi",state="Failed"}'
    assert group_key(labels, []) == "{}"
    assert group_key(labels, ["missing"]) == '{missing=""}'
    assert group_key(labels, ["..."]) == '{flow="taxi",run="a",state="Failed"}'
    assert group_key({"flow": 'a"b'}, ["flow"]) == '{flow="a\\"b"}'


def test_a_first_message_waits_group_wait():
    state = add(new_group(failure("a").labels, POLICY), failure("a"), now=0.0)

    assert state.next_flush_at == 30.0
    assert not due(state, 29.9)
    assert due(state, 30.0)
    assert flush(state, 29.9) == ([], state)


def test_messages_within_group_wait_leave_as_one_notification():
    group = new_group(failure("a").labels, POLICY)
    timeline = [(0.0, failure("a")), (10.0, failure("b")), (29.0, failure("c")),
                (31.0, None)]

    sent, _ = replay(group, timeline)

    assert sent == [(30.0, ["flow-run.a.Failed", "flow-run.b.Failed", "flow-run.c.Failed"])]


def test_a_hundred_failures_within_a_minute_make_one_message():
    policy = POLICY.model_copy(update={"group_wait_s": 60.0})
    group = new_group(failure("r0").labels, policy)
    timeline = [(i * 0.5, failure(f"r{i}")) for i in range(100)] + [(61.0, None)]

    sent, state = replay(group, timeline)

    assert len(sent) == 1
    assert len(sent[0][1]) == 100
    message = render_group(list(state.items.values()))
    assert message.subject.startswith("100 flow runs failed: r0, r1, r2 and 97 more")
    assert "and 80 more" in message.text


def test_a_new_message_after_a_notification_waits_for_group_interval():
    group = new_group(failure("a").labels, POLICY)
    timeline = [(0.0, failure("a")), (100.0, failure("b")), (200.0, failure("c")),
                (400.0, None)]

    sent, _ = replay(group, timeline)

    assert sent == [(30.0, ["flow-run.a.Failed"]),
                    (330.0, ["flow-run.a.Failed", "flow-run.b.Failed", "flow-run.c.Failed"])]


def test_a_duplicate_within_repeat_interval_sends_nothing_new():
    group = new_group(failure("a").labels, POLICY)
    timeline = [(0.0, failure("a")), (100.0, failure("a")), (500.0, failure("a")),
                (1000.0, None)]

    sent, state = replay(group, timeline)

    assert sent == [(30.0, ["flow-run.a.Failed"])]
    assert state.items["flow-run.a.Failed"].count == 3


def test_a_failure_that_keeps_happening_is_repeated_after_repeat_interval():
    group = new_group(failure("a").labels, POLICY)
    timeline = [(0.0, failure("a")), (1800.0, failure("a")), (3000.0, failure("a")),
                (3700.0, None)]

    sent, state = replay(group, timeline)

    assert [at for at, _ in sent] == [30.0, 3630.0]
    repeated = render_group([state.items["flow-run.a.Failed"]])
    assert "seen 3 times" in repeated.text


def test_a_failure_that_stopped_is_forgotten_and_is_new_when_it_returns():
    group = new_group(failure("a").labels, POLICY)
    timeline = [(0.0, failure("a")), (5000.0, None), (6000.0, failure("a")),
                (7000.0, None)]

    sent, state = replay(group, timeline)

    assert [at for at, _ in sent] == [30.0, 6000.0]
    assert state.items["flow-run.a.Failed"].count == 1


def test_a_group_whose_items_all_expired_is_idle():
    group = new_group(failure("a").labels, POLICY)

    _, state = replay(group, [(0.0, failure("a")), (10_000.0, None)])

    assert state.items == {}
    assert state.is_idle()


def test_needs_update_follows_alertmanager():
    state = add(new_group({}, POLICY), failure("a"), now=0.0)
    items, notified = flush(state, 30.0)
    item_b = add(notified, failure("b"), now=40.0).items["flow-run.b.Failed"]

    assert needs_update(state, items, now=30.0), "nothing notified yet"
    assert not needs_update(notified, [], now=30.0), "nothing to say"
    assert not needs_update(notified, items, now=100.0), "the same items, too soon"
    assert needs_update(notified, [*items, item_b], now=100.0), "a new item"
    assert needs_update(notified, items, now=30.0 + 3600.0), "repeat interval passed"


def test_messages_without_a_dedup_key_are_distinct_by_id():
    group = new_group({}, POLICY)
    state = add(add(group, Message(subject="x", text="y"), 0.0), Message(subject="x", text="y"),
                1.0)

    assert len(state.items) == 2


def test_the_state_survives_a_json_round_trip():
    state = add(new_group(failure("a").labels, POLICY), failure("a"), now=0.0)

    assert GroupState.model_validate_json(state.model_dump_json()) == state


def test_a_grouped_message_lists_items_and_keeps_recipients_and_shared_labels():
    group = new_group(failure("a").labels, POLICY)
    state = add(add(add(group, failure("a"), 0.0), failure("b"), 1.0),
                failure("c", severity="critical"), 2.0)
    items, _ = flush(state, 30.0)

    message = render_group(items)

    assert message.subject == "3 flow runs failed: a, b, c"
    assert "- taxi-training run a Failed\n  http://ui/runs/a" in message.text
    assert '<a href="http://ui/runs/b">taxi-training run b Failed</a>' in message.html
    assert message.to == ["t@example.com"]
    assert message.severity == "critical"
    assert message.labels == {"flow": "taxi-training", "event": "flow-run.Failed"}
    assert message.link is None


def test_a_single_item_is_sent_as_itself():
    state = add(new_group({}, POLICY), failure("a"), 0.0)
    items, _ = flush(state, 30.0)

    assert render_group(items) == failure("a").model_copy(update={"id": items[0].message.id})


def test_grouping_needs_an_item():
    with pytest.raises(ValueError):
        render_group([])


def test_an_expired_item_returning_is_new_even_after_a_recent_notification():
    group = new_group(failure("a").labels, POLICY)
    # b's notification at 3000 lists a; a expires at 3600 and returns at 4000
    timeline = [(0.0, failure("a")), (3000.0, failure("b")), (4000.0, failure("a")),
                (4001.0, None)]

    sent, _ = replay(group, timeline)

    assert sent == [(30.0, ["flow-run.a.Failed"]),
                    (3000.0, ["flow-run.a.Failed", "flow-run.b.Failed"]),
                    (4000.0, ["flow-run.b.Failed", "flow-run.a.Failed"])]
