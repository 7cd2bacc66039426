"""analyze_video of a long lecture in windows: the lecture is cut into parts a provider takes in
one request (Gemini: minutes of video; OpenAI: tokens of transcript), each part's request
carries the summary of the parts before it, and the parts' analyses are merged into one.

A lecture that fits in one request is one window and goes exactly as before (same prompt, one
request). Windows are equal in length, each cut moved to the nearest scene change (usually a
slide change) within a sixth of a window; a transcript segment belongs to the window holding
its middle, so no sentence is cut or sent twice. Every request asks for times on the whole
lecture's clock; a topic is clamped into its window, and a topic continuing across a cut (the
same title on both sides) becomes one. The merged summary is the last window's: each window
is asked for the summary of the lecture so far, given the summary before it.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from handlers.ai import prompts
from handlers.ai.port import Checkpoint

CHARS_PER_TOKEN = 4  # a rough English estimate; windows keep a wide margin below any limit
SNAP_SHARE = 1 / 6  # a cut moves to a scene change at most this share of a window away
MAX_KEY_TERMS = 20


@dataclass(frozen=True, slots=True)
class Window:
    index: int  # 0-based
    count: int
    start_s: float
    end_s: float

    @property
    def seconds(self) -> float:
        return self.end_s - self.start_s


def lecture_seconds(transcript: Mapping[str, Any], scene_times: Sequence[float]) -> float:
    """The lecture's length as the inputs tell it (the transcript's, else its last event)."""
    ends = [float(s["end"]) for s in transcript.get("segments", ())]
    return max([float(transcript.get("duration_s") or 0.0), *ends, *scene_times, 0.0])


def estimate_tokens(text: str) -> int:
    return math.ceil(len(text) / CHARS_PER_TOKEN)


def parts_needed(
    duration_s: float,
    *,
    max_s: float | None = None,
    tokens: int = 0,
    max_tokens: int | None = None,
) -> int:
    """How many windows keep each under ``max_s`` seconds and about ``max_tokens`` tokens."""
    parts = 1
    if max_s is not None and max_s > 0 and duration_s > max_s:
        parts = max(parts, math.ceil(duration_s / max_s))
    if max_tokens is not None and max_tokens > 0 and tokens > max_tokens:
        parts = max(parts, math.ceil(tokens / max_tokens))
    return parts


def plan(duration_s: float, parts: int, scene_times: Sequence[float]) -> list[Window]:
    """``parts`` windows covering 0..duration_s, cuts moved onto nearby scene changes."""
    if parts <= 1 or duration_s <= 0:
        return [Window(0, 1, 0.0, max(0.0, duration_s))]
    length = duration_s / parts
    scenes = sorted(float(t) for t in scene_times)
    bounds = [0.0]
    for k in range(1, parts):
        ideal = k * length
        near = [t for t in scenes if abs(t - ideal) <= length * SNAP_SHARE and t > bounds[-1]]
        cut = min(near, key=lambda t: abs(t - ideal)) if near else ideal
        bounds.append(round(cut, 3))
    bounds.append(round(duration_s, 3))
    return [Window(i, parts, bounds[i], bounds[i + 1]) for i in range(parts)]


def window_inputs(
    window: Window,
    transcript: Mapping[str, Any],
    scene_times: Sequence[float],
    *,
    duration_s: float,
    summary_so_far: str,
    previous_topic: Mapping[str, Any] | None,
) -> dict[str, Any]:
    """What one window's request shows: its part of the transcript and of the scene changes,
    where it lies in the lecture, and what the windows before it found."""
    last = window.index == window.count - 1

    def inside(t: float) -> bool:
        return window.start_s <= t < window.end_s or (last and t == window.end_s)

    segments = [
        s
        for s in transcript.get("segments", ())
        if inside((float(s["start"]) + float(s["end"])) / 2)
    ]
    return {
        "duration_s": round(duration_s, 3),
        "language": transcript.get("language", ""),
        "part": {
            "number": window.index + 1,
            "of": window.count,
            "start_s": window.start_s,
            "end_s": window.end_s,
        },
        "summary_so_far": summary_so_far,
        "previous_topic": (
            {
                "title": str(previous_topic["title"]),
                "start": float(previous_topic["start"]),
            }
            if previous_topic
            else None
        ),
        "scene_times": [round(float(t), 2) for t in scene_times if inside(float(t))],
        "transcript": prompts.transcript_lines({"segments": segments}),
    }


# One window's request: (the window, its inputs) -> its analysis (schemas/ai/video_analysis).
AskWindow = Callable[[Window, Mapping[str, Any]], Mapping[str, Any]]


def analyze_in_windows(
    windows: Sequence[Window],
    transcript: Mapping[str, Any],
    scene_times: Sequence[float],
    ask: AskWindow,
    *,
    checkpoint: Checkpoint | None = None,
) -> dict[str, Any]:
    """Ask window after window, each carrying the summary so far, then merge the answers."""
    duration = windows[-1].end_s if windows else 0.0
    answers: list[tuple[Window, Mapping[str, Any]]] = []
    summary = ""
    previous: Mapping[str, Any] | None = None
    for window in windows:
        inputs = window_inputs(
            window,
            transcript,
            scene_times,
            duration_s=duration,
            summary_so_far=summary,
            previous_topic=previous,
        )
        answer = ask(window, inputs)
        answers.append((window, answer))
        summary = str(answer.get("summary") or summary)
        topics = clamped(window, answer.get("topics", ()))
        previous = topics[-1] if topics else previous
        if checkpoint is not None:
            checkpoint(window.end_s, duration)  # may raise: a cancelled course stops here
    return merge(answers)


def clamped(window: Window, topics: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """A window's topics on the lecture's clock, inside the window, in time order.

    A model that answered on the part's own clock (every topic before the window even
    starts, which times on the lecture's clock cannot be) is moved by the window's start."""
    items = [dict(t) for t in topics]
    shift = 0.0
    if window.start_s > 0 and items and all(float(t["end"]) <= window.start_s for t in items):
        shift = window.start_s
    out = []
    for t in sorted(items, key=lambda t: (float(t["start"]), float(t["end"]))):
        start = min(max(float(t["start"]) + shift, window.start_s), window.end_s)
        end = min(max(float(t["end"]) + shift, start), window.end_s)
        if end > start:
            out.append({**t, "start": round(start, 3), "end": round(end, 3)})
    return out


def merge(answers: Sequence[tuple[Window, Mapping[str, Any]]]) -> dict[str, Any]:
    """One analysis from the windows' (schemas/ai/video_analysis.json)."""
    topics: list[dict[str, Any]] = []
    for window, answer in answers:
        for topic in clamped(window, answer.get("topics", ())):
            if topics and _same_title(topics[-1]["title"], topic["title"]):
                joined = topics[-1]
                joined["end"] = max(joined["end"], topic["end"])
                joined["key_terms"] = _terms([joined["key_terms"], topic["key_terms"]])
                continue
            topics.append(topic)
    summaries = [str(a.get("summary") or "").strip() for _, a in answers]
    return {
        "summary": next((s for s in reversed(summaries) if s), ""),
        "key_terms": _terms([a.get("key_terms", ()) for _, a in answers])[:MAX_KEY_TERMS],
        "topics": topics,
    }


def _same_title(a: str, b: str) -> bool:
    return " ".join(a.split()).casefold() == " ".join(b.split()).casefold()


def _terms(lists: Sequence[Sequence[str]]) -> list[str]:
    """Terms of several lists, those more lists name first, then in order of appearance."""
    seen: dict[str, tuple[str, int, int]] = {}  # folded -> (as first written, lists, first)
    order = 0
    for terms in lists:
        named: set[str] = set()
        for term in terms:
            key = " ".join(str(term).split()).casefold()
            if not key or key in named:
                continue
            named.add(key)
            shown, count, first = seen.get(key, (str(term).strip(), 0, order))
            seen[key] = (shown, count + 1, first)
            order += 1
    ranked = sorted(seen.values(), key=lambda v: (-v[1], v[2]))
    return [shown for shown, _, _ in ranked]
