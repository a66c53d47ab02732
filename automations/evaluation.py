"""Trigger evaluation: pure functions from (trigger, stored state, event, now) to a decision.

The engine loads the state of the bucket an event falls in
(`trigger.bucketing_key(event)`; `()` for composites), calls `evaluate`, and
writes `Evaluation.state` back (compare-and-set on `version`), records the
firings, sets the timer to `Evaluation.deadline` and the key's expiry to
`Evaluation.expires_at`. When a deadline passes it calls `expire`. A proactive
trigger that watches from the start (no `after`, no `for_each`) is started by
`arm` when its automation is loaded. Nothing here reads a clock: event times
come from the events, the engine's time from `now` (seconds since the epoch).

Event trigger windows are in `automations.windows`, with the implementation
notes their branches cite ([1]-[8], [10], [11]). Composite triggers:

[9] Children are evaluated as triggers of their own (each event trigger with
    its buckets, nested in the composite's one state). A child firing is kept
    as the child's latest; firings older than the newest minus `within` are
    dropped (inclusive edge, as Prefect's cleanup). Compound fires when
    `require` distinct children have fired; sequence when every child has
    fired and their latest firings are in order. Firing clears the children's
    firings. A composite needing one firing fires at once (Prefect's
    shortcut). Only triggered (not resolved) child firings count.
"""

from __future__ import annotations

from collections.abc import Mapping

from automations.events import Event, resource_ident
from automations.state import (
    RESOLVED,
    TRIGGERED,
    BucketState,
    ChildFiring,
    Evaluation,
    Firing,
    firing_key,
)
from automations.triggers import CompoundTrigger, EventTrigger, SequenceTrigger, Trigger
from automations.windows import (
    EXPECTED_DURATION_HISTORY_RUNS,
    RESOLUTION_HORIZON_S,
    Context,
    Durations,
    describe_within,
    event_step,
    open_window,
    resolve_within,
    settle,
)

__all__ = ["EXPECTED_DURATION_HISTORY_RUNS", "RESOLUTION_HORIZON_S", "Durations", "arm",
           "describe_within", "evaluate", "expire", "history_subject", "needs_arming",
           "resolve_within"]


def _slot(index: int, trigger: Trigger, key: tuple[str, ...]) -> str:
    if isinstance(trigger, EventTrigger):
        return f"{index}:" + "\x1f".join(key)
    return str(index)


def _child_path(path: str, index: int) -> str:
    return f"{path}.{index}" if path else str(index)


def _ready(trigger: CompoundTrigger | SequenceTrigger, fired: Mapping[int, ChildFiring]) -> bool:
    if isinstance(trigger, CompoundTrigger):
        return len(fired) >= trigger.num_expected_firings
    order = sorted(fired, key=lambda index: (fired[index].occurred, index))
    return order == list(range(len(trigger.triggers)))


def _record_child(trigger: CompoundTrigger | SequenceTrigger, fired: dict[int, ChildFiring],
                  index: int, child: Firing, cx: Context, path: str) -> Firing | None:
    """Keep a child's firing; the composite's own firing when it is ready [9]."""
    needed = trigger.num_expected_firings
    if needed == 1:
        cx.step(path, (), "fired", f"trigger {child.trigger} fired ({trigger.type}, 1 needed)")
        return Firing(path, (TRIGGERED, RESOLVED), (), {}, child.occurred, cx.now, 1, 1,
                      child.events, f"trigger {child.trigger} fired",
                      firing_key(path, "composite", child.key))
    if trigger.within is not None:
        for other in [i for i, f in fired.items() if f.occurred < child.occurred - trigger.within]:
            del fired[other]
            cx.step(path, (), "stale", f"the firing of trigger {_child_path(path, other)} is "
                    f"older than within ({trigger.within:g} s)")
    fired[index] = ChildFiring(child.occurred, child.key, child.events)
    if not _ready(trigger, fired):
        cx.step(path, (), "child-fired", f"trigger {child.trigger} fired: {len(fired)} of "
                f"{needed} ({trigger.type})", None, needed)
        return None
    order = sorted(fired)
    events = tuple(ref for i in order for ref in fired[i].events)
    firing = Firing(path, (TRIGGERED, RESOLVED), (), {}, child.occurred, cx.now, len(fired),
                    needed, events, f"{len(fired)} of {needed} triggers fired ({trigger.type})",
                    firing_key(path, "composite", *(fired[i].key for i in order)))
    fired.clear()
    cx.step(path, (), "fired", firing.reason, None, needed)
    return firing


def _composite_node(trigger: CompoundTrigger | SequenceTrigger, state: BucketState | None,
                    cx: Context, path: str, visit) -> tuple[BucketState | None, list[Firing]]:
    """Run `visit(child, child_state, path, slot)` over children; collect and combine firings."""
    children = dict(state.children) if state else {}
    fired = dict(state.child_firings) if state else {}
    changed, out = False, []
    before = dict(fired)
    for index, child in enumerate(trigger.triggers):
        for slot, old, (new, firings) in visit(index, child, children, _child_path(path, index)):
            if new is not old:
                changed = True
                if new is None:
                    children.pop(slot, None)
                else:
                    children[slot] = new
            for firing in firings:
                if firing.triggered:
                    parent = _record_child(trigger, fired, index, firing, cx, path)
                    if parent is not None:
                        out.append(parent)
    if not changed and fired == before:
        return state, out
    if not children and not fired:
        return None, out
    return BucketState(children=children, child_firings=fired), out


def _composite_event(trigger: CompoundTrigger | SequenceTrigger, state: BucketState | None,
                     cx: Context, path: str) -> tuple[BucketState | None, list[Firing]]:
    event = cx.event
    assert event is not None

    def visit(index, child, children, child_path):
        if not child.covers(event):
            if isinstance(child, EventTrigger):
                cx.step(child_path, (), "not-covered", "; ".join(child.check(event).reasons))
            return
        if isinstance(child, EventTrigger):
            key = child.bucketing_key(event)
            slot = _slot(index, child, key)
            old = children.get(slot)
            yield slot, old, event_step(child, old, cx, child_path, key)
        else:
            slot = _slot(index, child, ())
            old = children.get(slot)
            yield slot, old, _composite_event(child, old, cx, child_path)

    return _composite_node(trigger, state, cx, path, visit)


def _composite_expire(trigger: CompoundTrigger | SequenceTrigger, state: BucketState | None,
                      cx: Context, path: str) -> tuple[BucketState | None, list[Firing]]:
    if state is None:
        return None, []
    prefixes = {index: f"{index}:" for index in range(len(trigger.triggers))}

    def visit(index, child, children, child_path):
        if isinstance(child, EventTrigger):
            for slot, old in list(children.items()):
                if slot.startswith(prefixes[index]) and old.end is not None and old.end <= cx.now:
                    yield slot, old, settle(child, old, cx.now, cx, child_path)
        else:
            slot = _slot(index, child, ())
            old = children.get(slot)
            if old is not None:
                yield slot, old, _composite_expire(child, old, cx, child_path)

    return _composite_node(trigger, state, cx, path, visit)


def _timers(trigger: Trigger, state: BucketState | None) -> tuple[float | None, float | None]:
    """(deadline, expires_at) of a state: when to call `expire`, when it may be dropped."""
    if state is None:
        return None, None
    if isinstance(trigger, EventTrigger):
        if state.early:  # no window yet: kept a while after its latest event (windows [11])
            return None, state.latest
        waiting = state.fired is not None and bool(trigger.after)
        if trigger.posture == "Proactive" and not waiting:
            return state.end, None
        return None, state.end
    windows: list[float] = []
    ends: list[float] = []
    unbounded = False

    def walk(node: CompoundTrigger | SequenceTrigger, node_state: BucketState) -> None:
        nonlocal unbounded
        if node_state.child_firings:
            if node.within is None:
                unbounded = True
            else:
                ends.extend(f.occurred + node.within for f in node_state.child_firings.values())
        for slot, child_state in node_state.children.items():
            child = node.triggers[int(slot.split(":", 1)[0])]
            if not isinstance(child, EventTrigger):
                walk(child, child_state)
            elif child_state.early:
                ends.append(child_state.latest)
            elif child_state.end is None:
                unbounded = True
            else:
                windows.append(child_state.end)
                ends.append(child_state.end)

    walk(trigger, state)
    # a composite's timer settles every child window that ends, reactive ones included,
    # so that the buckets of children nested in its one state do not pile up
    return min(windows, default=None), None if unbounded else max(ends, default=None)


def _result(trigger: Trigger, old: BucketState | None, new: BucketState | None,
            firings: list[Firing], cx: Context) -> Evaluation:
    changed = new is not old
    if changed and new is not None:
        new.version = (old.version if old is not None else 0) + 1
    deadline, expires_at = _timers(trigger, new)
    return Evaluation(new, firings, deadline, expires_at, changed, cx.trace)


def history_subject(event: Event, scope: str) -> str | None:
    """The name of the deployment or flow (`scope`) whose runs an adaptive window reads;
    the role names the resource's kind too (`deployment.<name>`, `flow.<name>`)."""
    for labels in event.related:
        if labels.get("resource.role") == scope:
            named = labels.get("resource.name")
            return named or resource_ident(labels.get("resource.id", ""), scope)
    return None


def evaluate(trigger: Trigger, state: BucketState | None, event: Event, now: float, *,
             durations: Durations | None = None) -> Evaluation:
    """Evaluate one event against the state of its bucket (`trigger.bucketing_key(event)`).

    `now` is the engine's clock (the firings' `fired_at`); windows follow the
    events' own times. `durations` maps "deployment"/"flow" to the durations
    of the last completed runs of the event's deployment/flow, oldest first;
    only an adaptive `within` reads it, when a window opens (windows note [8]).
    """
    cx = Context(now, durations, event)
    if isinstance(trigger, EventTrigger):
        if not trigger.covers(event):
            cx.step("", (), "not-covered", "; ".join(trigger.check(event).reasons))
            return _result(trigger, state, state, [], cx)
        new, firings = event_step(trigger, state, cx, "", trigger.bucketing_key(event))
    else:
        new, firings = _composite_event(trigger, state, cx, "")
    return _result(trigger, state, new, firings, cx)


def expire(trigger: Trigger, state: BucketState | None, now: float) -> Evaluation:
    """Settle what is due at `now`: proactive deadlines fire, ended windows close.

    Call it when `Evaluation.deadline` passes, with `now` on the events' clock
    (the engine's time minus its processing lag), so a backlog of unread
    events does not fire deadlines whose expected event is still in the stream.
    """
    cx = Context(now, None, None)
    if isinstance(trigger, EventTrigger):
        if state is None or state.end is None or state.end > now:
            return _result(trigger, state, state, [], cx)
        new, firings = settle(trigger, state, now, cx, "")
    else:
        new, firings = _composite_expire(trigger, state, cx, "")
    return _result(trigger, state, new, firings, cx)


def needs_arming(trigger: Trigger) -> bool:
    """Whether the trigger watches from the moment it is loaded (see `arm`)."""
    if isinstance(trigger, EventTrigger):
        return trigger.posture == "Proactive" and not trigger.after and not trigger.for_each
    return any(needs_arming(child) for child in trigger.triggers)


def arm(trigger: Trigger, now: float) -> Evaluation:
    """The starting state of a trigger that watches from load time, for the bucket `()`.

    A proactive trigger without `after` and without `for_each` ("no data.arrived
    for a day") has its first window start when the automation is loaded, as
    Prefect's proactive evaluation does; the engine calls this when the
    automation is loaded and its `()` state does not exist.
    """
    cx = Context(now, None, None)
    return _result(trigger, None, _armed(trigger, now, cx, ""), [], cx)


def _armed(trigger: Trigger, now: float, cx: Context, path: str) -> BucketState | None:
    if isinstance(trigger, EventTrigger):
        if not needs_arming(trigger):
            return None
        state = open_window(trigger, (), now, cx)
        cx.step(path, (), "armed", "the first window starts when the automation is loaded",
                state, trigger.threshold)
        return state
    children = {}
    for index, child in enumerate(trigger.triggers):
        armed = _armed(child, now, cx, _child_path(path, index))
        if armed is not None:
            children[_slot(index, child, ())] = armed
    return BucketState(children=children) if children else None
