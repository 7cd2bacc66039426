"""``coursegen bench``: measured throughput of the store and the runtime (not timed tests)."""

from __future__ import annotations

import multiprocessing
import statistics
import tempfile
import threading
import time
from collections.abc import Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import orjson

from bridge.dispatch import TaskRequest
from bridge.dispatch.local import Delivered, DeliverLater, Reply
from bridge.ops.replay import audit_all
from bridge.runtime.embedded import embedded
from bridge.settings import Settings
from bridge.tooling.synthetic import noop_steps
from statemachine.commands import to_event
from statemachine.decide import decide
from statemachine.envelope import GENESIS_HASH, NewEvent, digest
from statemachine.events import CourseRequested, Event, TaskStarted, TaskSucceeded
from statemachine.lifecycle import CourseStatus, TaskStatus
from statemachine.pipeline import default_pipeline, default_pipelines
from statemachine.state import CourseState
from statemachine.store.appending import prepare_append
from statemachine.store.sqlite import SqliteStore
from statemachine.timefmt import iso, parse_iso

T0 = 1_790_000_000.0


def course_commands(course_id: str, shards: int = 4) -> list[list[NewEvent]]:
    """The appends one course makes through the full DAG, as the runtime would make them."""
    pipelines = default_pipelines()
    pipeline = pipelines.latest
    fields = {s.fan_out.source: s.fan_out.count_field for s in pipeline.steps.values() if s.fan_out}
    t = T0
    batches: list[list[NewEvent]] = []
    snap = None

    def push(events: list[Event], actor: str) -> CourseState:
        nonlocal t, snap
        t += 0.01
        batch = [NewEvent(event=e, occurred_at=iso(t), actor=actor) for e in events]
        expected = snap["version"] if snap is not None else 0
        snap = prepare_append(course_id, snap, expected, batch).snapshot
        batches.append(batch)
        return CourseState.from_snapshot(snap)

    request = CourseRequested(
        video_uri="gs://bench/lecture.mp4",
        title="Bench",
        pipeline_version=pipeline.version,
        pipeline_digest=pipeline.digest,
    )
    state = push([request], "pubsub")
    while state.status not in (CourseStatus.COMPLETED, CourseStatus.FAILED):
        commands = decide(state, pipelines.of(state))
        if commands:
            state = push([to_event(c) for c in commands], "bridge")
            continue
        task = next(t for t in state.tasks.values() if t.status == TaskStatus.SCHEDULED)
        key, name = task.idempotency_key, task.name
        state = push([TaskStarted(task=name, idempotency_key=key, attempt=1)], "task-endpoint")
        summary = {fields[task.step]: shards} if task.step in fields else {}
        state = push(
            [
                TaskSucceeded(
                    task=name,
                    idempotency_key=key,
                    attempt=1,
                    outputs={},
                    summary=summary,
                    duration_ms=1,
                )
            ],
            "task-endpoint",
        )
    return batches


def bench_store(
    courses: int = 10_000, write_courses: int = 300, synchronous: str = "FULL"
) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="coursegen-bench-") as tmp:
        writes = _bench_appends(Path(tmp) / "writes.db", write_courses, synchronous)
        replay = _bench_replay(Path(tmp) / "replay.db", courses)
    return {"benchmark": "store", "synchronous": synchronous, **writes, **replay}


def _bench_appends(path: Path, courses: int, synchronous: str) -> dict[str, Any]:
    store = SqliteStore(path, synchronous=synchronous)
    plans = [(f"w{i:06d}", course_commands(f"w{i:06d}")) for i in range(courses)]
    latencies: list[float] = []
    start = time.perf_counter()
    for course_id, batches in plans:
        version = 0
        for batch in batches:
            t0 = time.perf_counter()
            version = store.append(course_id, version, batch)
            latencies.append(time.perf_counter() - t0)
    elapsed = time.perf_counter() - start
    store.close()
    latencies.sort()
    return {
        "append_commands": len(latencies),
        "append_commands_per_s": round(len(latencies) / elapsed, 1),
        "append_p50_ms": round(latencies[len(latencies) // 2] * 1000, 3),
        "append_p99_ms": round(latencies[int(len(latencies) * 0.99)] * 1000, 3),
    }


def _bench_replay(path: Path, courses: int) -> dict[str, Any]:
    events = _fill(path, courses)
    store = SqliteStore(path)
    start = time.perf_counter()
    verified = 0
    for verdict in audit_all(store):  # the auditor's own path: read, decode, hash, fold, compare
        if not verdict.ok:
            raise AssertionError(f"benchmark history failed to verify: {verdict}")
        verified += verdict.events
    elapsed = time.perf_counter() - start
    store.close()
    assert verified == events, (verified, events)
    return {
        "replay_courses": courses,
        "replay_events": events,
        "replay_seconds": round(elapsed, 3),
        "replay_events_per_s": round(events / elapsed, 1),
    }


def _fill(path: Path, courses: int) -> int:
    """Write ``courses`` real histories fast: one template course, re-sealed per course id."""
    template = course_commands("TEMPLATE")
    bodies: list[dict[str, Any]] = []
    snap = None
    for batch in template:
        prepared = prepare_append("TEMPLATE", snap, snap["version"] if snap else 0, batch)
        snap = prepared.snapshot
        bodies.extend(orjson.loads(e.raw) for e in prepared.envelopes)
    head_template = orjson.dumps(snap).decode()
    store = SqliteStore(path, synchronous="NORMAL")
    with store._conn() as conn:  # bulk set-up, one transaction, not part of the measurement
        conn.execute("BEGIN")
        total = 0
        for i in range(courses):
            course_id = f"c{i:07d}"
            prev = GENESIS_HASH
            rows = []
            for body in bodies:
                raw = orjson.dumps(_rename(body, course_id, prev), option=orjson.OPT_SORT_KEYS)
                prev = digest(raw)
                rows.append(
                    (course_id, body["version"], body["type"], body["occurred_at"], raw, prev)
                )
            conn.executemany("INSERT INTO events VALUES (?, ?, ?, ?, ?, ?)", rows)
            head = orjson.loads(head_template.replace("TEMPLATE", course_id))
            head["last_hash"] = prev
            conn.execute(
                "INSERT INTO courses VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    course_id,
                    head["status"],
                    head["version"],
                    prev,
                    head["updated_at"],
                    head["variant"],
                    orjson.dumps(head),
                ),
            )
            total += len(rows)
        conn.execute("COMMIT")
    store.close()
    return total


def _rename(body: Mapping[str, Any], course_id: str, prev: str) -> dict[str, Any]:
    out = dict(body)
    out["course_id"] = course_id
    out["prev_hash"] = prev
    data = dict(body["data"])
    if "idempotency_key" in data:
        data["idempotency_key"] = data["idempotency_key"].replace("TEMPLATE", course_id)
    out["data"] = data
    return out


def bench_pipeline(
    courses: int = 1000, workers: int = 4, synchronous: str = "FULL", processes: int = 1
) -> dict[str, Any]:
    """Courses per second through the embedded runtime with no-op steps, durable SQLite.

    With ``processes`` > 1 that many processes share one store (``bridge/partition.py``), the
    ``workers`` delivery threads shared out among them (at least one each), and each requests
    and runs its share of the courses (``coursegen work --processes``); the clock runs from the
    moment all of them are ready to the last one done."""
    each = max(1, workers // processes)
    with tempfile.TemporaryDirectory(prefix="coursegen-bench-") as tmp:
        if processes == 1:
            start = time.perf_counter()
            overheads, ids = _pipeline_share(tmp, synchronous, each, 0, 1, courses)
        else:
            ctx = multiprocessing.get_context("spawn")  # no thread or lock of this process
            with ctx.Manager() as manager:
                ready = manager.Barrier(processes + 1)
                go = manager.Event()
                with ctx.Pool(processes) as pool:
                    shares = [
                        pool.apply_async(
                            _pipeline_share,
                            (tmp, synchronous, each, k, processes, courses, ready, go),
                        )
                        for k in range(processes)
                    ]
                    ready.wait(timeout=120)
                    start = time.perf_counter()
                    go.set()
                    results = [r.get(timeout=3600) for r in shares]
            overheads = [o for r in results for o in r[0]]
            ids = [c for r in results for c in r[1]]
        elapsed = time.perf_counter() - start
        store = SqliteStore(Path(tmp) / "events.db")
        statuses = [h.status for h in store.courses()]
        completed = sum(s == CourseStatus.COMPLETED for s in statuses)
        tasks = 0
        latencies: list[float] = []  # each course's CourseRequested to its CourseCompleted
        for c in ids:
            history = store.load(c)
            tasks += sum(e.type == "TaskSucceeded" for e in history)
            done = [e.occurred_at for e in history if e.type == "CourseCompleted"]
            if done:
                latencies.append(parse_iso(done[0]) - parse_iso(history[0].occurred_at))
        store.close()
    overheads.sort()
    latencies.sort()
    return {
        "benchmark": "pipeline",
        "courses": courses,
        "completed": completed,
        "task_executions": tasks,
        "processes": processes,
        "workers": each * processes,
        "workers_per_process": each,
        "synchronous": synchronous,
        "seconds": round(elapsed, 3),
        "courses_per_s": round(completed / elapsed, 1),
        "task_overhead_p50_ms": round(statistics.median(overheads) * 1000, 3),
        "task_overhead_p99_ms": round(overheads[int(len(overheads) * 0.99)] * 1000, 3),
        "course_latency_p50_ms": _quantile_ms(latencies, 0.5),
        "course_latency_p99_ms": _quantile_ms(latencies, 0.99),
    }


def _pipeline_share(
    data: str,
    synchronous: str,
    workers: int,
    index: int,
    count: int,
    courses: int,
    ready: Any = None,
    go: Any = None,
) -> tuple[list[float], list[str]]:
    """One process's part of ``bench_pipeline``: its runtime on ``data`` (partition ``index``
    of ``count``), courses ``index``, ``index + count``, ... requested and run to the end; the
    deliveries' overheads (seconds) and the course ids."""
    from bridge.partition import Partition

    pipeline = default_pipeline()
    overheads: list[float] = []
    lock = threading.Lock()

    def timed(inner: DeliverLater) -> DeliverLater:
        """Each delivery's time from its start to its (durable) answer."""

        def deliver(
            request: TaskRequest, headers: Mapping[str, str], body: bytes, reply: Reply
        ) -> None:
            t0 = time.perf_counter()

            def answered(status: Delivered | None) -> None:
                with lock:
                    overheads.append(time.perf_counter() - t0)
                reply(status)

            inner(request, headers, body, answered)

        return deliver

    settings = Settings.from_env(
        {"COURSEGEN_STORE": "sqlite", "COURSEGEN_SQLITE_SYNCHRONOUS": synchronous}
    )
    rt = embedded(
        data, settings=settings, steps=noop_steps(pipeline), partition=Partition(index, count)
    )
    assert rt.dispatcher.deliver_later is not None
    rt.dispatcher.deliver_later = timed(rt.dispatcher.deliver_later)
    _unlimit(rt)
    if ready is not None:
        ready.wait(timeout=120)
        go.wait(timeout=120)
    ids = _ingest(rt, range(index, courses, count))
    rt.dispatcher.start(workers)
    rt.dispatcher.wait_idle(timeout=3600)
    rt.close()
    return overheads, ids


PUSHERS = 8  # course requests arriving at once, as Pub/Sub pushes them (one unit each)


def _ingest(rt: Any, courses: Iterable[int]) -> list[str]:
    """Request the courses numbered ``courses`` from ``PUSHERS`` threads: each request is its
    own unit, answered once durable, and requests that end together share an fsync."""

    def push(i: int) -> str:
        course_id: str = rt.bridge.ingest(
            {"videoUri": "gs://bench/l.mp4", "title": "Bench"}, message_id=f"bench-{i}"
        )
        return course_id

    with ThreadPoolExecutor(PUSHERS, thread_name_prefix="bench-push") as pool:
        return list(pool.map(push, courses))


def _quantile_ms(ordered: list[float], q: float) -> float | None:
    """The ``q`` quantile (nearest rank) of sorted seconds, in milliseconds; None when empty."""
    if not ordered:
        return None
    return round(ordered[min(len(ordered) - 1, int(len(ordered) * q))] * 1000, 1)


def _unlimit(rt: Any) -> None:
    """No-op steps measure orchestration, not the queues' rate limits: lift them."""
    from dataclasses import replace

    queues = {
        n: replace(q, max_dispatches_per_s=1e9, max_concurrent=10_000)
        for n, q in rt.pipeline.queues.items()
    }
    rt.dispatcher.set_limits(replace(rt.pipeline, queues=queues))
