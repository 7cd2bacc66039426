"""finalize: assemble the course, validate it against schemas/course, write JSON and HTML."""

from __future__ import annotations

import schemas
from handlers.course import compose_course, render_html
from handlers.registry import PermanentStepError, StepContext, StepResult, register
from handlers.steps.common import read_json, write_json


@register("finalize")
def finalize(ctx: StepContext) -> StepResult:
    structure = read_json(ctx, ctx.upstream("generate_structure").outputs["structure"])
    quizzes = read_json(ctx, ctx.upstream("add_interactivity").outputs["quizzes"])
    transcript = read_json(ctx, ctx.upstream("transcribe").outputs["transcript"])
    manifest = read_json(ctx, ctx.upstream("extract_frames").outputs["manifest"])
    prepared = ctx.upstream("prepare_video")
    providers = {
        t.step: str(t.metering.get("provider", "offline"))
        for t in ctx.course.tasks.values()
        if t.metering
    }
    course = compose_course(
        ctx.course_id,
        ctx.course.request or {},
        float(prepared.summary.get("duration_s", 0.0)),
        structure,
        quizzes,
        transcript,
        [{"name": f["name"], "t": f["t"], "ref": f["ref"]} for f in manifest["frames"]],
        generated_by={"coursegen": "0.1.0", **providers},
    )
    try:
        schemas.validate("course", course)
    except schemas.SchemaError as err:
        raise PermanentStepError(f"the assembled course is invalid: {err}") from None
    course_ref = write_json(ctx, "course.json", course)
    html = render_html(course, frames_base=_base(course_ref)).encode()
    html_ref = ctx.services.artifacts.put_bytes(ctx.course_id, "course.html", html)
    lessons = sum(len(m["lessons"]) for m in course["modules"])
    questions = sum(len(lesson["quiz"]) for m in course["modules"] for lesson in m["lessons"])
    return StepResult(
        outputs={"course": course_ref, "html": html_ref},
        summary={"modules": len(course["modules"]), "lessons": lessons, "questions": questions},
    )


def _base(course_ref: str) -> str:
    """The folder that holds course.json, so key frames can be linked relatively."""
    return course_ref.rsplit("/", 1)[0] + "/"
