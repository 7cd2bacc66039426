"""transcribe_chunk: speech to text of one audio chunk (a fan-out shard of prepare_video's cut).

A chunk's transcript keeps the chunk's own clock and, from the offline provider, word times:
the fan-in (transcribe) moves it to the lecture's clock and aligns it with its neighbours.
A chunk that fails is retried alone; the others' transcripts stay as they are.
"""

from __future__ import annotations

from handlers.media.memory import bound_heap
from handlers.registry import PermanentStepError, StepContext, StepResult, register
from handlers.steps.common import call, local, provider, read_json, write_json


@register("transcribe_chunk")
def transcribe_chunk(ctx: StepContext) -> StepResult:
    shard = ctx.task.shard
    if shard is None:
        raise PermanentStepError("transcribe_chunk runs per chunk; this task has none")
    prepared = ctx.upstream("prepare_video")
    manifest = read_json(ctx, prepared.outputs["audio_chunks"])
    if shard >= len(manifest["chunks"]):
        raise PermanentStepError(f"chunk {shard} is not in the audio's {len(manifest['chunks'])}")
    chunk = manifest["chunks"][shard]
    audio = local(ctx, chunk["ref"])
    bound_heap()  # decoded chunks must not leave the heap fragmented (handlers/media/memory.py)
    language = (ctx.course.request or {}).get("language", "en")
    ai = provider(ctx)
    result = call(
        ctx,
        "ai/transcript",
        lambda: ai.transcribe(audio, language=language, checkpoint=ctx.progress),
    )
    ref = write_json(ctx, f"transcript/chunk_{shard:04d}.json", dict(result.data))
    words = sum(len(s["text"].split()) for s in result.data["segments"])
    return StepResult(
        outputs={"transcript": ref},
        summary={
            "segments": len(result.data["segments"]),
            "words": words,
            "seconds": round(float(chunk["read_to_s"]) - float(chunk["read_from_s"]), 3),
        },
        metering=dict(result.metering),
    )
