"""Commands that ``decide`` returns, and the events each one becomes."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from statemachine.events import CourseCompleted, CourseFailed, Event, TaskScheduled


def _empty() -> Mapping[str, Any]:
    return {}


@dataclass(frozen=True, kw_only=True, slots=True)
class ScheduleTask:
    task: str
    step: str
    shard: int | None
    generation: int
    idempotency_key: str
    queue: str
    input: Mapping[str, Any] = field(default_factory=_empty)
    not_before: str | None = None  # the queue holds it until then (ISO time)
    held: str | None = None  # why it is held (a tenant over its daily AI budget)


@dataclass(frozen=True, kw_only=True, slots=True)
class CompleteCourse:
    outputs: Mapping[str, str] = field(default_factory=_empty)


@dataclass(frozen=True, kw_only=True, slots=True)
class FailCourse:
    reason: str
    task: str | None = None


Command = ScheduleTask | CompleteCourse | FailCourse


def to_event(command: Command) -> Event:
    match command:
        case ScheduleTask():
            return TaskScheduled(
                task=command.task,
                step=command.step,
                shard=command.shard,
                generation=command.generation,
                idempotency_key=command.idempotency_key,
                queue=command.queue,
                input=dict(command.input),
                not_before=command.not_before,
                held=command.held,
            )
        case CompleteCourse():
            return CourseCompleted(outputs=dict(command.outputs))
        case FailCourse():
            return CourseFailed(reason=command.reason, task=command.task)


def task_name(step: str, shard: int | None) -> str:
    return step if shard is None else f"{step}#{shard}"


def idempotency_key(course_id: str, step: str, shard: int | None, generation: int) -> str:
    """``courseId:taskType[:shard]:generation``, as DESIGN.md gives it."""
    middle = step if shard is None else f"{step}:{shard}"
    return f"{course_id}:{middle}:{generation}"
