"""Lesson helpers the offline provider's tests share: lesson texts, lessons, grounded quizzes."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from handlers.ai.port import LessonText


def lesson_texts(
    structure: Mapping[str, Any],
    transcript: Mapping[str, Any],
    slides: Sequence[Mapping[str, Any]],
) -> list[LessonText]:
    """What the add_interactivity step hands the provider: each lesson's speech joined without
    punctuation, and its slides' titles and bullets (footer included), a line each, once."""
    lessons = [lesson for module in structure["modules"] for lesson in module["lessons"]]
    out = []
    for i, lesson in enumerate(lessons):
        start, end = float(lesson["start"]), float(lesson["end"])
        spoken = " ".join(
            s["text"] for s in transcript["segments"] if start <= (s["start"] + s["end"]) / 2 < end
        )
        lines = [
            " ".join(str(line).split())
            for f in slides
            if start <= f["t"] < end
            for line in [f["title"], *f["body"]]
        ]
        shown = "\n".join(dict.fromkeys(line for line in lines if line))
        out.append(
            LessonText(
                index=i, title=lesson["title"], start=start, end=end,
                transcript=spoken, slide_text=shown,
            )
        )  # fmt: skip
    return out


def lessons_of(structure: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    return [lesson for module in structure["modules"] for lesson in module["lessons"]]


def material(lesson: LessonText) -> str:
    return f"{lesson.transcript}\n{lesson.slide_text}".lower()


def assert_grounded(quizzes: Mapping[str, Any], lessons: Sequence[LessonText]) -> None:
    """At least two questions a lesson; each answer in the lesson's text, no distractor in it."""
    by_index = {entry["lesson"]: entry["questions"] for entry in quizzes["lessons"]}
    assert sorted(by_index) == [lesson.index for lesson in lessons]
    for lesson in lessons:
        text = material(lesson)
        assert len(by_index[lesson.index]) >= 2, lesson.title
        for question in by_index[lesson.index]:
            assert question["answer"].lower() in text, (lesson.title, question)
            assert question["answer"] in question["choices"]
            assert len(question["choices"]) >= 2
            assert len(set(question["choices"])) == len(question["choices"])
            for choice in question["choices"]:
                if choice != question["answer"]:
                    assert choice.lower() not in text, (lesson.title, choice)
            if question["kind"] == "cloze":
                assert "_____" in question["prompt"]
                assert question["answer"].lower() not in question["prompt"].lower()
