"""prepare_video: fetch the source (SSRF-safe), probe it, normalise it, extract 16 kHz audio
and cut it into the chunks transcribe_chunk fans out over (at silences, a little overlap)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from handlers.media import chunks
from handlers.media.fetch import FetchFailed, FetchPolicy, FetchRefused, fetch
from handlers.media.ffmpeg import MediaError, prepare, probe
from handlers.registry import (
    PermanentStepError,
    StepContext,
    StepResult,
    TransientStepError,
    register,
)
from handlers.steps.common import option, write_json
from statemachine.pipeline import Chunking, default_pipeline

CHUNKED_STEP = "transcribe_chunk"  # the step whose fan-out the audio chunks are


def policy(ctx: StepContext) -> FetchPolicy:
    settings = ctx.services.settings
    roots = [Path(p) for p in settings.get_list("COURSEGEN_LOCAL_ROOTS", os.pathsep)]
    roots += [Path(p) for p in ctx.services.options.get("local_roots", ())]
    return FetchPolicy(
        local_roots=tuple(roots),
        allowed_hosts=frozenset(settings.get_list("COURSEGEN_FETCH_ALLOWED_HOSTS")),
        max_bytes=settings.get_int("COURSEGEN_MAX_VIDEO_BYTES"),
    )


@register("prepare_video")
def prepare_video(ctx: StepContext) -> StepResult:
    request = ctx.course.request or {}
    settings = ctx.services.settings
    artifacts = ctx.services.artifacts
    work = artifacts.workdir(ctx.course_id, "media")
    source = work / "source.bin"
    try:
        fetch(request["video_uri"], source, policy(ctx), sources=artifacts)
        info = probe(
            source,
            max_bytes=settings.get_int("COURSEGEN_MAX_VIDEO_BYTES"),
            max_seconds=settings.get_int("COURSEGEN_MAX_VIDEO_SECONDS"),
        )
        # A re-encode runs in time pieces side by side, one per vCPU pipeline.json gives.
        cpus = max(1, int(default_pipeline().steps["prepare_video"].cpu))
        prepared = prepare(source, work, info=info, parallel=cpus)
    except FetchRefused as err:
        raise PermanentStepError(f"the video source was refused: {err}") from None
    except FetchFailed as err:
        raise TransientStepError(f"fetching the video failed: {err}") from None
    except MediaError as err:
        cls = PermanentStepError if err.permanent else TransientStepError
        raise cls(f"{err.kind}: {_named(str(err), source, request['video_uri'])}") from None
    finally:
        source.unlink(missing_ok=True)
    outputs = {"video": artifacts.put_file(ctx.course_id, "media/video.mp4", prepared.video)}
    summary = {**info.to_dict(), "audio_chunks": 0}
    if prepared.audio is not None:
        outputs["audio"] = artifacts.put_file(ctx.course_id, "media/audio.wav", prepared.audio)
        manifest = audio_chunks(ctx, prepared.audio, outputs["audio"])
        outputs["audio_chunks"] = write_json(ctx, "media/audio_chunks.json", manifest)
        summary["audio_chunks"] = len(manifest["chunks"])
    return StepResult(outputs=outputs, summary=summary)


def chunking(ctx: StepContext) -> Chunking:
    """The chunk size and overlap: pipeline.json's, unless the request or runtime options say
    otherwise (``chunkSeconds``, ``chunkOverlapSeconds``)."""
    declared = default_pipeline().steps[CHUNKED_STEP].chunk or Chunking(300.0, 2.0)
    return Chunking(
        float(option(ctx, "chunkSeconds", declared.max_s)),
        float(option(ctx, "chunkOverlapSeconds", declared.overlap_s)),
    )


def audio_chunks(ctx: StepContext, audio: Path, audio_ref: str) -> dict[str, Any]:
    """Plan and write the chunks; audio that fits in one chunk is its own (nothing copied)."""
    rule = chunking(ctx)
    duration = chunks.wav_seconds(audio)
    silences: list[tuple[float, float]] = []
    try:
        if duration > rule.max_s:
            _, silences = chunks.scan(audio)
        plans = chunks.plan(duration, silences, max_s=rule.max_s, overlap_s=rule.overlap_s)
    except MediaError as err:
        cls = PermanentStepError if err.permanent else TransientStepError
        raise cls(f"{err.kind}: {err}") from None
    except ValueError as err:
        raise PermanentStepError(f"chunking: {err}") from None
    refs = [audio_ref]
    if len(plans) > 1:
        artifacts = ctx.services.artifacts
        folder = artifacts.workdir(ctx.course_id, "media/audio")
        refs = [
            artifacts.put_file(ctx.course_id, f"media/audio/{path.name}", path)
            for path in chunks.cut(audio, plans, folder)
        ]
    return {
        "duration_s": duration,
        "max_s": rule.max_s,
        "overlap_s": rule.overlap_s,
        "chunks": [{**p.to_dict(), "ref": ref} for p, ref in zip(plans, refs, strict=True)],
    }


def _named(message: str, source: Path, uri: str) -> str:
    """``message`` naming the user's video (the last part of its URI), not the scratch copy."""
    name = uri.rstrip("/").rsplit("/", 1)[-1].split("?", 1)[0] or uri
    return message.replace(str(source), name).replace(source.name, name)
