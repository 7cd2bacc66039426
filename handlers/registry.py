"""The step registry: each task type maps to one function with one signature."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from statemachine.state import CourseState, TaskState


class StepError(Exception):
    """Base of the errors a step raises on purpose."""

    retryable = True


class TransientStepError(StepError):
    """Worth retrying (network, rate limit, 5xx): the queue retries with backoff."""

    def __init__(self, message: str, *, retry_after_s: float | None = None) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class PermanentStepError(StepError):
    """Retrying cannot help (bad input, refused source): recorded, and the course fails."""

    retryable = False


def no_progress(done: float, total: float) -> None:
    """The checkpoint of a step run outside the endpoint: nothing to report, never cancelled."""


@dataclass(frozen=True, slots=True)
class StepContext:
    course: CourseState
    task: TaskState
    attempt: int
    services: Any  # handlers.services.StepServices: artifacts, providers, settings, clock
    # Call as the work goes on with (done, total): reports progress and raises
    # handlers.progress.StepCancelled once the course is cancelled (handlers/progress.py).
    progress: Callable[[float, float], None] = no_progress

    @property
    def course_id(self) -> str:
        return self.course.course_id

    def upstream(self, step: str) -> TaskState:
        """The succeeded task of a prerequisite step (not for fan-out steps)."""
        task = self.course.task(step)
        if task is None or task.status != "succeeded":
            raise PermanentStepError(f"prerequisite {step} has not succeeded")
        return task

    def shards(self, step: str) -> list[TaskState]:
        """Every succeeded shard of a fan-out step, in shard order."""
        found = [t for t in self.course.step_tasks(step) if t.status == "succeeded"]
        return sorted(found, key=lambda t: t.shard or 0)


@dataclass(frozen=True, slots=True)
class StepResult:
    outputs: Mapping[str, str] = field(default_factory=dict)  # name -> artifact reference
    summary: Mapping[str, Any] = field(default_factory=dict)  # small facts for decide and people
    metering: Mapping[str, Any] = field(default_factory=dict)  # tokens, cost, model, prompt


StepFn = Callable[[StepContext], StepResult]

_REGISTRY: dict[str, StepFn] = {}


def register(name: str) -> Callable[[StepFn], StepFn]:
    def wrap(fn: StepFn) -> StepFn:
        _REGISTRY[name] = fn
        return fn

    return wrap


def real_steps() -> Mapping[str, StepFn]:
    """The product's steps (imported lazily: they pull in media and AI libraries)."""
    import handlers.steps  # noqa: F401  (registers every step)

    return dict(_REGISTRY)
