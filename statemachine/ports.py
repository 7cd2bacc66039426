"""Ports: the Protocols the core's adapters implement (stores, dispatch, notification, clock)."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
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


@dataclass(frozen=True, slots=True)
class Tombstone:
    """What the live store keeps of a course purged after archiving: where its history went
    and the version and hash it ended with. ``complete`` is False while a purge too long for
    one transaction (Firestore) still has documents to delete; ``purge`` again finishes it."""

    course_id: str
    version: int
    last_hash: str
    location: str
    complete: bool = True


class EventStore(Protocol):
    def load(
        self, course_id: str, *, after: int = 0, until: int | None = None
    ) -> Sequence[Envelope]: ...

    def append(
        self,
        course_id: str,
        expected_version: int,
        events: Sequence[NewEvent],
        *,
        then: Callable[[Mapping[str, Any]], Sequence[NewEvent]] | None = None,
        rebase: Callable[[Mapping[str, Any]], bool] | None = None,
    ) -> int:
        """Append atomically after ``expected_version``; the new version, or ConcurrencyConflict.

        ``then``, given the head snapshot the events lead to (read-only), returns events to
        append right after them in the same transaction (the tasks a result unblocks); it may
        be called more than once, and the events of its last call are the ones committed.

        ``rebase``, given the head snapshot when the history has moved past
        ``expected_version`` (read-only), says whether the events still hold there (nothing
        they were decided on has changed: a sibling task's result came in meanwhile); if so
        they go after that head instead of raising ConcurrencyConflict. The reducer still
        refuses an event illegal there (TransitionNotAllowed)."""
        ...

    def deferring(self, then: Callable[[], None] | None = None) -> AbstractContextManager[None]:
        """A unit of work on this thread: appends inside it may be made durable only when it
        ends or at ``sync`` (one fsync instead of one per commit); a no-op where every commit
        is durable on its own. With ``then``, the unit does not wait for its appends to be
        durable: ``then`` (its answer) runs once they are, after its ``when_durable`` actions,
        perhaps on another thread (group commit); only if the unit ended without an error."""
        ...

    def sync(self) -> None:
        """Make every append committed so far durable: before dispatching or answering."""
        ...

    def when_durable(self, action: Callable[[], None]) -> None:
        """Run ``action`` (a dispatch, anything that tells the world) once every append this
        thread has committed is durable: now, after a ``sync``, or inside a unit with ``then``
        queued to run after the unit's fsync."""
        ...

    def head(self, course_id: str) -> Head | None: ...

    def courses(self, *, status: str | None = None, limit: int | None = None) -> Sequence[Head]: ...

    def quiet(self, before: str, *, limit: int = 1000) -> Sequence[str]:
        """Non-terminal courses whose last event is older than ``before`` (ISO time)."""
        ...

    def moved(self, since: str, *, limit: int = 1000) -> Sequence[tuple[str, int]]:
        """Non-terminal courses whose last event is at or after ``since`` (ISO time), with
        their versions, oldest first: what a reconciler loop looks at to notice a course
        another process changed (an operator's resume or redrive)."""
        ...

    def scan(self) -> Iterator[tuple[str, Sequence[Envelope]]]:
        """Every course's history, course by course (for audit and replay at scale)."""
        ...

    def tasks(self, course_id: str) -> Sequence[Mapping[str, Any]]:
        """The task status projection of a course (rows of ``store.projection.TASK_COLUMNS``),
        written in the append's transaction; sorted by task name."""
        ...

    def all_tasks(self) -> Iterator[Mapping[str, Any]]:
        """Every task status row, by course id then task name."""
        ...

    def replace_projections(self, course_id: str, snapshot: Mapping[str, Any]) -> bool:
        """Rewrite the head and every task row of a course from ``snapshot`` (the fold of its
        whole history) in one transaction; False, writing nothing, if the history has moved
        past the snapshot's version meanwhile."""
        ...

    def close(self) -> None:
        """Release the store's connections; nothing uses the store afterwards."""
        ...

    def purge(self, course_id: str, *, version: int, last_hash: str, location: str) -> bool:
        """Delete an ended course's history, head and task rows, leaving a ``Tombstone`` that
        names ``location`` (its verified archive), in one transaction where the store can.
        True if this call purged it; False if it was purged already (a tombstone with the same
        hash: the call is idempotent, and finishes an interrupted purge). ConcurrencyConflict
        if the course is not at ``version``/``last_hash`` any more; TransitionNotAllowed if it
        is still active; UnknownCourse if there is neither a course nor a tombstone."""
        ...

    def tombstone(self, course_id: str) -> Tombstone | None:
        """The tombstone of a purged course, or None."""
        ...

    def tombstones(self, *, incomplete: bool = False) -> Sequence[Tombstone]:
        """Every tombstone by course id (only the unfinished purges, if ``incomplete``)."""
        ...

    def course_ids(self, *, lo: str | None = None, hi: str | None = None) -> Sequence[str]:
        """The ids of every course head (in [lo, hi) when given), without their snapshots."""
        ...

    def scan_heads(
        self, *, lo: str | None = None, hi: str | None = None
    ) -> Iterator[tuple[str, Sequence[Envelope], Head | None]]:
        """``scan`` with each course's head read in step (the auditor's bulk read), in
        [lo, hi) of course ids when given."""
        ...

    def same_snapshot(self, stored: Mapping[str, Any], folded: Mapping[str, Any]) -> bool:
        """Whether a head snapshot read from this store equals a fold (by its stored bytes
        where the store keeps them, which is cheaper than decoding)."""
        ...

    def reopener(self) -> Callable[[], EventStore] | None:
        """A picklable way to open this same store in another process (the parallel audit),
        or None where it cannot be shared (in memory)."""
        ...


class Clock(Protocol):
    def now(self) -> float:
        """Seconds since the epoch (virtual in simulations)."""
        ...

    def sleep(self, seconds: float) -> None: ...

    def advance_to(self, t: float) -> None:
        """Move to time ``t``: a virtual clock jumps, the system clock waits."""
        ...

    def lane(self) -> AbstractContextManager[None]:
        """Run the calling thread on a lane of its own: inside it, its sleeps move only its
        own view of time (a virtual clock's concurrent workers); the system clock's is a no-op."""
        ...
