"""Odd videos the e2e suite does not make: audio-only, two seconds, one frame, a lying name."""

from __future__ import annotations

import subprocess
from pathlib import Path

import imageio_ffmpeg
import pytest

from bridge.cli.run import run_video
from bridge.ops.replay import check
from statemachine.store.sqlite import SqliteStore
from tests.reliability.helpers import SAMPLE

pytestmark = pytest.mark.slow


def ffmpeg(*args: str) -> None:
    exe = imageio_ffmpeg.get_ffmpeg_exe()
    subprocess.run([exe, "-v", "error", "-y", *args], check=True, timeout=60)


def make(tmp: Path, kind: str) -> Path:
    path = tmp / f"{kind}.mp4"
    if kind == "audio-only":
        ffmpeg("-i", str(SAMPLE), "-t", "6", "-vn", "-c:a", "aac", str(path))
    elif kind == "two-seconds":
        ffmpeg("-i", str(SAMPLE), "-t", "2", "-c", "copy", str(path))
    elif kind == "one-frame":
        ffmpeg("-i", str(SAMPLE), "-frames:v", "1", "-an", str(path))
    elif kind == "wav-named-mp4":
        ffmpeg("-i", str(SAMPLE), "-t", "3", "-vn", "-f", "wav", str(path))
    return path


def run(tmp: Path, video: Path) -> tuple[dict, list[str]]:
    summary = run_video(
        video, title=None, out=tmp / "out", data=tmp / "data", live=False, timeout_s=120
    )
    store = SqliteStore(tmp / "data" / "events.db")
    try:
        assert check(store, summary["course_id"]).ok
        types = [e.type for e in store.load(summary["course_id"])]
    finally:
        store.close()
    return summary, types


@pytest.mark.parametrize(
    ("kind", "phrase"), [("audio-only", "no video stream"), ("wav-named-mp4", "no video stream")]
)
def test_videos_without_pictures_fail_permanently_at_once(
    tmp_path: Path, kind: str, phrase: str
) -> None:
    summary, types = run(tmp_path, make(tmp_path, kind))
    assert summary["status"] == "failed"
    assert summary["failure"]["task"] == "prepare_video"
    assert phrase in summary["failure"]["reason"]
    assert types.count("TaskStarted") == 1  # permanent: no retry storm


@pytest.mark.parametrize("kind", ["two-seconds", "one-frame"])
def test_very_short_videos_complete_or_fail_clearly(tmp_path: Path, kind: str) -> None:
    summary, types = run(tmp_path, make(tmp_path, kind))
    if summary["status"] == "completed":
        assert (tmp_path / "out" / "course.json").exists()
    else:  # a clear, permanent failure with a reason, tried once
        assert summary["status"] == "failed" and summary["failure"]["reason"]
        assert types.count("TaskFailed") == 1 and "TaskExhausted" not in types
    assert types.count("TaskSucceeded") + types.count("TaskFailed") == types.count("TaskStarted")
