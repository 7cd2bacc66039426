"""transcribe: the lecture's transcript, stitched from its chunks' transcripts (the fan-in of
transcribe_chunk): times on the lecture's clock, the words both neighbours heard kept once.

Where the pipeline runs it after analyze_frames (version 5 on) and the chunks were heard by
the offline Whisper, each slide's time range is decoded again with the slide's lines as the
prompt, and kept where the model prefers it (handlers/media/refine.py)."""

from __future__ import annotations

import threading
from typing import Any

from handlers.media.refine import Refined, SlideRange, refine, slide_ranges
from handlers.media.stitch import ChunkTranscript, stitch
from handlers.registry import PermanentStepError, StepContext, StepResult, register
from handlers.steps.common import local, read_json, require_every_frame_shard, slides, write_json
from statemachine.pipeline import default_pipelines
from statemachine.state import TaskState

# The chunks' metering names the model; only the offline Whisper's words carry the
# probabilities refine compares by, and only it can decode a range again here.
OFFLINE_MODEL = "faster-whisper "


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
    duration = round(float(manifest["duration_s"]), 3)
    refined = _by_slides(ctx, manifest, segments, duration, found or language, shards)
    document = {
        "language": found or language,
        "duration_s": duration,
        "segments": refined.segments if refined else segments,
    }
    extra = {}
    if refined is not None:
        extra = {
            "slides": refined.ranges,
            "redecoded": refined.decoded,
            "biased": refined.replaced,
            "over_cap": refined.over_cap,
        }
    return _written(ctx, document, chunks=len(parts), metering=_metering(shards), extra=extra)


def _by_slides(
    ctx: StepContext,
    manifest: dict[str, Any],
    segments: list[dict[str, Any]],
    duration: float,
    language: str,
    shards: list[TaskState],
) -> Refined | None:
    """Per-slide biasing (None where this course's pipeline or provider does not do it)."""
    step = default_pipelines().of(ctx.course).steps["transcribe"]
    if "analyze_frames" not in step.after or not segments:
        return None
    settings = ctx.services.settings
    if settings is not None and not settings.get_bool("COURSEGEN_SLIDE_BIASING"):
        return None
    if not all(str(t.metering.get("model", "")).startswith(OFFLINE_MODEL) for t in shards):
        return None
    require_every_frame_shard(ctx)
    chunks = manifest["chunks"]
    # Each range inside one chunk's core: decoded from that chunk's audio alone.
    ranges = [
        SlideRange(max(span.start, lo), min(span.end, hi), span.lines)
        for span in slide_ranges(slides(ctx), duration)
        for lo, hi in ((float(c["start_s"]), float(c["end_s"])) for c in chunks)
        if min(span.end, hi) > max(span.start, lo)
    ]
    if not ranges:
        return None
    from handlers.media.speech import NUM_WORKERS, decode_span, load_audio

    heard: dict[int, Any] = {}  # the chunks' samples, two at most (two decodes at once)
    lock = threading.Lock()

    def samples(index: int) -> Any:
        with lock:
            if index not in heard:
                while len(heard) >= NUM_WORKERS:
                    heard.pop(min(heard))
                heard[index] = load_audio(local(ctx, chunks[index]["ref"]))
            return heard[index]

    def decode(span: SlideRange) -> list[Any]:
        index = next(
            (i for i, c in enumerate(chunks) if span.start < float(c["end_s"])), len(chunks) - 1
        )
        return decode_span(
            samples(index),
            span.start,
            span.end,
            offset_s=float(chunks[index]["read_from_s"]),
            vocabulary=span.lines,
            language=language,
        )

    def progress(span: SlideRange) -> None:
        ctx.progress(span.end, duration)

    return refine(segments, ranges, decode, workers=NUM_WORKERS, progress=progress)


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
    extra: dict[str, int] | None = None,
) -> StepResult:
    ref = write_json(ctx, "transcript.json", document)
    segments = document["segments"]
    assert isinstance(segments, list)
    words = sum(len(str(s["text"]).split()) for s in segments)
    return StepResult(
        outputs={"transcript": ref},
        summary={"segments": len(segments), "words": words, "chunks": chunks, **(extra or {})},
        metering=metering or {},
    )
