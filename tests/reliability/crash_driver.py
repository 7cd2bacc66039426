"""Crash-test driver: runs one course on the embedded runtime, pausing where a test kills it."""

# Run as ``python -m tests.reliability.crash_driver --data D --video V [--pause-at POINT]``. On
# start it ingests the course (a fixed message id, so a re-ingest is a no-op) or, when the
# course exists, resumes it with ``Bridge.recover``. Every hook lives here, around the
# product's objects (steps, store, notify, ``os.replace``); the product code runs unchanged.

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from bridge.runtime.embedded import embedded
from bridge.settings import Settings
from bridge.wire import course_id_for
from handlers.registry import StepContext, StepFn, StepResult, real_steps
from statemachine.envelope import NewEvent
from statemachine.store.appending import FollowUp, Rebase
from statemachine.store.sqlite import SqliteStore

MESSAGE_ID = "crash-test-1"
SECRET = "crash-test-secret"
TERMINAL = ("completed", "failed", "cancelled")


class Pause:
    """Where to stop (``--pause-at KIND:ARG``); ``hit`` writes ``DATA/paused`` and waits forever.

    - ``step:NAME``            the step NAME has started (the test kills it a moment later)
    - ``after-step:NAME``      the step's work is done, its result not yet recorded
    - ``before-dispatch:NAME`` NAME's result is committed with the tasks it unblocks (one
                               transaction), none of them dispatched yet
    - ``commit:TYPE[:TASK]``   inside the append of a TYPE event (of TASK): rows written, no COMMIT
    - ``rename:FILE``          an artifact's temporary file is complete, not yet renamed to FILE
    """

    def __init__(self, point: str | None, data: Path) -> None:
        kind, _, arg = (point or "").partition(":")
        self.point, self.kind, self.arg, self.data = point, kind, arg, data
        self._fired = threading.Lock()

    def wants(self, kind: str, arg: str) -> bool:
        return self.kind == kind and (self.arg == arg or self.arg == "")

    def hit(self) -> None:
        if not self._fired.acquire(blocking=False):
            threading.Event().wait()  # a second thread reaching the point waits too
        marker = self.data / "paused"
        marker.with_suffix(".tmp").write_text(self.point or "")
        os.replace(marker.with_suffix(".tmp"), marker)
        threading.Event().wait()  # until SIGKILL


_pending = threading.local()


class _PausingConnection(sqlite3.Connection):
    """A connection that stops before COMMIT when the current append asked it to."""

    def execute(self, sql: str, *args: Any) -> sqlite3.Cursor:
        pause = getattr(_pending, "pause", None)
        if sql == "COMMIT" and pause is not None:
            pause.hit()
        return super().execute(sql, *args)


class PausingStore(SqliteStore):
    """The product's SQLite store, with connections that can stop inside an append."""

    def __init__(self, path: Path, pause: Pause) -> None:
        self.pause = pause
        super().__init__(path, synchronous="FULL")

    def _open(self) -> sqlite3.Connection:
        conn = sqlite3.connect(
            self.path,
            isolation_level=None,
            check_same_thread=False,
            timeout=30.0,
            factory=_PausingConnection,
        )
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute(f"PRAGMA synchronous={self.synchronous}")
        conn.execute("PRAGMA busy_timeout=30000")
        return conn

    def append(
        self,
        course_id: str,
        expected_version: int,
        events: Sequence[NewEvent],
        *,
        then: FollowUp | None = None,
        rebase: Rebase | None = None,
    ) -> int:
        if self.pause.kind == "commit" and any(self._matches(e) for e in events):
            _pending.pause = self.pause
        if self.pause.kind == "commit" and then is not None:
            then = self._watching(then)
        try:
            return super().append(course_id, expected_version, events, then=then, rebase=rebase)
        finally:
            _pending.pause = None

    def _watching(self, then: FollowUp) -> FollowUp:
        """``then``, pausing the commit too when a follow-up it adds is the one to stop at
        (CourseCompleted goes in with finalize's result)."""

        def watched(snapshot: Any) -> Any:
            follow_ups = then(snapshot)
            if any(self._matches(e) for e in follow_ups):
                _pending.pause = self.pause
            return follow_ups

        return watched

    def _matches(self, new: NewEvent) -> bool:
        kind, _, task = self.pause.arg.partition(":")
        return new.type == kind and (not task or getattr(new.event, "task", None) == task)


def pause_dispatches(rt: Any, store: SqliteStore, pause: Pause) -> None:
    """Stop at the first dispatch made once task ``pause.arg`` has succeeded: its result and
    the tasks it unblocks are committed, nothing of them has reached the queue."""
    dispatch = rt.dispatcher.dispatch

    def paused(request: Any) -> None:
        course_id = request.payload["courseId"]
        head = store.head(course_id)
        task = head.snapshot["tasks"].get(pause.arg) if head is not None else None
        if task is not None and task["status"] == "succeeded":
            pause.hit()
        dispatch(request)

    rt.dispatcher.dispatch = paused


def pausing_steps(pause: Pause) -> Mapping[str, StepFn]:
    def wrap(name: str, real: StepFn) -> StepFn:
        def step(ctx: StepContext) -> StepResult:
            if pause.wants("step", name):
                marker = pause.data / "paused"
                marker.write_text(pause.point or "")  # the step goes on; the test kills it
            result = real(ctx)
            if pause.wants("after-step", name):
                pause.hit()
            return result

        return step

    return {name: wrap(name, fn) for name, fn in real_steps().items()}


def pause_renames(pause: Pause) -> None:
    """Stop just before an artifact's temporary file is renamed onto its real name."""
    real_replace = os.replace

    def replace(src: Any, dst: Any, *args: Any, **kwargs: Any) -> None:
        if Path(dst).name == pause.arg and "artifacts" in Path(dst).parts:
            pause.hit()
        real_replace(src, dst, *args, **kwargs)

    os.replace = replace  # type: ignore[assignment]


def run(data: Path, video: Path, pause: Pause, workers: int, timeout_s: float) -> dict[str, Any]:
    settings = Settings.from_env(
        {**os.environ, "COURSEGEN_STORE": "sqlite", "COURSEGEN_TASK_SECRET": SECRET}
    )
    store = PausingStore(data / "events.db", pause)
    rt = embedded(
        data,
        settings=settings,
        steps=pausing_steps(pause),
        store=store,
        options={"local_roots": [str(video.parent)]},
    )
    if pause.kind == "before-dispatch":
        pause_dispatches(rt, store, pause)
    if pause.kind == "rename":
        pause_renames(pause)
    message = {"videoUri": str(video), "title": "Crash Test Lecture"}
    course_id = course_id_for(MESSAGE_ID, message)
    resumed = store.head(course_id) is not None
    recovered = rt.bridge.recover() if resumed else {}
    if not resumed:
        rt.bridge.ingest(message, message_id=MESSAGE_ID, actor="crash-test")
    rt.dispatcher.start(workers)
    deadline = time.monotonic() + timeout_s
    status = "timeout"
    while time.monotonic() < deadline:
        head = store.head(course_id)
        if head and head.status in TERMINAL and rt.dispatcher.pending() == 0:
            status = head.status
            break
        time.sleep(0.05)
    rt.close()
    return {"course_id": course_id, "status": status, "resumed": resumed, "recovered": recovered}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--video", type=Path, required=True)
    parser.add_argument("--pause-at", default=None)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--timeout", type=float, default=120.0)
    args = parser.parse_args(argv)
    args.data.mkdir(parents=True, exist_ok=True)
    (args.data / "paused").unlink(missing_ok=True)
    pause = Pause(args.pause_at, args.data)
    summary = run(args.data, args.video.resolve(), pause, args.workers, args.timeout)
    print(json.dumps(summary), flush=True)
    return 0 if summary["status"] == "completed" else 1


if __name__ == "__main__":
    sys.exit(main())
