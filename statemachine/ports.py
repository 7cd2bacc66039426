"""Ports: the Protocols the core's adapters implement (stores, dispatch, notification, clock)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from statemachine.envelope import Envelope, NewEvent


@dataclass(frozen=True, slots=True)
class Head:
    """The course head row/document: a projection of the history, rebuilt from it on demand."""

    course_id: str
    status: str
    version: int
    last_hash: str
    updated_at: str | None
    variant: str | None
    snapshot: Mapping[str, Any]


class EventStore(Protocol):
    def load(
        self, course_id: str, *, after: int = 0, until: int | None = None
    ) -> Sequence[Envelope]: ...

    def append(self, course_id: str, expected_version: int, events: Sequence[NewEvent]) -> int:
        """Append atomically after ``expected_version``; the new version, or ConcurrencyConflict."""
        ...

    def head(self, course_id: str) -> Head | None: ...

    def courses(self, *, status: str | None = None, limit: int | None = None) -> Sequence[Head]: ...

    def quiet(self, before: str, *, limit: int = 1000) -> Sequence[str]:
        """Non-terminal courses whose last event is older than ``before`` (ISO time)."""
        ...

    def scan(self) -> Iterator[tuple[str, Sequence[Envelope]]]:
        """Every course's history, course by course (for audit and replay at scale)."""
        ...


class Clock(Protocol):
    def now(self) -> float:
        """Seconds since the epoch (virtual in simulations)."""
        ...

    def sleep(self, seconds: float) -> None: ...
