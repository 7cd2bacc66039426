"""Every attempt's metering is recorded (issue 19): a paid call whose answer was refused, or an
attempt that failed transiently after paying, counts in the course's cost and tokens."""

from __future__ import annotations

from typing import Any

from bridge.ops.views import course_status, courses_table
from bridge.runtime.embedded import embedded
from bridge.tooling.synthetic import noop_steps
from handlers.ai.port import AIResult, TransientProviderError
from handlers.registry import StepResult
from handlers.steps.common import call
from statemachine.audit import verify
from statemachine.events import TaskExhausted, TaskFailed, to_data
from statemachine.pipeline import default_pipeline
from statemachine.store.memory import MemoryStore

from .conftest import Env, Steps, settings

PAID = {"provider": "gemini", "input_tokens": 1000, "output_tokens": 200, "cost_usd": 0.0125}


def runtime(tmp_path, clock, step) -> Env:
    steps = dict(noop_steps(default_pipeline()))
    steps["prepare_video"] = step
    rt = embedded(tmp_path, settings=settings(), steps=steps, clock=clock, store=MemoryStore())
    return Env(rt, clock, Steps(), set())


def test_a_schema_invalid_paid_answer_is_failed_with_its_cost(tmp_path, clock):
    invalid = AIResult(data={"not": "a transcript"}, metering=PAID)
    env = runtime(tmp_path, clock, lambda ctx: call(ctx, "ai/transcript", lambda: invalid))
    course = env.ingest("m1")

    answer = env.post(env.payload(course))

    assert answer.status == 200 and answer.body["status"] == "failed"
    failed = next(e for e in env.store.load(course) if e.type == "TaskFailed")
    assert failed.data["metering"] == PAID
    view = course_status(env.store, course)
    assert view is not None
    assert view["cost_usd"] == 0.0125  # was $0: the cost of failed attempts was lost
    (row,) = [r for r in view["tasks"] if r["task"] == "prepare_video"]
    assert (row["tokens"], row["cost_usd"]) == (1200, 0.0125)
    assert courses_table(env.store)[0]["cost_usd"] == 0.0125
    assert verify(course, env.store.load(course), env.store.head(course)).events > 0
    env.rt.close()


def test_failed_and_succeeded_attempts_add_up(tmp_path, clock):
    tries: list[int] = []

    def busy() -> AIResult:
        raise TransientProviderError("HTTP 503", metering=PAID)

    def step(ctx: Any) -> StepResult:
        tries.append(1)
        if len(tries) == 1:
            call(ctx, "ai/transcript", busy)
        return StepResult(metering={"cost_usd": 0.5, "input_tokens": 10})

    env = runtime(tmp_path, clock, step)
    course = env.ingest("m1")
    assert env.post(env.payload(course)).status == 503
    env.post(env.payload(course), retry=1)

    view = course_status(env.store, course)
    assert view is not None
    (row,) = [r for r in view["tasks"] if r["task"] == "prepare_video"]
    assert row["cost_usd"] == 0.5125
    assert row["tokens"] == 1210
    env.rt.close()


def test_a_failure_without_metering_encodes_as_before():
    """Old and new TaskFailed/TaskExhausted without metering are the same bytes: no field."""
    failed = TaskFailed(
        task="t", idempotency_key="k", attempt=1, error_type="E", message="m", retryable=True
    )
    assert "metering" not in to_data(failed)
    exhausted = TaskExhausted(task="t", idempotency_key="k", attempts=3, error="e")
    assert "metering" not in to_data(exhausted)
    assert (
        to_data(TaskExhausted(task="t", idempotency_key="k", attempts=3, error="e", metering=PAID))[
            "metering"
        ]
        == PAID
    )
