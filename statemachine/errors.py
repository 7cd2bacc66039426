"""Errors of the core, each carrying the data an operator needs to act on it."""

from __future__ import annotations


class TransitionNotAllowed(Exception):
    """An event is illegal in the state it was applied to."""

    def __init__(self, state: str, event: str, detail: str = "") -> None:
        self.state = state
        self.event = event
        self.detail = detail
        suffix = f": {detail}" if detail else ""
        super().__init__(f"{event} is not allowed in state {state}{suffix}")


class UnknownEventType(Exception):
    """An event type this code does not know (a history written by a newer version, or a
    corrupt one): ``event_type`` and ``schema_version`` (None where none was given) say which."""

    def __init__(self, event_type: str, schema_version: int | None = None) -> None:
        self.event_type = event_type
        self.schema_version = schema_version
        version = "" if schema_version is None else f" (schema version {schema_version})"
        super().__init__(
            f"unknown event type {event_type!r}{version}: not one this version of coursegen "
            "knows (written by a newer version?)"
        )


class ConcurrencyConflict(Exception):
    """An append expected a version the course no longer has."""

    def __init__(self, course_id: str, expected: int, actual: int) -> None:
        self.course_id = course_id
        self.expected = expected
        self.actual = actual
        super().__init__(f"course {course_id}: expected version {expected}, found {actual}")


class IntegrityError(Exception):
    """A stored history does not verify: ``version`` is the first bad one."""

    def __init__(self, course_id: str, version: int, problem: str) -> None:
        self.course_id = course_id
        self.version = version
        self.problem = problem
        super().__init__(f"course {course_id}: version {version}: {problem}")


class EventTooLarge(ValueError):
    """An event's encoded size exceeds what the store accepts; store large outputs as artifacts."""

    def __init__(self, course_id: str, event_type: str, size: int, limit: int) -> None:
        self.size = size
        self.limit = limit
        super().__init__(
            f"course {course_id}: {event_type} encodes to {size} bytes, over the limit of "
            f"{limit}; put large outputs in artifact storage and reference them"
        )


class UnknownCourse(KeyError):
    def __init__(self, course_id: str) -> None:
        self.course_id = course_id
        super().__init__(f"no course {course_id!r}")


class UnknownPipeline(LookupError):
    """A course is pinned to a pipeline this code cannot give it: ``version`` is not among the
    stored definitions (``schemas/pipelines/``), or ``digest`` (what the course recorded) is
    not the digest of the stored file for that version (``expected``: edited in place)."""

    def __init__(
        self,
        version: int,
        digest: str | None = None,
        expected: str | None = None,
        known: tuple[int, ...] = (),
    ) -> None:
        self.version = version
        self.digest = digest
        self.expected = expected
        self.known = known
        if expected is None:
            have = ", ".join(map(str, known)) or "none"
            message = f"no pipeline version {version} is stored (versions here: {have})"
        else:
            message = (
                f"pipeline version {version}: the course recorded digest {digest}, the stored"
                f" definition has {expected} (was schemas/pipelines/{version}.json edited? a"
                " released version is never changed: add a new version instead)"
            )
        super().__init__(message)
