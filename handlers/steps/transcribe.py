"""transcribe: speech to text with segment timestamps (offline Whisper, Gemini or OpenAI)."""

from __future__ import annotations

from handlers.registry import StepContext, StepResult, register
from handlers.steps.common import call, local, provider, transcription, write_json


@register("transcribe")
def transcribe(ctx: StepContext) -> StepResult:
    prepared = ctx.upstream("prepare_video")
    language = (ctx.course.request or {}).get("language", "en")
    audio_ref = prepared.outputs.get("audio")
    if audio_ref is None:  # a soundless video is fine: the later steps get an empty transcript
        empty = {
            "language": language,
            "duration_s": float(prepared.summary.get("duration_s", 0)),
            "segments": [],
        }
        ref = write_json(ctx, "transcript.json", empty)
        return StepResult(outputs={"transcript": ref}, summary={"segments": 0, "words": 0})
    audio = local(ctx, audio_ref)
    ai = provider(ctx)
    result = call(ctx, "ai/transcript", lambda: transcription(ai, audio, language))
    words = sum(len(s["text"].split()) for s in result.data["segments"])
    ref = write_json(ctx, "transcript.json", dict(result.data))
    return StepResult(
        outputs={"transcript": ref},
        summary={"segments": len(result.data["segments"]), "words": words},
        metering=dict(result.metering),
    )
