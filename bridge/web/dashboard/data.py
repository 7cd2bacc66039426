"""Read models of the dashboard: course rows, one course, its event log and its Gantt bars."""

from __future__ import annotations

import re
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from bridge.ops.replay import check, timeline
from bridge.ops.views import (
    STALL_S,
    CourseRow,
    course_pipeline,
    course_row,
    course_status,
    step_statuses,
)
from statemachine.envelope import Envelope
from statemachine.lifecycle import ACTIVE_COURSE
from statemachine.ports import EventStore
from statemachine.timefmt import parse_iso

COURSE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,127}$")
FRAME_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,200}$")
OUTPUT_FILES = ("course.html", "course.json")
MAX_ROWS = 500
_SCAN = 5000  # heads read for one filtered list


def course_rows(
    store: EventStore,
    *,
    status: str | None = None,
    variant: str | None = None,
    q: str | None = None,
    limit: int = 100,
    now: float | None = None,
) -> list[CourseRow]:
    """Courses newest first, filtered by status, variant and a text in the id or title."""
    at = time.time() if now is None else now
    needle = (q or "").strip().lower()
    rows = []
    for head in store.courses(status=status or None, limit=_SCAN):
        if variant and head.variant != variant:
            continue
        row = course_row(head, at)
        if needle and needle not in row["course_id"].lower() and needle not in row["title"].lower():
            continue
        rows.append(row)
        if len(rows) >= limit:
            break
    return rows


def course_detail(
    store: EventStore, artifacts_root: Path, course_id: str, now: float | None = None
) -> dict[str, Any] | None:
    """Status and tasks (``bridge.ops.views.course_status``) plus what the page draws."""
    head = store.head(course_id)
    view = course_status(store, course_id) if head else None
    if head is None or view is None:
        return None
    row = course_row(head, time.time() if now is None else now)
    steps = step_statuses(view["tasks"], course_pipeline(head.snapshot).order)
    task_counts: dict[str, int] = {}
    for t in view["tasks"]:
        task_counts[t["status"]] = task_counts.get(t["status"], 0) + 1
    return {
        **view,
        **{k: row[k] for k in ("created_at", "updated_at", "age_s", "done", "total", "percent")},
        "steps": steps,
        "highlight": {
            "course": {view["status"]: view["status"]},
            "task": {s: s for s in task_counts},
            "pipeline": steps,
        },
        "badges": {"task": {s: str(n) for s, n in task_counts.items()}},
        "links": outputs(artifacts_root, course_id),
    }


def outputs(artifacts_root: Path, course_id: str) -> dict[str, Any]:
    """Links to the course's outputs that exist on disk (course.html, course.json, frames)."""
    base = f"/courses/{course_id}/outputs"
    folder = artifacts_root / course_id
    files = {name: f"{base}/{name}" for name in OUTPUT_FILES if (folder / name).is_file()}
    frames_dir = folder / "media" / "frames"
    frames = []
    if frames_dir.is_dir():
        frames = sorted(
            p.name
            for p in frames_dir.iterdir()
            if p.is_file() and FRAME_NAME.match(p.name) and p.suffix.lower() in (".jpg", ".png")
        )
    return {
        "files": files,
        "frames": [f"{base}/media/frames/{name}" for name in frames[:200]],
        "frame_count": len(frames),
    }


def output_path(artifacts_root: Path, course_id: str, name: str) -> Path | None:
    """The file an output URL names, or None: only known names, never outside the folder."""
    if not COURSE_ID.match(course_id):
        return None
    if name in OUTPUT_FILES:
        rel = Path(name)
    elif name.startswith("media/frames/") and FRAME_NAME.match(name.rsplit("/", 1)[-1]):
        rel = Path("media/frames") / name.rsplit("/", 1)[-1]
    else:
        return None
    root = artifacts_root.resolve()
    path = (root / course_id / rel).resolve()
    if root not in path.parents or not path.is_file():
        return None
    return path


def event_log(store: EventStore, course_id: str, *, after: int = 0) -> dict[str, Any] | None:
    """The timeline after version ``after``, with the whole history's verification."""
    if store.head(course_id) is None:
        return None
    verdict = check(store, course_id)
    events = store.load(course_id, after=after)
    return {
        "course_id": course_id,
        "verification": verdict.as_dict(),
        "events": [r.as_dict() for r in timeline(events)],
    }


def gantt(store: EventStore, course_id: str, now: float | None = None) -> dict[str, Any] | None:
    """A bar per task attempt, in seconds since the course was requested."""
    head = store.head(course_id)
    if head is None:
        return None
    events = store.load(course_id)
    if not events:
        return None
    t0 = parse_iso(events[0].occurred_at)
    bars = attempt_bars(events, t0)
    last = parse_iso(events[-1].occurred_at)
    active = head.status in ACTIVE_COURSE
    end = max(last, time.time() if now is None else now) if active else last
    for bar in bars:  # a running attempt silent for longer than STALL_S is stuck
        bar["stuck"] = bar["outcome"] == "running" and end - t0 - bar["progress_s"] > STALL_S
    order = {name: i for i, name in enumerate(course_pipeline(head.snapshot).order)}
    rows = sorted(
        {b["task"]: b for b in bars},
        key=lambda t: (order.get(t.split("#")[0], 99), int(t.split("#")[1]) if "#" in t else -1),
    )
    return {
        "course_id": course_id,
        "status": head.status,
        "started_at": events[0].occurred_at,
        "span_s": round(max(end - t0, 0.001), 3),
        "rows": rows,
        "bars": bars,
    }


def attempt_bars(events: Sequence[Envelope], t0: float) -> list[dict[str, Any]]:
    """TaskStarted .. TaskSucceeded / TaskFailed / TaskExhausted per task and attempt; the wait
    before each start (queued after scheduling, or backing off after a failure) comes along."""
    waiting: dict[str, float] = {}
    open_: dict[str, dict[str, Any]] = {}
    bars: list[dict[str, Any]] = []
    bar: dict[str, Any] | None
    for e in events:
        task = str(e.data.get("task") or "")
        at = round(parse_iso(e.occurred_at) - t0, 3)
        match e.type:
            case "TaskScheduled":
                waiting[task] = at
            case "TaskStarted":
                if task in open_:  # a redelivery after a lost answer or a crash
                    _close(open_.pop(task), at, "lost")
                bar = {
                    "task": task,
                    "step": task.split("#")[0],
                    "attempt": int(e.data.get("attempt", 0)),
                    "queued_s": waiting.pop(task, None),
                    "start_s": at,
                    "end_s": None,
                    "outcome": "running",
                    "progress": None,  # the attempt's last TaskProgress fraction
                    "progress_s": at,  # when it last showed a sign of life
                }
                open_[task] = bar
                bars.append(bar)
            case "TaskProgress":
                bar = open_.get(task)
                if bar is not None:
                    bar["progress"] = float(e.data["fraction"])
                    bar["progress_s"] = at
            case "TaskSucceeded" | "TaskFailed":
                bar = open_.pop(task, None)
                outcome = "succeeded" if e.type == "TaskSucceeded" else _failure(e.data)
                if bar is not None:
                    _close(bar, at, outcome)
                if outcome == "retrying":
                    waiting[task] = at
            case "TaskMooted":  # its course was cancelled while it ran
                waiting.pop(task, None)
                bar = open_.pop(task, None)
                if bar is not None:
                    _close(bar, at, "moot")
            case "TaskExhausted":
                waiting.pop(task, None)
                bar = open_.pop(task, None) or _last(bars, task)
                if bar is not None:
                    _close(bar, bar["end_s"] if bar["end_s"] is not None else at, "exhausted")
    return bars


def _failure(data: Mapping[str, Any]) -> str:
    return "retrying" if data.get("retryable") else "failed"


def _close(bar: dict[str, Any], at: float, outcome: str) -> None:
    bar["end_s"] = at
    bar["outcome"] = outcome


def _last(bars: Sequence[dict[str, Any]], task: str) -> dict[str, Any] | None:
    return next((b for b in reversed(bars) if b["task"] == task), None)
