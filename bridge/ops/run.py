"""``coursegen run``: one video through the embedded runtime, with live progress per step."""

from __future__ import annotations

import shutil
import time
import uuid
from pathlib import Path
from typing import Any

from bridge.ops.views import course_status
from bridge.runtime.embedded import Runtime, embedded
from bridge.settings import Settings
from handlers.artifacts import LocalArtifacts
from statemachine.pipeline import default_pipeline

TERMINAL = ("completed", "failed", "cancelled")


def run_course(
    video: Path,
    *,
    title: str | None,
    out: Path,
    data: Path,
    language: str = "en",
    provider: str | None = None,
    live: bool = True,
    workers: int = 4,
    settings: Settings | None = None,
    timeout_s: float = 3600,
) -> dict[str, Any]:
    video = video.resolve()
    options: dict[str, Any] = {"local_roots": [str(video.parent)]}
    request_options: dict[str, Any] = {"provider": provider} if provider else {}
    rt = embedded(data, settings=settings, options=options)
    started = time.perf_counter()
    try:
        message = {
            "videoUri": str(video),
            "title": title or _title(video),
            "language": language,
            "options": request_options,
        }
        course_id = rt.bridge.ingest(message, message_id=f"cli-{uuid.uuid4()}", actor="cli")
        rt.dispatcher.start(workers)
        _watch(rt, course_id, live, timeout_s)
    finally:
        rt.close()
    wall = round(time.perf_counter() - started, 2)
    view = course_status(rt.store, course_id) or {}
    summary = _summary(rt, course_id, view, wall)
    if view.get("status") == "completed":
        summary["files"] = _publish(rt.artifacts, course_id, out)
    return summary


def _title(video: Path) -> str:
    return video.stem.replace("_", " ").replace("-", " ").strip().title() or "Lecture"


def _watch(rt: Runtime, course_id: str, live: bool, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    if not live:
        while time.monotonic() < deadline:
            head = rt.store.head(course_id)
            if head and head.status in TERMINAL and rt.dispatcher.pending() == 0:
                return
            time.sleep(0.1)
        return
    from rich.console import Console
    from rich.live import Live

    console = Console(stderr=True)
    started = time.perf_counter()
    with Live(_board(rt, course_id, 0.0), console=console, refresh_per_second=8) as board:
        while time.monotonic() < deadline:
            head = rt.store.head(course_id)
            board.update(_board(rt, course_id, time.perf_counter() - started))
            if head and head.status in TERMINAL and rt.dispatcher.pending() == 0:
                return
            time.sleep(0.12)


_STYLE = {
    "succeeded": "green",
    "running": "yellow",
    "retrying": "magenta",
    "failed": "red",
    "exhausted": "red",
    "moot": "dim",
    "scheduled": "cyan",
    "waiting": "dim",
}


def _board(rt: Runtime, course_id: str, elapsed: float) -> Any:
    """One row per step; a fan-out step shows its shards side by side."""
    from rich.table import Table

    view = course_status(rt.store, course_id) or {"tasks": [], "status": "requested"}
    by_step: dict[str, list[dict[str, Any]]] = {}
    for task in view["tasks"]:
        by_step.setdefault(task["task"].split("#")[0], []).append(task)
    table = Table(title=f"course {course_id}: {view['status']}  ({elapsed:.1f} s)")
    for column in ("step", "status", "attempts", "seconds", "note"):
        table.add_column(column)
    for step in default_pipeline().order:
        tasks = by_step.get(step, [])
        status = _merge(tasks)
        seconds = sum((t["duration_ms"] or 0) for t in tasks) / 1000 if tasks else None
        attempts = sum(t["attempts"] for t in tasks)
        note = f"{len(tasks)} shards" if len(tasks) > 1 else (tasks[0]["error"] if tasks else "")
        table.add_row(
            step,
            f"[{_STYLE.get(status, 'white')}]{status}[/]",
            str(attempts or ""),
            f"{seconds:.2f}" if seconds is not None else "",
            note,
        )
    return table


def _merge(tasks: list[dict[str, Any]]) -> str:
    if not tasks:
        return "waiting"
    statuses = {t["status"] for t in tasks}
    for s in ("exhausted", "failed", "running", "retrying", "scheduled"):
        if s in statuses:
            return s
    return "succeeded"


def _summary(rt: Runtime, course_id: str, view: dict[str, Any], wall: float) -> dict[str, Any]:
    steps: dict[str, float] = {}
    for task in view.get("tasks", []):
        step = task["task"].split("#")[0]
        steps[step] = round(steps.get(step, 0.0) + (task["duration_ms"] or 0) / 1000, 3)
    head = rt.store.head(course_id)
    summary = head.snapshot["tasks"].get("finalize", {}).get("summary", {}) if head else {}
    out = {
        "course_id": course_id,
        "status": view.get("status", "unknown"),
        "lessons": summary.get("lessons"),
        "questions": summary.get("questions"),
        "wall_s": wall,
        "step_seconds": steps,
        "data": str(Path(rt.artifacts.root).parent),
    }
    if view.get("failure"):
        out["failure"] = view["failure"]
    return out


def _publish(artifacts: LocalArtifacts, course_id: str, out: Path) -> dict[str, str]:
    """Copy course.json, course.html and the key frames to ``out``."""
    src = artifacts.root / course_id
    out.mkdir(parents=True, exist_ok=True)
    for name in ("course.json", "course.html"):
        shutil.copy2(src / name, out / name)
    frames = out / "media" / "frames"
    if frames.exists():
        shutil.rmtree(frames)
    shutil.copytree(src / "media" / "frames", frames, ignore=shutil.ignore_patterns(".*"))
    return {
        "course_json": str(out / "course.json"),
        "course_html": str(out / "course.html"),
        "frames": str(frames),
    }
