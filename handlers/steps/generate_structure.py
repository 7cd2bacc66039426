"""generate_structure: modules and lessons from the transcript, the video analysis and slides."""

from __future__ import annotations

from handlers.ai.port import StructureInputs
from handlers.registry import PermanentStepError, StepContext, StepResult, register
from handlers.steps.common import call, provider, read_json, write_json


def slides(ctx: StepContext) -> list[dict[str, object]]:
    """Every shard's slide text, in time order (the fan-in of analyze_frames)."""
    found = []
    for shard in ctx.shards("analyze_frames"):
        found.extend(read_json(ctx, shard.outputs["slides"])["frames"])
    return sorted(found, key=lambda f: (float(f["t"]), str(f["name"])))


@register("generate_structure")
def generate_structure(ctx: StepContext) -> StepResult:
    # Check every prerequisite's outputs before spending anything on a provider call.
    transcript = read_json(ctx, ctx.upstream("transcribe").outputs["transcript"])
    analysis = read_json(ctx, ctx.upstream("analyze_video").outputs["analysis"])
    extracted = ctx.upstream("extract_frames")
    expected = int(extracted.summary.get("shards", 0))
    if len(ctx.shards("analyze_frames")) != expected:
        raise PermanentStepError(f"expected {expected} analyze_frames shards to have succeeded")
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
