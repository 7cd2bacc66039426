"""Course quality figures against ground truth: WER, coverage, boundaries, titles, quizzes.

Pure functions over plain data (the truth file, course.json's lessons, the transcript's
segments), so each figure is tested without running the pipeline.
"""

from __future__ import annotations

import difflib
import re
import unicodedata
from collections.abc import Mapping, Sequence
from typing import Any

from handlers.media.speech import word_error_rate

FUZZY_TITLE_RATIO = 0.8
# Coverage is measured on windows of at least this much truth speech: Whisper's segment times
# drift by a second or two, which would blur per-sentence counts.
COVERAGE_WINDOW_S = 15.0


def whisper_normalise(text: str) -> list[str]:
    """Words after Whisper's English normaliser (PyPI whisper-normalizer)."""
    from whisper_normalizer.english import EnglishTextNormalizer  # type: ignore[import-untyped]

    return str(EnglishTextNormalizer()(text)).split()


def wer_whisper(reference: str, hypothesis: str) -> float:
    ref, hyp = whisper_normalise(reference), whisper_normalise(hypothesis)
    if not ref:
        return 0.0 if not hyp else 1.0
    return edit_distance(ref, hyp) / len(ref)


def wer_project(reference: str, hypothesis: str) -> float:
    return word_error_rate(reference, hypothesis)


def edit_distance(ref: Sequence[str], hyp: Sequence[str]) -> int:
    previous = list(range(len(hyp) + 1))
    for i, word in enumerate(ref, start=1):
        current = [i]
        for j, other in enumerate(hyp, start=1):
            cost = previous[j - 1] + (word != other)
            current.append(min(previous[j] + 1, current[j - 1] + 1, cost))
        previous = current
    return previous[-1]


def coverage(
    stretches: Sequence[Mapping[str, Any]], segments: Sequence[Mapping[str, Any]]
) -> tuple[float, float]:
    """(overall, worst window): recognised words over truth words per window of speech, each
    window capped at 1, so a vanished window counts however much another one overflows."""
    windows = _windows(stretches)
    heard = _heard(segments)
    scores: list[tuple[int, float]] = []
    for start, end, ref_words in windows:
        said = sum(count for t, count in heard if start <= t < end)
        scores.append((ref_words, min(1.0, said / ref_words) if ref_words else 1.0))
    total = sum(weight for weight, _ in scores)
    if not total:
        return 1.0, 1.0
    overall = sum(weight * score for weight, score in scores) / total
    return overall, min(score for _, score in scores)


def _heard(segments: Sequence[Mapping[str, Any]]) -> list[tuple[float, int]]:
    """(time, words) of what was recognised: each word at its own time where the segment
    has word times, else the segment's words at its midpoint."""
    out: list[tuple[float, int]] = []
    for s in segments:
        words = s.get("words") or ()
        if words:
            out += [
                ((float(w["start"]) + float(w["end"])) / 2, len(whisper_normalise(str(w["word"]))))
                for w in words
            ]
        else:
            middle = (float(s["start"]) + float(s["end"])) / 2
            out.append((middle, len(whisper_normalise(str(s["text"])))))
    return out


def _windows(stretches: Sequence[Mapping[str, Any]]) -> list[tuple[float, float, int]]:
    windows: list[tuple[float, float, int]] = []
    start, words, speech = None, 0, 0.0
    for i, stretch in enumerate(stretches):
        if start is None:
            start = float(stretch["start"])
        words += len(whisper_normalise(str(stretch["spoken"])))
        speech += float(stretch.get("speech_end", stretch["end"])) - float(stretch["start"])
        last = i == len(stretches) - 1
        if speech >= COVERAGE_WINDOW_S or last:
            # The last window reaches past the end so trailing segments are not lost.
            end = float("inf") if last else float(stretch["end"])
            windows.append((start, end, words))
            start, words, speech = None, 0, 0.0
    return windows


def boundary_scores(
    truth: Sequence[float], found: Sequence[float], tolerance: float
) -> tuple[float, float, float]:
    """Precision, recall and F1 of lesson starts against true slide changes (t=0 excluded on
    both sides); each true change matches at most one lesson start, nearest first."""
    true = sorted(t for t in truth if t > 0)
    pred = sorted(t for t in found if t > 0)
    if not true and not pred:
        return 1.0, 1.0, 1.0
    pairs = sorted((abs(t - p), i, j) for i, t in enumerate(true) for j, p in enumerate(pred))
    used_t: set[int] = set()
    used_p: set[int] = set()
    for distance, i, j in pairs:
        if distance <= tolerance and i not in used_t and j not in used_p:
            used_t.add(i)
            used_p.add(j)
    matched = len(used_t)
    precision = matched / len(pred) if pred else (1.0 if not true else 0.0)
    recall = matched / len(true) if true else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return precision, recall, f1


def normal_title(title: str) -> str:
    text = unicodedata.normalize("NFKC", title).lower()
    return " ".join(re.sub(r"[^\w\s]", " ", text).split())


def title_scores(
    stretches: Sequence[Mapping[str, Any]], lessons: Sequence[Mapping[str, Any]]
) -> tuple[float, float] | None:
    """(exact, fuzzy) share of titled truth stretches whose lesson (the one holding the
    stretch's midpoint) carries its title; None when the truth has no titles."""
    titled = [s for s in stretches if s.get("title")]
    if not titled:
        return None
    exact = fuzzy = 0
    for stretch in titled:
        middle = (float(stretch["start"]) + float(stretch["end"])) / 2
        lesson = lesson_at(lessons, middle)
        want = normal_title(str(stretch["title"]))
        got = normal_title(str(lesson["title"])) if lesson else ""
        exact += got == want
        fuzzy += difflib.SequenceMatcher(None, want, got).ratio() >= FUZZY_TITLE_RATIO
    return exact / len(titled), fuzzy / len(titled)


def lesson_at(lessons: Sequence[Mapping[str, Any]], t: float) -> Mapping[str, Any] | None:
    for lesson in lessons:
        if float(lesson["start"]) <= t < float(lesson["end"]):
            return lesson
    return lessons[-1] if lessons and t >= float(lessons[-1]["start"]) else None


def mentions(text: str, term: str) -> bool:
    return re.search(rf"(?<!\w){re.escape(term)}(?!\w)", text, re.IGNORECASE) is not None


def grounded_share(
    lessons: Sequence[Mapping[str, Any]], slide_text: Sequence[str]
) -> tuple[float, int]:
    """(share of quiz answers that the lesson's own transcript, title or slides state,
    questions); ``slide_text`` is each lesson's OCR text, by index."""
    total = grounded = 0
    for i, lesson in enumerate(lessons):
        text = " ".join([str(lesson.get("transcript", "")), str(lesson["title"]), slide_text[i]])
        for question in lesson.get("quiz", ()):
            total += 1
            grounded += mentions(text, str(question["answer"]))
    return (grounded / total if total else 1.0), total


def longest_ratio(
    stretches: Sequence[Mapping[str, Any]], lessons: Sequence[Mapping[str, Any]]
) -> float:
    """The longest lesson over the longest true slide (or section)."""
    longest_true = max(float(s["end"]) - float(s["start"]) for s in stretches)
    longest = max(float(lesson["end"]) - float(lesson["start"]) for lesson in lessons)
    return longest / longest_true if longest_true > 0 else 0.0
