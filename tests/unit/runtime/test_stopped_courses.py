"""A result arriving for a course stopped while its step ran (issue 19): cancelled -> recorded
as moot (the task ends ``moot``); failed -> recorded, acknowledged, not retried by the queue;
paused -> recorded as usual, nothing new scheduled until resume. Never a traceback or a 5xx."""

from __future__ import annotations

import logging
import threading
from typing import Any

import pytest

from handlers.endpoint import TaskEndpoint
from handlers.outcomes import Answer
from handlers.registry import StepContext, StepResult, TransientStepError
from statemachine.audit import verify
from statemachine.envelope import NewEvent
from statemachine.events import CourseCancelled, CourseFailed, CoursePaused, CourseResumed
from statemachine.timefmt import iso

from .conftest import Env


class Gate:
    """A step that blocks until the test lets it go (after changing the course meanwhile)."""

    def __init__(self, env: Env, step: str = "prepare_video", error: Exception | None = None):
        self.entered = threading.Event()
        self.release = threading.Event()
        self.error = error
        base = env.rt.endpoint.steps[step]  # the counting step this one wraps

        def blocking(ctx: StepContext) -> StepResult:
            self.entered.set()
            assert self.release.wait(10)
            if self.error is not None:
                raise self.error
            result = base(ctx)
            return StepResult(result.outputs, result.summary, {"cost_usd": 0.25, "calls": 1})

        env.steps.replace(step, blocking)

    def run_while(self, env: Env, payload: dict[str, Any], change: Any, *, retry: int) -> Answer:
        answers: list[Answer] = []
        worker = threading.Thread(target=lambda: answers.append(env.post(payload, retry=retry)))
        worker.start()
        assert self.entered.wait(10)
        change()
        self.release.set()
        worker.join(10)
        assert answers, "the delivery raised instead of answering"
        return answers[0]


def operator(env: Env, course_id: str, event: Any) -> None:
    head = env.store.head(course_id)
    assert head is not None
    new = NewEvent(event=event, occurred_at=iso(env.clock.now()), actor="operator")
    env.store.append(course_id, head.version, [new])


def task(env: Env, course_id: str, name: str = "prepare_video") -> dict[str, Any]:
    head = env.store.head(course_id)
    assert head is not None
    found: dict[str, Any] = head.snapshot["tasks"][name]
    return found


def assert_verifies(env: Env, course_id: str) -> None:
    assert verify(course_id, env.store.load(course_id), env.store.head(course_id)).events > 0


def no_tracebacks(caplog: pytest.LogCaptureFixture) -> None:
    assert [r for r in caplog.records if r.exc_info] == []
    assert [r for r in caplog.records if r.levelno >= logging.ERROR] == []


# retry=0: a first attempt (its TaskStarted not recorded yet); retry=2: a retry (recorded first)
@pytest.mark.parametrize("retry", [0, 2])
@pytest.mark.parametrize("error", [None, TransientStepError("busy")], ids=["succeeds", "fails"])
def test_a_result_after_a_cancel_is_recorded_as_moot(env, caplog, retry, error):
    course = env.ingest("m1")
    gate = Gate(env, error=error)
    cancel = lambda: operator(env, course, CourseCancelled(reason="duplicate"))  # noqa: E731

    answer = gate.run_while(env, env.payload(course), cancel, retry=retry)

    assert answer.status == 200
    assert answer.body["status"] == "moot"
    assert "the course is cancelled" in answer.body["detail"]
    assert task(env, course)["status"] == "moot"  # terminal, not running for ever
    assert env.status(course) == "cancelled"
    last = env.store.load(course)[-1]
    assert last.type == "TaskMooted"
    assert last.data["outcome"] == ("succeeded" if error is None else "failed")
    if error is None:
        assert last.data["metering"] == {"cost_usd": 0.25, "calls": 1}  # its cost is kept
    assert_verifies(env, course)
    no_tracebacks(caplog)
    # a redelivery of the same task finds it settled
    again = env.post(env.payload(course), retry=retry + 1)
    assert again.status == 200 and again.body["status"] == "moot"


def test_a_failure_after_the_course_failed_is_recorded_and_not_retried(env, caplog):
    course = env.ingest("m1")
    gate = Gate(env, error=TransientStepError("busy"))
    fail = lambda: operator(env, course, CourseFailed(reason="operator"))  # noqa: E731

    answer = gate.run_while(env, env.payload(course), fail, retry=2)

    assert answer.status == 200  # not 503: the queue must not retry into a failed course
    assert answer.body["status"] == "failed"
    assert "redrive" in answer.body["detail"]
    assert env.store.load(course)[-1].type == "TaskFailed"
    assert task(env, course)["status"] == "retrying"  # a redrive gives it a new generation
    assert_verifies(env, course)
    no_tracebacks(caplog)


def test_a_result_after_a_pause_is_recorded_and_waits_for_resume(env, caplog):
    course = env.ingest("m1")
    gate = Gate(env)
    pause = lambda: operator(env, course, CoursePaused(reason="budget"))  # noqa: E731

    answer = gate.run_while(env, env.payload(course), pause, retry=2)

    assert answer.status == 200 and answer.body["status"] == "succeeded"
    assert task(env, course)["status"] == "succeeded"
    assert "TaskScheduled" not in [e.type for e in env.store.load(course)][-2:]
    assert set(env.store.head(course).snapshot["tasks"]) == {"prepare_video"}  # nothing new

    operator(env, course, CourseResumed(reason="budget raised"))
    env.rt.bridge.advance(course)
    assert {"transcribe_chunk#0", "extract_frames"} <= set(env.store.head(course).snapshot["tasks"])
    assert_verifies(env, course)
    no_tracebacks(caplog)


@pytest.mark.parametrize("retry", [0, 2])
def test_a_result_after_the_head_moved_on_without_touching_its_task(
    env, caplog, monkeypatch, retry
):
    # Paused and resumed while the step ran: the head moved, the course is running again and
    # the task is as the delivery saw it. A first attempt's result goes after the new head as
    # is (``EventStore.append(rebase=)``), without reading the course again; a retry, whose
    # TaskStarted is in the history but not in the course it read first, reads it again.
    course = env.ingest("m1")
    gate = Gate(env)
    reloads: list[str] = []
    reloaded = TaskEndpoint._reloaded

    def counting(self, d):
        reloads.append(d.name)
        return reloaded(self, d)

    monkeypatch.setattr(TaskEndpoint, "_reloaded", counting)

    def pause_and_resume() -> None:
        operator(env, course, CoursePaused(reason="a look"))
        operator(env, course, CourseResumed(reason="fine"))

    answer = gate.run_while(env, env.payload(course), pause_and_resume, retry=retry)

    assert answer.status == 200 and answer.body["status"] == "succeeded"
    assert reloads == ([] if retry == 0 else ["prepare_video"])
    types = [e.type for e in env.store.load(course)]
    assert types[types.index("CoursePaused") :][:3] == [
        "CoursePaused",
        "CourseResumed",
        "TaskStarted" if retry == 0 else "TaskSucceeded",
    ]
    assert task(env, course)["status"] == "succeeded"
    assert_verifies(env, course)
    no_tracebacks(caplog)
