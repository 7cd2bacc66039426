"""finalize: assemble the course, validate it against schemas/course, write JSON and HTML,
the WebVTT captions and the exports the request asks for (options.exports)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

import schemas
from handlers.course import Player, compose_course, render_html
from handlers.export import DEFAULT_EXPORTS, ExportRefused, chosen, webvtt, write_exports
from handlers.registry import PermanentStepError, StepContext, StepResult, register
from handlers.steps.common import local, option, read_json, write_json

CAPTIONS = "course.vtt"
VIDEO = "media/video.mp4"  # where prepare_video puts the normalised video


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
        formats = chosen(option(ctx, "exports", list(DEFAULT_EXPORTS)))
    except schemas.SchemaError as err:
        raise PermanentStepError(f"the assembled course is invalid: {err}") from None
    except ExportRefused as err:
        raise PermanentStepError(str(err)) from None
    artifacts = ctx.services.artifacts
    course_ref = write_json(ctx, "course.json", course)
    captions = webvtt.render(webvtt.course_segments(course)).encode()
    captions_ref = artifacts.put_bytes(ctx.course_id, CAPTIONS, captions)
    video_ref = prepared.outputs.get("video")
    player = Player(video=VIDEO, captions=CAPTIONS) if video_ref else None
    html = render_html(course, frames_base=_base(course_ref), player=player).encode()
    html_ref = artifacts.put_bytes(ctx.course_id, "course.html", html)
    outputs = {"course": course_ref, "html": html_ref, "captions": captions_ref}
    outputs.update(_exports(ctx, course, formats, video_ref, manifest["frames"]))
    lessons = sum(len(m["lessons"]) for m in course["modules"])
    questions = sum(len(lesson["quiz"]) for m in course["modules"] for lesson in m["lessons"])
    return StepResult(
        outputs=outputs,
        summary={
            "modules": len(course["modules"]),
            "lessons": lessons,
            "questions": questions,
            "exports": formats,
        },
    )


def _exports(
    ctx: StepContext,
    course: dict[str, Any],
    formats: list[str],
    video_ref: str | None,
    frames: list[dict[str, Any]],
) -> dict[str, str]:
    """Each export written in scratch, then stored as an artifact under exports/."""
    if not formats:
        return {}
    lessons = [lesson for module in course["modules"] for lesson in module["lessons"]]
    wanted = {str(frame["name"]) for lesson in lessons for frame in lesson["key_frames"]}
    refs = {str(f["name"]): str(f["ref"]) for f in frames if str(f["name"]) in wanted}
    video = local(ctx, video_ref) if video_ref else None
    frame_files = {name: local(ctx, ref) for name, ref in refs.items()}
    work = Path(ctx.services.scratch) / ctx.course_id / f"exports-{os.getpid()}"
    try:
        written = write_exports(work, course, formats, video=video, frames=frame_files)
        return {
            fmt: ctx.services.artifacts.put_file(ctx.course_id, f"exports/{path.name}", path)
            for fmt, path in written.items()
        }
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _base(course_ref: str) -> str:
    """The folder that holds course.json, so key frames can be linked relatively."""
    return course_ref.rsplit("/", 1)[0] + "/"
