"""The finished course: compose_course fits schemas/course.json and render_html is safe HTML."""

from __future__ import annotations

import copy
import re
from html.parser import HTMLParser
from typing import Any

import pytest

import schemas
from handlers.course import clock, compose_course, image_src, render_html

HOSTILE = "<script>alert(1)</script>"
REQUEST = {"video_uri": "gs://bucket/talk.mp4", "title": "Solar Power", "language": "en"}
TRANSCRIPT = {
    "language": "en",
    "duration_s": 100.0,
    "segments": [
        {"start": 0.0, "end": 8.0, "text": "Photons free electrons."},
        {"start": 8.0, "end": 21.0, "text": "Silicon absorbs light."},  # midpoint 14.5: lesson 1
        {"start": 21.0, "end": 30.0, "text": "Inverters switch current."},
        {"start": 70.0, "end": 99.0, "text": "The grid balances demand."},
    ],
}
FRAMES = [
    {"name": "frame_00000000.jpg", "t": 0.0, "ref": "file:///data/c1/frames/frame_00000000.jpg"},
    {"name": "frame_00020000.jpg", "t": 20.0, "ref": "file:///data/c1/frames/frame_00020000.jpg"},
    {"name": "frame_00070000.jpg", "t": 70.0, "ref": "javascript:alert(1)"},
]


def question(answer: str, kind: str = "multiple_choice") -> dict[str, Any]:
    return {
        "kind": kind, "prompt": f"Which is {answer}?", "choices": [answer, "other"],
        "answer": answer, "explanation": "Because the lesson says so.",
    }  # fmt: skip


def lesson(title: str, start: float, end: float, *frames: str) -> dict[str, Any]:
    return {
        "title": title, "start": start, "end": end, "summary": f"About {title}.",
        "key_frames": list(frames), "key_terms": [title.lower()],
    }  # fmt: skip


STRUCTURE = {
    "title": "Solar Power",
    "summary": "How sunlight becomes electricity.",
    "modules": [
        {
            "title": "Generation",
            "lessons": [
                lesson("Cells", 0.0, 20.0, "frame_00000000.jpg", "frame_unknown.jpg"),
                lesson("Inverters", 20.0, 65.0, "frame_00020000.jpg"),
            ],
        },
        {"title": "", "lessons": [lesson("Grid", 65.0, 100.0, "frame_00070000.jpg")]},
    ],
}
QUIZZES = {
    "lessons": [
        {"lesson": i, "questions": [question(term), question(term, "cloze")]}
        for i, term in enumerate(["cells", "inverters", "grid"])
    ]
}


def compose(**changes: Any) -> dict[str, Any]:
    args: dict[str, Any] = {
        "course_id": "course-1", "request": REQUEST, "duration_s": 100.0,
        "structure": STRUCTURE, "interactivity": QUIZZES, "transcript": TRANSCRIPT,
        "frames": FRAMES, "generated_by": {"coursegen": "0.1.0", "transcribe": "offline"},
    }  # fmt: skip
    return compose_course(**{**args, **changes})


def lessons_of(course: dict[str, Any]) -> list[dict[str, Any]]:
    return [item for module in course["modules"] for item in module["lessons"]]


def test_the_course_validates_and_numbers_lessons_per_module() -> None:
    course = compose()
    schemas.validate("course", course)
    assert [item["id"] for item in lessons_of(course)] == ["m1-l1", "m1-l2", "m2-l1"]
    assert course["source"] == {"video_uri": "gs://bucket/talk.mp4", "duration_s": 100.0}
    assert course["modules"][1]["title"] == "Grid"  # an untitled module takes its first lesson's


def test_each_segment_lands_in_the_lesson_holding_its_midpoint() -> None:
    spoken = [item["transcript"] for item in lessons_of(compose())]
    assert spoken == [
        "Photons free electrons. Silicon absorbs light.",
        "Inverters switch current.",
        "The grid balances demand.",
    ]


def test_a_segment_with_word_times_is_cut_at_the_lesson_start_inside_it() -> None:
    said = [
        (15.0, 16.0, " Silicon"), (16.0, 17.0, " absorbs"), (17.0, 19.5, " light."),
        (20.5, 21.0, " Inverters"), (21.0, 22.5, " switch"), (22.5, 24.0, " current."),
    ]  # fmt: skip
    runs_on = {
        "start": 15.0, "end": 24.0, "text": "Silicon absorbs light. Inverters switch current.",
        "words": [{"start": a, "end": b, "word": w} for a, b, w in said],
    }  # fmt: skip
    transcript = {**TRANSCRIPT, "segments": [TRANSCRIPT["segments"][0], runs_on]}
    course = compose(transcript=transcript)
    schemas.validate("course", course)
    cells, inverters, _ = lessons_of(course)
    assert cells["transcript"] == "Photons free electrons. Silicon absorbs light."
    assert inverters["transcript"] == "Inverters switch current."
    assert inverters["segments"] == [
        {"start": 20.5, "end": 24.0, "text": "Inverters switch current."}
    ]
    # Without word times the segment stays whole, in the lesson holding its midpoint (19.5).
    bare = {k: v for k, v in runs_on.items() if k != "words"}
    whole = compose(transcript={**TRANSCRIPT, "segments": [bare]})
    assert [item["transcript"] for item in lessons_of(whole)][:2] == [bare["text"], ""]


def test_key_frames_carry_refs_and_quizzes_follow_the_lesson_index() -> None:
    first, second, _ = lessons_of(compose())
    assert first["key_frames"] == [FRAMES[0]]  # a name the manifest lacks is left out
    assert [q["answer"] for q in first["quiz"]] == ["cells", "cells"]
    assert [q["answer"] for q in second["quiz"]] == ["inverters", "inverters"]


def test_a_lesson_without_questions_fails_the_schema() -> None:
    partial = {"lessons": QUIZZES["lessons"][:2]}
    with pytest.raises(schemas.SchemaError, match="quiz"):
        schemas.validate("course", compose(interactivity=partial))


def test_title_falls_back_to_the_structure_then_a_placeholder() -> None:
    assert compose(request={"video_uri": "x"})["title"] == "Solar Power"
    untitled = {**STRUCTURE, "title": ""}
    assert compose(request={}, structure=untitled)["title"] == "Untitled course"


def hostile_course() -> dict[str, Any]:
    course = copy.deepcopy(compose())
    course["title"] = HOSTILE
    course["summary"] = HOSTILE
    course["modules"][0]["title"] = HOSTILE
    first = course["modules"][0]["lessons"][0]
    first.update(title=HOSTILE, summary=HOSTILE, transcript=HOSTILE, key_terms=[HOSTILE])
    first["quiz"][0].update(prompt=HOSTILE, answer=HOSTILE, choices=[HOSTILE, "x"])
    first["key_frames"][0]["ref"] = '"><script>alert(1)</script>.jpg'
    course["generated_by"] = {HOSTILE: HOSTILE}
    return course


def test_hostile_text_is_escaped_everywhere() -> None:
    page = render_html(hostile_course())
    assert "<script" not in page.lower()
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "&lt;title&gt;" not in page  # escaped once, not twice
    assert page.count("&lt;script&gt;alert(1)&lt;/script&gt;") >= 10


class _Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.images: list[str] = []
        self.tags: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        if tag == "img":
            self.images.append(dict(attrs)["src"] or "")


def test_the_page_has_contents_times_frames_and_folded_answers() -> None:
    page = render_html(compose(), frames_base="file:///data/c1/")
    parsed = _Tags()
    parsed.feed(page)
    assert parsed.images == ["frames/frame_00000000.jpg", "frames/frame_00020000.jpg"]
    assert "script" not in parsed.tags
    assert '<a href="#m1-l2">Inverters</a>' in page
    assert "00:20 &ndash; 01:05" in page
    answers = re.findall(r"<details><summary>Show answer</summary><p><strong>(\w+)", page)
    assert answers == ["cells", "cells", "inverters", "inverters", "grid", "grid"]
    assert page.startswith("<!doctype html>") and page.rstrip().endswith("</html>")


@pytest.mark.parametrize(
    ("ref", "base", "expected"),
    [
        ("file:///data/c1/frames/a.jpg", "file:///data/c1/", "frames/a.jpg"),
        ("file:///data/c1/frames/a.jpg", "/data/c1", "frames/a.jpg"),
        ("file:///data/c2/frames/a.jpg", "file:///data/c1/", "../c2/frames/a.jpg"),
        ("https://cdn.example/c1/frames/a.jpg", "https://cdn.example/c1/", "frames/a.jpg"),
        ("https://cdn.example/a.jpg", None, "https://cdn.example/a.jpg"),
        ("file:///data/c1/a.jpg", None, "file:///data/c1/a.jpg"),
        ("javascript:alert(1)", None, ""),
        ("data:text/html,<script>", "file:///data/", ""),
    ],
)
def test_image_sources(ref: str, base: str | None, expected: str) -> None:
    assert image_src(ref, base) == expected


def test_clock_shows_minutes_and_seconds_then_hours() -> None:
    assert [clock(0), clock(65.9), clock(3725)] == ["00:00", "01:05", "1:02:05"]


def test_the_learner_page_has_the_player_seek_buttons_and_only_its_own_scripts() -> None:
    from handlers.course import Player

    page = render_html(
        hostile_course(), frames_base="file:///data/c1/", player=Player(video="media/video.mp4",
        captions="course.vtt"),
    )  # fmt: skip
    parsed = _Tags()
    parsed.feed(page)
    assert parsed.tags.count("video") == 1 and parsed.tags.count("track") == 1
    assert (
        '<video id="player" controls preload="metadata" playsinline src="media/video.mp4">' in page
    )
    assert '<track kind="captions" src="course.vtt"' in page
    # one inline player script and one inert JSON answer key per lesson, nothing else
    assert parsed.tags.count("script") == 1 + 3
    assert page.count('<script type="application/json"') == 3
    assert "<script>alert" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert 'data-seek="20"' in page and 'data-seek="8"' in page  # a lesson and a segment
    assert len(re.findall(r'<form class="quiz"', page)) == 3
