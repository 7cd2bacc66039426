"""Progress of long steps (throttled TaskProgress events, the task's projection, stuck tasks)
and cancellation reaching running work: a cancelled course stops scheduling chunks at once
and a running chunk stops at its next checkpoint."""

from __future__ import annotations

import itertools

from bridge.ops import operations
from bridge.ops.views import STALL_S, course_status
from handlers.progress import EVENT_S
from handlers.registry import StepContext, StepResult
from statemachine.timefmt import parse_iso
from tests.unit.runtime.conftest import Env, runtime_with


def ticking(env: Env, ticks: int, every_s: float, then=None):
    """A transcribe_chunk that reports progress ``ticks`` times, ``every_s`` apart (virtual
    time), calling ``then(ctx, tick)`` after each; the ticks it got through are counted."""
    reached: dict[str | None, int] = {}

    def step(ctx: StepContext) -> StepResult:
        for tick in range(1, ticks + 1):
            env.clock.advance_to(env.clock.now() + every_s)
            ctx.progress(tick, ticks)
            reached[ctx.task.name] = tick
            if then is not None:
                then(ctx, tick)
        return StepResult(outputs={}, summary={})

    env.steps.replace("transcribe_chunk", step)
    return reached


# The steps here take no real time: record each start before the step runs (a real long step
# has its start recorded 0.1 s in, long before its first progress report).
instant_starts = runtime_with(record_start_after_s=0)


@instant_starts
def test_progress_is_recorded_throttled_and_projected(env: Env) -> None:
    ticking(env, ticks=40, every_s=0.5)  # a tick every half second for 20 s
    course = env.ingest("p1")
    env.rt.dispatcher.run_until_idle()
    assert env.status(course) == "completed"
    events = [e for e in env.store.load(course) if e.type == "TaskProgress"]
    mine = [e for e in events if e.data["task"] == "transcribe_chunk#0"]
    # 40 ticks over 20 s: about one event every EVENT_S, never one per tick
    assert 2 <= len(mine) <= 20 / EVENT_S + 1
    fractions = [e.data["fraction"] for e in mine]
    assert fractions == sorted(fractions) and 0 < fractions[0] < fractions[-1] <= 1
    times = [parse_iso(e.occurred_at) for e in mine]
    assert all(b - a >= EVENT_S for a, b in itertools.pairwise(times))
    snapshot = env.store.head(course).snapshot["tasks"]["transcribe_chunk#0"]
    assert snapshot["progress"]["fraction"] == fractions[-1]


@instant_starts
def test_a_running_task_shows_its_progress_and_a_stalled_one_is_stuck(env: Env) -> None:
    seen: list[dict] = []

    def row(ctx: StepContext) -> dict:
        rows = course_status(env.store, ctx.course_id, now=env.clock.now())["tasks"]
        return next(r for r in rows if r["task"] == ctx.task.name)

    def look(ctx: StepContext, tick: int) -> None:
        if ctx.task.shard != 0:
            return
        if tick == 12:
            seen.append(row(ctx))
            env.clock.advance_to(env.clock.now() + STALL_S + 1)  # then nothing for too long
            seen.append(row(ctx))
        if tick == 20:
            seen.append(row(ctx))

    ticking(env, ticks=20, every_s=1.0, then=look)
    env.ingest("p2")
    env.rt.dispatcher.run_until_idle()
    moving, stalled, again = seen
    assert moving["status"] == "running" and 0.3 < moving["progress"] < 0.7
    assert moving["stuck"] is False
    assert stalled["stuck"] is True and stalled["progress"] == moving["progress"]
    assert again["stuck"] is False and again["progress"] > moving["progress"]


@instant_starts
def test_cancelling_mid_fan_out_stops_the_running_chunk_and_schedules_nothing(env: Env) -> None:
    course = env.ingest("c1")

    def cancel_midway(ctx: StepContext, tick: int) -> None:
        if tick == 5:
            operations.cancel(env.store, env.rt.bridge, course, operator="ann", reason="wrong")

    reached = ticking(env, ticks=30, every_s=1.0, then=cancel_midway)
    env.rt.dispatcher.run_until_idle()
    assert env.status(course) == "cancelled"
    # the running chunk stopped at its first checkpoint after the cancel, not at the end
    assert reached == {"transcribe_chunk#0": 5}
    assert "stopped" in env.rt.endpoint.answers
    tasks = env.store.head(course).snapshot["tasks"]
    chunks = [n for n in tasks if n.startswith("transcribe_chunk#")]
    assert chunks and all(tasks[n]["status"] != "succeeded" for n in chunks)
    assert "transcribe" not in tasks  # the fan-in was never scheduled
    after = [e.type for e in env.store.load(course)]
    assert after[after.index("CourseCancelled") + 1 :].count("TaskScheduled") == 0
