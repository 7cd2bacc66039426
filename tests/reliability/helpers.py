"""Shared helpers of the reliability tests: driver processes, history and artifact checks."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import wave
from collections import Counter
from pathlib import Path
from typing import Any

from PIL import Image

import schemas
from bridge.ops.replay import audit_all, check
from statemachine.ports import EventStore
from statemachine.state import CourseState

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "samples" / "lecture.mp4"


def driver_command(data: Path, video: Path, pause: str | None) -> list[str]:
    cmd = [sys.executable, "-m", "tests.reliability.crash_driver", "--data", str(data)]
    cmd += ["--video", str(video)]
    return cmd + (["--pause-at", pause] if pause else [])


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    return env


def kill_at(data: Path, pause: str, *, delay: float = 0.0, timeout: float = 60.0) -> float:
    """Start the driver, wait until it reaches ``pause`` (plus ``delay``), SIGKILL its whole
    process group (ffmpeg children included, as a power cut would); the seconds it ran."""
    marker = data / "paused"
    marker.unlink(missing_ok=True)
    log = data.parent / f"{data.name}-driver.log"
    started = time.monotonic()
    with open(log, "ab") as out:
        proc = subprocess.Popen(
            driver_command(data, SAMPLE, pause),
            cwd=ROOT,
            env=_env(),
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        while not marker.exists():
            if proc.poll() is not None:
                raise AssertionError(f"driver exited ({proc.returncode}) before {pause}: {log}")
            if time.monotonic() - started > timeout:
                raise AssertionError(f"driver did not reach {pause} in {timeout} s: {log}")
            time.sleep(0.02)
        time.sleep(delay)
        if proc.poll() is not None:
            raise AssertionError(f"driver finished before the kill at {pause}: {log}")
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
    assert proc.returncode == -signal.SIGKILL
    return time.monotonic() - started


def finish(data: Path, *, timeout: float = 120.0) -> dict[str, Any]:
    """Run the driver without a pause until the course is terminal; its JSON summary."""
    result = subprocess.run(
        driver_command(data, SAMPLE, None),
        cwd=ROOT,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    lines = [line for line in result.stdout.splitlines() if line.startswith("{")]
    assert lines, f"no summary (exit {result.returncode}): {result.stderr[-3000:]}"
    summary: dict[str, Any] = json.loads(lines[-1])
    return summary


def succeeded_per_key(store: EventStore, course_id: str) -> Counter[str]:
    return Counter(
        str(e.data["idempotency_key"]) for e in store.load(course_id) if e.type == "TaskSucceeded"
    )


def assert_history_sound(store: EventStore, course_id: str) -> None:
    """The chain verifies, every course audits, and each task succeeded exactly once."""
    verdict = check(store, course_id)
    assert verdict.ok, verdict
    assert all(v.ok for v in audit_all(store))
    head = store.head(course_id)
    assert head is not None
    keys = {t.idempotency_key for t in CourseState.from_snapshot(head.snapshot).tasks.values()}
    per_key = succeeded_per_key(store, course_id)
    assert set(per_key) == keys, set(per_key) ^ keys
    assert max(per_key.values()) == 1, per_key.most_common(3)


def hidden(path: Path, root: Path) -> bool:
    """A temporary name (dot-prefixed file or folder): never a real artifact."""
    return any(part.startswith(".") for part in path.relative_to(root).parts)


def assert_artifacts_whole(root: Path) -> list[Path]:
    """Every artifact under a real name is complete; the temporary leftovers (dot names)."""
    leftovers: list[Path] = []
    for path in sorted(root.rglob("*")):
        if not path.is_file():
            continue
        if hidden(path, root):
            leftovers.append(path)
            continue
        check_whole(path)
    return leftovers


def check_whole(path: Path) -> None:
    data = path.read_bytes()
    assert data, f"{path} is empty"
    if path.suffix == ".json":
        json.loads(data)
    elif path.suffix == ".jpg":
        with Image.open(path) as image:
            image.load()  # raises on a truncated JPEG
    elif path.suffix == ".wav":
        with wave.open(str(path)) as w:
            frames = w.getnframes() * w.getsampwidth() * w.getnchannels()
        assert frames + 44 <= len(data), f"{path} is shorter than its header says"
    elif path.suffix == ".mp4":
        from handlers.media.ffmpeg import probe

        probe(path)  # the index is there and the tail decodes
    elif path.suffix == ".html":
        assert data.rstrip().endswith(b"</html>"), f"{path} is cut short"


def assert_course_output(root: Path, course_id: str) -> None:
    course = json.loads((root / course_id / "course.json").read_text())
    schemas.validate("course", course)
