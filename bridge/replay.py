"""Auditor views of a history: the timeline, the state at a version, verification, export."""

from __future__ import annotations

import gc
import json
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import IO, Any

import schemas
from statemachine.audit import state_at, verify
from statemachine.envelope import Envelope
from statemachine.errors import IntegrityError
from statemachine.ports import EventStore, Head


@dataclass(frozen=True, slots=True)
class Row:
    time: str
    version: int
    event: str
    actor: str
    task: str
    attempt: str
    duration_ms: str
    detail: str

    def as_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.__slots__}


def timeline(events: Iterable[Envelope]) -> list[Row]:
    rows = []
    for e in events:
        d = e.data
        attempt = d.get("attempt", d.get("attempts", ""))
        duration = d.get("duration_ms", "")
        rows.append(
            Row(
                e.occurred_at,
                e.version,
                e.type,
                e.actor,
                str(d.get("task", "") or ""),
                str(attempt),
                str(duration),
                _detail(e),
            )
        )
    return rows


def _detail(e: Envelope) -> str:
    d = e.data
    match e.type:
        case "CourseRequested":
            return f"{d['title']!r} from {d['video_uri']} ({d.get('variant', 'cloudtasks')})"
        case "TaskScheduled":
            return f"queue {d['queue']}, generation {d['generation']}"
        case "TaskSucceeded":
            return ", ".join(f"{k}={v}" for k, v in list(d["summary"].items())[:4])
        case "TaskFailed":
            kind = "retryable" if d["retryable"] else "permanent"
            return f"{kind} {d['error_type']}: {d['message'][:120]}"
        case "TaskExhausted":
            return d["error"][:120]
        case "CourseFailed":
            return d["reason"][:160]
        case "CourseCancelled" | "CoursePaused" | "CourseResumed":
            return d["reason"][:160]
        case "CourseRedriven":
            return f"{', '.join(d['tasks'])}: {d['reason'][:100]}"
    return ""


@dataclass(frozen=True, slots=True)
class Verdict:
    ok: bool
    course_id: str
    events: int
    first_bad_version: int | None
    problem: str | None

    def as_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.__slots__}


def check(store: EventStore, course_id: str) -> Verdict:
    """Verify one course: the hash chain holds and the fold equals the stored head."""
    try:
        events = store.load(course_id)
        done = verify(course_id, events, store.head(course_id))
    except IntegrityError as err:
        return Verdict(False, course_id, -1, err.version, err.problem)
    return Verdict(True, course_id, done.events, None, None)


def audit_all(store: EventStore) -> Iterator[Verdict]:
    """Every course, verified, streamed course by course with its head."""
    with paused_gc():
        yield from _audit(store)


def _audit(store: EventStore) -> Iterator[Verdict]:
    seen = set()
    try:
        for course_id, events, head in _histories(store):
            seen.add(course_id)
            try:
                done = verify(course_id, events, head)
                yield Verdict(True, course_id, done.events, None, None)
            except IntegrityError as err:
                yield Verdict(False, course_id, len(events), err.version, err.problem)
    except IntegrityError as err:
        yield Verdict(False, err.course_id, -1, err.version, err.problem)
        return
    for head in store.courses():
        if head.course_id not in seen:
            yield Verdict(False, head.course_id, 0, 1, "the head exists but the history is empty")


def _histories(store: EventStore) -> Iterator[tuple[str, Sequence[Envelope], Head | None]]:
    scan_heads = getattr(store, "scan_heads", None)
    if scan_heads is not None:
        yield from scan_heads()
        return
    for course_id, events in store.scan():
        yield course_id, events, store.head(course_id)


@contextmanager
def paused_gc() -> Iterator[None]:
    """Replay allocates millions of short-lived, acyclic objects: the cyclic collector would
    rescan them again and again (about a quarter of the run) while finding nothing."""
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


def state_json(events: Sequence[Envelope], course_id: str, version: int) -> dict[str, Any]:
    return state_at(events, course_id, version).to_snapshot()


def export_jsonl(events: Iterable[Envelope], out: IO[str]) -> int:
    """Write each envelope (with the stored bytes it was hashed over) as one JSON line."""
    n = 0
    for e in events:
        record = e.to_dict()
        schemas.validate("envelope", record)  # what we archive is what the envelope promises
        record["stored"] = e.raw.decode("utf-8")
        out.write(json.dumps(record, ensure_ascii=False, sort_keys=True) + "\n")
        n += 1
    return n
