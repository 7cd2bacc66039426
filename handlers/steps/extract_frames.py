"""extract_frames: one ffmpeg pass for scene-change and interval frames; decides the fan-out."""

from __future__ import annotations

import math

from handlers.media.ffmpeg import MediaError
from handlers.media.frames import extract_frames as extract
from handlers.registry import (
    PermanentStepError,
    StepContext,
    StepResult,
    TransientStepError,
    register,
)
from handlers.steps.common import local, option, write_json
from statemachine.pipeline import FRAMES_PER_MINUTE, default_pipeline
from statemachine.pipeline import MIN_MAX_FRAMES as MIN_FRAMES_CAP

FRAMES_PER_SHARD = 4
# A long lecture keeps its slides: the cap on key frames grows with its length (a slide
# every 10 s on average still fits), so a two-hour lecture is not thinned to 120 frames;
# the numbers live with the pipeline, whose frame-shard budget depends on them.
MIN_MAX_FRAMES = MIN_FRAMES_CAP
MAX_FRAMES_PER_MINUTE = FRAMES_PER_MINUTE


@register("extract_frames")
def extract_frames(ctx: StepContext) -> StepResult:
    prepared = ctx.upstream("prepare_video")
    video = local(ctx, prepared.outputs["video"])
    minutes = float(prepared.summary.get("duration_s", 0.0)) / 60
    cap = max(MIN_MAX_FRAMES, math.ceil(minutes * MAX_FRAMES_PER_MINUTE))
    artifacts = ctx.services.artifacts
    out = artifacts.workdir(ctx.course_id, "media/frames")
    try:
        frames = extract(
            video,
            out,
            scene_threshold=float(option(ctx, "sceneThreshold", 0.03)),
            max_frames=int(option(ctx, "maxFrames", cap)),
        )
    except MediaError as err:
        cls = PermanentStepError if err.permanent else TransientStepError
        raise cls(f"{err.kind}: {err}") from None
    manifest = [
        {
            "name": f.name,
            "t": f.t,
            "kind": f.kind,
            "phash": f.phash,
            "ref": artifacts.put_file(ctx.course_id, f"media/frames/{f.name}", f.path),
        }
        for f in frames
    ]
    per_shard = int(option(ctx, "framesPerShard", FRAMES_PER_SHARD))
    fan = default_pipeline().steps["analyze_frames"].fan_out
    if fan is not None and manifest:  # never more shards than the fan-out may schedule
        per_shard = max(per_shard, math.ceil(len(manifest) / fan.max_shards))
    shards = math.ceil(len(manifest) / per_shard) if manifest else 0
    ref = write_json(ctx, "frames.json", {"frames": manifest, "per_shard": per_shard})
    scenes = sum(1 for f in frames if f.kind == "scene")
    return StepResult(
        outputs={"manifest": ref},
        summary={
            "frames": len(manifest),
            "scene_frames": scenes,
            "shards": shards,
            "per_shard": per_shard,
        },
    )
