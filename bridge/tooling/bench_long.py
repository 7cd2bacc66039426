"""``coursegen bench long``: generated lectures of several lengths, each run through the
embedded runtime with the offline providers in a process of its own (so each length's peak
RSS is its own): wall time, per-step time, the longest single task, peak RSS, and how the
cost grows (wall(120) / wall(30)). Generating the lectures is not timed; they are cached.
"""

from __future__ import annotations

import importlib.util
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import ModuleType
from typing import Any

from statemachine.timefmt import parse_iso

REPO = Path(__file__).resolve().parents[2]
MAKE_LECTURE = REPO / "samples" / "make_lecture.py"
CACHE_ENV = "COURSEGEN_BENCH_CACHE"
RUN_TIMEOUT_S = 3 * 3600


def cache_dir() -> Path:
    """Where generated lectures are kept between runs ($COURSEGEN_BENCH_CACHE)."""
    default = Path(tempfile.gettempdir()) / "coursegen-bench-long"
    return Path(os.environ.get(CACHE_ENV) or default)


def _make_lecture() -> ModuleType:
    spec = importlib.util.spec_from_file_location("make_lecture", MAKE_LECTURE)
    if spec is None or spec.loader is None:
        raise RuntimeError(f"cannot load {MAKE_LECTURE}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while it loads
    spec.loader.exec_module(module)
    return module


def lecture(minutes: float, cache: Path) -> tuple[Path, float]:
    """The generated lecture of ``minutes`` (built once, then taken from ``cache``) and the
    seconds its generation took now (0 when cached)."""
    folder = cache / f"lecture-{minutes:g}min"
    video = folder / "lecture.mp4"
    if video.is_file() and (folder / "ground_truth.json").is_file():
        return video, 0.0
    started = time.perf_counter()
    _make_lecture().build_long(folder, minutes)
    return video, round(time.perf_counter() - started, 1)


def run_one(video: Path, data: Path, workers: int) -> dict[str, Any]:
    """One run in this process (call it in a fresh one): the run's summary and measurements."""
    from bridge.cli.run import run_video
    from bridge.ops.views import course_status
    from statemachine.store import make_store

    started = time.perf_counter()
    summary = run_video(
        video, title="Long Lecture", out=data / "out", data=data, live=False, workers=workers
    )
    wall = time.perf_counter() - started
    store = make_store("sqlite", path=data / "events.db")
    try:
        head = store.head(summary["course_id"])
        view = course_status(store, summary["course_id"])
    finally:
        store.close()
    tasks = head.snapshot["tasks"] if head else {}
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    longest = max(view["tasks"] if view else [], key=lambda t: t["wall_s"] or 0.0, default=None)
    return {
        "status": summary["status"],
        "failure": summary.get("failure"),
        "wall_s": round(wall, 1),
        "cpu_s": round(own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime, 1),
        "step_seconds": summary["step_seconds"],  # summed over a step's tasks
        "step_span_s": _spans(tasks),  # first start to last finish of a step's tasks
        "tasks": len(tasks),
        "audio_chunks": tasks.get("prepare_video", {}).get("summary", {}).get("audio_chunks"),
        "frames": tasks.get("extract_frames", {}).get("summary", {}).get("frames"),
        "lessons": summary.get("lessons"),
        "longest_task": {"task": longest["task"], "wall_s": longest["wall_s"]} if longest else None,
        # ru_maxrss is in KiB on Linux. Only this process's: a child's (ffmpeg, tesseract)
        # starts from its parent's RSS at fork, so RUSAGE_CHILDREN's says nothing of its own.
        "peak_rss_mb": round(own.ru_maxrss / 1024, 1),
    }


def _spans(tasks: dict[str, Any]) -> dict[str, float]:
    bounds: dict[str, tuple[float, float]] = {}
    for t in tasks.values():
        if t["started_at"] and t["finished_at"]:
            a, b = parse_iso(t["started_at"]), parse_iso(t["finished_at"])
            lo, hi = bounds.get(t["step"], (a, b))
            bounds[t["step"]] = (min(lo, a), max(hi, b))
    return {step: round(b - a, 1) for step, (a, b) in bounds.items()}


def bench_long(
    minutes: list[float], *, workers: int = 4, cache: Path | None = None
) -> dict[str, Any]:
    """Each length in a fresh process, one after the other; the lectures cached in ``cache``."""
    folder = cache or cache_dir()
    runs: dict[str, Any] = {}
    for m in minutes:
        video, generated = lecture(m, folder)
        truth = json.loads((video.parent / "ground_truth.json").read_text())
        with tempfile.TemporaryDirectory(prefix="coursegen-bench-long-") as tmp:
            command = [sys.executable, "-m", "bridge.tooling.bench_long"]
            command += [str(video), tmp, str(workers)]
            done = subprocess.run(
                command, capture_output=True, text=True, timeout=RUN_TIMEOUT_S, check=False
            )
        if done.returncode != 0:
            raise RuntimeError(f"the {m:g}-minute run failed: {done.stderr[-2000:]}")
        result = json.loads(done.stdout.strip().splitlines()[-1])
        result["video_s"] = truth["duration"]
        result["slides"] = len(truth["slides"])
        result["generated_s"] = generated
        runs[f"{m:g}"] = result
        # Each length's figures as soon as they exist (a long series can be read as it goes).
        print(json.dumps({"minutes": m, **result}), file=sys.stderr, flush=True)
    out: dict[str, Any] = {
        "benchmark": "long",
        "machine": {"cpus": os.cpu_count(), "load_avg_1m": round(os.getloadavg()[0], 2)},
        "workers": workers,
        "runs": runs,
    }
    if "120" in runs and "30" in runs:
        out["wall_120_over_30"] = round(runs["120"]["wall_s"] / runs["30"]["wall_s"], 2)
    return out


if __name__ == "__main__":  # one run, in its own process: bench_long VIDEO DATA WORKERS
    print(json.dumps(run_one(Path(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3]))))
