"""Immutable course and task state, and its JSON snapshot form (what the store's head keeps)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, NotRequired, TypedDict

from statemachine.envelope import GENESIS_HASH
from statemachine.upcast import pinned_version

NEW = "new"  # before CourseRequested: the course does not exist yet
DEFAULT_TENANT = "default"  # the tenant of a request that names none


class TaskSnapshot(TypedDict):
    """One task in a head snapshot (``TaskState.to_snapshot``); optional keys are absent,
    not null, so snapshots written before they existed stay equal to their fold."""

    step: str
    shard: int | None
    status: str
    generation: int
    key: str
    queue: str
    attempts: int
    last_attempt: int
    input: dict[str, Any]
    outputs: dict[str, str]
    summary: dict[str, Any]
    metering: dict[str, Any]
    error: dict[str, Any] | None
    scheduled_at: str | None
    started_at: str | None
    finished_at: str | None
    duration_ms: int | None
    not_before: NotRequired[str]
    failed_metering: NotRequired[dict[str, Any]]
    progress: NotRequired[dict[str, Any]]
    held: NotRequired[str]  # why its queue holds it (a tenant's daily AI budget)


class CourseSnapshot(TypedDict):
    """A course's head snapshot: what the store keeps beside the head and what the reducer
    folds into (``CourseState.to_snapshot``, ``empty_snapshot``)."""

    course_id: str
    version: int
    status: str
    last_hash: str
    created_at: str | None
    updated_at: str | None
    request: dict[str, Any] | None
    variant: str | None
    failure: dict[str, Any] | None
    outputs: dict[str, str]
    tasks: dict[str, TaskSnapshot]
    hold_until: NotRequired[str]
    pipeline: NotRequired[dict[str, Any]]  # {version, digest}: the pin, absent when unpinned
    tenant: NotRequired[str]  # absent: the default tenant
    queued: NotRequired[dict[str, Any]]  # {position, reason, at} while it waits for its share


Snapshot = CourseSnapshot


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
    not_before: str | None = None  # held by its queue until then; absent from old snapshots
    # What the attempts that did not succeed cost (TaskFailed/TaskExhausted metering, summed);
    # in the snapshot only once there is something, so older snapshots read the same.
    failed_metering: Mapping[str, Any] = field(default_factory=lambda: _EMPTY)
    # {fraction, at} of the running attempt's last TaskProgress; None before any
    progress: Mapping[str, Any] | None = None
    # Why its queue holds it until ``not_before`` (its tenant over its daily AI budget)
    held: str | None = None

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
            input=_view(t["input"]),
            outputs=_view(t["outputs"]),
            summary=_view(t["summary"]),
            metering=_view(t["metering"]),
            error=_view(t["error"]) if t["error"] is not None else None,
            scheduled_at=t["scheduled_at"],
            started_at=t["started_at"],
            finished_at=t["finished_at"],
            duration_ms=t["duration_ms"],
            not_before=t.get("not_before"),
            failed_metering=_view(t.get("failed_metering") or {}),
            progress=_view(t["progress"]) if t.get("progress") is not None else None,
            held=t.get("held"),
        )

    def to_snapshot(self) -> TaskSnapshot:
        snapshot: TaskSnapshot = {
            "step": self.step,
            "shard": self.shard,
            "status": self.status,
            "generation": self.generation,
            "key": self.idempotency_key,
            "queue": self.queue,
            "attempts": self.attempts,
            "last_attempt": self.last_attempt,
            "input": thaw(self.input),
            "outputs": thaw(self.outputs),
            "summary": thaw(self.summary),
            "metering": thaw(self.metering),
            "error": thaw(self.error),
            "scheduled_at": self.scheduled_at,
            "started_at": self.started_at,
            "finished_at": self.finished_at,
            "duration_ms": self.duration_ms,
        }
        if self.not_before is not None:  # only then: old snapshots stay equal to their fold
            snapshot["not_before"] = self.not_before
        if self.failed_metering:
            snapshot["failed_metering"] = thaw(self.failed_metering)
        if self.progress is not None:  # absent, not null: snapshots from before stay equal
            snapshot["progress"] = thaw(self.progress)
        if self.held is not None:
            snapshot["held"] = self.held
        return snapshot

    def cost_usd(self) -> float:
        """What every attempt of the task cost: the succeeded one's and the others'."""
        total = 0.0
        for metering in (self.metering, self.failed_metering):
            value = metering.get("cost_usd", 0)
            total += float(value) if isinstance(value, int | float) else 0.0
        return total


_EMPTY: Mapping[str, Any] = MappingProxyType({})


def _view(value: Mapping[str, Any]) -> Mapping[str, Any]:
    """A read-only view; nested containers are frozen only where there are any (cheap path)."""
    if not value:
        return _EMPTY
    if any(isinstance(v, dict | list) for v in value.values()):
        frozen: Mapping[str, Any] = freeze(value)
        return frozen
    return MappingProxyType(dict(value))


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
    # Tasks scheduled next are held until then (a request's notBefore, a resume at a time);
    # the first TaskScheduled consumes it. Absent from snapshots that have none.
    hold_until: str | None = None
    # The pipeline the course is pinned to ({version, digest}: its request's, or its last
    # CourseMigrated's); None for a course requested before pinning (``pipeline_version``).
    pipeline: Mapping[str, Any] | None = None
    # The tenant the course counts against (in snapshots only when not the default one), and
    # while it waits for its share, {position, reason, at} of its CourseQueued.
    tenant: str = DEFAULT_TENANT
    queued: Mapping[str, Any] | None = None

    @classmethod
    def from_snapshot(
        cls,
        snap: Mapping[str, Any],
        *,
        tasks: Mapping[str, TaskState] | None = None,
        request: Mapping[str, Any] | None = None,
    ) -> CourseState:
        """The state a snapshot describes; the snapshot is copied, so callers may reuse it.
        ``tasks`` and ``request``: their states already built from this snapshot's own
        (``StateCache`` reuses the unchanged ones of earlier versions)."""
        return cls(
            course_id=snap["course_id"],
            version=snap["version"],
            status=snap["status"],
            last_hash=snap["last_hash"],
            created_at=snap["created_at"],
            updated_at=snap["updated_at"],
            request=request if request is not None else freeze(snap["request"]),
            variant=snap["variant"],
            failure=freeze(snap["failure"]),
            outputs=_view(snap["outputs"]),
            tasks=tasks
            if tasks is not None
            else MappingProxyType(
                {n: TaskState.from_snapshot(n, t) for n, t in snap["tasks"].items()}
            ),
            hold_until=snap.get("hold_until"),
            pipeline=_view(snap["pipeline"]) if snap.get("pipeline") is not None else None,
            tenant=snap.get("tenant", DEFAULT_TENANT),
            queued=_view(snap["queued"]) if snap.get("queued") else None,
        )

    @classmethod
    def empty(cls, course_id: str) -> CourseState:
        return cls.from_snapshot(empty_snapshot(course_id))

    def to_snapshot(self) -> Snapshot:
        """The JSON-ready snapshot (a fresh copy the caller owns)."""
        snap: Snapshot = {
            "course_id": self.course_id,
            "version": self.version,
            "status": self.status,
            "last_hash": self.last_hash,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
            "request": thaw(self.request),
            "variant": self.variant,
            "failure": thaw(self.failure),
            "outputs": thaw(self.outputs),
            "tasks": {n: t.to_snapshot() for n, t in self.tasks.items()},
        }
        if self.hold_until is not None:
            snap["hold_until"] = self.hold_until
        if self.pipeline is not None:  # absent, not null: unpinned snapshots stay as they were
            snap["pipeline"] = thaw(self.pipeline)
        if self.tenant != DEFAULT_TENANT:
            snap["tenant"] = self.tenant
        if self.queued is not None:
            snap["queued"] = thaw(self.queued)
        return snap

    @property
    def pipeline_version(self) -> int:
        """The pipeline version ``decide`` follows for this course (statemachine/upcast.py
        gives the one of a course requested before pinning)."""
        return pinned_version(self.pipeline)

    def task(self, name: str) -> TaskState | None:
        return self.tasks.get(name)

    def step_tasks(self, step: str) -> list[TaskState]:
        return [t for t in self.tasks.values() if t.step == step]


Encode = Callable[[Any], bytes]


class StateCache:
    """``CourseState.from_snapshot``, built once per (course, version, last hash): the hash
    chain fixes the whole history for that key, so the fold, and the immutable state, are the
    same whoever asks (the endpoint, then the bridge, for one head). A runtime owns one and
    gives it to its bridge and endpoint; it keeps at most ``limit`` states (all dropped when
    full: cheap, and rare, since a delivery asks for the head it just wrote)."""

    def __init__(self, limit: int = 4096, *, encode: Encode | None = None) -> None:
        self.limit = limit
        self._states: dict[tuple[str, int, str], CourseState] = {}
        # With ``encode`` (a JSON encoder with a fixed output for equal input, such as
        # orjson.dumps), the states of a course's tasks and its request are reused from one
        # version to the next: most tasks do not change between two versions, and building
        # them is most of the cost of a state (15 tasks: ~130 us). Keyed by their encoded
        # content, so an entry is only ever reused for an equal task.
        self._encode = encode
        self._parts: dict[tuple[str, bytes], Any] = {}

    def of(self, snap: Mapping[str, Any]) -> CourseState:
        key = (snap["course_id"], snap["version"], snap["last_hash"])
        state = self._states.get(key)
        if state is None:
            if len(self._states) >= self.limit:
                self._states.clear()
            state = self._states[key] = self._build(snap)
        return state

    def _build(self, snap: Mapping[str, Any]) -> CourseState:
        encode = self._encode
        if encode is None:
            return CourseState.from_snapshot(snap)
        parts = self._parts
        if len(parts) >= self.limit * 16:
            parts.clear()
        try:
            tasks: dict[str, TaskState] = {}
            for name, t in snap["tasks"].items():
                key = (name, encode(t))
                task = parts.get(key)
                if task is None:
                    task = parts[key] = TaskState.from_snapshot(name, t)
                tasks[name] = task
            request = None
            if snap["request"] is not None:
                key = ("", encode(snap["request"]))  # no task is named ""
                request = parts.get(key)
                if request is None:
                    request = parts[key] = freeze(snap["request"])
        except (TypeError, ValueError):  # the encoder refused a value (an integer over 64 bits)
            return CourseState.from_snapshot(snap)
        return CourseState.from_snapshot(snap, tasks=MappingProxyType(tasks), request=request)

    def __len__(self) -> int:
        return len(self._states)
