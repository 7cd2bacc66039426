"""analyze_video: topic segments and key terms for the whole video (Gemini in the cloud)."""

from __future__ import annotations

import re
from pathlib import Path

from handlers.media.ffmpeg import run_ffmpeg
from handlers.registry import StepContext, StepResult, register
from handlers.steps.common import call, local, option, provider, transcription, write_json

_PTS = re.compile(r"pts_time:([0-9.]+)")


def scene_times(video: Path, threshold: float) -> list[float]:
    """Times of scene changes (one decode pass, no images written)."""
    done = run_ffmpeg(
        [
            "-hide_banner",
            "-nostats",
            "-i",
            str(video),
            "-an",
            "-vf",
            f"select='gt(scene,{threshold})',showinfo",
            "-f",
            "null",
            "-",
        ],
        timeout=900,
    )
    return [float(m.group(1)) for m in _PTS.finditer(done.stderr)]


@register("analyze_video")
def analyze_video(ctx: StepContext) -> StepResult:
    prepared = ctx.upstream("prepare_video")
    video = local(ctx, prepared.outputs["video"])
    ai = provider(ctx)
    transcript: dict[str, object] = {"language": "en", "duration_s": 0.0, "segments": []}
    if ai.name == "offline" and "audio" in prepared.outputs:
        # Offline there is no multimodal model: align scene changes with a transcript.
        audio = local(ctx, prepared.outputs["audio"])
        language = (ctx.course.request or {}).get("language", "en")
        transcript = dict(transcription(ai, audio, language).data)
    scenes = scene_times(video, float(option(ctx, "sceneThreshold", 0.03)))
    result = call(
        ctx, "ai/video_analysis", lambda: ai.analyze_video(video, transcript, scene_times=scenes)
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
