"""Builders of events and histories shared by the tests."""

from __future__ import annotations

from collections.abc import Sequence

from statemachine.envelope import NewEvent
from statemachine.events import (
    CourseRequested,
    Event,
    TaskScheduled,
    TaskStarted,
    TaskSucceeded,
)
from statemachine.ports import EventStore
from statemachine.timefmt import iso

T0 = 1_790_000_000.0


def new(event: Event, t: float = T0, actor: str = "test") -> NewEvent:
    return NewEvent(event=event, occurred_at=iso(t), actor=actor)


def requested(title: str = "Rivers", uri: str = "gs://bucket/lecture.mp4") -> NewEvent:
    return new(CourseRequested(video_uri=uri, title=title))


def scheduled(
    course_id: str,
    step: str = "prepare_video",
    queue: str = "video-preparation-queue",
    shard: int | None = None,
    generation: int = 1,
) -> NewEvent:
    name = step if shard is None else f"{step}#{shard}"
    middle = step if shard is None else f"{step}:{shard}"
    return new(
        TaskScheduled(
            task=name,
            step=step,
            shard=shard,
            generation=generation,
            idempotency_key=f"{course_id}:{middle}:{generation}",
            queue=queue,
        )
    )


def started(course_id: str, step: str = "prepare_video", attempt: int = 1) -> NewEvent:
    return new(TaskStarted(task=step, idempotency_key=f"{course_id}:{step}:1", attempt=attempt))


def succeeded(course_id: str, step: str = "prepare_video", **summary: object) -> NewEvent:
    return new(
        TaskSucceeded(
            task=step,
            idempotency_key=f"{course_id}:{step}:1",
            attempt=1,
            outputs={"video": f"file:///tmp/{course_id}/video.mp4"},
            summary=dict(summary),
            duration_ms=12,
        )
    )


def one_step_history(store: EventStore, course_id: str) -> int:
    """Request, schedule, start and finish prepare_video: four appends, version 4."""
    v = store.append(course_id, 0, [requested()])
    v = store.append(course_id, v, [scheduled(course_id)])
    v = store.append(course_id, v, [started(course_id)])
    return store.append(course_id, v, [succeeded(course_id, duration_s=60.0)])


def types(events: Sequence[object]) -> list[str]:
    return [e.type for e in events]  # type: ignore[attr-defined]
