"""Firestore EventStore: a head document per course and its events in a subcollection.

Layout: ``courses/{courseId}`` holds the head (status, version, last_hash, updated_at, variant,
and the folded state as JSON bytes in ``snapshot``); ``courses/{courseId}/events/{version
zero-padded to 10}`` holds each event's stored bytes (``body``), ``hash``, ``type``,
``version`` and ``occurred_at``; ``courses/{courseId}/tasks/{task}`` holds the task status
projection (store/projection.py). An append is one transaction: read the head, check the
expected version, ``create()`` each event document (it fails if the version exists), set
the head and the task documents of the tasks the new events touch. The client re-runs a
transaction whose commit Firestore aborted on contention; the re-run reads the new head and
raises ``ConcurrencyConflict``, so a stale append never turns into a success. ``quiet``
needs the composite index (status, updated_at) Terraform creates. ``purge`` deletes a course's
documents and writes ``{collection}-tombstones/{courseId}`` in one transaction when they are
few enough for one commit (_PURGE_IN_ONE); a longer history loses its head and gains an
incomplete tombstone in that transaction, then its documents go in batches and the tombstone
is marked complete; a crash in between is finished by the next ``purge`` of the course.
"""

from __future__ import annotations

import itertools
import json
import random
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, nullcontext
from typing import Any

from google.api_core import exceptions as gexc
from google.cloud import firestore
from google.cloud.firestore_v1.base_query import FieldFilter

from statemachine.envelope import Envelope, NewEvent, decode
from statemachine.errors import ConcurrencyConflict, IntegrityError
from statemachine.lifecycle import ACTIVE_COURSE
from statemachine.ports import EventStore, Head, Tombstone
from statemachine.store.appending import (
    FollowUp,
    Prepared,
    Rebase,
    in_range,
    must_purge,
    prepare_append,
    then_at_exit,
)
from statemachine.store.task_rows import task_rows, touched_tasks

_ACTIVE = sorted(ACTIVE_COURSE)
# How long to keep retrying while the head has not moved (only contention, no conflict yet),
# in rounds of the client's own retries with a jittered backoff: under heavy contention some
# writer wins and the others then see a real conflict long before this.
_CONTENTION_S = 30.0
_SCAN_PAGE = 300
# Deletes a purge makes in the transaction that writes the tombstone (a commit takes 500
# writes at most); a longer history is deleted in batches of this size after it.
_PURGE_IN_ONE = 450


def event_id(version: int) -> str:
    """Event document id: zero-padded, so document order is version order."""
    return f"{version:010d}"


class FirestoreStore:
    def __init__(
        self,
        project: str | None = None,
        client: Any = None,
        collection: str = "courses",
        *,
        max_attempts: int = 5,
        page_size: int = _SCAN_PAGE,
    ) -> None:
        self.client = client if client is not None else firestore.Client(project=project)
        self.collection = collection
        self.max_attempts = max_attempts
        self.page_size = page_size
        self._courses = self.client.collection(collection)
        self._tombstones = self.client.collection(f"{collection}-tombstones")
        self._stripes = [threading.Lock() for _ in range(64)]

    def close(self) -> None:
        close = getattr(self.client, "close", None)
        if close is not None:
            close()

    # -- writes -------------------------------------------------------------------------
    def append(
        self,
        course_id: str,
        expected_version: int,
        events: Sequence[NewEvent],
        *,
        then: FollowUp | None = None,
        rebase: Rebase | None = None,
    ) -> int:
        # Writers of one course in this process take turns (striped locks, bounded memory):
        # they would only abort each other's transactions; across processes, the retries
        # below sort contention from conflict.
        with self._stripes[hash(course_id) % len(self._stripes)]:
            return self._append(course_id, expected_version, events, then, rebase)

    def _append(
        self,
        course_id: str,
        expected_version: int,
        events: Sequence[NewEvent],
        then: FollowUp | None,
        rebase: Rebase | None,
    ) -> int:
        head_ref = self._courses.document(course_id)
        deadline = time.monotonic() + _CONTENTION_S
        for attempt in itertools.count():
            transaction = self.client.transaction(max_attempts=self.max_attempts)
            try:
                prepared = _append_in(
                    transaction, head_ref, course_id, expected_version, events, then, rebase
                )
            except gexc.AlreadyExists:
                # An event document of this version exists: someone appended first. With
                # ``rebase`` the next try reads the head they left and decides on it.
                if rebase is None or time.monotonic() > deadline:
                    raise self._conflict(course_id, expected_version) from None
                continue
            except (gexc.Aborted, ValueError) as err:
                # Aborted while reading, or the client's commit retries ran out: contention.
                # A conflict only if the head moved on; otherwise back off and try again.
                contended = isinstance(err, gexc.Aborted) or isinstance(err.__cause__, gexc.Aborted)
                if not contended:
                    raise
                conflict = self._conflict(course_id, expected_version)
                moved = conflict.actual != expected_version and rebase is None
                if moved or time.monotonic() > deadline:
                    raise conflict from None
                time.sleep(random.uniform(0, min(0.05 * 2 ** min(attempt, 5), 1.0)))
                continue
            version: int = prepared.version
            return version
        raise AssertionError("unreachable")  # pragma: no cover

    def _conflict(self, course_id: str, expected: int) -> ConcurrencyConflict:
        head = self.head(course_id)
        return ConcurrencyConflict(course_id, expected, head.version if head else 0)

    # -- reads --------------------------------------------------------------------------
    def load(
        self, course_id: str, *, after: int = 0, until: int | None = None
    ) -> Sequence[Envelope]:
        query = self._events(course_id).where(filter=FieldFilter("version", ">", after))
        if until is not None:
            query = query.where(filter=FieldFilter("version", "<=", until))
        query = query.order_by("version")
        return [_decode(course_id, doc.to_dict()) for doc in query.stream()]

    def deferring(self, then: Callable[[], None] | None = None) -> AbstractContextManager[None]:
        # every commit is durable on its own: nothing to wait for before ``then``
        return nullcontext() if then is None else then_at_exit(then)

    def sync(self) -> None:
        pass

    def when_durable(self, action: Callable[[], None]) -> None:
        action()

    def head(self, course_id: str) -> Head | None:
        doc = self._courses.document(course_id).get()
        return _head(doc.id, doc.to_dict() or {}) if doc.exists else None

    def courses(self, *, status: str | None = None, limit: int | None = None) -> Sequence[Head]:
        query: Any = self._courses
        if status is not None:
            # Ordered client-side: status == X ordered by updated_at would need one more index.
            heads = [
                _head(d.id, d.to_dict())
                for d in query.where(filter=FieldFilter("status", "==", status)).stream()
            ]
            heads.sort(key=lambda h: h.updated_at or "", reverse=True)
            return heads[:limit] if limit is not None else heads
        query = query.order_by("updated_at", direction=firestore.Query.DESCENDING)
        if limit is not None:
            query = query.limit(limit)
        return [_head(d.id, d.to_dict()) for d in query.stream()]

    def quiet(self, before: str, *, limit: int = 1000) -> Sequence[str]:
        query = (
            self._courses.where(filter=FieldFilter("status", "in", _ACTIVE))
            .where(filter=FieldFilter("updated_at", "<", before))
            .order_by("updated_at")
            .limit(limit)
        )
        return [doc.id for doc in query.select(["updated_at"]).stream()]

    def moved(self, since: str, *, limit: int = 1000) -> Sequence[tuple[str, int]]:
        query = (
            self._courses.where(filter=FieldFilter("status", "in", _ACTIVE))
            .where(filter=FieldFilter("updated_at", ">=", since))
            .order_by("updated_at")
            .limit(limit)
        )
        found = query.select(["updated_at", "version"]).stream()
        return [(doc.id, int((doc.to_dict() or {}).get("version", 0))) for doc in found]

    def scan(self) -> Iterator[tuple[str, Sequence[Envelope]]]:
        for course_id, _ in self._course_ids():
            yield course_id, self.load(course_id)

    def course_ids(self, *, lo: str | None = None, hi: str | None = None) -> Sequence[str]:
        return [c for c, _ in self._course_ids() if in_range(c, lo, hi)]

    def scan_heads(
        self, *, lo: str | None = None, hi: str | None = None
    ) -> Iterator[tuple[str, Sequence[Envelope], Head | None]]:
        for course_id, _ in self._course_ids():
            if in_range(course_id, lo, hi):
                yield course_id, self.load(course_id), self.head(course_id)

    def same_snapshot(self, stored: Mapping[str, Any], folded: Mapping[str, Any]) -> bool:
        return dict(stored) == dict(folded)

    def reopener(self) -> Callable[[], EventStore] | None:
        return None  # a gRPC channel does not survive a fork; the audit runs here

    def _events(self, course_id: str) -> Any:
        return self._courses.document(course_id).collection("events")

    # -- projections --------------------------------------------------------------------
    def tasks(self, course_id: str) -> Sequence[Mapping[str, Any]]:
        docs = self._courses.document(course_id).collection("tasks").order_by("__name__")
        return [doc.to_dict() for doc in docs.stream()]

    def all_tasks(self) -> Iterator[Mapping[str, Any]]:
        for course_id, _ in self._course_ids():
            yield from self.tasks(course_id)

    def _course_ids(self) -> Iterator[tuple[str, Any]]:
        last: Any = None
        while True:
            query = self._courses.order_by("__name__").select(["version"]).limit(self.page_size)
            if last is not None:
                query = query.start_after(last)
            page = list(query.stream())
            for doc in page:
                yield doc.id, doc
            if len(page) < self.page_size:
                return
            last = page[-1]

    # -- retention ----------------------------------------------------------------------
    def purge(self, course_id: str, *, version: int, last_hash: str, location: str) -> bool:
        with self._stripes[hash(course_id) % len(self._stripes)]:
            transaction = self.client.transaction(max_attempts=self.max_attempts)
            purged, tomb = _purge_in(
                transaction,
                self._courses.document(course_id),
                self._tombstones.document(course_id),
                course_id,
                (version, last_hash, location),
            )
        if not tomb.complete:
            self._finish_purge(tomb)
        return bool(purged)

    def _finish_purge(self, tomb: Tombstone) -> None:
        """Delete what a long purge left (the head is gone already), then mark it complete."""
        head_ref = self._courses.document(tomb.course_id)
        for sub in ("events", "tasks"):
            while docs := list(head_ref.collection(sub).limit(_PURGE_IN_ONE).stream()):
                batch = self.client.batch()
                for doc in docs:
                    batch.delete(doc.reference)
                batch.commit()
        self._tombstones.document(tomb.course_id).update({"complete": True})

    def tombstone(self, course_id: str) -> Tombstone | None:
        doc = self._tombstones.document(course_id).get()
        return _tombstone(doc.id, doc.to_dict() or {}) if doc.exists else None

    def tombstones(self, *, incomplete: bool = False) -> Sequence[Tombstone]:
        query: Any = self._tombstones
        if incomplete:
            query = query.where(filter=FieldFilter("complete", "==", False))
        found = [_tombstone(d.id, d.to_dict()) for d in query.stream()]
        return sorted(found, key=lambda t: t.course_id)

    def replace_projections(self, course_id: str, snapshot: Mapping[str, Any]) -> bool:
        transaction = self.client.transaction(max_attempts=self.max_attempts)
        replaced: bool = _replace_in(transaction, self._courses.document(course_id), dict(snapshot))
        return replaced


@firestore.transactional
def _append_in(
    transaction: Any,
    head_ref: Any,
    course_id: str,
    expected_version: int,
    events: Sequence[NewEvent],
    then: FollowUp | None,
    rebase: Rebase | None = None,
) -> Prepared:
    doc = head_ref.get(transaction=transaction)
    current = _snapshot(doc.to_dict()) if doc.exists else None
    prepared = prepare_append(
        course_id, current, expected_version, events, then=then, rebase=rebase
    )
    events_ref = head_ref.collection("events")
    for env in prepared.envelopes:
        transaction.create(
            events_ref.document(event_id(env.version)),
            {
                "body": env.raw,
                "hash": env.hash,
                "type": env.type,
                "version": env.version,
                "occurred_at": env.occurred_at,
            },
        )
    _set_projections(transaction, head_ref, prepared.snapshot, touched_tasks(prepared.envelopes))
    return prepared


@firestore.transactional
def _purge_in(
    transaction: Any, head_ref: Any, tomb_ref: Any, course_id: str, ending: tuple[int, str, str]
) -> tuple[bool, Tombstone]:
    version, last_hash, location = ending
    head = head_ref.get(transaction=transaction)
    tomb_doc = tomb_ref.get(transaction=transaction)
    data = head.to_dict() if head.exists else None
    current = (data["version"], data["last_hash"], data["status"]) if data else None
    tomb = _tombstone(course_id, tomb_doc.to_dict()) if tomb_doc.exists else None
    if not must_purge(course_id, current, tomb, version, last_hash):
        assert tomb is not None
        return False, tomb
    assert data is not None
    docs = [head_ref.collection("events").document(event_id(v)) for v in range(1, version + 1)]
    docs += [head_ref.collection("tasks").document(n) for n in _snapshot(data)["tasks"]]
    complete = len(docs) <= _PURGE_IN_ONE
    for ref in docs if complete else []:
        transaction.delete(ref)
    transaction.delete(head_ref)
    fields = {"version": version, "last_hash": last_hash, "location": location}
    transaction.set(tomb_ref, {**fields, "complete": complete})
    return True, Tombstone(course_id, version, last_hash, location, complete)


def _tombstone(course_id: str, data: dict[str, Any]) -> Tombstone:
    return Tombstone(
        course_id, data["version"], data["last_hash"], data["location"], data["complete"]
    )


@firestore.transactional
def _replace_in(transaction: Any, head_ref: Any, snapshot: dict[str, Any]) -> bool:
    last = (
        head_ref.collection("events")
        .order_by("version", direction=firestore.Query.DESCENDING)
        .limit(1)
    )
    found = [doc.get("version") for doc in transaction.get(last)]
    if (found[0] if found else 0) != snapshot["version"]:
        return False
    stale = {doc.id for doc in transaction.get(head_ref.collection("tasks").select(["status"]))}
    for name in stale - set(snapshot["tasks"]):
        transaction.delete(head_ref.collection("tasks").document(name))
    _set_projections(transaction, head_ref, snapshot, None)
    return True


def _set_projections(
    transaction: Any, head_ref: Any, s: Mapping[str, Any], names: set[str] | None
) -> None:
    """The head document and the task documents of ``names`` (every task when None)."""
    transaction.set(
        head_ref,
        {
            "status": s["status"],
            "version": s["version"],
            "last_hash": s["last_hash"],
            "updated_at": s["updated_at"],
            "variant": s["variant"],
            "snapshot": json.dumps(s, separators=(",", ":")).encode(),
        },
    )
    tasks_ref = head_ref.collection("tasks")
    for row in task_rows(s, names):
        transaction.set(tasks_ref.document(row["task"]), row)


def _snapshot(data: dict[str, Any]) -> Any:
    return json.loads(bytes(data["snapshot"]))


def _head(course_id: str, data: dict[str, Any]) -> Head:
    return Head(
        course_id,
        data["status"],
        data["version"],
        data["last_hash"],
        data.get("updated_at"),
        data.get("variant"),
        _snapshot(data),
    )


def _decode(course_id: str, data: dict[str, Any]) -> Envelope:
    version = data.get("version", -1)
    try:
        return decode(bytes(data["body"]), data["hash"])
    except (ValueError, KeyError, TypeError):
        raise IntegrityError(course_id, version, "stored bytes are not a valid envelope") from None
