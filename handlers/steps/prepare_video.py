"""prepare_video: fetch the source (SSRF-safe), probe it, normalise it, extract 16 kHz audio."""

from __future__ import annotations

import os
from pathlib import Path

from handlers.media.fetch import FetchFailed, FetchPolicy, FetchRefused, fetch
from handlers.media.ffmpeg import MediaError, prepare, probe
from handlers.registry import (
    PermanentStepError,
    StepContext,
    StepResult,
    TransientStepError,
    register,
)


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
        prepared = prepare(source, work, info=info)
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
    if prepared.audio is not None:
        outputs["audio"] = artifacts.put_file(ctx.course_id, "media/audio.wav", prepared.audio)
    return StepResult(outputs=outputs, summary=info.to_dict())


def _named(message: str, source: Path, uri: str) -> str:
    """``message`` naming the user's video (the last part of its URI), not the scratch copy."""
    name = uri.rstrip("/").rsplit("/", 1)[-1].split("?", 1)[0] or uri
    return message.replace(str(source), name).replace(source.name, name)
