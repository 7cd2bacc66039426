"""transcribe: the lecture's transcript, stitched from its chunks' transcripts (the fan-in of
transcribe_chunk): times on the lecture's clock, the words both neighbours heard kept once."""

from __future__ import annotations

from typing import Any

from handlers.media.stitch import ChunkTranscript, stitch
from handlers.registry import PermanentStepError, StepContext, StepResult, register
from handlers.steps.common import read_json, write_json
from statemachine.state import TaskState


@register("transcribe")
def transcribe(ctx: StepContext) -> StepResult:
    prepared = ctx.upstream("prepare_video")
    language = (ctx.course.request or {}).get("language", "en")
    if "audio_chunks" not in prepared.outputs:
        if "audio" in prepared.outputs:  # prepared by a version that did not cut the audio
            raise PermanentStepError(
                "prepare_video's output has no audio chunks: redrive prepare_video"
            )
        # A soundless video is fine: the later steps get an empty transcript.
        duration = float(prepared.summary.get("duration_s", 0))
        return _written(ctx, {"language": language, "duration_s": duration, "segments": []})
    manifest = read_json(ctx, prepared.outputs["audio_chunks"])
    shards = ctx.shards("transcribe_chunk")
    if [t.shard for t in shards] != list(range(len(manifest["chunks"]))):
        raise PermanentStepError(
            f"expected {len(manifest['chunks'])} transcribe_chunk shards to have succeeded"
        )
    parts = []
    found = ""
    for plan, task in zip(manifest["chunks"], shards, strict=True):
        said = read_json(ctx, task.outputs["transcript"])
        found = found or str(said.get("language") or "")
        parts.append(
            ChunkTranscript(
                offset_s=float(plan["read_from_s"]),
                start_s=float(plan["start_s"]),
                end_s=float(plan["end_s"]),
                segments=said["segments"],
            )
        )
    segments = stitch(parts, overlap=float(manifest["overlap_s"]))
    document = {
        "language": found or language,
        "duration_s": round(float(manifest["duration_s"]), 3),
        "segments": segments,
    }
    return _written(ctx, document, chunks=len(parts), metering=_metering(shards))


def _metering(shards: list[TaskState]) -> dict[str, Any]:
    """The chunks' metering summed: what the whole transcript cost, and who made it."""
    out: dict[str, Any] = {}
    for task in shards:
        for key, value in task.metering.items():
            if isinstance(value, int | float) and not isinstance(value, bool):
                out[key] = round(out.get(key, 0) + value, 6)
            else:
                out.setdefault(key, value)
    return out


def _written(
    ctx: StepContext,
    document: dict[str, object],
    chunks: int = 0,
    metering: dict[str, Any] | None = None,
) -> StepResult:
    ref = write_json(ctx, "transcript.json", document)
    segments = document["segments"]
    assert isinstance(segments, list)
    words = sum(len(str(s["text"]).split()) for s in segments)
    return StepResult(
        outputs={"transcript": ref},
        summary={"segments": len(segments), "words": words, "chunks": chunks},
        metering=metering or {},
    )
