"""Immutable course and task state, and its JSON snapshot form (what the store's head keeps)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from statemachine.envelope import GENESIS_HASH

NEW = "new"  # before CourseRequested: the course does not exist yet

Snapshot = dict[str, Any]


def empty_snapshot(course_id: str) -> Snapshot:
    return {
        "course_id": course_id,
        "version": 0,
        "status": NEW,
        "last_hash": GENESIS_HASH,
        "created_at": None,
        "updated_at": None,
        "request": None,
        "variant": None,
        "failure": None,
        "outputs": {},
        "tasks": {},
    }


def freeze(value: Any) -> Any:
    """A read-only deep copy: dicts become mapping proxies, lists tuples."""
    if isinstance(value, Mapping):
        return MappingProxyType({k: freeze(v) for k, v in value.items()})
    if isinstance(value, list | tuple):
        return tuple(freeze(v) for v in value)
    return value


def thaw(value: Any) -> Any:
    """The JSON-ready deep copy of a frozen value."""
    if isinstance(value, Mapping):
        return {k: thaw(v) for k, v in value.items()}
    if isinstance(value, tuple | list):
        return [thaw(v) for v in value]
    return value


@dataclass(frozen=True, slots=True)
class TaskState:
    name: str
    step: str
    shard: int | None
    status: str
    generation: int
    idempotency_key: str
    queue: str
    attempts: int
    last_attempt: int
    input: Mapping[str, Any]
    outputs: Mapping[str, str]
    summary: Mapping[str, Any]
    metering: Mapping[str, Any]
    error: Mapping[str, Any] | None
    scheduled_at: str | None
    started_at: str | None
    finished_at: str | None
    duration_ms: int | None

    @classmethod
    def from_snapshot(cls, name: str, t: Mapping[str, Any]) -> TaskState:
        return cls(
            name=name,
            step=t["step"],
            shard=t["shard"],
            status=t["status"],
            generation=t["generation"],
            idempotency_key=t["key"],
            queue=t["queue"],
            attempts=t["attempts"],
            last_attempt=t["last_attempt"],
            input=freeze(t["input"]),
            outputs=freeze(t["outputs"]),
            summary=freeze(t["summary"]),
            metering=freeze(t["metering"]),
            error=freeze(t["error"]),
            scheduled_at=t["scheduled_at"],
            started_at=t["started_at"],
            finished_at=t["finished_at"],
            duration_ms=t["duration_ms"],
        )


@dataclass(frozen=True, slots=True)
class CourseState:
    course_id: str
    version: int
    status: str
    last_hash: str
    created_at: str | None
    updated_at: str | None
    request: Mapping[str, Any] | None
    variant: str | None
    failure: Mapping[str, Any] | None
    outputs: Mapping[str, str]
    tasks: Mapping[str, TaskState]
    snapshot: Mapping[str, Any]  # the frozen snapshot this state was made from

    @classmethod
    def from_snapshot(cls, snap: Mapping[str, Any]) -> CourseState:
        frozen = freeze(snap)
        return cls(
            course_id=snap["course_id"],
            version=snap["version"],
            status=snap["status"],
            last_hash=snap["last_hash"],
            created_at=snap["created_at"],
            updated_at=snap["updated_at"],
            request=frozen["request"],
            variant=snap["variant"],
            failure=frozen["failure"],
            outputs=frozen["outputs"],
            tasks=MappingProxyType(
                {n: TaskState.from_snapshot(n, t) for n, t in snap["tasks"].items()}
            ),
            snapshot=frozen,
        )

    @classmethod
    def empty(cls, course_id: str) -> CourseState:
        return cls.from_snapshot(empty_snapshot(course_id))

    def to_snapshot(self) -> Snapshot:
        snap: Snapshot = thaw(self.snapshot)
        return snap

    def task(self, name: str) -> TaskState | None:
        return self.tasks.get(name)

    def step_tasks(self, step: str) -> list[TaskState]:
        return [t for t in self.tasks.values() if t.step == step]
