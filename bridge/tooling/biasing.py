"""Does slide text heard as Whisper's prompt pay? WER with and without it, and what it costs.

    python -m bridge.tooling.biasing --corpus samples/corpus --only sample orange-bar dark

Per item: the key frames (handlers.media.frames, as extract_frames takes them) read by OCR
(handlers.media.ocr, as analyze_frames reads them), timed; then the audio transcribed with the
slide text as ``hotwords``, as ``initial_prompt`` and without it; "per-slide" decodes each
slide's time range on its own with that slide's lines as hotwords; "per-slide-kept" is what
the pipeline does (transcribe, version 5 on): the unbiased transcript, with each slide's biased
decode kept only where handlers.media.refine prefers it. Every item here is shorter than one
transcription chunk (300 s), so the vocabulary of the whole item is the chunk's.
"""

from __future__ import annotations

import argparse
import dataclasses
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bridge.tooling import metrics
from bridge.tooling.evaluate import load_corpus, markdown
from handlers.media.frames import extract_frames
from handlers.media.ocr import read_slides
from handlers.media.refine import SlideRange, refine
from handlers.media.speech import (
    BIAS_MODES,
    DECODING,
    Transcript,
    decode_span,
    load_audio,
    transcribe,
    transcribe_by_range,
)

MODES = (*BIAS_MODES, "per-slide", "per-slide-kept")


def slide_vocabulary(video: Path) -> tuple[list[tuple[float, list[str]]], float]:
    """The slide lines OCR reads on the video's key frames, a range per frame whose title
    differs from the frame before (start, lines), and the seconds it took."""
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="coursegen-bias-") as tmp:
        frames = extract_frames(video, Path(tmp))
        texts = read_slides([frame.path for frame in frames])
    ranges: list[tuple[float, list[str]]] = []
    last_title = None
    for frame, text in zip(frames, texts, strict=True):
        lines = [line for line in [text.title, *text.body] if line.strip()]
        if not ranges or text.title != last_title:
            ranges.append((0.0 if not ranges else frame.t, lines))
        else:
            ranges[-1][1].extend(line for line in lines if line not in ranges[-1][1])
        last_title = text.title
    return ranges, time.perf_counter() - started


def kept_per_slide(video: Path, vocabulary: list[tuple[float, list[str]]]) -> Transcript:
    """The pipeline's per-slide biasing on one short item (one chunk, starting at 0)."""
    heard = transcribe(video, word_timestamps=True)
    audio = load_audio(video)
    starts = [start for start, _ in vocabulary]
    ends = [*starts[1:], heard.duration_s]
    ranges = [
        SlideRange(start, end, tuple(lines))
        for (start, lines), end in zip(vocabulary, ends, strict=True)
        if end > start
    ]

    def decode(span: SlideRange) -> Any:
        return decode_span(audio, span.start, span.end, offset_s=0.0, vocabulary=span.lines)

    done = refine([s.to_dict() for s in heard.segments], ranges, decode)
    return Transcript.from_dict({**heard.to_dict(), "segments": done.segments})


def measure(corpus: Path, only: Sequence[str], modes: Sequence[str]) -> list[dict[str, Any]]:
    rows = []
    for item in load_corpus(corpus, only=only):
        vocabulary, ocr_s = slide_vocabulary(item.video)
        stretches = item.truth["stretches"]
        reference = " ".join(str(s["spoken"]) for s in stretches)
        every = [line for _, lines in vocabulary for line in lines]
        for mode in modes:
            started = time.perf_counter()
            if mode == "per-slide":
                said = transcribe_by_range(item.video, vocabulary, word_timestamps=True)
            elif mode == "per-slide-kept":
                said = kept_per_slide(item.video, vocabulary)
            else:
                decoding = dataclasses.replace(DECODING, bias=mode)
                said = transcribe(
                    item.video, decoding=decoding, vocabulary=every, word_timestamps=True
                )
            seconds = time.perf_counter() - started
            overall, worst = metrics.coverage(stretches, [s.to_dict() for s in said.segments])
            rows.append(
                {
                    "item": f"{item.name} / {mode}",
                    "kind": item.kind,
                    "duration_s": item.truth["duration"],
                    "wer_whisper": metrics.wer_whisper(reference, said.text),
                    "wer_project": metrics.wer_project(reference, said.text),
                    "coverage": overall,
                    "coverage_min": worst,
                    "wall_s": seconds,
                    "ocr_s": ocr_s,
                }
            )
    return rows


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--corpus", type=Path, default=Path("samples/corpus"))
    parser.add_argument("--only", nargs="+", default=["sample", "orange-bar"])
    parser.add_argument("--modes", nargs="+", default=list(BIAS_MODES), choices=MODES)
    args = parser.parse_args(argv)
    rows = measure(args.corpus, args.only, args.modes)
    print(markdown(rows))
    for row in rows:
        print(f"{row['item']}: frames + OCR {row['ocr_s']:.1f} s, transcribe {row['wall_s']:.1f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
