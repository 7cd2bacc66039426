"""Tests that the committed sample lecture and its ground truth fit what the pipeline expects."""

from __future__ import annotations

import itertools
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from handlers.media.ffmpeg import probe, run_ffmpeg

STOPWORDS = {"and", "the", "of", "a"}


def test_sample_is_short_small_h264_with_16k_mono_aac(sample: Path, ground_truth: dict):
    info = probe(sample)
    assert 60 <= info.duration_s <= 90
    assert info.size_bytes <= 1_000_000
    assert info.video_codec == "h264"
    assert info.audio_codec == "aac"
    stderr = run_ffmpeg(["-i", str(sample)], timeout=30, check=False).stderr
    assert re.search(r"Audio: aac.*, 16000 Hz, mono,", stderr)
    assert "yuv420p" in stderr
    assert info.duration_s == pytest.approx(ground_truth["duration"], abs=0.1)


def test_ground_truth_slides_tile_the_video(ground_truth: dict) -> None:
    slides = ground_truth["slides"]
    assert len(slides) >= 4
    assert slides[0]["start"] == 0.0
    assert slides[-1]["end"] == ground_truth["duration"]
    for before, after in itertools.pairwise(slides):
        assert before["end"] == after["start"]
    assert [s["index"] for s in slides] == list(range(len(slides)))


def test_slides_are_distinct_and_narration_names_each_title(ground_truth: dict) -> None:
    slides = ground_truth["slides"]
    assert len({s["title"] for s in slides}) == len(slides)
    for slide in slides:
        assert len(slide["bullets"]) == 3
        spoken = slide["spoken"].lower()
        for word in slide["title"].lower().split():
            assert word in STOPWORDS or word in spoken, (slide["title"], word)


@pytest.mark.slow
@pytest.mark.timeout(300)
@pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="needs espeak-ng")
def test_make_lecture_reproduces_the_ground_truth(sample: Path, tmp_path: Path) -> None:
    script = sample.parent / "make_lecture.py"
    subprocess.run([sys.executable, str(script), "--out", str(tmp_path)], check=True, timeout=300)
    committed = json.loads((sample.parent / "ground_truth.json").read_text())
    assert json.loads((tmp_path / "ground_truth.json").read_text()) == committed
    assert (tmp_path / "lecture.mp4").stat().st_size <= 1_000_000
