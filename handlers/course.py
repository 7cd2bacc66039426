"""The finished course: assembled from the step outputs (schemas/course.json) and shown as HTML."""

from __future__ import annotations

import bisect
import html
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Any
from urllib.parse import urlsplit

from handlers.export import page
from handlers.export.page import clock

__all__ = ["Player", "by_midpoint", "clock", "compose_course", "image_src", "render_html"]

FILE_SCHEME = "file://"
# Only these may reach an <img src>: a "javascript:" or "data:" ref from a bad manifest may not.
IMAGE_SCHEMES = frozenset({"", "http", "https", "file"})


def compose_course(
    course_id: str,
    request: Mapping[str, Any],
    duration_s: float,
    structure: Mapping[str, Any],
    interactivity: Mapping[str, Any],
    transcript: Mapping[str, Any],
    frames: Sequence[Mapping[str, Any]],
    generated_by: Mapping[str, str],
) -> dict[str, Any]:
    """The course document: lessons in reading order with ids "m1-l2", their spoken text,
    key frames with refs and quiz; the caller validates it against schemas/course."""
    lessons = [lesson for module in structure["modules"] for lesson in module["lessons"]]
    starts = [float(lesson["start"]) for lesson in lessons]
    segments = transcript.get("segments", ())
    spoken = [" ".join(texts) for texts in by_midpoint(segments, starts)]
    timed = segments_by_midpoint(segments, starts)
    quiz = {int(entry["lesson"]): entry["questions"] for entry in interactivity["lessons"]}
    by_name = {str(frame["name"]): frame for frame in frames}
    modules, index = [], 0
    for m, module in enumerate(structure["modules"], start=1):
        built = []
        for n, lesson in enumerate(module["lessons"], start=1):
            built.append(
                _lesson(f"m{m}-l{n}", index, lesson, spoken[index], quiz.get(index, []), by_name)
                | {"segments": timed[index]}
            )
            index += 1
        title = str(module.get("title") or "").strip() or built[0]["title"]
        modules.append({"title": title, "lessons": built})
    title = str(request.get("title") or structure.get("title") or "").strip()
    return {
        "course_id": course_id,
        "title": title or "Untitled course",
        "language": str(request.get("language") or transcript.get("language") or "en"),
        "summary": str(structure.get("summary") or ""),
        "source": {"video_uri": str(request.get("video_uri") or ""), "duration_s": duration_s},
        "modules": modules,
        "generated_by": {str(k): str(v) for k, v in generated_by.items()},
    }


def _lesson(
    lesson_id: str,
    index: int,
    lesson: Mapping[str, Any],
    spoken: str,
    quiz: Sequence[Mapping[str, Any]],
    frames: Mapping[str, Mapping[str, Any]],
) -> dict[str, Any]:
    names = [name for name in lesson.get("key_frames", ()) if name in frames]
    return {
        "id": lesson_id,
        "title": str(lesson.get("title") or "").strip() or f"Part {index + 1}",
        "start": float(lesson["start"]),
        "end": float(lesson["end"]),
        "summary": str(lesson.get("summary") or ""),
        "transcript": spoken,
        "key_terms": [str(term) for term in lesson.get("key_terms", ())],
        "key_frames": [_key_frame(frames[name]) for name in names],
        "quiz": [_question(question) for question in quiz],
    }


def _key_frame(frame: Mapping[str, Any]) -> dict[str, Any]:
    return {"name": str(frame["name"]), "t": float(frame["t"]), "ref": str(frame["ref"])}


def _question(question: Mapping[str, Any]) -> dict[str, Any]:
    keys = ("kind", "prompt", "choices", "answer", "explanation")
    return {key: question[key] for key in keys if key in question}


def by_midpoint(segments: Sequence[Mapping[str, Any]], starts: Sequence[float]) -> list[list[str]]:
    """Segment texts grouped by the span (given by its start) that holds each midpoint, so
    speech straddling a slide change is told once, not twice or never."""
    return [[s["text"] for s in group] for group in segments_by_midpoint(segments, starts)]


def segments_by_midpoint(
    segments: Sequence[Mapping[str, Any]], starts: Sequence[float]
) -> list[list[dict[str, Any]]]:
    """The timestamped segments ({start, end, text}) grouped as by_midpoint groups texts; a
    segment with word times that straddles a start is first cut there, between its words."""
    groups: list[list[dict[str, Any]]] = [[] for _ in starts]
    for segment in (piece for s in segments for piece in split_at(s, starts)):
        middle = (float(segment["start"]) + float(segment["end"])) / 2
        index = min(max(bisect.bisect_right(starts, middle) - 1, 0), len(starts) - 1)
        text = str(segment["text"]).strip()
        if starts and text:
            start, end = float(segment["start"]), float(segment["end"])
            groups[index].append({"start": start, "end": max(end, start), "text": text})
    return groups


def split_at(segment: Mapping[str, Any], starts: Sequence[float]) -> list[Mapping[str, Any]]:
    """``segment`` cut at every start inside it, by its word times (whole without them): a
    segment of tiny.en often runs on past a slide change, and by its midpoint its words would
    all go to one lesson."""
    words = segment.get("words") or ()
    start, end = float(segment["start"]), float(segment["end"])
    cuts = [t for t in starts if start < t < end]
    if not words or not cuts:
        return [segment]
    parts: list[list[Mapping[str, Any]]] = [[] for _ in range(len(cuts) + 1)]
    for word in words:
        middle = (float(word["start"]) + float(word["end"])) / 2
        parts[bisect.bisect_right(cuts, middle)].append(word)
    kept = [part for part in parts if part]
    return [
        {
            "start": start if k == 0 else float(part[0]["start"]),
            "end": end if k == len(kept) - 1 else float(part[-1]["end"]),
            "text": "".join(str(w["word"]) for w in part).strip(),
        }
        for k, part in enumerate(kept)
    ]


# --- HTML ---------------------------------------------------------------------------------

STYLE = """
body { font: 16px/1.5 system-ui, sans-serif; margin: 0 auto; max-width: 52rem; padding: 1rem;
       color: #1d2327; }
header { border-bottom: 2px solid #2b6cb0; margin-bottom: 1rem; }
nav ol { padding-left: 1.2rem; }
.lesson { border: 1px solid #d5dbe1; border-radius: 6px; margin: 1rem 0; padding: 0 1rem 1rem; }
.time, .meta { color: #5a6570; font-size: 0.9rem; }
.terms li { display: inline-block; background: #ebf4ff; border-radius: 4px; margin: 2px;
            padding: 0 6px; }
.terms { padding: 0; }
.frames { display: flex; flex-wrap: wrap; gap: 0.5rem; }
.frames figure { margin: 0; }
.frames img { width: 240px; border: 1px solid #d5dbe1; }
.transcript { white-space: pre-wrap; background: #f7f9fb; padding: 0.5rem; }
.quiz li { margin-bottom: 0.75rem; }
"""


@dataclass(frozen=True, kw_only=True, slots=True)
class Player:
    """Where the page finds the video and its captions, relative to the page."""

    video: str
    captions: str | None = None


def render_html(
    course: Mapping[str, Any],
    *,
    frames_base: str | os.PathLike[str] | None = None,
    player: Player | None = None,
) -> str:
    """A self-contained page: contents, then each lesson with times, key frames, transcript
    and quiz (answers folded away). file:// frame refs become paths relative to frames_base.

    With a ``player`` the page is the learner's: the video with its captions track on top,
    every lesson time, key frame and transcript line seeks it, and each quiz is answered and
    scored in the page (one inline script, no server)."""
    if player is not None:
        return _learner_page(course, None if frames_base is None else str(frames_base), player)
    title = _e(course["title"])
    parts = [
        "<!doctype html>",
        '<html lang="' + _e(course.get("language") or "en") + '">',
        '<head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{title}</title><style>{STYLE}</style></head>",
        "<body>",
        f"<header><h1>{title}</h1>{_paragraph(course.get('summary', ''))}",
        f'<p class="meta">{_source(course)}</p></header>',
        _contents(course),
        "<main>",
    ]
    base = None if frames_base is None else str(frames_base)
    for m, module in enumerate(course["modules"], start=1):
        parts.append(f'<section id="m{m}"><h2>{_e(module["title"])}</h2>')
        parts.extend(_lesson_html(lesson, base) for lesson in module["lessons"])
        parts.append("</section>")
    parts += ["</main>", _footer(course), "</body></html>"]
    return "\n".join(parts) + "\n"


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _paragraph(text: str) -> str:
    return f"<p>{_e(text)}</p>" if text else ""


def _source(course: Mapping[str, Any]) -> str:
    source = course.get("source", {})
    duration = clock(float(source.get("duration_s", 0)))
    return f"Source: {_e(source.get('video_uri', ''))} ({duration})"


def _contents(course: Mapping[str, Any]) -> str:
    items = []
    for module in course["modules"]:
        lessons = "".join(
            f'<li><a href="#{_e(lesson["id"])}">{_e(lesson["title"])}</a> '
            f'<span class="time">{clock(lesson["start"])}</span></li>'
            for lesson in module["lessons"]
        )
        items.append(f"<li>{_e(module['title'])}<ol>{lessons}</ol></li>")
    return f"<nav><h2>Contents</h2><ol>{''.join(items)}</ol></nav>"


def _lesson_html(lesson: Mapping[str, Any], frames_base: str | None) -> str:
    span = f"{clock(lesson['start'])} &ndash; {clock(lesson['end'])}"
    terms = "".join(f"<li>{_e(term)}</li>" for term in lesson.get("key_terms", ()))
    parts = [
        f'<article class="lesson" id="{_e(lesson["id"])}">',
        f'<h3>{_e(lesson["title"])}</h3><p class="time">{span}</p>',
        _paragraph(lesson.get("summary", "")),
        f'<ul class="terms">{terms}</ul>' if terms else "",
        _frames_html(lesson.get("key_frames", ()), frames_base),
    ]
    if lesson.get("transcript"):
        parts.append(f'<h4>Transcript</h4><p class="transcript">{_e(lesson["transcript"])}</p>')
    parts += [_quiz_html(lesson.get("quiz", ())), "</article>"]
    return "\n".join(part for part in parts if part)


def _frames_html(frames: Sequence[Mapping[str, Any]], frames_base: str | None) -> str:
    figures = []
    for frame in frames:
        at = clock(float(frame["t"]))
        src = image_src(str(frame["ref"]), frames_base)
        picture = f'<img src="{_e(src)}" alt="Slide at {at}" loading="lazy">' if src else ""
        figures.append(f"<figure>{picture}<figcaption>{at}</figcaption></figure>")
    return f'<div class="frames">{"".join(figures)}</div>' if figures else ""


def image_src(ref: str, frames_base: str | None = None) -> str:
    """Where the page finds a frame: relative to frames_base when both are local or share a
    prefix, else the ref itself; "" for schemes a browser must not load from a course page."""
    if frames_base:
        base = frames_base.removeprefix(FILE_SCHEME)
        if ref.startswith(FILE_SCHEME) and not urlsplit(base).scheme:
            path = os.path.relpath(ref.removeprefix(FILE_SCHEME), base or "/")
            return PurePosixPath(path).as_posix()
        if ref.startswith(frames_base.rstrip("/") + "/"):
            return ref[len(frames_base.rstrip("/")) + 1 :]
    return ref if urlsplit(ref).scheme.lower() in IMAGE_SCHEMES else ""


def _quiz_html(quiz: Sequence[Mapping[str, Any]]) -> str:
    if not quiz:
        return ""
    items = []
    for question in quiz:
        choices = "".join(f"<li>{_e(choice)}</li>" for choice in question.get("choices", ()))
        explanation = question.get("explanation", "")
        items.append(
            f"<li><p>{_e(question['prompt'])}</p>"
            + (f'<ul class="choices">{choices}</ul>' if choices else "")
            + f"<details><summary>Show answer</summary><p><strong>{_e(question['answer'])}"
            + f"</strong></p>{_paragraph(explanation)}</details></li>"
        )
    return f'<h4>Quiz</h4><ol class="quiz">{"".join(items)}</ol>'


def _footer(course: Mapping[str, Any]) -> str:
    made = ", ".join(f"{_e(k)}: {_e(v)}" for k, v in sorted(course.get("generated_by", {}).items()))
    return f'<footer class="meta">Generated by {made}</footer>' if made else ""


# --- the learner's page ---------------------------------------------------------------------

LEARNER_STYLE = """
.player { position: sticky; top: 0; background: #fff; padding: 0.5rem 0; z-index: 1; }
video { width: 100%; max-height: 45vh; background: #000; border-radius: 4px; }
button.seek { font: inherit; color: #2b6cb0; background: none; border: 0; cursor: pointer;
              padding: 0; }
.frames button.seek { border: 1px solid #d5dbe1; }
.frames img { display: block; }
ol.transcript { list-style: none; padding: 0.5rem; background: #f7f9fb; }
.quiz fieldset { border: 1px solid #d5dbe1; border-radius: 6px; margin-bottom: 0.5rem; }
.quiz label { display: block; }
.feedback.right { color: #276749; }
.feedback.wrong { color: #9b2c2c; }
.score, #total-score { font-weight: 600; }
"""


def _learner_page(course: Mapping[str, Any], frames_base: str | None, player: Player) -> str:
    title = _e(course["title"])
    language = str(course.get("language") or "en")
    parts = [
        "<!doctype html>",
        f'<html lang="{_e(language)}">',
        '<head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{title}</title><style>{STYLE}{LEARNER_STYLE}</style></head>",
        "<body>",
        f"<header><h1>{title}</h1>{_paragraph(course.get('summary', ''))}",
        f'<p class="meta">{_source(course)}</p></header>',
        '<div class="player">'
        + page.video_html(player.video, player.captions, language)
        + '<p id="total-score" aria-live="polite"></p></div>',
        _learner_contents(course),
        "<main>",
    ]
    for m, module in enumerate(course["modules"], start=1):
        parts.append(f'<section id="m{m}"><h2>{_e(module["title"])}</h2>')
        parts.extend(_learner_lesson(lesson, frames_base) for lesson in module["lessons"])
        parts.append("</section>")
    parts += [
        "</main>",
        _footer(course),
        f"<script>{page.asset('player.js')}</script>",
        "</body></html>",
    ]
    return "\n".join(parts) + "\n"


def _seek(seconds: float, label: str, css: str = "seek time") -> str:
    return f'<button type="button" class="{css}" data-seek="{page.fmt_t(seconds)}">{label}</button>'


def _learner_contents(course: Mapping[str, Any]) -> str:
    items = []
    for module in course["modules"]:
        lessons = "".join(
            f'<li><a href="#{_e(lesson["id"])}">{_e(lesson["title"])}</a> '
            + _seek(float(lesson["start"]), clock(lesson["start"]))
            + "</li>"
            for lesson in module["lessons"]
        )
        items.append(f"<li>{_e(module['title'])}<ol>{lessons}</ol></li>")
    return f"<nav><h2>Contents</h2><ol>{''.join(items)}</ol></nav>"


def _learner_lesson(lesson: Mapping[str, Any], frames_base: str | None) -> str:
    span = _seek(float(lesson["start"]), f"{clock(lesson['start'])} &ndash; {clock(lesson['end'])}")
    terms = "".join(f"<li>{_e(term)}</li>" for term in lesson.get("key_terms", ()))
    frames = list(lesson.get("key_frames", ()))
    srcs = [image_src(str(frame["ref"]), frames_base) for frame in frames]
    parts = [
        f'<article class="lesson" id="{_e(lesson["id"])}">',
        f'<h3>{_e(lesson["title"])}</h3><p class="time">{span}</p>',
        _paragraph(lesson.get("summary", "")),
        f'<ul class="terms">{terms}</ul>' if terms else "",
        page.frames_html(frames, srcs),
        page.transcript_html(lesson.get("segments", ()), str(lesson.get("transcript", ""))),
        page.quiz_html(str(lesson["id"]), lesson.get("quiz", ())),
        "</article>",
    ]
    return "\n".join(part for part in parts if part)
