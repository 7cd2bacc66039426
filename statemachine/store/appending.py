"""What every adapter does on append (check the version, seal, validate, fold) and on purge."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

import schemas
from statemachine.envelope import Envelope, NewEvent, seal
from statemachine.errors import (
    ConcurrencyConflict,
    EventTooLarge,
    TransitionNotAllowed,
    UnknownCourse,
)
from statemachine.events import to_data
from statemachine.lifecycle import ACTIVE_COURSE
from statemachine.ports import Head, Tombstone
from statemachine.reducer import apply_into
from statemachine.state import Snapshot, empty_snapshot

# Events to append in the same transaction, decided from the snapshot an append leads to (the
# tasks a result unblocks): called inside the transaction, perhaps more than once (a retried
# transaction); the events of its last call are the ones committed.
FollowUp = Callable[[Snapshot], Sequence[NewEvent]]
# Whether events decided at an older version still hold on a newer head (``EventStore.append``).
Rebase = Callable[[Snapshot], bool]

# Firestore refuses documents over 1 MiB (names and indexes count too); every adapter keeps
# the same limit so a history that fits one store fits all.
MAX_EVENT_BYTES = 900 * 1024


@dataclass(frozen=True, slots=True)
class Prepared:
    envelopes: list[Envelope]
    snapshot: Snapshot

    @property
    def version(self) -> int:
        version: int = self.snapshot["version"]
        return version

    def head(self) -> Head:
        s = self.snapshot
        return Head(
            s["course_id"],
            s["status"],
            s["version"],
            s["last_hash"],
            s["updated_at"],
            s["variant"],
            s,
        )


def prepare_append(
    course_id: str,
    current: Snapshot | None,
    expected_version: int,
    events: Sequence[NewEvent],
    *,
    then: FollowUp | None = None,
    rebase: Rebase | None = None,
    max_event_bytes: int = MAX_EVENT_BYTES,
) -> Prepared:
    """Seal ``events`` after ``current`` (which this takes ownership of and changes), then the
    events ``then`` decides from the snapshot they lead to (read-only to it), if any.

    On a newer head than ``expected_version`` the events go after it if ``rebase`` says
    they still hold there. Raises ``ConcurrencyConflict`` on a stale version (that ``rebase``
    did not accept), ``SchemaError`` on invalid data,
    ``EventTooLarge``, or ``TransitionNotAllowed`` for an event illegal in its state; nothing
    is written in any of those cases.
    """
    acc = current if current is not None else empty_snapshot(course_id)
    if acc["version"] != expected_version and not (
        rebase is not None and acc["version"] > expected_version and rebase(acc)
    ):
        raise ConcurrencyConflict(course_id, expected_version, acc["version"])
    if not events:
        raise ValueError("append needs at least one event")
    envelopes: list[Envelope] = []
    _seal_into(course_id, acc, envelopes, events, max_event_bytes)
    if then is not None:
        _seal_into(course_id, acc, envelopes, then(acc), max_event_bytes)
    return Prepared(envelopes, acc)


def _seal_into(
    course_id: str,
    acc: Snapshot,
    envelopes: list[Envelope],
    events: Sequence[NewEvent],
    max_event_bytes: int,
) -> None:
    prev = acc["last_hash"]
    for new in events:
        env = _sealed(course_id, acc["version"] + 1, prev, new)
        if len(env.raw) > max_event_bytes:
            raise EventTooLarge(course_id, env.type, len(env.raw), max_event_bytes)
        apply_into(acc, env)
        envelopes.append(env)
        prev = env.hash


def _sealed(course_id: str, version: int, prev: str, new: NewEvent) -> Envelope:
    """Validate and seal one event; data that cannot be canonical JSON (a non-finite number,
    a field of the wrong Python type) is a ``SchemaError`` like any other invalid data."""
    name = f"events/{new.type}"
    try:
        data = to_data(new.event)
    except (TypeError, ValueError) as err:
        raise schemas.SchemaError(name, [f"data: {err}"]) from None
    schemas.validate(name, data)
    try:
        return seal(course_id, version, prev, new, data)
    except (TypeError, ValueError) as err:  # e.g. "Out of range float values are not JSON"
        raise schemas.SchemaError(name, [f"data: {err}"]) from None


def is_active(status: str) -> bool:
    return status in ACTIVE_COURSE


def in_range(course_id: str, lo: str | None, hi: str | None) -> bool:
    """Whether ``course_id`` lies in [lo, hi) (None: unbounded on that side)."""
    return (lo is None or course_id >= lo) and (hi is None or course_id < hi)


def must_purge(
    course_id: str,
    current: tuple[int, str, str] | None,
    tombstone: Tombstone | None,
    version: int,
    last_hash: str,
) -> bool:
    """The checks every adapter's ``purge`` makes, given the course's (version, last hash,
    status) if it has a head and its tombstone if it has one: True to purge now, False if it
    is purged already (the same hash); raises as ``EventStore.purge`` documents."""
    if current is None:
        if tombstone is None:
            raise UnknownCourse(course_id)
        if tombstone.last_hash != last_hash or tombstone.version != version:
            raise ConcurrencyConflict(course_id, version, tombstone.version)
        return False
    at, hash_, status = current
    if at != version or hash_ != last_hash:
        raise ConcurrencyConflict(course_id, version, at)
    if is_active(status):
        raise TransitionNotAllowed(status, "purge", "only an ended course is archived")
    return True


@contextmanager
def then_at_exit(then: Callable[[], None]) -> Iterator[None]:
    """A unit of work where every commit is durable by itself: ``then`` once it ends (without
    an error), on this thread."""
    yield
    then()
