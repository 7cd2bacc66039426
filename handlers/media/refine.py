"""Contextual biasing, kept only where the model itself prefers it.

The transcribe step has the whole lecture heard without any prompt (the chunks, stitched) and
the slide text OCR read (analyze_frames). Each slide's time range is decoded again with that
slide's lines as Whisper's hotwords, and the biased words replace the unprompted ones only if

- they are at least ``MIN_WORDS_KEPT`` as many (a prompt that made Whisper skip speech loses)
  and at most ``MAX_WORDS_KEPT`` as many, and two more (a prompt that made it loop, or read the
  slide out, loses: the loop's words score high once the loop is under way),
- and their mean log-probability, scored by the model *without* the prompt (faster-whisper
  aligns words from the start-of-transcript tokens alone), is at least the unprompted words'.

So a prompt that helps ("hash map" heard as "hash map", not "has map") is kept, and one that
derails the decoder (a voice it hears worse when prompted: the corpus's Scottish voice lost
most of its words) is not. A range the unprompted pass heard nothing in is never decoded
again (a prompt over silence is how Whisper hallucinates). Measured in docs/quality.md
("Per-slide biasing, in the pipeline").
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from handlers.media.speech import Segment

MIN_WORDS_KEPT = 0.9
MAX_WORDS_KEPT = 1.25
# At most this much audio is decoded again (schemas/pipeline.json budgets the transcribe step
# for it: 0.2 s a second of audio); the ranges after it stay as heard.
MAX_AUDIO_S = 2400.0
_FLOOR = 1e-6  # a probability of 0 would make the mean -inf


@dataclass(frozen=True, slots=True)
class SlideRange:
    start: float
    end: float
    lines: tuple[str, ...]  # the slide's title and body lines, each once


Decode = Callable[[SlideRange], Sequence[Segment]]  # the range decoded with its lines as bias


@dataclass(frozen=True, slots=True)
class Refined:
    segments: list[dict[str, Any]]
    ranges: int  # slide ranges with text
    decoded: int  # of them, decoded again
    replaced: int  # of them, where the biased words were kept
    over_cap: int = 0  # of them, left as heard: MAX_AUDIO_S was decoded again already


def slide_ranges(frames: Sequence[Mapping[str, Any]], duration: float) -> list[SlideRange]:
    """A range per run of key frames with one title (analyze_frames' frames, in time order),
    from the first frame's time (0 for the first range) to the next range's start."""
    spans: list[tuple[float, str, list[str]]] = []
    for frame in sorted(frames, key=lambda f: float(f["t"])):
        title = str(frame.get("title") or "").strip()
        lines = [line.strip() for line in [title, *(frame.get("body") or ())] if line.strip()]
        if spans and spans[-1][1] == title:
            spans[-1][2].extend(line for line in lines if line not in spans[-1][2])
        else:
            spans.append((0.0 if not spans else float(frame["t"]), title, lines))
    if not spans:
        return []
    ends = [start for start, _, _ in spans[1:]] + [duration]
    return [
        SlideRange(start=start, end=end, lines=tuple(lines))
        for (start, _, lines), end in zip(spans, ends, strict=True)
        if end > start
    ]


def mean_log_probability(probabilities: Sequence[float]) -> float:
    return sum(math.log(max(p, _FLOOR)) for p in probabilities) / len(probabilities)


def prefer_biased(heard: Sequence[float | None], biased: Sequence[float | None]) -> bool:
    """Keep the biased words (their unprompted probabilities) over the heard ones?"""
    if not heard or not biased or None in heard or None in biased:
        return False
    if not MIN_WORDS_KEPT * len(heard) <= len(biased) <= MAX_WORDS_KEPT * len(heard) + 2:
        return False
    known = [p for p in biased if p is not None]
    before = [p for p in heard if p is not None]
    return mean_log_probability(known) >= mean_log_probability(before)


def refine(
    segments: Sequence[Mapping[str, Any]],
    ranges: Sequence[SlideRange],
    decode: Decode,
    *,
    max_audio_s: float = MAX_AUDIO_S,
    workers: int = 1,
    progress: Callable[[SlideRange], None] | None = None,
) -> Refined:
    """``segments`` (the stitched transcript's, with word times and probabilities) with each
    range's words replaced by its biased decode where ``prefer_biased`` says so. ``workers``
    ranges are decoded at once (``decode`` must allow it); ``progress`` is called after each,
    in order, on the calling thread (it may raise to stop)."""
    with_text = [r for r in ranges if r.lines]
    todo: list[tuple[SlideRange, list[Mapping[str, Any]]]] = []
    over_cap = 0
    spent = 0.0
    for span in with_text:
        if spent + (span.end - span.start) > max_audio_s:
            over_cap += 1
            continue
        touching = [
            s for s in segments if float(s["start"]) < span.end and float(s["end"]) > span.start
        ]
        if any(not s.get("words") for s in touching):
            continue  # a segment without word times cannot be cut at the range's edges
        heard = [w for s in touching for w in s["words"] if _inside(w, span)]
        if heard:
            todo.append((span, heard))
            spent += span.end - span.start
    kept: list[tuple[SlideRange, list[dict[str, Any]]]] = []
    pool = ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix="refine")
    try:
        decoded = pool.map(lambda item: decode(item[0]), todo)
        for (span, heard), said in zip(todo, decoded, strict=True):
            found = [w.to_dict() for seg in said for w in seg.words if _inside(w.to_dict(), span)]
            if prefer_biased([_probability(w) for w in heard], [_probability(w) for w in found]):
                kept.append((span, found))
            if progress is not None:
                progress(span)
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
    decoded_n = len(todo)
    if not kept:
        return Refined([dict(s) for s in segments], len(with_text), decoded_n, 0, over_cap)
    out: list[dict[str, Any]] = []
    replaced = [span for span, _ in kept]
    for segment in segments:
        words = segment.get("words") or ()
        if not words:
            middle = (float(segment["start"]) + float(segment["end"])) / 2
            if not any(span.start <= middle < span.end for span in replaced):
                out.append(dict(segment))
            continue
        run: list[Mapping[str, Any]] = []
        for word in words:
            if any(_inside(word, span) for span in replaced):
                out.extend(_piece(segment, run))
                run = []
            else:
                run.append(word)
        out.extend(_piece(segment, run))
    for _, found in kept:
        out.extend(_sentences(found))
    out.sort(key=lambda s: (float(s["start"]), float(s["end"])))
    return Refined(out, len(with_text), decoded_n, len(kept), over_cap)


def _inside(word: Mapping[str, Any], span: SlideRange) -> bool:
    middle = (float(word["start"]) + float(word["end"])) / 2
    return span.start <= middle < span.end


def _probability(word: Mapping[str, Any]) -> float | None:
    value = word.get("probability")
    return None if value is None else float(value)


def _piece(segment: Mapping[str, Any], run: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The words ``run`` of ``segment`` as a segment of their own (the whole segment, as it
    was, when none of its words went)."""
    if not run:
        return []
    words = segment["words"]
    if len(run) == len(words):
        return [dict(segment)]
    text = "".join(str(w["word"]) for w in run).strip()
    if not text:
        return []
    return [
        {
            "start": float(run[0]["start"]),
            "end": max(float(run[-1]["end"]), float(run[0]["start"])),
            "text": text,
            "words": [dict(w) for w in run],
        }
    ]


def _sentences(words: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """A range's biased words as segments, one a sentence."""
    out: list[dict[str, Any]] = []
    run: list[Mapping[str, Any]] = []
    for word in words:
        run.append(word)
        if str(word["word"]).rstrip().endswith((".", "!", "?")):
            out.extend(_piece({"words": ()}, run))
            run = []
    out.extend(_piece({"words": ()}, run))
    return out
