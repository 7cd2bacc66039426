"""In-memory EventStore: the reference adapter for unit tests and simulations."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, nullcontext
from typing import Any

from statemachine.envelope import Envelope, NewEvent
from statemachine.ports import EventStore, Head, Tombstone
from statemachine.store.appending import (
    FollowUp,
    Prepared,
    Rebase,
    in_range,
    is_active,
    must_purge,
    prepare_append,
    then_at_exit,
)
from statemachine.store.task_rows import task_rows, touched_tasks


class MemoryStore:
    def __init__(self) -> None:
        self._events: dict[str, list[Envelope]] = {}
        self._heads: dict[str, tuple[Head, str]] = {}  # head + its snapshot as JSON
        self._tasks: dict[str, dict[str, dict[str, Any]]] = {}  # course -> task -> row
        self._tombstones: dict[str, Tombstone] = {}
        self._lock = threading.Lock()

    def load(
        self, course_id: str, *, after: int = 0, until: int | None = None
    ) -> Sequence[Envelope]:
        with self._lock:
            events = self._events.get(course_id, [])
            stop = len(events) if until is None else min(until, len(events))
            return list(events[after:stop])

    def append(
        self,
        course_id: str,
        expected_version: int,
        events: Sequence[NewEvent],
        *,
        then: FollowUp | None = None,
        rebase: Rebase | None = None,
    ) -> int:
        with self._lock:
            stored = self._heads.get(course_id)
            current = json.loads(stored[1]) if stored else None
            prepared = prepare_append(
                course_id, current, expected_version, events, then=then, rebase=rebase
            )
            self._events.setdefault(course_id, []).extend(prepared.envelopes)
            self._write(course_id, prepared, touched_tasks(prepared.envelopes))
            return prepared.version

    def _write(self, course_id: str, prepared: Prepared, names: set[str] | None) -> None:
        """Head and task rows (``names`` only; every task, replacing all, when None)."""
        self._heads[course_id] = (prepared.head(), json.dumps(prepared.snapshot))
        rows = task_rows(prepared.snapshot, names)
        if names is None:
            self._tasks[course_id] = {}
        self._tasks.setdefault(course_id, {}).update((r["task"], r) for r in rows)

    def deferring(self, then: Callable[[], None] | None = None) -> AbstractContextManager[None]:
        # every commit is durable on its own: nothing to wait for before ``then``
        return nullcontext() if then is None else then_at_exit(then)

    def sync(self) -> None:
        pass

    def when_durable(self, action: Callable[[], None]) -> None:
        action()

    def head(self, course_id: str) -> Head | None:
        with self._lock:
            stored = self._heads.get(course_id)
        if stored is None:
            return None
        h = stored[0]
        return Head(
            h.course_id,
            h.status,
            h.version,
            h.last_hash,
            h.updated_at,
            h.variant,
            json.loads(stored[1]),
        )

    def courses(self, *, status: str | None = None, limit: int | None = None) -> Sequence[Head]:
        with self._lock:
            ids = sorted(self._heads)
        heads = [h for h in (self.head(c) for c in ids) if h is not None]
        if status is not None:
            heads = [h for h in heads if h.status == status]
        return heads[:limit] if limit is not None else heads

    def course_ids(self, *, lo: str | None = None, hi: str | None = None) -> Sequence[str]:
        with self._lock:
            return [c for c in sorted(self._heads) if in_range(c, lo, hi)]

    def scan_heads(
        self, *, lo: str | None = None, hi: str | None = None
    ) -> Iterator[tuple[str, Sequence[Envelope], Head | None]]:
        with self._lock:
            ids = [c for c in sorted(self._events) if in_range(c, lo, hi)]
        for course_id in ids:
            yield course_id, self.load(course_id), self.head(course_id)

    def same_snapshot(self, stored: Mapping[str, Any], folded: Mapping[str, Any]) -> bool:
        return dict(stored) == dict(folded)

    def reopener(self) -> Callable[[], EventStore] | None:
        return None  # the events live in this process only

    def close(self) -> None:
        """Nothing to release: the store is this process's memory."""

    def quiet(self, before: str, *, limit: int = 1000) -> Sequence[str]:
        with self._lock:
            heads = [h for h, _ in self._heads.values()]
        found = sorted(
            (h.updated_at or "", h.course_id)
            for h in heads
            if is_active(h.status) and (h.updated_at or "") < before
        )
        return [c for _, c in found[:limit]]

    def moved(self, since: str, *, limit: int = 1000) -> Sequence[tuple[str, int]]:
        with self._lock:
            heads = [h for h, _ in self._heads.values()]
        found = sorted(
            (h.updated_at or "", h.course_id, h.version)
            for h in heads
            if is_active(h.status) and (h.updated_at or "") >= since
        )
        return [(c, v) for _, c, v in found[:limit]]

    def scan(self) -> Iterator[tuple[str, Sequence[Envelope]]]:
        with self._lock:
            ids = sorted(self._events)
        for course_id in ids:
            yield course_id, self.load(course_id)

    def tasks(self, course_id: str) -> Sequence[Mapping[str, Any]]:
        with self._lock:
            rows = self._tasks.get(course_id, {})
            return [dict(rows[name]) for name in sorted(rows)]

    def all_tasks(self) -> Iterator[Mapping[str, Any]]:
        with self._lock:
            ids = sorted(self._tasks)
        for course_id in ids:
            yield from self.tasks(course_id)

    def replace_projections(self, course_id: str, snapshot: Mapping[str, Any]) -> bool:
        with self._lock:
            if len(self._events.get(course_id, [])) != snapshot["version"]:
                return False
            copy = json.loads(json.dumps(snapshot))
            self._write(course_id, Prepared([], copy), None)
            return True

    def purge(self, course_id: str, *, version: int, last_hash: str, location: str) -> bool:
        with self._lock:
            stored = self._heads.get(course_id)
            current = (stored[0].version, stored[0].last_hash, stored[0].status) if stored else None
            tomb = self._tombstones.get(course_id)
            if not must_purge(course_id, current, tomb, version, last_hash):
                return False
            del self._heads[course_id]
            self._events.pop(course_id, None)
            self._tasks.pop(course_id, None)
            self._tombstones[course_id] = Tombstone(course_id, version, last_hash, location)
            return True

    def tombstone(self, course_id: str) -> Tombstone | None:
        with self._lock:
            return self._tombstones.get(course_id)

    def tombstones(self, *, incomplete: bool = False) -> Sequence[Tombstone]:
        with self._lock:
            found = [self._tombstones[c] for c in sorted(self._tombstones)]
        return [t for t in found if not (incomplete and t.complete)]
