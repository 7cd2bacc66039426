"""Property tests over random valid histories (and random illegal ones)."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from statemachine.commands import CompleteCourse, ScheduleTask, to_event
from statemachine.decide import decide
from statemachine.envelope import Envelope
from statemachine.errors import TransitionNotAllowed
from statemachine.events import (
    CourseCancelled,
    CoursePaused,
    CourseRedriven,
    CourseResumed,
    Event,
    TaskExhausted,
    TaskFailed,
    TaskScheduled,
    TaskStarted,
    TaskSucceeded,
)
from statemachine.pipeline import default_pipeline
from statemachine.reducer import fold
from statemachine.state import CourseState
from statemachine.store.appending import prepare_append
from tests.factories import new, requested

PIPE = default_pipeline()
COMMON = settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])


class Driver:
    """Builds a legal history by choosing, at each step, one of the legal next moves."""

    def __init__(self) -> None:
        self.snap = None
        self.history: list[Envelope] = []
        self.scheduled: list[str] = []
        self.decisions: list[tuple[CourseState, list]] = []
        self.push([requested().event])

    @property
    def state(self) -> CourseState:
        return CourseState.from_snapshot(self.snap)

    def push(self, events: list[Event]) -> None:
        version = self.snap["version"] if self.snap else 0
        prepared = prepare_append("c1", self.snap, version, [new(e) for e in events])
        self.snap = prepared.snapshot
        self.history.extend(prepared.envelopes)
        self.scheduled += [e.idempotency_key for e in events if isinstance(e, TaskScheduled)]

    def moves(self) -> list:
        state = self.state
        found: list = [("decide",)]
        for name, t in state.tasks.items():
            if t.status in ("scheduled", "retrying") and state.status in ("running", "paused"):
                found.append(("start", name))
            if t.status == "running" and state.status in ("running", "paused", "failed"):
                found += [("succeed", name), ("fail", name), ("fail_hard", name), ("exhaust", name)]
                if state.status != "failed":
                    found.append(("start", name))
        if state.status == "running":
            found.append(("pause",))
        if state.status == "paused":
            found.append(("resume",))
        if state.status == "failed":
            broken = tuple(n for n, t in state.tasks.items() if t.status in ("failed", "exhausted"))
            if broken:
                found.append(("redrive", broken))
        return found

    def play(self, move: tuple) -> None:
        state = self.state
        if move[0] == "decide":
            commands = decide(state, PIPE)
            self.decisions.append((state, commands))
            if commands:
                self.push([to_event(c) for c in commands])
            return
        if move[0] == "pause":
            return self.push([CoursePaused(reason="test")])
        if move[0] == "resume":
            return self.push([CourseResumed(reason="test")])
        if move[0] == "redrive":
            return self.push([CourseRedriven(tasks=move[1], reason="test")])
        task = state.tasks[move[1]]
        key, name, attempt = task.idempotency_key, task.name, task.attempts + 1
        fan = {s.fan_out.source: s.fan_out.count_field for s in PIPE.steps.values() if s.fan_out}
        events = {
            "start": [TaskStarted(task=name, idempotency_key=key, attempt=attempt)],
            "succeed": [
                TaskSucceeded(
                    task=name,
                    idempotency_key=key,
                    attempt=task.attempts,
                    outputs={"out": f"gs://b/{name}"},
                    duration_ms=1,
                    metering={"usd": 0.01},
                    summary={fan[task.step]: 3} if task.step in fan else {},
                )
            ],
            "fail": [
                TaskFailed(
                    task=name,
                    idempotency_key=key,
                    attempt=task.attempts,
                    error_type="E",
                    message="m",
                    retryable=True,
                    metering={"usd": 0.01, "model": "m"},
                )
            ],
            "fail_hard": [
                TaskFailed(
                    task=name,
                    idempotency_key=key,
                    attempt=task.attempts,
                    error_type="E",
                    message="m",
                    retryable=False,
                )
            ],
            "exhaust": [
                TaskExhausted(
                    task=name,
                    idempotency_key=key,
                    attempts=task.attempts,
                    error="e",
                    metering={"usd": 0.01},
                )
            ],
        }[move[0]]
        self.push(events)


@st.composite
def histories(draw, max_moves: int = 60, friendly: bool = False) -> Driver:
    d = Driver()
    for _ in range(draw(st.integers(0, max_moves))):
        moves = d.moves()
        if friendly:  # only progress: decide, start, succeed
            moves = [m for m in moves if m[0] in ("decide", "start", "succeed")] or moves
        d.play(moves[draw(st.integers(0, len(moves) - 1))])
    return d


@COMMON
@given(histories(), st.data())
def test_fold_is_incremental(d, data):
    history = d.history
    cut = data.draw(st.integers(1, len(history)))
    whole = fold(history)
    assert fold(history[cut:], fold(history[:cut])) == whole if cut < len(history) else True
    assert fold(history).to_snapshot() == d.snap


@COMMON
@given(histories())
def test_decide_never_schedules_before_prerequisites_succeeded(d):
    for state, commands in d.decisions:
        for c in commands:
            if not isinstance(c, ScheduleTask):
                continue
            for dep in PIPE.steps[c.step].after:
                tasks = [t for t in state.tasks.values() if t.step == dep]
                assert tasks or PIPE.steps[dep].fan_out, (c.step, dep)
                assert all(t.status == "succeeded" for t in tasks), (c.step, dep)


@COMMON
@given(histories())
def test_decide_never_schedules_a_key_twice(d):
    assert len(d.scheduled) == len(set(d.scheduled))


@COMMON
@given(histories(max_moves=200, friendly=True))
def test_a_course_whose_steps_all_succeeded_is_finished(d):
    state = d.state
    final = state.task("finalize")
    if final is not None and final.status == "succeeded" and state.status == "running":
        assert isinstance(decide(state, PIPE)[0], CompleteCourse)
    for _ in range(400):  # finish the run: progress only, then it must complete
        if d.state.status != "running" and d.state.status != "requested":
            break
        moves = [m for m in d.moves() if m[0] in ("decide", "start", "succeed")]
        d.play(next((m for m in moves if m[0] != "decide"), moves[0]))
    assert d.state.status in ("completed", "failed")
    if all(t.status == "succeeded" for t in d.state.tasks.values()):
        assert d.state.status == "completed"


def random_event(draw) -> Event:
    name = draw(st.sampled_from(["prepare_video", "transcribe", "analyze_frames#1", "finalize"]))
    step = name.split("#")[0]
    key = f"c1:{step}:1" if "#" not in name else "c1:analyze_frames:1:1"
    return draw(
        st.sampled_from(
            [
                TaskScheduled(
                    task=name,
                    step=step,
                    shard=1 if "#" in name else None,
                    generation=1,
                    idempotency_key=key,
                    queue="ai-analysis-queue",
                ),
                TaskStarted(task=name, idempotency_key=key, attempt=1),
                TaskSucceeded(
                    task=name, idempotency_key=key, attempt=1, outputs={}, summary={}, duration_ms=1
                ),
                TaskFailed(
                    task=name,
                    idempotency_key=key,
                    attempt=1,
                    error_type="E",
                    message="m",
                    retryable=draw(st.booleans()),
                ),
                TaskExhausted(task=name, idempotency_key=key, attempts=1, error="e"),
                CourseCancelled(reason="r"),
                CoursePaused(reason="r"),
                CourseResumed(reason="r"),
                CourseRedriven(tasks=(name,), reason="r"),
                requested().event,
            ]
        )
    )


@COMMON
@given(st.data())
def test_illegal_events_only_ever_raise_transition_not_allowed(data):
    snap = None
    count = data.draw(st.integers(1, 40))
    for _ in range(count):
        event = random_event(data.draw)
        version = snap["version"] if snap else 0
        working = None if snap is None else fold([], CourseState.from_snapshot(snap)).to_snapshot()
        try:
            snap = prepare_append("c1", working, version, [new(event)]).snapshot
        except TransitionNotAllowed as err:
            assert err.state and err.event == type(event).__name__
