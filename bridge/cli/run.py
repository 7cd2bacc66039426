"""``coursegen run``: one video through the embedded runtime, with a live board per step."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import click

from bridge.ops.run import PAUSED_TIMEOUT_S, run_course
from bridge.ops.views import WAITING, TaskRow, course_status, step_status
from bridge.runtime.embedded import embedded
from bridge.settings import Settings
from handlers.artifacts import SourceRefused, split_source_uri
from statemachine.lifecycle import CourseStatus, TaskStatus
from statemachine.pipeline import default_pipelines
from statemachine.ports import EventStore


def source_of(video: str | Path, settings: Settings) -> Path | str:
    """The source ``coursegen run`` was given: an existing local file (as a Path), or a
    gs:// URI naming an object in a bucket ``COURSEGEN_LOCAL_BUCKETS`` maps to a folder that
    holds it; ``ValueError`` with what is wrong otherwise."""
    text = str(video)
    if not text.startswith("gs://"):
        path = Path(text)
        if not path.exists():
            raise ValueError(f"{text!r} does not exist (and is not a gs:// URI)")
        if not path.is_file():
            raise ValueError(f"{text!r} is not a file")
        return path
    try:
        bucket, name = split_source_uri(text)
    except SourceRefused as err:
        raise ValueError(str(err)) from None
    folders = settings.local_buckets
    if bucket not in folders:
        mapped = ", ".join(sorted(folders)) or "none"
        raise ValueError(
            f"bucket {bucket!r} is not mapped here: set COURSEGEN_LOCAL_BUCKETS={bucket}=FOLDER "
            f"(mapped now: {mapped})"
        )
    if not (folders[bucket] / name).is_file():
        raise ValueError(f"{text}: no file {folders[bucket] / name} (COURSEGEN_LOCAL_BUCKETS)")
    return text


def run_video(
    video: Path | str,
    *,
    title: str | None,
    out: Path,
    data: Path,
    language: str = "en",
    tenant: str | None = None,
    provider: str | None = None,
    live: bool = True,
    workers: int = 4,
    settings: Settings | None = None,
    timeout_s: float = 3600,
    paused_timeout_s: float = PAUSED_TIMEOUT_S,
) -> dict[str, Any]:
    """Run ``video`` on a fresh embedded runtime over ``data``; ``live`` draws the board on
    stderr while it runs. Returns the run's summary (``bridge.ops.run.run_course``)."""
    options = {} if isinstance(video, str) else {"local_roots": [str(video.resolve().parent)]}
    rt = embedded(data, settings=settings, options=options)
    kwargs: dict[str, Any] = {
        "title": title,
        "out": out,
        "language": language,
        "tenant": tenant,
        "provider": provider,
        "workers": workers,
        "timeout_s": timeout_s,
        "paused_timeout_s": paused_timeout_s,
    }

    def status_line(course_id: str, status: str) -> None:
        line = status_note(rt.store, course_id, status, paused_timeout_s)
        if line:
            click.echo(line, err=True)

    if not live:
        return run_course(rt, video, on_status=status_line, **kwargs)
    from rich.console import Console
    from rich.live import Live

    with Live(console=Console(stderr=True), refresh_per_second=8) as board:

        def tick(course_id: str, elapsed: float) -> None:
            board.update(_board(rt.store, course_id, elapsed, paused_timeout_s))

        return run_course(rt, video, on_tick=tick, **kwargs)


def status_note(store: EventStore, course_id: str, status: str, paused_timeout_s: float) -> str:
    """A line saying the course was paused (by whom, why, and how to resume it), or resumed."""
    if status != "paused":
        return ""
    events = store.load(course_id)
    pause = next((e for e in reversed(events) if e.type == "CoursePaused"), None)
    who = f" by {pause.actor}: {pause.data.get('reason')!r}" if pause is not None else ""
    return (
        f"course {course_id} is paused{who}; waiting up to {paused_timeout_s:g} s"
        f" (--paused-timeout) for coursegen resume {course_id} --reason ..."
    )


_STYLE = {
    TaskStatus.SUCCEEDED: "green",
    TaskStatus.RUNNING: "yellow",
    TaskStatus.RETRYING: "magenta",
    TaskStatus.FAILED: "red",
    TaskStatus.EXHAUSTED: "red",
    TaskStatus.MOOT: "dim",
    TaskStatus.SCHEDULED: "cyan",
    TaskStatus.PENDING: "dim",
    WAITING: "dim",
}


def _board(store: EventStore, course_id: str, elapsed: float, paused_timeout_s: float) -> Any:
    """One row per step; a fan-out step shows its shards side by side."""
    from rich.table import Table

    view = course_status(store, course_id, now=time.time())
    status = view["status"] if view else CourseStatus.REQUESTED
    by_step: dict[str, list[TaskRow]] = {}
    for task in view["tasks"] if view else []:
        by_step.setdefault(task["task"].split("#")[0], []).append(task)
    table = Table(title=f"course {course_id}: {status}  ({elapsed:.1f} s)")
    for column in ("step", "status", "attempts", "seconds", "progress", "note"):
        table.add_column(column)
    pipelines = default_pipelines()  # the course's version (a course not yet stored: current)
    pipeline = pipelines.versions.get(view["pipeline_version"] if view else 0, pipelines.latest)
    for step in pipeline.order:
        tasks = by_step.get(step, [])
        step_state = step_status({t["status"] for t in tasks})
        seconds = sum((t["duration_ms"] or 0) for t in tasks) / 1000 if tasks else None
        attempts = sum(t["attempts"] for t in tasks)
        note = f"{len(tasks)} shards" if len(tasks) > 1 else (tasks[0]["error"] if tasks else "")
        table.add_row(
            step,
            f"[{_STYLE.get(step_state, 'white')}]{step_state}[/]",
            str(attempts or ""),
            f"{seconds:.2f}" if seconds is not None else "",
            _bars(tasks),
            note,
        )
    if status == CourseStatus.PAUSED:
        table.caption = status_note(store, course_id, status, paused_timeout_s)
    return table


def _bars(tasks: list[TaskRow], width: int = 10) -> str:
    """A bar per running task (its last reported fraction); a stalled one says STUCK."""
    out = []
    for t in tasks:
        if t["status"] != TaskStatus.RUNNING:
            continue
        fraction = t["progress"] or 0.0
        filled = round(fraction * width)
        label = t["task"].partition("#")[2] or ""
        bar = "█" * filled + "░" * (width - filled)
        mark = " [red]STUCK[/]" if t["stuck"] else ""
        out.append(f"{'#' + label + ' ' if label else ''}{bar} {fraction:4.0%}{mark}")
    return "\n".join(out)
