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

FRAMES_PER_SHARD = 4


@register("extract_frames")
def extract_frames(ctx: StepContext) -> StepResult:
    video = local(ctx, ctx.upstream("prepare_video").outputs["video"])
    artifacts = ctx.services.artifacts
    out = artifacts.workdir(ctx.course_id, "media/frames")
    try:
        frames = extract(
            video,
            out,
            scene_threshold=float(option(ctx, "sceneThreshold", 0.03)),
            max_frames=int(option(ctx, "maxFrames", 120)),
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
