"""Fixtures for the AI provider tests that need ffmpeg: WAV files it makes, and the unit suite's
HTTP stub and providers pointed at it."""

from __future__ import annotations

import subprocess
from pathlib import Path

import imageio_ffmpeg
import pytest

from tests.unit.ai.conftest import make_gemini, make_openai, stub

__all__ = ["lecture_wav", "make_gemini", "make_openai", "stub", "tone_wav"]


def tone_wav(path: Path, *, seconds: float = 12.0, period: float = 3.0, tone: float = 2.0) -> Path:
    """16 kHz mono WAV: ``tone`` s of 440 Hz, then silence, every ``period`` s."""
    expr = f"if(lt(mod(t\\,{period})\\,{tone})\\,0.5*sin(2*PI*440*t)\\,0)"
    subprocess.run(
        [
            imageio_ffmpeg.get_ffmpeg_exe(),
            "-hide_banner",
            "-nostdin",
            "-y",
            "-f",
            "lavfi",
            "-i",
            f"aevalsrc={expr}:s=16000:d={seconds}",
            "-ac",
            "1",
            "-c:a",
            "pcm_s16le",
            "-fflags",
            "+bitexact",
            str(path),
        ],
        check=True,
        capture_output=True,
        timeout=60,
    )
    return path


@pytest.fixture(scope="session")
def lecture_wav(tmp_path_factory) -> Path:
    """12 s: tones at 0-2, 3-5, 6-8, 9-11 s, silence between (384 kB)."""
    return tone_wav(tmp_path_factory.mktemp("audio") / "lecture.wav")
