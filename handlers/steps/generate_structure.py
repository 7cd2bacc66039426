"""generate_structure: modules and lessons from the transcript, the video analysis and slides."""

from __future__ import annotations

from handlers.ai.port import StructureInputs
from handlers.registry import StepContext, StepResult, register
from handlers.steps.common import (
    call,
    provider,
    read_json,
    require_every_frame_shard,
    slides,
    write_json,
)


@register("generate_structure")
def generate_structure(ctx: StepContext) -> StepResult:
    # Check every prerequisite's outputs before spending anything on a provider call.
    transcript = read_json(ctx, ctx.upstream("transcribe").outputs["transcript"])
    analysis = read_json(ctx, ctx.upstream("analyze_video").outputs["analysis"])
    require_every_frame_shard(ctx)
    request = ctx.course.request or {}
    duration = float(ctx.upstream("prepare_video").summary.get("duration_s", 0.0))
    inputs = StructureInputs(
        title=request.get("title", "Course"),
        language=request.get("language", "en"),
        duration_s=duration,
        transcript=transcript,
        video_analysis=analysis,
        slides=slides(ctx),
    )
    ai = provider(ctx)
    result = call(ctx, "ai/course_structure", lambda: ai.generate_structure(inputs))
    ref = write_json(ctx, "structure.json", dict(result.data))
    lessons = sum(len(m["lessons"]) for m in result.data["modules"])
    return StepResult(
        outputs={"structure": ref},
        summary={"modules": len(result.data["modules"]), "lessons": lessons},
        metering=dict(result.metering),
    )
