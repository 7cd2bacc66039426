"""What the bridge puts on the wire: the task payload, course ids, rollout variants.

Pure functions of a course's state or of a request message: the bridge, the operator use
cases and the tests build the same payloads and ids from them.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

from statemachine.commands import ScheduleTask
from statemachine.envelope import canonical
from statemachine.state import CourseState, TaskState
from statemachine.timefmt import iso


def scheduled_view(state: CourseState, c: ScheduleTask, at: str) -> TaskState:
    """The task a ScheduleTask command creates, as the reducer will record it (what is
    dispatched right after the append, without folding it first)."""
    return TaskState(
        name=c.task,
        step=c.step,
        shard=c.shard,
        status="scheduled",
        generation=c.generation,
        idempotency_key=c.idempotency_key,
        queue=c.queue,
        attempts=0,
        last_attempt=0,
        input=c.input,
        outputs={},
        summary={},
        metering={},
        error=None,
        scheduled_at=at,
        started_at=None,
        finished_at=None,
        duration_ms=None,
        not_before=c.not_before,
    )


def task_payload(state: CourseState, task: TaskState) -> dict[str, Any]:
    """The plan's task payload: courseId, taskType, attempt, data, created, idempotencyKey."""
    return {
        "courseId": state.course_id,
        "taskType": task.step,
        "attempt": 1,
        "data": {
            "task": task.name,
            "shard": task.shard,
            "generation": task.generation,
            "variant": state.variant or "cloudtasks",
        },
        "created": task.scheduled_at or iso(0),
        "idempotencyKey": task.idempotency_key,
    }


def course_id_for(message_id: str | None, message: Mapping[str, Any]) -> str:
    """Deterministic from the message id, so a redelivered message maps to the same course;
    without one, from the message's canonical JSON (the hash chain's encoding), so the same
    request gives the same id whatever the order of its keys, nested ones included."""
    seed = f"msg:{message_id}" if message_id else "req:" + canonical(message).decode("utf-8")
    return "c" + hashlib.sha256(seed.encode()).hexdigest()[:23]


def variant_for(course_id: str, rollout_percent: int) -> str:
    """``cloudtasks`` for ``rollout_percent`` of course ids, ``legacy`` for the rest."""
    bucket = int(hashlib.sha256(course_id.encode()).hexdigest()[:8], 16) % 100
    return "cloudtasks" if bucket < rollout_percent else "legacy"
