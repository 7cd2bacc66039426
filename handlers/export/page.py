"""HTML pieces the course page and the SCORM lessons share: the player with its captions track,
seek buttons for key frames and transcript lines, and a quiz graded in the page.

Everything from the course is escaped here (text and attributes); the quiz's answer key goes
into a ``<script type="application/json">`` with ``<``, ``>`` and ``&`` written as JSON
escapes, so no title, transcript or answer can close a tag or start a script.
"""

from __future__ import annotations

import html
import json
import string
from collections.abc import Mapping, Sequence
from importlib import resources
from typing import Any

LETTERS = string.ascii_lowercase


def clock(seconds: float) -> str:
    """mm:ss, or h:mm:ss from an hour on."""
    total = max(0, int(seconds))
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes:02d}:{secs:02d}"


def e(value: Any) -> str:
    """Text or an attribute value, escaped."""
    return html.escape(str(value), quote=True)


def asset(name: str) -> str:
    """A file of handlers/export/assets (the player and SCORM scripts, the stylesheet)."""
    return (resources.files("handlers.export") / "assets" / name).read_text(encoding="utf-8")


def script_json(value: Any) -> str:
    """JSON safe inside a <script> element: no "<", ">" or "&" appears literally."""
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def fmt_t(seconds: float) -> str:
    return f"{float(seconds):.3f}".rstrip("0").rstrip(".") or "0"


def video_html(
    src: str,
    captions: str | None,
    language: str,
    *,
    start: float | None = None,
    end: float | None = None,
) -> str:
    """The player; with start/end it plays one lesson's span (a SCO)."""
    span = "" if end is None else f' data-start="{fmt_t(start or 0)}" data-end="{fmt_t(end)}"'
    track = (
        f'<track kind="captions" src="{e(captions)}" srclang="{e(language)}" '
        f'label="Captions ({e(language)})" default>'
        if captions
        else ""
    )
    return (
        f'<video id="player" controls preload="metadata" playsinline src="{e(src)}"{span}>'
        f"{track}Your browser cannot play this video.</video>"
    )


def frames_html(frames: Sequence[Mapping[str, Any]], srcs: Sequence[str]) -> str:
    """Key frames as buttons that seek the player to their time."""
    figures = []
    for frame, src in zip(frames, srcs, strict=True):
        at = clock(float(frame["t"]))
        picture = f'<img src="{e(src)}" alt="Slide at {at}" loading="lazy">' if src else ""
        figures.append(
            f'<figure><button type="button" class="seek frame" data-seek="{fmt_t(frame["t"])}"'
            f' title="Play from {at}">{picture}</button><figcaption>{at}</figcaption></figure>'
        )
    return f'<div class="frames">{"".join(figures)}</div>' if figures else ""


def transcript_html(segments: Sequence[Mapping[str, Any]], fallback: str = "") -> str:
    """One line per segment, each a button that seeks to its start (plain text without), in
    a <details> the learner can fold away."""
    lines = [
        f'<li><button type="button" class="seek time" data-seek="{fmt_t(s["start"])}">'
        f"{clock(float(s['start']))}</button> <span>{e(str(s['text']).strip())}</span></li>"
        for s in segments
        if str(s.get("text", "")).strip()
    ]
    if lines:
        body = f'<ol class="transcript">{"".join(lines)}</ol>'
    elif fallback:
        body = f'<p class="transcript">{e(fallback)}</p>'
    else:
        return ""
    return f"<details open><summary>Transcript</summary>{body}</details>"


def question_key(lesson_id: str, index: int, question: Mapping[str, Any]) -> dict[str, Any]:
    """What the page grades against: a choice question is answered by its choice's letter."""
    choices = [str(c) for c in question.get("choices", ())]
    answer = str(question["answer"])
    is_choice = answer in choices and len(choices) <= len(LETTERS)
    return {
        "id": f"{lesson_id}-q{index + 1}",
        "kind": "choice" if is_choice else "fill-in",
        "prompt": str(question["prompt"]),
        "answer": answer,
        "correct": LETTERS[choices.index(answer)] if is_choice else answer,
        "explanation": str(question.get("explanation") or ""),
    }


def quiz_html(lesson_id: str, quiz: Sequence[Mapping[str, Any]]) -> str:
    """A form graded in the page by player.js: radio buttons or a text box per question."""
    if not quiz:
        return ""
    key = [question_key(lesson_id, i, q) for i, q in enumerate(quiz)]
    items = []
    for i, (question, entry) in enumerate(zip(quiz, key, strict=True)):
        name = f"{lesson_id}-q{i + 1}"
        if entry["kind"] == "choice":
            field = "".join(
                f'<label><input type="radio" name="{e(name)}" value="{LETTERS[c]}"> '
                f"{e(choice)}</label>"
                for c, choice in enumerate(question.get("choices", ()))
            )
        else:
            field = (
                f'<label>Answer: <input type="text" name="{e(name)}" autocomplete="off"></label>'
            )
        items.append(
            f'<li class="question" data-question="{i}"><fieldset><legend>{e(entry["prompt"])}'
            f'</legend>{field}</fieldset><p class="feedback" hidden></p></li>'
        )
    form_id = f"quiz-{lesson_id}"
    return (
        f'<h4>Quiz</h4><form class="quiz" id="{e(form_id)}" data-key="{e(form_id)}-key">'
        f'<ol>{"".join(items)}</ol><button type="submit">Check my answers</button> '
        f'<span class="score" aria-live="polite"></span></form>'
        f'<script type="application/json" id="{e(form_id)}-key">{script_json(key)}</script>'
    )
