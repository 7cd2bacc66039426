"""Auditor views of a history: the timeline, the state at a version, verification, export."""

from __future__ import annotations

import gc
import itertools
import json
import multiprocessing
import os
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import IO, Any

import schemas
from statemachine.audit import SameState, state_at, verify
from statemachine.envelope import Envelope, decode
from statemachine.errors import IntegrityError
from statemachine.pipeline import default_pipelines
from statemachine.ports import EventStore, Head
from statemachine.state import CourseSnapshot


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
            pin = f", pipeline {d['pipeline_version']}" if d.get("pipeline_version") else ""
            return f"{d['title']!r} from {d['video_uri']} ({d.get('variant', 'cloudtasks')}{pin})"
        case "TaskScheduled":
            return f"queue {d['queue']}, generation {d['generation']}"
        case "TaskSucceeded":
            return ", ".join(f"{k}={v}" for k, v in list(d["summary"].items())[:4])
        case "TaskFailed":
            kind = "retryable" if d["retryable"] else "permanent"
            return f"{kind} {d['error_type']}: {d['message'][:120]}"
        case "TaskExhausted":
            return str(d["error"])[:120]
        case "TaskMooted":
            return str(d["detail"])[:120]
        case "CourseFailed":
            return str(d["reason"])[:160]
        case "CourseCancelled" | "CoursePaused" | "CourseResumed":
            return str(d["reason"])[:160]
        case "CourseRedriven":
            return f"{', '.join(d['tasks'])}: {d['reason'][:100]}"
        case "CourseMigrated":
            return f"pipeline {d['from_version']} -> {d['to_version']}: {d['reason'][:100]}"
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
        done = verify(course_id, events, store.head(course_id), pipelines=default_pipelines())
    except IntegrityError as err:
        return Verdict(False, course_id, -1, err.version, err.problem)
    return Verdict(True, course_id, done.events, None, None)


# Below this many courses, or on one core, the audit runs in this process: starting workers
# costs more than it saves.
PARALLEL_MIN_COURSES = 2000


def audit_all(store: EventStore, *, workers: int | None = None) -> Iterator[Verdict]:
    """Every course, verified, streamed course by course with its head.

    A store that can be opened again in another process (``EventStore.reopener``: SQLite on
    disk) with many courses is verified by ``workers`` processes (default: one per usable
    core), each over its own ranges of course ids with its own connection; the verdicts
    arrive in the same order as from one process. The workers are forked, so only from a
    process that runs one thread: a lock another thread held at the fork (SQLite's,
    logging's) would stay held for ever in the child. Otherwise the audit runs here.
    """
    with paused_gc():
        n = parallel_workers(store, workers)
        opener = store.reopener()
        if n > 1 and opener is not None:
            yield from _audit_parallel(store, opener, id_ranges(store.course_ids(), n * 4), n)
        else:
            yield from _audit(store)


def parallel_workers(store: EventStore, workers: int | None = None) -> int:
    """How many processes ``audit_all`` uses for ``store`` (1: it runs in this one)."""
    n = workers if workers is not None else _cores()
    if (
        n > 1
        and store.reopener() is not None
        and "fork" in multiprocessing.get_all_start_methods()
        and threading.active_count() == 1
        and (workers is not None or len(store.course_ids()) >= PARALLEL_MIN_COURSES)
    ):
        return n
    return 1


def id_ranges(course_ids: Sequence[str], parts: int) -> list[tuple[str | None, str | None]]:
    """About ``parts`` ranges [lo, hi) of course ids, of similar sizes, that together cover
    every possible id (None: unbounded)."""
    ids = sorted(course_ids)
    cuts = dict.fromkeys(ids[len(ids) * i // parts] for i in range(1, parts)) if ids else {}
    bounds: list[str | None] = [None, *cuts, None]
    return list(itertools.pairwise(bounds))


def _audit(store: EventStore) -> Iterator[Verdict]:
    seen: set[str] = set()
    verdicts, stopped = _verify_histories(store.scan_heads(), seen, store.same_snapshot)
    yield from verdicts
    if stopped[0]:
        return
    for course_id in store.course_ids():
        if course_id not in seen:
            yield _orphan(course_id)


def _verify_histories(
    histories: Iterator[tuple[str, Sequence[Envelope], Head | None]],
    seen: set[str],
    same: SameState,
) -> tuple[Iterator[Verdict], list[bool]]:
    """Verdicts for ``histories`` (lazily); the flag turns True if reading them failed, after
    which the audit stops, as it cannot tell which courses the unreadable rows belong to. (A
    SQLite history comes as its stored rows, ``StoredEvents``: a row that does not decode fails
    the course it is stored under, in ``verify``, and the audit goes on.)"""
    stopped = [False]
    pipelines = default_pipelines()

    def run() -> Iterator[Verdict]:
        try:
            for course_id, events, head in histories:
                seen.add(course_id)
                try:
                    done = verify(course_id, events, head, same=same, pipelines=pipelines)
                    yield Verdict(True, course_id, done.events, None, None)
                except IntegrityError as err:
                    yield Verdict(False, course_id, len(events), err.version, err.problem)
        except IntegrityError as err:
            stopped[0] = True
            yield Verdict(False, err.course_id, -1, err.version, err.problem)

    return run(), stopped


def _orphan(course_id: str) -> Verdict:
    return Verdict(False, course_id, 0, 1, "the head exists but the history is empty")


def _audit_parallel(
    store: EventStore,
    opener: Callable[[], EventStore],
    ranges: Sequence[tuple[str | None, str | None]],
    workers: int,
) -> Iterator[Verdict]:
    orphans: set[str] = set()
    context = multiprocessing.get_context("fork")
    with context.Pool(workers, initializer=_open_worker_store, initargs=(opener,)) as pool:
        for verdicts, stopped, lonely in pool.imap(_audit_range, ranges):
            yield from (Verdict(*v) for v in verdicts)
            if stopped:
                return
            orphans.update(lonely)
    for course_id in store.course_ids():
        if course_id in orphans:
            yield _orphan(course_id)


_worker_store: list[EventStore] = []  # the store a worker process opened, once


def _open_worker_store(opener: Callable[[], EventStore]) -> None:
    _worker_store[:] = [opener()]


def _audit_range(
    bounds: tuple[str | None, str | None],
) -> tuple[list[tuple[Any, ...]], bool, list[str]]:
    """In a worker process: the verdicts of courses in [lo, hi), whether reading stopped, and
    the courses in that range with a head but no history."""
    lo, hi = bounds
    store = _worker_store[0]
    seen: set[str] = set()
    with paused_gc():
        verdicts, stopped = _verify_histories(
            store.scan_heads(lo=lo, hi=hi), seen, store.same_snapshot
        )
        out = [(v.ok, v.course_id, v.events, v.first_bad_version, v.problem) for v in verdicts]
    if stopped[0]:
        return out, True, []
    return out, False, [c for c in store.course_ids(lo=lo, hi=hi) if c not in seen]


def _cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not on Linux
        return os.cpu_count() or 1


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


def state_json(events: Sequence[Envelope], course_id: str, version: int) -> CourseSnapshot:
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


def read_jsonl(lines: Iterable[str]) -> list[Envelope]:
    """The envelopes of an ``export_jsonl`` file, decoded from the stored bytes each line
    carries (the hash covers those); a line whose readable fields disagree with its stored
    bytes, or that is not an exported envelope, is an ``IntegrityError``. Other records (an
    archive's trailer) are left to the caller: lines with a ``trailer`` key are skipped."""
    events: list[Envelope] = []
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
            if "trailer" in record:
                continue
            env = decode(record.pop("stored").encode("utf-8"), record["hash"])
        except (ValueError, KeyError, TypeError, AttributeError) as err:
            raise IntegrityError("?", n, f"line {n} is not an exported envelope: {err!r}") from None
        if env.to_dict() != record:
            raise IntegrityError(
                env.course_id, env.version, "the line differs from its stored bytes"
            )
        events.append(env)
    return events
