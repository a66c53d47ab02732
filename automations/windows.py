"""Event trigger windows: one event, or one passing deadline, through one bucket.

The building block of `automations.evaluation`, which adds composite triggers
and the public API. Times are seconds since the epoch.

Implementation notes (the branches cite them):

[1] Windows are half-open, [start, end), as Prefect's `start <= occurred < end`:
    an event at exactly start + within falls outside the window; for a
    proactive trigger the deadline has passed by then, so it fires.
[2] A window whose end is at or before an event's time is settled first, as
    the timer would have settled it, then the event is taken on its own: a
    proactive trigger fires (too few expected events by the deadline) even
    when an event, not the timer, notices it; Prefect's evaluate does the same.
[3] `after` opens a window at the event's time; a bucket already open is not
    restarted. The event that opens a window does not count in it, even when
    it is also in `expect` (Prefect starts such a bucket at count -1).
[4] Reactive: each expected event counts; the count reaching `threshold`
    fires and resets. A window opened by `after` closes on firing. Without
    `after`, the window starts at the first counted event and, after a firing,
    the next window starts where this one ends: events in between do not count
    (Prefect fires at most once per window and bucket). `within` 0 counts
    without a window: threshold 1 fires on every event, N fires on every Nth
    (Prefect drops such counts when it sweeps; we keep them).
[5] Proactive: the deadline is the window's end. With `after`, expected
    events reaching the threshold close the window without firing; at the
    deadline, fewer than `threshold` fire it, and the bucket then waits (up to
    RESOLUTION_HORIZON_S) for an expected event, which resolves the firing
    (`actions_on_resolve`). Without `after`, the window lasts to its end
    whatever the count and the next one follows on (or starts when noticed, if
    a whole window went by unnoticed): a trigger that watches a steady flow of
    events fires once per empty window, and the next expected event resolves.
[6] An expected event without an open window of an `after` trigger counts in no
    window; it is kept for a window that an earlier `after` event may still open [11].
[7] Out of order: an event older than its window's start is ignored (Prefect's
    case 1), unless [10] moves the window back to it; it may also be one
    redelivered after a firing reset the bucket.
    An event already counted in the window (same id) is ignored: redelivery.
    Firing keys are digests of their cause, so a firing repeated by a
    redelivery has the same key and the engine records it once.
[8] An adaptive `within` is resolved when a window opens, from the durations
    the engine passes for the event's deployment or flow (`resolve_within`),
    and the window keeps that end.
([9] is in automations.evaluation: composite triggers.)
[10] Late events, reactive windows without `after`: two engine replicas split a
    bucket's events between their batches, and the one holding the later events may
    count them first. An event older than the window's start then moves the start
    (and the end, `within` later) back to it, if the window still holds every event
    counted: the latest of them (`latest`) is before the event's time plus `within`.
    So the same events, all within `within`, fire the same in any order: once, with
    the same count, at the latest event's time (in time order the threshold is
    reached there); the firing's key stays its cause's, the event that reached the
    count. The start never moves back past `floor`: the end of the window that fired
    (the next one starts there, [4]) or that an event found ended ([2]); an event
    before the floor belongs to a window already decided, and counts nowhere (a
    redelivery after a firing, too). Without a window (`within` 0) a late event
    counts. Still order-dependent: events more than `within` apart (one that would
    push the latest out of the window is ignored, [7]); a window that an event of the
    next one found ended before the other replica's earlier events of it came (they
    fall before the floor); a floor lost with its state (the engine keeps a state
    STATE_MARGIN_S after its window's end; a composite's timer drops its children's
    ended windows).
[11] Out of order, `after` and proactive windows (their starts never move, [7]): an
    expected event evaluated before the `after` event that precedes it (a replica
    race, a redelivered batch) finds no window. The bucket keeps it (`early`, up to
    MAX_EVENT_REFS); when an `after` event opens a window at or before
    it, it counts there, so a proactive trigger is satisfied instead of firing at its
    deadline for want of an event that came, and a reactive one counts it (firing at
    most once). Early events before the `after` event, or at or past the window's
    end, are dropped: the latter would have resolved a proactive firing in time
    order, and the deadline now fires unresolved. A bucket holding only early events
    has no window and expires (a Redis expiry) after its latest event. Proactive
    windows without `after`: an expected event of a window, evaluated after an event
    of the next window settled it ([2]), falls before the next window's start, and
    the settled window may have fired for want of it. The timer does not race (it
    follows the events' clock, engine.py [2]); an event that notices a window's end
    does. A single engine evaluates a bucket's events in stream order.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

from automations.events import Event
from automations.state import (
    RESOLVED,
    TRIGGERED,
    BucketState,
    EventRef,
    Firing,
    TraceStep,
    firing_key,
    keep_refs,
)
from automations.triggers import ENGINE_RESOLUTION_S, AdaptiveWithin, EventTrigger

# how long a proactive bucket that fired waits for an expected event to resolve it
RESOLUTION_HORIZON_S = 24 * 3600.0
# the completed runs an adaptive `within` looks at (the most recent ones)
EXPECTED_DURATION_HISTORY_RUNS = 50

Durations = Mapping[str, Sequence[float]]


def resolve_within(trigger: EventTrigger, durations: Sequence[float]) -> float:
    """The window of `trigger` in seconds; an adaptive one from run durations (oldest first)."""
    if not isinstance(trigger.within, AdaptiveWithin):
        return float(trigger.within)
    spec = trigger.within.expected_duration
    recent = [value for value in durations[-EXPECTED_DURATION_HISTORY_RUNS:]
              if isinstance(value, int | float) and math.isfinite(value) and value >= 0]
    if len(recent) < spec.min_runs:
        return max(spec.default, ENGINE_RESOLUTION_S)
    return max(_quantile(sorted(recent), spec.quantile) * spec.factor, ENGINE_RESOLUTION_S)


def describe_within(trigger: EventTrigger, durations: Sequence[float]) -> str:
    """How `resolve_within` got its answer, for `explain`."""
    value = resolve_within(trigger, durations)
    if not isinstance(trigger.within, AdaptiveWithin):
        return f"within {value:g} s"
    spec = trigger.within.expected_duration
    count = len([d for d in durations[-EXPECTED_DURATION_HISTORY_RUNS:] if d >= 0])
    if count < spec.min_runs:
        return (f"within {value:g} s: the default, {count} of the {spec.min_runs} completed "
                f"runs needed")
    return (f"within {value:g} s: {spec.factor:g} x the p{spec.quantile * 100:g} of the last "
            f"{count} completed runs")


def _quantile(values: Sequence[float], quantile: float) -> float:
    # linear interpolation between closest ranks (numpy's default)
    position = quantile * (len(values) - 1)
    low = math.floor(position)
    high = min(low + 1, len(values) - 1)
    return values[low] + (values[high] - values[low]) * (position - low)


class Context:
    """One evaluation's inputs and outputs (the trace); internal to evaluation."""

    __slots__ = ("now", "durations", "event", "t", "_ref", "trace")

    def __init__(self, now: float, durations: Durations | None, event: Event | None) -> None:
        self.now = now
        self.durations = durations
        self.event = event
        self.t = event.occurred.timestamp() if event is not None else now
        self._ref: EventRef | None = None
        self.trace: list[TraceStep] = []

    @property
    def ref(self) -> EventRef | None:
        # made on first use: an event that changes nothing needs none
        if self._ref is None and self.event is not None:
            self._ref = EventRef.of(self.event, self.t)
        return self._ref

    def step(self, path: str, key: tuple[str, ...], step: str, detail: str,
             bucket: BucketState | None = None, threshold: int = 0) -> None:
        self.trace.append(TraceStep(
            path, key, step, detail, bucket.count if bucket else 0, threshold,
            bucket.start if bucket else None, bucket.end if bucket else None,
            self.ref.id if self.ref is not None else None))

    def within(self, trigger: EventTrigger) -> float:
        scope = trigger.history_scope
        if scope is None:
            return float(trigger.within)  # type: ignore[arg-type]
        return resolve_within(trigger, (self.durations or {}).get(scope, ()))


def open_window(trigger: EventTrigger, key: tuple[str, ...], start: float, cx: Context,
            **fields) -> BucketState:
    end = None if trigger.immediate else start + cx.within(trigger)
    return BucketState(key=key, start=start, end=end, **fields)


def move_back(trigger: EventTrigger, bucket: BucketState, t: float) -> BucketState | None:
    """The window started at `t`, a late event's time, if [10] allows it; else None."""
    if trigger.posture != "Reactive" or trigger.after:
        return None
    if bucket.floor is not None and t < bucket.floor:
        return None  # a window before this one fired or ended there
    end = None
    if bucket.end is not None:
        if bucket.latest is None:
            return None  # nothing counted yet (after a firing), or a state stored before [10]
        end = t + (bucket.end - bucket.start)
        if bucket.latest >= end:
            return None  # the window would lose the latest event it counted
    return BucketState(key=bucket.key, start=t, end=end, count=bucket.count,
                       events=bucket.events, latest=bucket.latest, floor=bucket.floor)


def late_reason(trigger: EventTrigger, bucket: BucketState, t: float) -> str:
    """Why `move_back` left a late event out, for the trace [7][10]."""
    if (bucket.floor is not None and t < bucket.floor) or bucket.count == 0:
        return "not counted: its window already fired or ended; counting started again after it"
    if trigger.posture == "Reactive" and not trigger.after:
        return ("not counted: it occurred before the window's start (late), and more than "
                "`within` before the latest event counted")
    return "not counted: it occurred before the window's start (late)"


def early_step(trigger: EventTrigger, bucket: BucketState, cx: Context, path: str,
               key: tuple[str, ...]) -> tuple[BucketState | None, list[Firing]]:
    """One event through a bucket with no window and the expected events kept early [11]."""
    t, name, threshold = cx.t, cx.event.event, trigger.threshold
    if trigger.starts_after(name):
        window = open_window(trigger, key, t, cx, events=(cx.ref,))
        cx.step(path, key, "opened", f"'{name}' opened the window", window, threshold)
        return take_early(trigger, window, bucket.early, cx, path)
    if not trigger.expects(name) or any(ref.id == cx.ref.id for ref in bucket.early):
        return bucket, []
    return keep_early(trigger, bucket, cx, path, key), []


def keep_early(trigger: EventTrigger, bucket: BucketState | None, cx: Context, path: str,
               key: tuple[str, ...]) -> BucketState:
    """An expected event with no window open, kept for one its `after` event may open [11]."""
    t = cx.t
    kept = (BucketState(key=key, start=t, latest=t, early=(cx.ref,)) if bucket is None else
            BucketState(key=key, start=min(bucket.start, t), latest=max(bucket.latest or t, t),
                        early=keep_refs(bucket.early, cx.ref)))
    cx.step(path, key, "early", f"no open window: kept in case one of {trigger.after} that "
            "occurred before it opens one", None, trigger.threshold)
    return kept


def take_early(trigger: EventTrigger, window: BucketState, early: tuple[EventRef, ...],
               cx: Context, path: str) -> tuple[BucketState | None, list[Firing]]:
    """A window just opened by an `after` event, with the expected events kept early that
    fall inside it, in time order [11]."""
    key, threshold = window.key, trigger.threshold
    fitting = sorted((ref for ref in early if window.start <= ref.occurred
                      and (window.end is None or ref.occurred < window.end)),
                     key=lambda ref: ref.occurred)
    if len(fitting) < len(early):
        cx.step(path, key, "late", f"not counted: {len(early) - len(fitting)} expected event(s) "
                "evaluated before the window opened fall outside it", window, threshold)
    # reaching the threshold closes the window: in time order, later ones find none
    inside = fitting[:threshold]
    if not inside:
        return window, []
    events = window.events
    for ref in inside:
        events = keep_refs(events, ref)
    counted = BucketState(key=key, start=window.start, end=window.end, count=len(inside),
                          events=events, latest=inside[-1].occurred)
    cx.step(path, key, "counted", f"{counted.count} of {threshold}, counting the expected "
            "events evaluated before the window opened", counted, threshold)
    if counted.count < threshold:
        return counted, []
    if trigger.posture == "Proactive":
        cx.step(path, key, "satisfied", f"{counted.count} of {threshold} expected events "
                "arrived in time: no firing", counted, threshold)
        return None, []
    firing = fire(trigger, counted, cx, path, (TRIGGERED, RESOLVED), counted.latest,
                  f"{counted.count} of {threshold} events", "reached", inside[-1].id)
    cx.step(path, key, "fired", f"{firing.reason}; counting starts again from zero", counted,
            threshold)
    return None, [firing]


def fire(trigger: EventTrigger, bucket: BucketState, cx: Context, path: str,
          states: tuple[str, ...], occurred: float, reason: str, *cause: object) -> Firing:
    return Firing(path, states, bucket.key, trigger.triggering_labels(bucket.key), occurred,
                  cx.now, bucket.count, trigger.threshold, bucket.events, reason,
                  firing_key(path, bucket.key, *cause))


def next_start(end: float, length: float, at: float) -> float:
    # the next window follows on, unless a whole window went by unnoticed (engine down)
    return end if at < end + length else at


def settle(trigger: EventTrigger, bucket: BucketState, at: float, cx: Context,
            path: str) -> tuple[BucketState | None, list[Firing]]:
    """Close a window whose end (`bucket.end`) is at or before `at` [1][5]."""
    key, threshold = bucket.key, trigger.threshold
    if bucket.fired is not None and trigger.after:
        cx.step(path, key, "unresolved", "no expected event came to resolve the firing",
                bucket, threshold)
        return None, []
    if trigger.posture == "Reactive":
        cx.step(path, key, "expired",
                f"the window ended with {bucket.count} of {threshold} events", bucket, threshold)
        return None, []
    assert bucket.end is not None
    length = bucket.end - bucket.start
    if bucket.count < threshold:
        firing = fire(trigger, bucket, cx, path, (TRIGGERED,), bucket.end,
                       f"{bucket.count} of {threshold} expected events by the deadline",
                       "deadline", bucket.start, bucket.end)
        cx.step(path, key, "fired", firing.reason, bucket, threshold)
        if trigger.after:
            waiting = BucketState(key=key, start=bucket.start, end=bucket.end + RESOLUTION_HORIZON_S,
                                  count=bucket.count, events=bucket.events, fired=bucket.end)
            return waiting, [firing]
        start = next_start(bucket.end, length, at)
        return BucketState(key=key, start=start, end=start + length, fired=bucket.end), [firing]
    start = next_start(bucket.end, length, at)
    cx.step(path, key, "satisfied",
            f"{bucket.count} of {threshold} expected events in the window; the next one starts",
            bucket, threshold)
    return BucketState(key=key, start=start, end=start + length), []


def event_step(trigger: EventTrigger, bucket: BucketState | None, cx: Context, path: str,
                key: tuple[str, ...]) -> tuple[BucketState | None, list[Firing]]:
    """One covered event through one bucket of an event trigger."""
    assert cx.event is not None
    t, name, threshold = cx.t, cx.event.event, trigger.threshold
    firings: list[Firing] = []
    if bucket is not None and bucket.early:
        return early_step(trigger, bucket, cx, path, key)  # [11]
    floor = None
    if bucket is not None and bucket.end is not None and bucket.end <= t:
        if trigger.posture == "Reactive" and not trigger.after:
            floor = bucket.end  # the window that ended keeps its late events [10]
        bucket, firings = settle(trigger, bucket, t, cx, path)  # [2]
    if trigger.starts_after(name):
        if bucket is None or bucket.fired is not None:
            if bucket is not None:
                cx.step(path, key, "superseded",
                        "a new 'after' event replaces the window that fired", bucket, threshold)
            bucket = open_window(trigger, key, t, cx, events=(cx.ref,))
            cx.step(path, key, "opened", f"'{name}' opened the window", bucket, threshold)
            return bucket, firings
        cx.step(path, key, "already-open",
                f"'{name}' does not restart the window already open", bucket, threshold)
    if not trigger.expects(name):
        return bucket, firings
    if bucket is None:
        if trigger.after:
            return keep_early(trigger, None, cx, path, key), firings  # [6][11]
        bucket = open_window(trigger, key, t, cx, floor=floor)
    elif trigger.after and bucket.fired is not None:
        resolving = BucketState(key=key, start=bucket.start, end=bucket.end, count=bucket.count,
                                events=keep_refs(bucket.events, cx.ref), fired=bucket.fired)
        firing = fire(trigger, resolving, cx, path, (RESOLVED,), t,
                       f"'{name}' arrived after the firing", "resolved", cx.ref.id)
        cx.step(path, key, "resolved", firing.reason, bucket, threshold)
        return None, [*firings, firing]
    if t < bucket.start:
        moved = move_back(trigger, bucket, t)  # [10]
        if moved is None:
            cx.step(path, key, "late", late_reason(trigger, bucket, t), bucket, threshold)
            return bucket, firings
        cx.step(path, key, "moved-back",
                f"'{name}' occurred before the window's start: the window now starts at it",
                moved, threshold)
        bucket = moved
    if any(ref.id == cx.ref.id for ref in bucket.events):
        cx.step(path, key, "duplicate", "already counted (the same event, delivered again)", bucket, threshold)
        return bucket, firings
    counted = BucketState(key=key, start=bucket.start, end=bucket.end, count=bucket.count + 1,
                          events=keep_refs(bucket.events, cx.ref),
                          latest=t if bucket.latest is None else max(bucket.latest, t),
                          floor=bucket.floor)
    if bucket.fired is not None:
        firing = fire(trigger, counted, cx, path, (RESOLVED,), t,
                       f"'{name}' arrived after the firing", "resolved", cx.ref.id)
        cx.step(path, key, "resolved", firing.reason, counted, threshold)
        firings.append(firing)
    if trigger.posture == "Reactive":
        if counted.count < threshold:
            cx.step(path, key, "counted", f"{counted.count} of {threshold}", counted, threshold)
            return counted, firings
        # at the latest event's time, as in time order, whichever event reached it [10]
        firing = fire(trigger, counted, cx, path, (TRIGGERED, RESOLVED), counted.latest,
                       f"{counted.count} of {threshold} events", "reached", cx.ref.id)
        firings.append(firing)
        if trigger.after or counted.end is None:
            cx.step(path, key, "fired", f"{firing.reason}; counting starts again from zero", counted,
                    threshold)
            return None, firings
        cx.step(path, key, "fired",
                f"{firing.reason}; counting starts again with the next window, when this "
                "one ends", counted,
                threshold)
        length = counted.end - counted.start
        return BucketState(key=key, start=counted.end, end=counted.end + length,
                           floor=counted.end), firings
    if trigger.after and counted.count >= threshold:
        cx.step(path, key, "satisfied",
                f"{counted.count} of {threshold} expected events arrived in time: no firing",
                counted, threshold)
        return None, firings
    cx.step(path, key, "counted", f"{counted.count} of {threshold} expected", counted, threshold)
    return counted, firings
