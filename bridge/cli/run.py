"""``coursegen run``: one video through the embedded runtime, with a live board per step."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from bridge.ops.run import run_course
from bridge.ops.views import course_status
from bridge.runtime.embedded import embedded
from bridge.settings import Settings
from statemachine.pipeline import default_pipeline
from statemachine.ports import EventStore


def run_video(
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
    """Run ``video`` on a fresh embedded runtime over ``data``; ``live`` draws the board on
    stderr while it runs. Returns the run's summary (``bridge.ops.run.run_course``)."""
    video = video.resolve()
    rt = embedded(data, settings=settings, options={"local_roots": [str(video.parent)]})
    kwargs: dict[str, Any] = {
        "title": title,
        "out": out,
        "language": language,
        "provider": provider,
        "workers": workers,
        "timeout_s": timeout_s,
    }
    if not live:
        return run_course(rt, video, **kwargs)
    from rich.console import Console
    from rich.live import Live

    with Live(console=Console(stderr=True), refresh_per_second=8) as board:

        def tick(course_id: str, elapsed: float) -> None:
            board.update(_board(rt.store, course_id, elapsed))

        return run_course(rt, video, on_tick=tick, **kwargs)


_STYLE = {
    "succeeded": "green",
    "running": "yellow",
    "retrying": "magenta",
    "failed": "red",
    "exhausted": "red",
    "scheduled": "cyan",
    "waiting": "dim",
}


def _board(store: EventStore, course_id: str, elapsed: float) -> Any:
    """One row per step; a fan-out step shows its shards side by side."""
    from rich.table import Table

    view = course_status(store, course_id, now=time.time()) or {"tasks": [], "status": "requested"}
    by_step: dict[str, list[dict[str, Any]]] = {}
    for task in view["tasks"]:
        by_step.setdefault(task["task"].split("#")[0], []).append(task)
    table = Table(title=f"course {course_id}: {view['status']}  ({elapsed:.1f} s)")
    for column in ("step", "status", "attempts", "seconds", "progress", "note"):
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
            _bars(tasks),
            note,
        )
    return table


def _bars(tasks: list[dict[str, Any]], width: int = 10) -> str:
    """A bar per running task (its last reported fraction); a stalled one says STUCK."""
    out = []
    for t in tasks:
        if t["status"] != "running":
            continue
        fraction = t["progress"] or 0.0
        filled = round(fraction * width)
        label = t["task"].partition("#")[2] or ""
        bar = "█" * filled + "░" * (width - filled)
        mark = " [red]STUCK[/]" if t["stuck"] else ""
        out.append(f"{'#' + label + ' ' if label else ''}{bar} {fraction:4.0%}{mark}")
    return "\n".join(out)


def _merge(tasks: list[dict[str, Any]]) -> str:
    if not tasks:
        return "waiting"
    statuses = {t["status"] for t in tasks}
    for s in ("exhausted", "failed", "running", "retrying", "scheduled"):
        if s in statuses:
            return s
    return "succeeded"
