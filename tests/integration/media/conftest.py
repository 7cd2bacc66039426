"""Fixtures for media tests: the committed sample lecture and small lavfi-made videos."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from handlers.media.ffmpeg import ffmpeg_exe

SAMPLES = Path(__file__).resolve().parents[3] / "samples"
SAMPLE = SAMPLES / "lecture.mp4"
GROUND_TRUTH = SAMPLES / "ground_truth.json"


def _ffmpeg(*args: str) -> subprocess.CompletedProcess[str]:
    command = [ffmpeg_exe(), "-hide_banner", "-nostdin", "-v", "error", "-y", *args]
    return subprocess.run(command, check=True, capture_output=True, text=True)


@pytest.fixture(scope="session")
def ffmpeg() -> Callable[..., subprocess.CompletedProcess[str]]:
    """Run the bundled ffmpeg quietly, overwriting outputs; raises on failure."""
    return _ffmpeg


@pytest.fixture(scope="session")
def sample() -> Path:
    assert SAMPLE.is_file(), "run `python samples/make_lecture.py` to build the sample"
    return SAMPLE


@pytest.fixture(scope="session")
def ground_truth() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(GROUND_TRUTH.read_text())
    return data


@pytest.fixture
def make_video(tmp_path: Path) -> Callable[..., Path]:
    """Build a short test video: testsrc picture, optional sine audio, chosen size and codec."""

    def build(
        name: str = "clip.mp4",
        *,
        size: str = "320x240",
        seconds: float = 2.0,
        rate: int = 10,
        audio: bool = True,
        video_codec: str = "libx264",
        audio_codec: str = "aac",
        source: str = "testsrc",
    ) -> Path:
        path = tmp_path / name
        joiner = ":" if "=" in source else "="
        args = ["-f", "lavfi", "-i", f"{source}{joiner}s={size}:r={rate}:d={seconds}"]
        if audio:
            args += ["-f", "lavfi", "-i", f"sine=frequency=440:duration={seconds}"]
            args += ["-c:a", audio_codec]
        args += ["-c:v", video_codec, "-pix_fmt", "yuv420p"]
        args += ["-preset", "ultrafast"] if video_codec == "libx264" else []
        _ffmpeg(*args, "-shortest", str(path))
        return path

    return build
