"""Topic shifts in a timestamped transcript (TextTiling) and a key phrase to title each topic.

For a lecture whose frames show no slide changes (a speaker, a static frame) the words are all
there is. TextTiling (Hearst, 1997) compares the vocabulary of the words before and after each
gap between transcript segments: where a topic ends the two blocks share few words, so the
similarity dips. A dip's depth (how far it falls below the nearest peak on each side) says how
sure the shift is; the deep ones, far enough apart, become lesson starts. Lexical only: no
model, and the same transcript always gives the same cuts.
"""

from __future__ import annotations

import math
import re
import statistics
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from handlers.ai.text import STOPWORDS, WORD

# Content words compared on each side of a gap (Hearst's k x w, scaled down: a lecture's topic
# here runs for 20-60 words of content, a paragraph's worth, not a page's).
BLOCK_WORDS = 24
# Gap scores are smoothed over this many neighbours on each side before the dips are read
# (Hearst smooths; over sentences of a few seconds a smoothed dip slid off the true shift).
SMOOTHING = 0
# A topic shorter than this is no lesson; two shifts closer than this are one.
MIN_TOPIC_S = 15.0
# A shift needs a depth of at least this (cosine units), however flat the rest of the talk is:
# a single-topic talk must stay one lesson.
MIN_DEPTH = 0.15
PHRASE_WORDS = 3


@dataclass(frozen=True, slots=True)
class Gap:
    """The place between two transcript segments: where a topic could start."""

    t: float  # the start of the segment after the gap
    similarity: float  # of the blocks either side, smoothed
    depth: float


def content_words(text: str) -> list[str]:
    """Lower-case content words with a plural's final "s" dropped (keys/key, models/model)."""
    return [_stem(w) for w in WORD.findall(text.lower()) if len(w) >= 3 and w not in STOPWORDS]


def _stem(word: str) -> str:
    if len(word) > 3 and word.endswith("s") and not word.endswith(("ss", "us", "is")):
        return word[:-1]
    return word


def gaps(segments: Sequence[Mapping[str, Any]]) -> list[Gap]:
    """A scored gap before every segment but the first."""
    words = [content_words(str(s["text"])) for s in segments]
    raw = []
    for i in range(1, len(segments)):
        left = _block([w for seg in reversed(words[:i]) for w in reversed(seg)])
        right = _block([w for seg in words[i:] for w in seg])
        raw.append(_cosine(left, right))
    smooth = [
        statistics.fmean(raw[max(0, i - SMOOTHING) : i + SMOOTHING + 1]) for i in range(len(raw))
    ]
    return [
        Gap(t=float(segments[i + 1]["start"]), similarity=s, depth=_depth(smooth, i))
        for i, s in enumerate(smooth)
    ]


def _block(words: Sequence[str]) -> Counter[str]:
    return Counter(words[:BLOCK_WORDS])


def _cosine(a: Counter[str], b: Counter[str]) -> float:
    dot = sum(n * b[w] for w, n in a.items())
    norm = math.sqrt(sum(n * n for n in a.values()) * sum(n * n for n in b.values()))
    return dot / norm if norm else 0.0


def _depth(scores: Sequence[float], i: int) -> float:
    """How far scores[i] lies below the highest point reached climbing away on each side."""
    left = i
    while left > 0 and scores[left - 1] >= scores[left]:
        left -= 1
    right = i
    while right < len(scores) - 1 and scores[right + 1] >= scores[right]:
        right += 1
    return (scores[left] - scores[i]) + (scores[right] - scores[i])


def sentence_units(segments: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The transcript cut into sentences, each with a start: a Whisper segment often holds
    several (a topic may change inside one). A sentence starts at its first word's time when
    the segment has word times, else at the share of the segment its text starts at."""
    out = []
    for segment in segments:
        start, end = float(segment["start"]), float(segment["end"])
        text = str(segment["text"]).strip()
        pieces = [p for p in re.split(r"(?<=[.!?])\s+", text) if p]
        timed = [float(w["start"]) for w in segment.get("words", ()) or ()]
        offset = 0
        for k, piece in enumerate(pieces):
            at = text.index(piece, offset)
            words_before = len(text[:at].split())
            if k == 0:
                t = start
            elif len(timed) == len(text.split()) and words_before < len(timed):
                t = timed[words_before]
            else:
                t = start + (end - start) * at / max(1, len(text))
            out.append({"start": round(t, 3), "text": piece})
            offset = at + len(piece)
    return out


def topic_starts(segments: Sequence[Mapping[str, Any]], duration: float) -> list[float]:
    """Lesson starts (0.0 first) at the transcript's topic shifts: the gaps between sentences
    whose depth passes Hearst's cutoff (mean depth minus half its deviation, and at least
    MIN_DEPTH), deepest first, none within MIN_TOPIC_S of the start, the end or another."""
    units = sentence_units(segments)
    scored = gaps([u for u in units if content_words(str(u["text"]))])
    valleys = [g for g in scored if g.depth > 0]
    if not valleys:
        return [0.0]
    depths = [g.depth for g in scored]
    spread = statistics.pstdev(depths) if len(depths) > 1 else 0.0
    cutoff = max(MIN_DEPTH, statistics.fmean(depths) - spread / 2)
    starts: list[float] = []
    for gap in sorted(valleys, key=lambda g: (-g.depth, g.t)):
        if gap.depth < cutoff:
            break
        if gap.t < MIN_TOPIC_S or duration - gap.t < MIN_TOPIC_S:
            continue
        if all(abs(gap.t - t) >= MIN_TOPIC_S for t in starts):
            starts.append(gap.t)
    return [0.0, *sorted(starts)]


def key_phrase(text: str, others: Sequence[str] = ()) -> str:
    """The phrase of up to PHRASE_WORDS content words that names ``text``'s topic, title-cased:
    the one other texts say least, then the one that covers most words (count x length), then
    the first said; in the spelling said most; "" for a text without content words."""
    counts, spellings = _phrases(text)
    if not counts:
        return ""
    elsewhere = [_phrases(other)[0] for other in others]
    repeated = [p for p, n in counts.items() if n >= 2] or list(counts)

    def rank(phrase: str) -> tuple[int, int]:
        shared = sum(1 for other in elsewhere if phrase in other)
        return (shared, -counts[phrase] * len(phrase.split()))

    best = min(repeated, key=rank)
    said = spellings[best].most_common(1)[0][0]
    return " ".join(word.capitalize() for word in said.split())


def _phrases(text: str) -> tuple[Counter[str], dict[str, Counter[str]]]:
    """Runs of 1..PHRASE_WORDS content words inside a clause, counted by their stems, with the
    spellings each was said in."""
    counts: Counter[str] = Counter()
    forms: dict[str, Counter[str]] = {}
    for clause in re.split(r"[^\w\s'-]+|\n", text.lower()):
        run: list[str] = []
        for word in [*WORD.findall(clause), ""]:  # "" flushes the last run
            if len(word) >= 3 and word not in STOPWORDS:
                run.append(word)
                continue
            for n in range(1, PHRASE_WORDS + 1):
                for k in range(len(run) - n + 1):
                    said = run[k : k + n]
                    key = " ".join(_stem(w) for w in said)
                    counts[key] += 1
                    forms.setdefault(key, Counter())[" ".join(said)] += 1
            run = []
    return counts, forms
