"""add_interactivity: quiz questions per lesson, answers grounded in that lesson's material."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from handlers.ai.port import LessonText
from handlers.course import by_midpoint
from handlers.registry import PermanentStepError, StepContext, StepResult, register
from handlers.steps.common import call, option, provider, read_json, slides, write_json


def lesson_texts(
    structure: Mapping[str, Any], transcript: Mapping[str, Any], slides: Sequence[Mapping[str, Any]]
) -> list[LessonText]:
    """Each lesson's spoken text and slide text, by its time range."""
    lessons = [lesson for m in structure["modules"] for lesson in m["lessons"]]
    # The lesson's words as the course shows them (cut at lesson starts by word times).
    said = by_midpoint(transcript["segments"], [float(lesson["start"]) for lesson in lessons])
    out = []
    for i, lesson in enumerate(lessons):
        start, end = float(lesson["start"]), float(lesson["end"])
        spoken = " ".join(said[i])
        shown = [f for f in slides if start <= float(f["t"]) < end]
        # One line per slide line, each once: a bullet is a question's unit, and the frames
        # of one slide read it again and again.
        lines = (" ".join(str(line).split()) for f in shown for line in [f["title"], *f["body"]])
        text = "\n".join(dict.fromkeys(line for line in lines if line))
        out.append(
            LessonText(
                index=i,
                title=lesson["title"],
                start=start,
                end=end,
                transcript=spoken,
                slide_text=text,
            )
        )
    return out


@register("add_interactivity")
def add_interactivity(ctx: StepContext) -> StepResult:
    structure = read_json(ctx, ctx.upstream("generate_structure").outputs["structure"])
    transcript = read_json(ctx, ctx.upstream("transcribe").outputs["transcript"])
    lessons = lesson_texts(structure, transcript, slides(ctx))
    per_lesson = max(2, int(option(ctx, "questionsPerLesson", 2)))
    ai = provider(ctx)
    result = call(
        ctx,
        "ai/interactivity",
        lambda: ai.add_interactivity(structure, lessons, per_lesson=per_lesson),
    )
    counts = {q["lesson"]: len(q["questions"]) for q in result.data["lessons"]}
    short = [i for i in range(len(lessons)) if counts.get(i, 0) < 2]
    if short:
        raise PermanentStepError(f"lessons {short} have fewer than two questions")
    ref = write_json(ctx, "interactivity.json", dict(result.data))
    return StepResult(
        outputs={"quizzes": ref},
        summary={"questions": sum(counts.values()), "lessons": len(lessons)},
        metering=dict(result.metering),
    )
