"""Run one video through a local runtime until its course ends, then summarise it and copy
the course out (no presentation: ``bridge.cli.run`` draws the live board)."""

from __future__ import annotations

import shutil
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

from bridge.core import Bridge
from bridge.ops.views import CourseView, course_status
from handlers.artifacts import LocalArtifacts
from statemachine.lifecycle import TERMINAL_COURSE, CourseStatus
from statemachine.ports import EventStore

PAUSED_TIMEOUT_S = 900.0  # how long ``coursegen run`` waits on a paused course


class LocalRuntime(Protocol):
    """What a run needs of the embedded runtime (``bridge.runtime.embedded.Runtime``)."""

    @property
    def bridge(self) -> Bridge: ...

    @property
    def store(self) -> EventStore: ...

    @property
    def artifacts(self) -> LocalArtifacts: ...

    def start(self, workers: int = 4) -> None:
        """Every transport and the reconciler loop, on threads."""
        ...

    def pending(self) -> int:
        """Tasks queued or running on every transport."""
        ...

    def close(self) -> None: ...


def run_course(
    rt: LocalRuntime,
    video: Path | str,
    *,
    title: str | None,
    out: Path,
    language: str = "en",
    tenant: str | None = None,
    provider: str | None = None,
    workers: int = 4,
    timeout_s: float = 3600,
    paused_timeout_s: float = PAUSED_TIMEOUT_S,
    on_tick: Callable[[str, float], None] | None = None,
    on_status: Callable[[str, str], None] | None = None,
) -> dict[str, Any]:
    """Request a course for ``video``, run it to its end on ``rt`` (closed afterwards) and
    return its summary; a completed course is copied to ``out``. ``on_tick(course_id,
    elapsed_s)`` is called about ten times a second while it runs, ``on_status(course_id,
    status)`` whenever its status changes (an operator paused or resumed it from another
    process). A course paused for longer than ``paused_timeout_s`` (or not ended within
    ``timeout_s``) stops the wait: the summary's ``stopped`` says why. ``tenant``: the tenant
    the course counts against (None: the default one)."""
    uri = video if isinstance(video, str) else str(video.resolve())
    request_options: dict[str, Any] = {"provider": provider} if provider else {}
    started = time.perf_counter()
    try:
        message = {
            "videoUri": uri,
            "title": title or _title(uri),
            "language": language,
            "options": request_options,
        }
        course_id = rt.bridge.ingest(
            message, message_id=f"cli-{uuid.uuid4()}", actor="cli", tenant=tenant
        )
        rt.start(workers)
        stopped = _wait(rt, course_id, (timeout_s, paused_timeout_s), on_tick, on_status, started)
    finally:
        rt.close()
    wall = round(time.perf_counter() - started, 2)
    view = course_status(rt.store, course_id)
    summary = _summary(rt, course_id, view, wall)
    if stopped:
        summary["stopped"] = stopped
    if view is not None and view["status"] == CourseStatus.COMPLETED:
        summary["files"] = _publish(rt.artifacts, course_id, out)
    return summary


def _title(uri: str) -> str:
    """A title from the file or object name: ``gs://b/term-1/rivers_and-lakes.mp4`` ->
    "Rivers And Lakes"."""
    stem = Path(uri.rsplit("/", 1)[-1]).stem
    return stem.replace("_", " ").replace("-", " ").strip().title() or "Lecture"


def _wait(
    rt: LocalRuntime,
    course_id: str,
    limits: tuple[float, float],
    on_tick: Callable[[str, float], None] | None,
    on_status: Callable[[str, str], None] | None,
    started: float,
) -> str | None:
    """Until the course ends and its tasks are done; otherwise why the wait stopped."""
    timeout_s, paused_timeout_s = limits
    deadline = time.monotonic() + timeout_s
    status = None
    paused_since: float | None = None
    while time.monotonic() < deadline:
        head = rt.store.head(course_id)
        if on_tick is not None:
            on_tick(course_id, time.perf_counter() - started)
        if head is not None and head.status != status:
            status = head.status
            paused_since = time.monotonic() if status == CourseStatus.PAUSED else None
            if on_status is not None:
                on_status(course_id, status)
        if head and head.status in TERMINAL_COURSE and rt.pending() == 0:
            return None
        if paused_since is not None and time.monotonic() - paused_since > paused_timeout_s:
            return f"paused for more than {paused_timeout_s:g} s"
        time.sleep(0.1)
    return f"not ended within {timeout_s:g} s"


def _summary(
    rt: LocalRuntime, course_id: str, view: CourseView | None, wall: float
) -> dict[str, Any]:
    steps: dict[str, float] = {}
    for task in view["tasks"] if view else []:
        step = task["task"].split("#")[0]
        steps[step] = round(steps.get(step, 0.0) + (task["duration_ms"] or 0) / 1000, 3)
    head = rt.store.head(course_id)
    summary = head.snapshot["tasks"].get("finalize", {}).get("summary", {}) if head else {}
    out = {
        "course_id": course_id,
        "status": view["status"] if view else "unknown",
        "lessons": summary.get("lessons"),
        "questions": summary.get("questions"),
        "wall_s": wall,
        "step_seconds": steps,
        "data": str(Path(rt.artifacts.root).parent),
    }
    if view and view["failure"]:
        out["failure"] = view["failure"]
    return out


def _publish(artifacts: LocalArtifacts, course_id: str, out: Path) -> dict[str, str]:
    """Copy what the course page needs to ``out``: course.json, course.html, its captions and
    video, the key frames, and the LMS exports finalize wrote."""
    src = artifacts.root / course_id
    out.mkdir(parents=True, exist_ok=True)
    for name in ("course.json", "course.html", "course.vtt"):
        if (src / name).exists():
            shutil.copy2(src / name, out / name)
    video = src / "media" / "video.mp4"
    if video.exists():
        (out / "media").mkdir(exist_ok=True)
        shutil.copy2(video, out / "media" / "video.mp4")
    files = {"course_json": str(out / "course.json"), "course_html": str(out / "course.html")}
    for folder, key in ((Path("media") / "frames", "frames"), (Path("exports"), "exports")):
        target = out / folder
        if target.exists():
            shutil.rmtree(target)
        if (src / folder).exists():
            shutil.copytree(src / folder, target, ignore=shutil.ignore_patterns(".*"))
            files[key] = str(target)
    return files
