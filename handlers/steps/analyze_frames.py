"""analyze_frames: read the slide text of one shard of key frames (fan-out, one task a shard)."""

from __future__ import annotations

from handlers.ai.port import FrameInput
from handlers.registry import PermanentStepError, StepContext, StepResult, register
from handlers.steps.common import call, local, provider, read_json, write_json


@register("analyze_frames")
def analyze_frames(ctx: StepContext) -> StepResult:
    shard = ctx.task.shard
    if shard is None:
        raise PermanentStepError("analyze_frames runs per shard; this task has none")
    manifest = read_json(ctx, ctx.upstream("extract_frames").outputs["manifest"])
    per_shard = int(manifest["per_shard"])
    mine = manifest["frames"][shard * per_shard : (shard + 1) * per_shard]
    frames = [FrameInput(name=f["name"], t=float(f["t"]), path=local(ctx, f["ref"])) for f in mine]
    ai = provider(ctx)
    result = call(ctx, "ai/frame_analysis", lambda: ai.analyze_frames(frames))
    ref = write_json(ctx, f"slides/shard_{shard:04d}.json", dict(result.data))
    titled = sum(1 for f in result.data["frames"] if f["title"])
    return StepResult(
        outputs={"slides": ref},
        summary={"frames": len(frames), "titled": titled},
        metering=dict(result.metering),
    )
