"""Per-slide biasing on the runtime, with the real media steps and the real model: the sample's
five slides are decoded again with their text as the prompt, and the transcript that comes
out hears the sample better than the stitched one alone (COURSEGEN_SLIDE_BIASING=off)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from bridge.runtime.clock import VirtualClock
from bridge.runtime.embedded import embedded
from bridge.settings import Settings
from bridge.tooling.synthetic import noop_steps
from handlers.media.speech import word_error_rate
from handlers.registry import StepFn, real_steps
from statemachine.pipeline import default_pipeline
from statemachine.store.memory import MemoryStore

pytestmark = [
    pytest.mark.slow,
    pytest.mark.timeout(300),
    pytest.mark.skipif(shutil.which("tesseract") is None, reason="needs tesseract"),
]

SAMPLES = Path(__file__).resolve().parents[3] / "samples"
REAL = ("prepare_video", "extract_frames", "analyze_frames", "transcribe_chunk", "transcribe")


def transcribed(tmp_path: Path, biasing: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """The transcribe task's summary and transcript of the sample, with biasing on or off."""
    steps: dict[str, StepFn] = dict(noop_steps(default_pipeline(), shards=0))
    real = real_steps()
    steps.update({name: real[name] for name in REAL})
    settings = Settings.from_env(
        {
            "COURSEGEN_STORE": "memory",
            "COURSEGEN_TASK_SECRET": "s" * 32,
            "COURSEGEN_SLIDE_BIASING": biasing,
        }
    )
    rt = embedded(
        tmp_path / biasing,
        settings=settings,
        steps=steps,
        clock=VirtualClock(),
        store=MemoryStore(),
        options={"local_roots": [str(SAMPLES)]},
    )
    try:
        course = rt.bridge.ingest({"videoUri": str(SAMPLES / "lecture.mp4"), "title": "Bias"})
        rt.run_until_idle()
        head = rt.store.head(course)
        assert head is not None and head.status == "completed", head and head.snapshot["failure"]
        task = head.snapshot["tasks"]["transcribe"]
        transcript = json.loads(rt.artifacts.get_bytes(task["outputs"]["transcript"]))
        return dict(task["summary"]), transcript
    finally:
        rt.close()


def test_the_sample_is_heard_better_with_its_slides_as_the_prompt(tmp_path: Path) -> None:
    truth = json.loads((SAMPLES / "ground_truth.json").read_text())
    spoken = " ".join(slide["spoken"] for slide in truth["slides"])
    on, biased = transcribed(tmp_path, "on")
    off, plain = transcribed(tmp_path, "off")
    assert (on["slides"], on["redecoded"], on["over_cap"]) == (5, 5, 0)
    assert on["biased"] >= 1
    assert "redecoded" not in off
    text = {
        k: " ".join(s["text"] for s in t["segments"]) for k, t in (("on", biased), ("off", plain))
    }
    wer_on, wer_off = word_error_rate(spoken, text["on"]), word_error_rate(spoken, text["off"])
    assert wer_on < wer_off, (wer_on, wer_off)
    assert wer_on <= 0.12
    # every segment is still on the clock, in order, with its words inside it
    starts = [s["start"] for s in biased["segments"]]
    assert starts == sorted(starts)
    for segment in biased["segments"]:
        for word in segment.get("words", ()):
            assert segment["start"] - 0.05 <= word["start"] <= segment["end"] + 0.05
