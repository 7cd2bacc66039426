"""``decide``: from a course's state to the commands that move it on, per the step DAG.

Retries belong to the queue: a retrying task is left alone here. Only an operator's redrive
(tasks back in ``pending``) makes a new generation with a new idempotency key.
"""

from __future__ import annotations

from statemachine.commands import (
    Command,
    CompleteCourse,
    FailCourse,
    ScheduleTask,
    idempotency_key,
    task_name,
)
from statemachine.lifecycle import BROKEN_TASK, CourseStatus, TaskStatus
from statemachine.pipeline import FINAL_STEP, Pipeline, Step
from statemachine.state import CourseState

_DECIDING = frozenset({CourseStatus.REQUESTED, CourseStatus.RUNNING})
_BROKEN = BROKEN_TASK


def decide(state: CourseState, pipeline: Pipeline) -> list[Command]:
    if state.status not in _DECIDING:
        return []
    pipe = pipeline
    broken = [t for t in state.tasks.values() if t.status in _BROKEN]
    if broken:
        first = min(broken, key=lambda t: (t.finished_at or "", t.name))
        error = first.error or {}
        verb = (
            "exhausted its attempts"
            if first.status == TaskStatus.EXHAUSTED
            else "failed permanently"
        )
        reason = f"step {first.name} {verb}: {error.get('message', 'no message')}"
        return [FailCourse(reason=reason[:2000], task=first.name)]
    commands: list[Command] = []
    done: set[str] = set()
    for name in pipe.order:
        step = pipe.steps[name]
        if not all(dep in done for dep in step.after):
            continue
        shards = _shards(state, step)
        all_succeeded = True
        for shard in shards:
            tname = task_name(name, shard)
            task = state.tasks.get(tname)
            if task is None or task.status == TaskStatus.PENDING:
                generation = 1 if task is None else task.generation + 1
                commands.append(_schedule(state, step, shard, generation, len(shards)))
                all_succeeded = False
            elif task.status != TaskStatus.SUCCEEDED:
                all_succeeded = False
        if all_succeeded:
            done.add(name)
    if FINAL_STEP in done:
        final = state.tasks.get(FINAL_STEP)
        outputs = dict(final.outputs) if final else {}
        return [CompleteCourse(outputs=outputs)]
    return commands


def _shards(state: CourseState, step: Step) -> list[int | None]:
    """``[None]`` for a plain step; shard numbers for a fan-out, from its source's summary."""
    if step.fan_out is None:
        return [None]
    source = state.tasks.get(step.fan_out.source)
    count = 0
    if source is not None:
        raw = source.summary.get(step.fan_out.count_field, 0)
        count = raw if isinstance(raw, int) and raw > 0 else 0
    return list(range(min(count, step.fan_out.max_shards)))


def _schedule(
    state: CourseState, step: Step, shard: int | None, generation: int, shards: int
) -> ScheduleTask:
    return ScheduleTask(
        task=task_name(step.name, shard),
        step=step.name,
        shard=shard,
        generation=generation,
        idempotency_key=idempotency_key(state.course_id, step.name, shard, generation),
        queue=step.queue,
        input={"shards": shards} if shard is not None else {},
        not_before=state.hold_until,
    )
