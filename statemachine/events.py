"""Event types: frozen data records, their wire names and current schema versions."""

from __future__ import annotations

from collections.abc import Mapping
from copy import deepcopy
from dataclasses import dataclass, field, fields
from typing import Any, ClassVar

from statemachine.errors import TransitionNotAllowed


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


@dataclass(frozen=True, kw_only=True, slots=True)
class TaskExhausted:
    SCHEMA_VERSION: ClassVar[int] = 1
    task: str
    idempotency_key: str
    attempts: int
    error: str


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


@dataclass(frozen=True, kw_only=True, slots=True)
class CourseRedriven:
    SCHEMA_VERSION: ClassVar[int] = 1
    tasks: tuple[str, ...]
    reason: str


Event = (
    CourseRequested
    | TaskScheduled
    | TaskStarted
    | TaskProgress
    | TaskSucceeded
    | TaskFailed
    | TaskExhausted
    | CourseCompleted
    | CourseFailed
    | CourseCancelled
    | CoursePaused
    | CourseResumed
    | CourseRedriven
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
        CourseCompleted,
        CourseFailed,
        CourseCancelled,
        CoursePaused,
        CourseResumed,
        CourseRedriven,
    )
}


def type_name(event: Event) -> str:
    return type(event).__name__


def schema_version(event_type: str) -> int:
    cls = EVENT_TYPES.get(event_type)
    if cls is None:
        raise TransitionNotAllowed("-", event_type, "unknown event type")
    version: int = cls.SCHEMA_VERSION
    return version


def to_data(event: Event) -> dict[str, Any]:
    """The JSON-ready ``data`` of an event (a copy: tuples become lists, mappings dicts).

    What ``dataclasses.asdict`` gives, but by field names looked up once per class: events
    hold only JSON's own types, and this runs for every event appended."""
    cls = type(event)
    names = _FIELD_NAMES.get(cls)
    if names is None:
        names = _FIELD_NAMES[cls] = tuple(f.name for f in fields(cls))
    return {name: _json_copy(getattr(event, name)) for name in names}


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


def from_data(event_type: str, data: Mapping[str, Any]) -> Event:
    """Build the typed event from its (upcast) ``data``."""
    cls = EVENT_TYPES.get(event_type)
    if cls is None:
        raise TransitionNotAllowed("-", event_type, "unknown event type")
    names = {f.name for f in fields(cls)}
    kwargs = {k: v for k, v in data.items() if k in names}
    if cls is CourseRedriven:
        kwargs["tasks"] = tuple(kwargs.get("tasks", ()))
    event: Event = cls(**kwargs)
    return event
