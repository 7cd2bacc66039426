"""analyze_video: topic segments and key terms for the whole video (Gemini in the cloud), from
the stitched transcript and the scene changes extract_frames found; a long lecture goes to an
AI provider window by window, each carrying the summary so far, merged into one analysis."""

from __future__ import annotations

from handlers.registry import StepContext, StepResult, register
from handlers.steps.common import call, local, provider, read_json, write_json


def scene_frames(ctx: StepContext) -> list[float]:
    """The scene-change times extract_frames found (its one decode pass; none repeated here)."""
    manifest = read_json(ctx, ctx.upstream("extract_frames").outputs["manifest"])
    return [float(f["t"]) for f in manifest["frames"] if f.get("kind") == "scene"]


@register("analyze_video")
def analyze_video(ctx: StepContext) -> StepResult:
    prepared = ctx.upstream("prepare_video")
    video = local(ctx, prepared.outputs["video"])
    ai = provider(ctx)
    # The transcript transcribe stitched (offline there is no multimodal model: topics come
    # from aligning it with the scene changes; no speech is decoded twice).
    transcript = read_json(ctx, ctx.upstream("transcribe").outputs["transcript"])
    scenes = scene_frames(ctx)
    # The AI providers take a long lecture in windows (handlers/ai/windows.py): progress and
    # cancellation between windows.
    result = call(
        ctx,
        "ai/video_analysis",
        lambda: ai.analyze_video(video, transcript, scene_times=scenes, checkpoint=ctx.progress),
    )
    ref = write_json(ctx, "video_analysis.json", dict(result.data))
    return StepResult(
        outputs={"analysis": ref},
        summary={
            "topics": len(result.data["topics"]),
            "key_terms": list(result.data["key_terms"][:8]),
        },
        metering=dict(result.metering),
    )
