"""When a delivery's TaskStarted is recorded (handlers/starts.py), and the follow-ups a result
carries in its own append (``append(then=)``, ``Bridge.after``)."""

from __future__ import annotations

import time
from dataclasses import replace
from typing import Any

from handlers.registry import StepContext, StepResult
from statemachine.events import TaskStarted
from statemachine.state import CourseState

from .conftest import Env, runtime_with


def counting_appends(env: Env) -> list[list[str]]:
    """Each append the store takes from now on, as the types of the events it was given."""
    calls: list[list[str]] = []
    append = env.store.append

    def counted(course_id: str, expected: int, events: Any, **kw: Any) -> int:
        calls.append([e.type for e in events])
        return append(course_id, expected, events, **kw)

    env.store.append = counted  # type: ignore[method-assign]
    return calls


def task_status_seen(env: Env, course_id: str, task: str, wait_s: float = 0.0) -> str:
    """The task's status in the history, polled for up to ``wait_s`` until it is running."""
    deadline = time.monotonic() + wait_s
    while True:
        head = env.store.head(course_id)
        assert head is not None
        status = CourseState.from_snapshot(head.snapshot).tasks[task].status
        if status == "running" or time.monotonic() >= deadline:
            return status
        time.sleep(0.005)


def step_seeing(env: Env, course_id: str, wait_s: float, seen: list[str]) -> None:
    """Make prepare_video note the status the history gives it while it runs."""

    def step(ctx: StepContext) -> StepResult:
        seen.append(task_status_seen(env, course_id, "prepare_video", wait_s))
        return StepResult(outputs={}, summary={"duration_s": 60.0})

    env.steps.replace("prepare_video", step)


def test_a_quick_first_attempt_is_one_append_start_result_and_what_it_unblocks(env):
    course = env.ingest("m1")
    before = env.store.head(course).version
    calls = counting_appends(env)

    assert env.post(env.payload(course)).status == 200

    assert calls == [["TaskStarted", "TaskSucceeded"]]  # one transaction for the delivery
    added = env.store.load(course, after=before)
    assert [e.type for e in added] == ["TaskStarted", "TaskSucceeded"] + ["TaskScheduled"] * 5
    started, succeeded = added[:2]
    assert started.actor == succeeded.actor == "task-endpoint"
    assert {e.actor for e in added[2:]} == {"bridge"}
    assert started.occurred_at <= succeeded.occurred_at  # stamped when the attempt began
    assert env.rt.endpoint._starts.recorded == 0


@runtime_with(record_start_after_s=0.05)
def test_a_slow_first_attempt_shows_as_running_while_it_runs(env):
    course = env.ingest("m1")
    seen: list[str] = []
    step_seeing(env, course, wait_s=5.0, seen=seen)
    calls = counting_appends(env)

    assert env.post(env.payload(course)).status == 200

    assert seen == ["running"]  # the recorder appended TaskStarted while the step ran
    assert calls == [["TaskStarted"], ["TaskSucceeded"]]
    assert env.rt.endpoint._starts.recorded == 1
    types = env.types(course)
    assert types.count("TaskStarted") == 1 and types.count("TaskSucceeded") == 1


def test_a_retry_records_its_start_before_its_step_runs(env):
    course = env.ingest("m1")
    seen: list[str] = []
    step_seeing(env, course, wait_s=0.0, seen=seen)
    calls = counting_appends(env)

    assert env.post(env.payload(course), retry=1).status == 200

    assert seen == ["running"]  # counted before it ran: a crash would still count it
    assert calls == [["TaskStarted"], ["TaskSucceeded"]]
    started = [e for e in env.store.load(course) if e.type == "TaskStarted"]
    assert [e.data["attempt"] for e in started] == [2]


@runtime_with(record_start_after_s=0)
def test_with_no_delay_every_start_is_recorded_before_the_step(env):
    course = env.ingest("m1")
    seen: list[str] = []
    step_seeing(env, course, wait_s=0.0, seen=seen)

    assert env.post(env.payload(course)).status == 200

    assert seen == ["running"]


def test_a_first_attempt_that_lost_the_race_to_a_duplicate_records_nothing(env):
    course = env.ingest("m1")
    payload = env.payload(course)
    # the duplicate ran and recorded its result while the first delivery's quick step ran
    slow: list[str] = []

    def step(ctx: StepContext) -> StepResult:
        if not slow:
            slow.append("inner")
            assert env.post(payload).status == 200  # the duplicate, start to finish
        return StepResult(outputs={}, summary={"duration_s": 60.0})

    env.steps.replace("prepare_video", step)

    answer = env.post(payload)

    assert answer.body == {"status": "duplicate", "task": "prepare_video"}
    types = env.types(course)
    assert types.count("TaskStarted") == 1 and types.count("TaskSucceeded") == 1


# -- follow-ups -----------------------------------------------------------------------------
class Broken:
    def __init__(self, events: list[Any] | None = None) -> None:
        self.events = events

    def after(self, snapshot: Any) -> Any:
        if self.events is None:
            raise RuntimeError("decide is broken")
        return self.events, lambda: None


def test_a_failing_decision_never_costs_the_result(env):
    course = env.ingest("m1")
    broken = replace(env.rt.endpoint, follow=Broken())
    settled = env.rt.bridge.stats["settled"]

    assert env.post(env.payload(course), via=broken).status == 200

    # recorded alone; the bridge, notified, decided and scheduled the next steps itself
    types = env.types(course)
    assert types[-7:] == ["TaskStarted", "TaskSucceeded"] + ["TaskScheduled"] * 5
    assert env.rt.bridge.stats["settled"] == settled
    assert env.rt.dispatcher.pending() == 1 + 5  # prepare_video's own copy, and the five


def test_an_illegal_follow_up_is_dropped_and_the_result_recorded_alone(env):
    course = env.ingest("m1")
    bogus = env.rt.endpoint._new(
        TaskStarted(task="no_such_task", idempotency_key="k", attempt=1), "k"
    )
    broken = replace(env.rt.endpoint, follow=Broken([bogus]))

    assert env.post(env.payload(course), via=broken).status == 200

    types = env.types(course)
    assert types[-7:] == ["TaskStarted", "TaskSucceeded"] + ["TaskScheduled"] * 5


def test_the_bridge_dispatches_follow_ups_and_skips_the_notified_advance(env):
    course = env.ingest("m1")
    bridge = env.rt.bridge
    advances, settled = bridge.stats["advances"], bridge.stats["settled"]
    queued = env.rt.dispatcher.pending()  # prepare_video (posted here by hand instead)

    assert env.post(env.payload(course)).status == 200

    assert bridge.stats["advances"] == advances + 1
    assert bridge.stats["settled"] == settled + 1  # the notified advance had nothing to do
    assert env.rt.dispatcher.pending() == queued + 5  # extract_frames, four audio chunks
    assert bridge.advance(course) == []  # a full advance finds nothing left either


@runtime_with(dispatch_follow_ups=False)
def test_a_bridge_that_does_not_dispatch_leaves_it_to_the_notified_advance(env):
    course = env.ingest("m1")
    env.lost.add(course)  # and the notification is lost
    queued = env.rt.dispatcher.pending()

    assert env.post(env.payload(course)).status == 200

    assert env.types(course)[-5:] == ["TaskScheduled"] * 5  # scheduled with the result
    assert env.rt.dispatcher.pending() == queued  # but not dispatched: reconcile's job now
    env.lost.clear()
    env.rt.bridge.advance(course)
    assert env.rt.dispatcher.pending() == queued + 5
