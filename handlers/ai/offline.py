"""The offline AI provider: Whisper, tesseract and text heuristics; deterministic, no network."""

from __future__ import annotations

import difflib
import itertools
import math
import re
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from handlers.ai.port import (
    AIResult,
    Checkpoint,
    FrameInput,
    LessonText,
    PermanentProviderError,
    StructureInputs,
)
from handlers.ai.quiz import quizzes
from handlers.ai.text import (
    heading,
    opening,
    ranked_terms,
)
from handlers.ai.topics import key_phrase, topic_starts
from handlers.course import by_midpoint
from handlers.media.ocr import SlideText, read_slides

MIN_LESSON_S = 3.0
# Talk before the first slide shorter than this belongs to the first slide's lesson.
MIN_INTRO_S = 10.0
MIN_TITLE_CONFIDENCE = 0.5
# A frame sharing less than this share of its words with the current slide is another slide.
BODY_KEPT = 0.5
# OCR reads one slide a little differently from frame to frame: words at least this long and
# this alike are one word misread; shorter ones ("1" and "2", "A" and "B") must match exactly.
MISREAD_MIN_CHARS = 4
MISREAD_RATIO = 0.75
LESSONS_PER_MODULE = 4
MAX_SINGLE_MODULE = 5
LESSON_TERMS = 6
COURSE_TERMS = 10
CLOZE_WINDOW_WORDS = 10
LONG_SENTENCE_WORDS = 30
DISTRACTORS = 3
BLANK = "_____"
# Distractors for a course with too few other lessons; each is dropped if the lesson says it.
GENERIC_TERMS = (
    "photosynthesis", "parliament", "magnetism", "algorithm", "inflation", "telescope",
    "sonnet", "enzyme", "calculus", "pyramid", "volcano", "grammar",
)  # fmt: skip
METERING = {"provider": "offline", "prompt_version": "n/a", "input_tokens": 0}


def _metering(model: str) -> dict[str, Any]:
    return {**METERING, "model": model, "output_tokens": 0, "cost_usd": 0.0, "calls": 1}


class OfflineProvider:
    """Every AIProvider method computed on this machine; the same input gives the same output."""

    name = "offline"

    def transcribe(
        self, audio: Path, *, language: str, checkpoint: Checkpoint | None = None
    ) -> AIResult:
        from handlers.media.speech import SpeechSettingError, model_label, transcribe

        # Word times: a chunk of a long lecture is stitched to its neighbours by its words.
        try:
            said = transcribe(audio, language=language, word_timestamps=True, checkpoint=checkpoint)
        except SpeechSettingError as err:
            raise PermanentProviderError(str(err)) from err
        data = said.to_dict()
        return AIResult(data=data, metering=_metering(model_label()))

    def analyze_video(
        self,
        video: Path,
        transcript: Mapping[str, Any],
        *,
        scene_times: Sequence[float],
        checkpoint: Checkpoint | None = None,
    ) -> AIResult:
        # Text heuristics over the whole transcript at once: quick, one piece, no checkpoint.
        duration = _duration(video, transcript, scene_times)
        data = video_analysis(transcript.get("segments", ()), scene_times, duration)
        return AIResult(data=data, metering=_metering("offline-text-heuristics"))

    def analyze_frames(self, frames: Sequence[FrameInput]) -> AIResult:
        texts = read_slides([frame.path for frame in frames])
        data = {"frames": [_frame_record(f, text) for f, text in zip(frames, texts, strict=True)]}
        return AIResult(data=data, metering=_metering("tesseract"))

    def generate_structure(self, inputs: StructureInputs) -> AIResult:
        return AIResult(data=course_structure(inputs), metering=_metering("offline-slide-changes"))

    def add_interactivity(
        self, structure: Mapping[str, Any], lessons: Sequence[LessonText], *, per_lesson: int
    ) -> AIResult:
        data = quizzes(lessons, max(2, per_lesson))
        return AIResult(data=data, metering=_metering("offline-ideas"))


def _frame_record(frame: FrameInput, text: SlideText) -> dict[str, Any]:
    return {
        "name": frame.name, "t": round(max(0.0, frame.t), 3),
        "title": text.title, "body": list(text.body),
        "title_confidence": min(1.0, max(0.0, text.title_confidence)),
        "body_confidence": min(1.0, max(0.0, text.body_confidence)),
    }  # fmt: skip


def _duration(video: Path, transcript: Mapping[str, Any], scene_times: Sequence[float]) -> float:
    duration = float(transcript.get("duration_s") or 0.0)
    if duration <= 0 and Path(video).is_file():
        from handlers.media.ffmpeg import probe

        duration = probe(video).duration_s
    ends = [float(s["end"]) for s in transcript.get("segments", ())]
    return max([duration, *ends, *scene_times, 0.0])


# --- analyze_video ------------------------------------------------------------------------


def video_analysis(
    segments: Sequence[Mapping[str, Any]], scene_times: Sequence[float], duration: float
) -> dict[str, Any]:
    """Topics between scene changes, each with the speech inside it, a title and key terms."""
    cuts = sorted({round(t, 3) for t in scene_times if MIN_LESSON_S <= t <= duration - 1.0})
    starts: list[float] = [0.0]
    for cut in cuts:
        if cut - starts[-1] >= MIN_LESSON_S:
            starts.append(cut)
    groups = by_midpoint(segments, starts)
    texts = [" ".join(group) for group in groups]
    terms = ranked_terms(texts, LESSON_TERMS)
    ends = [*starts[1:], max(duration, starts[-1])]
    topics = [
        {
            "start": start,
            "end": end,
            "title": heading(text) or f"Part {n}",
            "summary": opening(groups[n - 1]),
            "key_terms": terms[n - 1],
        }
        for n, (start, end, text) in enumerate(zip(starts, ends, texts, strict=True), start=1)
    ]
    everything = [str(s["text"]) for s in segments]
    return {
        "summary": opening(everything),
        "key_terms": ranked_terms([" ".join(everything)], COURSE_TERMS)[0],
        "topics": topics,
    }


# --- generate_structure -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Span:
    start: float
    title: str


@dataclass(slots=True)
class _Run:
    """Frames taken to show one slide: their titles (for the vote) and body words."""

    start: float
    titles: list[tuple[str, float]]
    words: set[str]
    first_line: str

    def title(self) -> str:
        """The title most frames read: misreads of one title form one group, and the group's
        most frequent spelling (then the surest) stands for it."""
        if not self.titles:
            return self.first_line
        groups: list[list[tuple[str, float]]] = []
        for title, confidence in self.titles:
            group = next((g for g in groups if _same_title(g[0][0], title)), None)
            if group is None:
                groups.append([(title, confidence)])
            else:
                group.append((title, confidence))
        biggest = max(groups, key=len)
        spellings = Counter(title for title, _ in biggest)
        surest = {title: max(c for t, c in biggest if t == title) for title in spellings}
        return max(spellings, key=lambda title: (spellings[title], surest[title]))


def course_structure(inputs: StructureInputs) -> dict[str, Any]:
    """Lessons cut at slide changes (else at topics), grouped into modules of about four."""
    slides = sorted(inputs.slides, key=lambda f: (float(f["t"]), str(f["name"])))
    duration = _course_duration(inputs, slides)
    topics = list(inputs.video_analysis.get("topics", ()))
    from_topics = [_Span(float(t["start"]), str(t.get("title", ""))) for t in topics]
    spans = _slide_spans(slides, topics)
    if len(spans) <= 1 and len(from_topics) <= 1:
        # The frames show no slide change (a speaker, a static frame): the words decide.
        spans = _spoken_spans(inputs.transcript.get("segments", ()), duration) or spans
    spans = spans or from_topics
    spans = _without_tiny(spans, duration) or [_Span(0.0, _topic_title(topics, 0.0))]
    spans = [_Span(s.start, s.title or f"Part {n}") for n, s in enumerate(spans, start=1)]
    starts = [span.start for span in spans]
    ends = [*starts[1:], duration]
    groups = by_midpoint(inputs.transcript.get("segments", ()), starts)
    spoken = [" ".join(group) for group in groups]
    shown = [_slide_text(slides, start, end) for start, end in zip(starts, ends, strict=True)]
    texts = [said or seen for said, seen in zip(spoken, shown, strict=True)]
    terms = ranked_terms(texts, LESSON_TERMS, shown=shown)
    lessons: list[dict[str, Any]] = [
        {
            "title": span.title,
            "start": round(span.start, 3),
            "end": round(end, 3),
            "summary": opening(groups[i]) or opening(shown[i].splitlines()),
            "key_frames": [f["name"] for f in slides if span.start <= float(f["t"]) < end],
            "key_terms": terms[i],
        }
        for i, (span, end) in enumerate(zip(spans, ends, strict=True))
    ]
    title = inputs.title.strip() or lessons[0]["title"]
    summary = str(inputs.video_analysis.get("summary") or "") or opening(spoken)
    return {"title": title, "summary": summary, "modules": _modules(lessons, title)}


def _course_duration(inputs: StructureInputs, slides: Sequence[Mapping[str, Any]]) -> float:
    ends = [float(s["end"]) for s in inputs.transcript.get("segments", ())]
    known = max([inputs.duration_s, float(inputs.transcript.get("duration_s") or 0.0), *ends])
    if known > 0:
        return known
    # No duration anywhere (a silent video, a caller that lost it): the last slide plus a bit.
    return max([float(f["t"]) for f in slides], default=0.0) + MIN_LESSON_S


def _same_title(a: str, b: str) -> bool:
    words_a, words_b = a.lower().split(), b.lower().split()
    return len(words_a) == len(words_b) and all(
        x == y or _misread(x, y) for x, y in zip(words_a, words_b, strict=True)
    )


def _misread(x: str, y: str) -> bool:
    if min(len(x), len(y)) < MISREAD_MIN_CHARS:
        return False
    return difflib.SequenceMatcher(None, x, y).ratio() >= MISREAD_RATIO


def _slide_spans(slides: Sequence[Mapping[str, Any]], topics: Sequence[Any]) -> list[_Span]:
    """A span per run of frames showing one slide: a new title starts one, and so does a
    frame whose body text is not the slide's (slides sharing a template, or titles that
    read poorly); a frame that only adds lines to the body (an overlay) does not."""
    runs: list[_Run] = []
    for frame in slides:
        confident = float(frame.get("title_confidence", 1.0)) >= MIN_TITLE_CONFIDENCE
        title = " ".join(str(frame.get("title", "")).split()) if confident else ""
        body = [str(line) for line in frame.get("body", ())]
        words = _content_words(body)
        if not title and not words:
            continue  # a blank or unreadable frame shows nothing to split on
        run = runs[-1] if runs else None
        if run is None or _starts_slide(run, title, words):
            first_line = next((line for line in body if len(line.split()) >= 2), "")
            runs.append(_Run(float(frame["t"]), [], set(), first_line))
            run = runs[-1]
        if title:
            run.titles.append((title, float(frame.get("title_confidence", 1.0))))
        run.words |= words
    spans = [_Span(run.start, run.title()) for run in runs]
    if spans and spans[0].start >= MIN_INTRO_S:
        spans.insert(0, _Span(0.0, _topic_title(topics, 0.0) or "Introduction"))
    return spans


def _spoken_spans(segments: Sequence[Mapping[str, Any]], duration: float) -> list[_Span]:
    """Spans at the transcript's topic shifts, each titled by its key phrase; none when the
    transcript keeps to one topic."""
    starts = topic_starts(segments, duration)
    if len(starts) < 2:
        return []
    texts = [" ".join(group) for group in by_midpoint(segments, starts)]
    others = [[t for j, t in enumerate(texts) if j != i] for i in range(len(texts))]
    return [
        _Span(start, key_phrase(text, rest))
        for start, text, rest in zip(starts, texts, others, strict=True)
    ]


def _content_words(lines: Sequence[str]) -> set[str]:
    # Words of 3+ letters: page numbers and OCR crumbs ("e", "|") change between frames.
    return {w for line in lines for w in re.findall(r"[a-z]{3,}", line.lower())}


def _starts_slide(run: _Run, title: str, words: set[str]) -> bool:
    if title and run.titles and not any(_same_title(seen, title) for seen, _ in run.titles):
        return True
    if not words or not run.words:
        return False
    # Overlays and OCR noise keep most of the slide's words; another slide keeps few.
    kept = len(run.words & words) / min(len(run.words), len(words))
    return kept < BODY_KEPT


def _topic_title(topics: Sequence[Mapping[str, Any]], t: float) -> str:
    for topic in topics:
        if float(topic["start"]) <= t < float(topic["end"]):
            return str(topic.get("title", ""))
    return ""


def _without_tiny(spans: Sequence[_Span], duration: float) -> list[_Span]:
    """Drop spans shorter than MIN_LESSON_S (their time goes to the span before) and rejoin
    neighbours left with one title; the first kept span starts the video."""
    kept: list[_Span] = []
    for i, span in enumerate(spans):
        end = spans[i + 1].start if i + 1 < len(spans) else duration
        if end - span.start < MIN_LESSON_S:
            continue
        if not (kept and span.title and _same_title(kept[-1].title, span.title)):
            kept.append(span)
    return [_Span(0.0, kept[0].title), *kept[1:]] if kept else []


def _slide_text(slides: Sequence[Mapping[str, Any]], start: float, end: float) -> str:
    lines: list[str] = []
    for frame in slides:
        if start <= float(frame["t"]) < end:
            for line in [str(frame.get("title", "")), *frame.get("body", ())]:
                if line.strip() and line not in lines:
                    lines.append(line)
    return "\n".join(lines)


def _modules(lessons: list[dict[str, Any]], title: str) -> list[dict[str, Any]]:
    if len(lessons) <= MAX_SINGLE_MODULE:
        return [{"title": title, "lessons": lessons}]
    count = math.ceil(len(lessons) / LESSONS_PER_MODULE)
    # Even sizes: 9 lessons make 3+3+3, not 4+4+1.
    bounds = [round(k * len(lessons) / count) for k in range(count + 1)]
    chunks = [lessons[a:b] for a, b in itertools.pairwise(bounds)]
    return [{"title": chunk[0]["title"], "lessons": chunk} for chunk in chunks]
