"""Chunked transcription with the real model: espeak-ng speech cut into tiny chunks (at pauses
and, the worst case, hard through words), transcribed chunk by chunk and stitched; and the
real prepare_video / transcribe_chunk / transcribe steps on the embedded runtime, where a
chunk that fails is retried alone."""

from __future__ import annotations

import json
import shutil
import subprocess
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from bridge.runtime.clock import VirtualClock
from bridge.runtime.embedded import embedded
from bridge.settings import Settings
from bridge.tooling.synthetic import noop_steps
from handlers.media import chunks
from handlers.media.ffmpeg import ffmpeg_exe
from handlers.media.speech import normalise_words, transcribe, word_error_rate
from handlers.media.stitch import ChunkTranscript, stitch
from handlers.registry import StepContext, StepFn, StepResult, TransientStepError, real_steps
from statemachine.pipeline import default_pipeline
from statemachine.store.memory import MemoryStore

pytestmark = pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="needs espeak-ng")

SAMPLES = Path(__file__).resolve().parents[2] / "samples"
TALK = (
    "Glaciers are rivers of ice that move slowly down the mountain. "
    "Snow falls every winter and is pressed into thick blue ice. "
    "As the glacier moves it scrapes the rock and carries stones far away. "
    "When the climate warms the glacier melts and leaves a wide valley behind. "
    "The stones it dropped form long ridges called moraines. "
    "Lakes often fill the hollows that the ice carved out of the ground. "
    "Scientists measure glaciers to learn how fast the world is warming."
)


@pytest.fixture(scope="module")
def talk_wav(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("talk")
    raw, wav = folder / "raw.wav", folder / "talk.wav"
    speak = ["espeak-ng", "-v", "en-us", "-s", "130", "-g", "3", "-w", str(raw), TALK]
    subprocess.run(speak, check=True, capture_output=True)
    convert = [ffmpeg_exe(), "-v", "error", "-y", "-i", str(raw), "-ac", "1", "-ar", "16000"]
    subprocess.run([*convert, "-c:a", "pcm_s16le", str(wav)], check=True)
    return wav


def chunked(audio: Path, out: Path, *, max_s: float, overlap_s: float, pauses: bool) -> list:
    duration = chunks.wav_seconds(audio)
    silences = chunks.scan(audio)[1] if pauses else []
    plans = chunks.plan(duration, silences, max_s=max_s, overlap_s=overlap_s)
    parts = []
    for plan, path in zip(plans, chunks.cut(audio, plans, out), strict=True):
        said = transcribe(path, word_timestamps=True).to_dict()
        parts.append(ChunkTranscript(plan.read_from_s, plan.start_s, plan.end_s, said["segments"]))
    return parts


def doubled(words: list[str]) -> list[str]:
    """Three-word runs said twice in a row: what a stitch that kept an overlap leaves."""
    return [
        " ".join(words[i : i + 3])
        for i in range(len(words) - 5)
        if words[i : i + 3] == words[i + 3 : i + 6]
    ]


@pytest.mark.parametrize("pauses", [True, False], ids=["cut-at-pauses", "hard-cuts"])
def test_chunks_stitch_to_what_one_pass_hears(talk_wav: Path, tmp_path: Path, pauses: bool):
    whole = transcribe(talk_wav).text
    parts = chunked(talk_wav, tmp_path, max_s=14.0, overlap_s=1.5, pauses=pauses)
    assert len(parts) >= 4
    segments = stitch(parts, overlap=1.5)
    text = " ".join(s["text"] for s in segments)
    words = normalise_words(text)
    assert doubled(words) == []
    # As good as one pass over the whole file (the words differ where the model, with less
    # context, hears a word differently: "glaciers" and "glaestures", never at the cuts).
    assert word_error_rate(TALK, text) <= word_error_rate(TALK, whole) + 0.05
    assert abs(len(words) - len(normalise_words(TALK))) <= 3
    starts = [s["start"] for s in segments]
    assert starts == sorted(starts) and segments[-1]["end"] <= chunks.wav_seconds(talk_wav)


# ---- the steps on the runtime -----------------------------------------------------------

REAL = ("prepare_video", "transcribe_chunk", "transcribe")


class FlakyChunk:
    """transcribe_chunk whose shard ``shard`` fails once (a lost worker), counting calls."""

    def __init__(self, real: StepFn, shard: int) -> None:
        self.real, self.shard = real, shard
        self.calls: Counter[int | None] = Counter()

    def __call__(self, ctx: StepContext) -> StepResult:
        self.calls[ctx.task.shard] += 1
        if ctx.task.shard == self.shard and self.calls[ctx.task.shard] == 1:
            raise TransientStepError("worker lost")
        return self.real(ctx)


def test_the_sample_in_chunks_on_the_runtime_and_a_chunk_retried_alone(tmp_path: Path):
    steps: dict[str, StepFn] = dict(noop_steps(default_pipeline(), shards=0))
    real = real_steps()
    steps.update({name: real[name] for name in REAL})
    flaky = FlakyChunk(real["transcribe_chunk"], shard=1)
    steps["transcribe_chunk"] = flaky
    settings = Settings.from_env({"COURSEGEN_STORE": "memory", "COURSEGEN_TASK_SECRET": "s" * 32})
    rt = embedded(
        tmp_path,
        settings=settings,
        steps=steps,
        clock=VirtualClock(),
        store=MemoryStore(),
        options={"local_roots": [str(SAMPLES)], "chunkSeconds": 30, "chunkOverlapSeconds": 2},
    )
    try:
        course = rt.bridge.ingest(
            {"videoUri": str(SAMPLES / "lecture.mp4"), "title": "Rivers"}, message_id="m1"
        )
        rt.run_until_idle()
        head = rt.store.head(course)
        assert head is not None and head.status == "completed", head and head.snapshot["failure"]
        tasks: dict[str, Any] = head.snapshot["tasks"]
        count = tasks["prepare_video"]["summary"]["audio_chunks"]
        assert count >= 3  # 82 s in chunks of at most 30 s
        shards = [f"transcribe_chunk#{n}" for n in range(count)]
        assert sorted(n for n in tasks if n.startswith("transcribe_chunk#")) == sorted(shards)
        # The failed chunk ran twice; the others once each: nothing else was redone.
        assert flaky.calls == Counter({n: 2 if n == 1 else 1 for n in range(count)})
        assert [tasks[n]["attempts"] for n in shards] == [2 if n == 1 else 1 for n in range(count)]
        assert tasks["transcribe"]["summary"]["chunks"] == count
        ref = tasks["transcribe"]["outputs"]["transcript"]
        transcript = json.loads(rt.artifacts.get_bytes(ref))
    finally:
        rt.close()
    truth = json.loads((SAMPLES / "ground_truth.json").read_text())
    spoken = " ".join(slide["spoken"] for slide in truth["slides"])
    text = " ".join(s["text"] for s in transcript["segments"])
    assert doubled(normalise_words(text)) == []
    assert word_error_rate(spoken, text) < 0.25
    assert transcript["duration_s"] == pytest.approx(truth["duration"], abs=0.2)
