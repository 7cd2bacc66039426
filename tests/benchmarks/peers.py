"""Peers side by side, in one process: coursegen against DBOS Transact and ``eventsourcing``."""

# Not collected by pytest (not a test_*.py file). Needs `pip install dbos eventsourcing`.
# python tests/benchmarks/peers.py [--courses 300] [--replay 10000] prints one JSON document:
#  - the same no-op course DAG (prepare -> 3 branches -> 4 frame shards -> structure ->
#    interactivity -> finalize: 11 steps) on coursegen's embedded runtime (bench_pipeline:
#    ingest, Cloud Tasks semantics, HMAC-signed deliveries, idempotency, every transition an
#    fsynced SQLite append) and as one DBOS workflow per course with its 11 steps (DBOS's
#    fastest shape here; SQLite system database), both with 4 workers;
#  - the replay of 10,000 courses of 35 events: coursegen's auditor (read, decode, verify the
#    hash chain, fold, compare with the head) against eventsourcing's repository.get of an
#    Aggregate with 35 events (read, deserialise, mutate), both on SQLite.

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from bridge.tooling.bench import _bench_replay, bench_pipeline

SHARDS = 4


# -- the DAG on DBOS -----------------------------------------------------------------------
def dbos_courses_per_s(courses: int, workers: int, folder: Path) -> dict[str, Any]:
    from dbos import DBOS, DBOSConfig

    logging.getLogger("dbos").setLevel(logging.WARNING)
    config: DBOSConfig = {
        "name": "peers-bench",
        "system_database_url": f"sqlite:///{folder / 'dbos.sqlite'}",
        "run_admin_server": False,
        "log_level": "WARNING",
    }
    DBOS(config=config)

    @DBOS.step()
    def step(name: str, course: int) -> dict[str, Any]:
        return {"step": name, "course": course, "shards": SHARDS if name == "extract" else None}

    @DBOS.workflow()
    def course_dag(course: int) -> int:
        done = [step("prepare_video", course)]
        done += [step(s, course) for s in ("extract_frames", "transcribe", "analyze_video")]
        done += [step(f"analyze_frames#{i}", course) for i in range(SHARDS)]
        for s in ("generate_structure", "add_interactivity", "finalize"):
            done.append(step(s, course))
        return len(done)

    DBOS.launch()
    try:
        course_dag(-1)  # warm-up: tables, first connection
        start = time.perf_counter()
        with ThreadPoolExecutor(workers) as pool:
            steps = list(pool.map(course_dag, range(courses)))
        elapsed = time.perf_counter() - start
    finally:
        DBOS.destroy()
    assert all(n == 11 for n in steps)
    return {
        "courses": courses,
        "steps_per_course": 11,
        "workers": workers,
        "seconds": round(elapsed, 3),
        "courses_per_s": round(courses / elapsed, 1),
    }


# -- replay on eventsourcing ----------------------------------------------------------------
def eventsourcing_replay(courses: int, folder: Path) -> dict[str, Any]:
    from eventsourcing.application import Application
    from eventsourcing.domain import Aggregate, event

    class Course(Aggregate):
        @event("Requested")
        def __init__(self, video_uri: str, title: str) -> None:
            self.video_uri, self.title, self.tasks, self.status = video_uri, title, {}, "requested"

        @event("TaskScheduled")
        def schedule(self, task: str, key: str, queue: str, generation: int) -> None:
            self.tasks[task] = {"status": "scheduled", "key": key, "queue": queue}
            self.status = "running"

        @event("TaskStarted")
        def start(self, task: str, key: str, attempt: int) -> None:
            self.tasks[task].update(status="running", attempt=attempt)

        @event("TaskSucceeded")
        def succeed(self, task: str, key: str, attempt: int, summary: dict, duration_ms: int):
            self.tasks[task].update(status="succeeded", summary=summary, ms=duration_ms)

        @event("Completed")
        def complete(self) -> None:
            self.status = "completed"

    steps = ["prepare_video", "extract_frames", "transcribe", "analyze_video"]
    steps += [f"analyze_frames#{i}" for i in range(SHARDS)]
    steps += ["generate_structure", "add_interactivity", "finalize"]
    env = {"PERSISTENCE_MODULE": "eventsourcing.sqlite", "SQLITE_DBNAME": str(folder / "es.db")}
    app = Application(env=env)
    ids = []
    write_start = time.perf_counter()
    for i in range(courses):
        c = Course(video_uri="gs://bench/lecture.mp4", title="Bench")
        for s in steps:
            key = f"c{i}:{s}:1"
            c.schedule(task=s, key=key, queue="q", generation=1)
            c.start(task=s, key=key, attempt=1)
            summary = {"shards": SHARDS} if s == "extract_frames" else {}
            c.succeed(task=s, key=key, attempt=1, summary=summary, duration_ms=1)
        c.complete()
        app.save(c)
        ids.append(c.id)
    written = time.perf_counter() - write_start
    events = courses * (2 + 3 * len(steps))
    start = time.perf_counter()
    for course_id in ids:
        assert app.repository.get(course_id).status == "completed"
    elapsed = time.perf_counter() - start
    return {
        "replay_courses": courses,
        "replay_events": events,
        "replay_seconds": round(elapsed, 3),
        "replay_events_per_s": round(events / elapsed, 1),
        "setup_seconds": round(written, 1),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="coursegen against DBOS and eventsourcing.")
    parser.add_argument("--courses", type=int, default=300, help="courses through the DAG")
    parser.add_argument("--replay", type=int, default=10_000, help="courses to replay")
    parser.add_argument("--workers", type=int, default=4)
    args = parser.parse_args(argv)
    os.environ.setdefault("DBOS__VMID", "peers-bench")
    with tempfile.TemporaryDirectory(prefix="coursegen-peers-") as tmp:
        folder = Path(tmp)
        ours = bench_pipeline(courses=args.courses, workers=args.workers, synchronous="FULL")
        theirs = dbos_courses_per_s(args.courses, args.workers, folder)
        replay_ours = _bench_replay(folder / "replay.db", args.replay)
        replay_theirs = eventsourcing_replay(args.replay, folder)
    report = {
        "dag": {
            "coursegen": ours,
            "dbos": theirs,
            "ratio_courses_per_s": round(ours["courses_per_s"] / theirs["courses_per_s"], 2),
            "target": ">= 2",
        },
        "replay": {
            "coursegen": replay_ours,
            "eventsourcing": replay_theirs,
            "ratio_speed": round(
                replay_theirs["replay_seconds"] / replay_ours["replay_seconds"], 2
            ),
            "target": ">= 5",
        },
    }
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
