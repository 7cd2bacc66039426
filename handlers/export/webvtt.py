"""WebVTT captions from the timestamped transcript.

A segment becomes one or more cues of at most two lines of 42 characters and about seven
seconds: its words are packed into lines, the lines into cues, and the segment's time is
shared out by length. A word longer than a line (CJK speech has no spaces) is cut between
characters, never inside a combining sequence. Cue text is escaped (&, <, >).
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

LINE = 42
LINES = 2
MAX_SECONDS = 7.0
MIN_SECONDS = 0.5


@dataclass(frozen=True, kw_only=True, slots=True)
class Cue:
    start: float
    end: float
    lines: tuple[str, ...]


def course_segments(course: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The course's timestamped transcript in order (each lesson's segments)."""
    return [
        dict(segment)
        for module in course["modules"]
        for lesson in module["lessons"]
        for segment in lesson.get("segments", ())
    ]


def cues(segments: Iterable[Mapping[str, Any]]) -> list[Cue]:
    out: list[Cue] = []
    for segment in segments:
        start, end = float(segment["start"]), float(segment["end"])
        lines = _lines(str(segment["text"]))
        if not lines:
            continue
        end = max(end, start + MIN_SECONDS)
        groups = [tuple(lines[i : i + LINES]) for i in range(0, len(lines), LINES)]
        sizes = [sum(len(line) for line in group) for group in groups]
        total, at = sum(sizes), start
        for group, size in zip(groups, sizes, strict=True):
            stop = at + (end - start) * size / total
            out.append(Cue(start=at, end=min(stop, at + MAX_SECONDS), lines=group))
            at = stop
    return out


def render(segments: Iterable[Mapping[str, Any]]) -> str:
    """The .vtt file."""
    blocks = ["WEBVTT"]
    for n, cue in enumerate(cues(segments), start=1):
        text = "\n".join(escape(line) for line in cue.lines)
        blocks.append(f"{n}\n{timestamp(cue.start)} --> {timestamp(cue.end)}\n{text}")
    return "\n\n".join(blocks) + "\n"


def escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def timestamp(seconds: float) -> str:
    millis = max(0, round(seconds * 1000))
    hours, rest = divmod(millis, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    secs, ms = divmod(rest, 1000)
    return f"{hours:02d}:{minutes:02d}:{secs:02d}.{ms:03d}"


def _lines(text: str) -> list[str]:
    lines: list[str] = []
    current = ""
    for word in (piece for w in text.split() for piece in _pieces(w)):
        if current and len(current) + 1 + len(word) <= LINE:
            current += " " + word
        else:
            if current:
                lines.append(current)
            current = word
    if current:
        lines.append(current)
    return lines


def _pieces(word: str) -> Sequence[str]:
    """A word cut into pieces of at most LINE characters, between whole graphemes."""
    pieces: list[str] = []
    while len(word) > LINE:
        cut = LINE
        while cut > 1 and _joins(word, cut):
            cut -= 1
        pieces.append(word[:cut])
        word = word[cut:]
    return [*pieces, word]


def _joins(word: str, i: int) -> bool:
    """True if a cut before word[i] would split a combining or joined sequence."""
    after, before = word[i], word[i - 1]
    return (
        unicodedata.combining(after) > 0
        or unicodedata.category(after) in ("Mn", "Me", "Cf", "Sk")
        or 0xFE00 <= ord(after) <= 0xFE0F
        or 0x1F3FB <= ord(after) <= 0x1F3FF
        or before == "\u200d"
    )
