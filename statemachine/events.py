"""Event types: frozen data records, their wire names and current schema versions."""

from __future__ import annotations

from collections.abc import Mapping
from copy import deepcopy
from dataclasses import dataclass, field, fields
from typing import Any, ClassVar

from statemachine.errors import UnknownEventType


def _frozen_map() -> Mapping[str, Any]:
    return {}


@dataclass(frozen=True, kw_only=True, slots=True)
class CourseRequested:
    SCHEMA_VERSION: ClassVar[int] = 2
    video_uri: str
    title: str
    language: str = "en"
    options: Mapping[str, Any] = field(default_factory=_frozen_map)
    request_id: str | None = None
    variant: str = "cloudtasks"
    not_before: str | None = None  # start no earlier (ISO time); absent from data when empty
    # The pipeline definition the course runs on (statemachine/pipeline.py, ``Pipelines``):
    # absent from requests recorded before courses were pinned (statemachine/upcast.py says
    # which version those run on).
    pipeline_version: int | None = None
    pipeline_digest: str | None = None
    # The tenant it counts against; None (absent from data) is the default tenant, so a
    # request that names none records exactly what it did before tenants existed.
    tenant: str | None = None
    OMIT_EMPTY: ClassVar[frozenset[str]] = frozenset(
        {"not_before", "pipeline_version", "pipeline_digest", "tenant"}
    )


@dataclass(frozen=True, kw_only=True, slots=True)
class TaskScheduled:
    SCHEMA_VERSION: ClassVar[int] = 1
    task: str
    step: str
    shard: int | None
    generation: int
    idempotency_key: str
    queue: str
    input: Mapping[str, Any] = field(default_factory=_frozen_map)
    not_before: str | None = None  # the queue holds it until then (ISO time); omitted if empty
    # Why it is held until ``not_before`` (its tenant is over its daily AI budget); omitted
    # if empty.
    held: str | None = None
    OMIT_EMPTY: ClassVar[frozenset[str]] = frozenset({"not_before", "held"})


@dataclass(frozen=True, kw_only=True, slots=True)
class TaskStarted:
    SCHEMA_VERSION: ClassVar[int] = 1
    task: str
    idempotency_key: str
    attempt: int


@dataclass(frozen=True, kw_only=True, slots=True)
class TaskProgress:
    """A running task's fraction done (throttled by the endpoint: not one event per tick)."""

    SCHEMA_VERSION: ClassVar[int] = 1
    task: str
    idempotency_key: str
    attempt: int
    fraction: float


@dataclass(frozen=True, kw_only=True, slots=True)
class TaskSucceeded:
    SCHEMA_VERSION: ClassVar[int] = 1
    task: str
    idempotency_key: str
    attempt: int
    outputs: Mapping[str, str]
    summary: Mapping[str, Any]
    duration_ms: int
    metering: Mapping[str, Any] = field(default_factory=_frozen_map)


@dataclass(frozen=True, kw_only=True, slots=True)
class TaskFailed:
    SCHEMA_VERSION: ClassVar[int] = 1
    task: str
    idempotency_key: str
    attempt: int
    error_type: str
    message: str
    retryable: bool
    duration_ms: int = 0
    metering: Mapping[str, Any] = field(default_factory=_frozen_map)  # omitted when empty
    OMIT_EMPTY: ClassVar[frozenset[str]] = frozenset({"metering"})


@dataclass(frozen=True, kw_only=True, slots=True)
class TaskExhausted:
    SCHEMA_VERSION: ClassVar[int] = 1
    task: str
    idempotency_key: str
    attempts: int
    error: str
    metering: Mapping[str, Any] = field(default_factory=_frozen_map)  # omitted when empty
    OMIT_EMPTY: ClassVar[frozenset[str]] = frozenset({"metering"})


@dataclass(frozen=True, kw_only=True, slots=True)
class TaskMooted:
    """A task's result that arrived after its course was cancelled: recorded (what it did,
    what it cost), the task ends ``moot``, and the course does not move."""

    SCHEMA_VERSION: ClassVar[int] = 1
    task: str
    idempotency_key: str
    attempt: int
    outcome: str  # what the step did: "succeeded" or "failed"
    detail: str
    duration_ms: int = 0
    metering: Mapping[str, Any] = field(default_factory=_frozen_map)


@dataclass(frozen=True, kw_only=True, slots=True)
class CourseCompleted:
    SCHEMA_VERSION: ClassVar[int] = 1
    outputs: Mapping[str, str] = field(default_factory=_frozen_map)


@dataclass(frozen=True, kw_only=True, slots=True)
class CourseFailed:
    SCHEMA_VERSION: ClassVar[int] = 1
    reason: str
    task: str | None = None


@dataclass(frozen=True, kw_only=True, slots=True)
class CourseCancelled:
    SCHEMA_VERSION: ClassVar[int] = 1
    reason: str


@dataclass(frozen=True, kw_only=True, slots=True)
class CoursePaused:
    SCHEMA_VERSION: ClassVar[int] = 1
    reason: str


@dataclass(frozen=True, kw_only=True, slots=True)
class CourseResumed:
    SCHEMA_VERSION: ClassVar[int] = 1
    reason: str
    not_before: str | None = None  # what is due is held until then (ISO time); omitted if empty
    OMIT_EMPTY: ClassVar[frozenset[str]] = frozenset({"not_before"})


@dataclass(frozen=True, kw_only=True, slots=True)
class CourseRedriven:
    SCHEMA_VERSION: ClassVar[int] = 1
    tasks: tuple[str, ...]
    reason: str


@dataclass(frozen=True, kw_only=True, slots=True)
class CourseMigrated:
    """An operator moved the course to another pipeline version (``coursegen migrate``):
    ``decide`` follows ``to_version``'s DAG from here on; ``digest`` is that definition's."""

    SCHEMA_VERSION: ClassVar[int] = 1
    from_version: int
    to_version: int
    digest: str
    reason: str


@dataclass(frozen=True, kw_only=True, slots=True)
class CourseQueued:
    """The course's tenant is at its limit of active courses (or the bridge at its total):
    it waits, ``position`` in its tenant's line when it joined, until the bridge admits it."""

    SCHEMA_VERSION: ClassVar[int] = 1
    tenant: str
    position: int
    reason: str


@dataclass(frozen=True, kw_only=True, slots=True)
class CourseAdmitted:
    """A queued course was given a place freed by another (taken round-robin by tenant)."""

    SCHEMA_VERSION: ClassVar[int] = 1
    tenant: str
    reason: str


Event = (
    CourseRequested
    | TaskScheduled
    | TaskStarted
    | TaskProgress
    | TaskSucceeded
    | TaskFailed
    | TaskExhausted
    | TaskMooted
    | CourseCompleted
    | CourseFailed
    | CourseCancelled
    | CoursePaused
    | CourseResumed
    | CourseRedriven
    | CourseMigrated
    | CourseQueued
    | CourseAdmitted
)

EVENT_TYPES: Mapping[str, type[Any]] = {
    cls.__name__: cls
    for cls in (
        CourseRequested,
        TaskScheduled,
        TaskStarted,
        TaskProgress,
        TaskSucceeded,
        TaskFailed,
        TaskExhausted,
        TaskMooted,
        CourseCompleted,
        CourseFailed,
        CourseCancelled,
        CoursePaused,
        CourseResumed,
        CourseRedriven,
        CourseMigrated,
        CourseQueued,
        CourseAdmitted,
    )
}


def type_name(event: Event) -> str:
    return type(event).__name__


def schema_version(event_type: str) -> int:
    cls = EVENT_TYPES.get(event_type)
    if cls is None:
        raise UnknownEventType(event_type)
    version: int = cls.SCHEMA_VERSION
    return version


def to_data(event: Event) -> dict[str, Any]:
    """The JSON-ready ``data`` of an event (a copy: tuples become lists, mappings dicts).

    What ``dataclasses.asdict`` gives, but by field names looked up once per class: events
    hold only JSON's own types, and this runs for every event appended. A field added to an
    event later (named in its ``OMIT_EMPTY``) is left out while it is empty, so an event that
    does not use it serialises exactly as before the field existed."""
    cls = type(event)
    names = _FIELD_NAMES.get(cls)
    if names is None:
        names = _FIELD_NAMES[cls] = tuple(f.name for f in fields(cls))
    data = {name: _json_copy(getattr(event, name)) for name in names}
    for name in getattr(cls, "OMIT_EMPTY", ()):
        if not data.get(name):
            data.pop(name, None)
    return data


_FIELD_NAMES: dict[type, tuple[str, ...]] = {}
_SCALARS = frozenset({str, int, float, bool, type(None)})


def _json_copy(value: Any) -> Any:
    if type(value) in _SCALARS:
        return value
    if isinstance(value, Mapping):
        return {k: _json_copy(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_copy(v) for v in value]
    return deepcopy(value)  # not JSON: left for the schema check to refuse, as before


def from_data(event_type: str, data: Mapping[str, Any], schema_version: int | None = None) -> Event:
    """Build the typed event from its (upcast) ``data``."""
    cls = EVENT_TYPES.get(event_type)
    if cls is None:
        raise UnknownEventType(event_type, schema_version)
    names = {f.name for f in fields(cls)}
    kwargs = {k: v for k, v in data.items() if k in names}
    if cls is CourseRedriven:
        kwargs["tasks"] = tuple(kwargs.get("tasks", ()))
    event: Event = cls(**kwargs)
    return event
