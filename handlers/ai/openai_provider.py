"""OpenAI (openai) behind the AI port.

Transcription uses ``verbose_json`` segments; audio over the upload limit is cut into chunks
in silences and the segments are stitched with their offsets. Everything else is a chat
completion with a strict ``json_schema`` response format made from ``schemas/ai/``; key
frames go as ``image_url`` data URLs. OpenAI takes no video, so ``analyze_video`` works from
the transcript and the scene-change times; a lecture whose inputs pass ``window_tokens`` is
analysed in windows (handlers/ai/windows.py), each request carrying the summary of the windows
before it. ``max_retries`` and the timeout are explicit.
"""

from __future__ import annotations

import base64
import contextlib
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import openai
from openai.types.chat import ChatCompletionContentPartParam, ChatCompletionMessageParam
from openai.types.shared_params import ResponseFormatJSONSchema

import schemas
from handlers.ai import prompts, windows
from handlers.ai.audio_chunks import MAX_UPLOAD_BYTES, split_on_silence, stitch
from handlers.ai.port import (
    AIResult,
    Checkpoint,
    FrameInput,
    LessonText,
    PermanentProviderError,
    ProviderError,
    StructureInputs,
    TransientProviderError,
)
from handlers.ai.pricing import Price
from handlers.ai.structured import (
    GRAMMAR_KEYWORDS,
    Meter,
    RepairRequest,
    Reply,
    openai_strict_schema,
    redact,
    retry_after,
    structured_answer,
    subset_schema,
)

DEFAULT_MODEL = "gpt-4.1-mini"
DEFAULT_TRANSCRIBE_MODEL = "whisper-1"  # the model that returns verbose_json segments
# gpt-4.1-mini's context is 1,047,576 tokens and its answer at most 32,768, but one request
# must also fit the organisation's tokens-per-minute limit (a request over it is refused, not
# queued; tier 1 allows tens of thousands for many models): a window's inputs stay near this.
WINDOW_TOKENS = 30_000


@dataclass(frozen=True, slots=True)
class OpenAIConfig:
    api_key: str = field(repr=False)
    model: str = DEFAULT_MODEL
    transcribe_model: str = DEFAULT_TRANSCRIBE_MODEL
    base_url: str | None = None  # a local stub or a proxy; None: api.openai.com
    timeout_s: float = 300.0  # per HTTP request
    max_retries: int = 3  # SDK retries after the first attempt (429, 408, 409, 5xx, network)
    upload_limit_bytes: int = MAX_UPLOAD_BYTES
    image_detail: Literal["auto", "low", "high"] = "auto"
    prices: Mapping[str, Price] | None = None
    window_tokens: int = WINDOW_TOKENS  # about the most input tokens one analyze_video request
    # "strict": OpenAI's json_schema response format. "json_object": {"type": "json_object",
    # "schema": ...}, which llama-cpp-python's server turns into a grammar (it has no
    # json_schema type); the schema keeps minItems and minLength, which a grammar can enforce.
    schema_format: Literal["strict", "json_object"] = "strict"
    max_output_tokens: int | None = None  # None: the server's default


class OpenAIProvider:
    name = "openai"

    def __init__(self, config: OpenAIConfig) -> None:
        if not config.api_key:
            raise PermanentProviderError("OPENAI_API_KEY is not set: the openai provider needs it")
        self.config = config
        self.model = config.model
        self._client = openai.OpenAI(
            api_key=config.api_key,
            base_url=config.base_url or None,
            timeout=config.timeout_s,
            max_retries=config.max_retries,
        )

    def __repr__(self) -> str:
        return f"OpenAIProvider(model={self.model!r})"

    # --- the port ------------------------------------------------------------------------

    def transcribe(
        self, audio: Path, *, language: str, checkpoint: Checkpoint | None = None
    ) -> AIResult:
        model = self.config.transcribe_model
        meter = Meter(self.name, model, f"{model}:verbose_json", prices=self.config.prices)
        code = (language or "").split("-")[0].lower()
        parts: list[tuple[float, list[dict[str, Any]]]] = []
        duration = 0.0
        detected = ""
        with tempfile.TemporaryDirectory(prefix="coursegen-chunks-") as scratch:
            chunks = split_on_silence(
                Path(audio), Path(scratch), max_bytes=self.config.upload_limit_bytes
            )
            for chunk in chunks:
                answer = self._transcribe_chunk(chunk.path, code)
                seconds = float(getattr(answer, "duration", 0.0) or chunk.duration_s)
                meter.add(audio_seconds=seconds)
                segments = [
                    {"start": s.start, "end": s.end, "text": s.text}
                    for s in (answer.segments or [])
                ]
                parts.append((chunk.offset_s, segments))
                duration = max(duration, chunk.offset_s + seconds)
                if checkpoint is not None and len(chunks) > 1:
                    whole = chunks[-1].offset_s + chunks[-1].duration_s
                    checkpoint(chunk.offset_s + seconds, whole)
                detected = detected or str(getattr(answer, "language", "") or "")
        data = {
            "language": code or _language_code(detected),
            "duration_s": round(duration, 3),
            "segments": stitch(parts),
        }
        try:
            schemas.validate("ai/transcript", data)
        except schemas.SchemaError as err:
            raise PermanentProviderError(f"transcribe: unusable transcription: {err}") from None
        return AIResult(data, meter.as_dict())

    def analyze_video(
        self,
        video: Path,
        transcript: Mapping[str, Any],
        *,
        scene_times: Sequence[float],
        checkpoint: Checkpoint | None = None,
    ) -> AIResult:
        inputs = prompts.json_block(prompts.video_inputs(transcript, scene_times))
        duration = windows.lecture_seconds(transcript, scene_times)
        parts = windows.parts_needed(
            duration,
            tokens=windows.estimate_tokens(inputs),
            max_tokens=self.config.window_tokens,
        )
        if parts == 1:  # one request, as for any short lecture
            prompt = prompts.ANALYZE_VIDEO_FROM_TRANSCRIPT
            content: list[ChatCompletionContentPartParam] = [
                {"type": "text", "text": prompt.render(inputs=inputs)}
            ]
            return self._structured("ai/video_analysis", prompt, content)
        prompt = prompts.ANALYZE_VIDEO_TEXT_WINDOW
        meter = self._meter(prompt)

        def ask(window: windows.Window, shown: Mapping[str, Any]) -> Mapping[str, Any]:
            text = prompt.render(
                number=window.index + 1,
                count=window.count,
                start_s=f"{window.start_s:g}",
                end_s=f"{window.end_s:g}",
                inputs=prompts.json_block(shown),
            )
            return self._answer(
                "ai/video_analysis", prompt, [{"type": "text", "text": text}], meter
            )

        plan = windows.plan(duration, parts, scene_times)
        data = windows.analyze_in_windows(plan, transcript, scene_times, ask, checkpoint=checkpoint)
        return AIResult(data, meter.as_dict())

    def analyze_frames(self, frames: Sequence[FrameInput]) -> AIResult:
        prompt = prompts.ANALYZE_FRAMES
        inputs = prompts.json_block(prompts.frames_inputs(frames))
        content: list[ChatCompletionContentPartParam] = [
            {"type": "text", "text": prompt.render(inputs=inputs)}
        ]
        for frame in frames:
            url = "data:image/jpeg;base64," + base64.b64encode(frame.path.read_bytes()).decode()
            content.append({"type": "text", "text": f"frame {frame.name} at t={frame.t:.3f}"})
            content.append(
                {"type": "image_url", "image_url": {"url": url, "detail": self.config.image_detail}}
            )
        return self._structured("ai/frame_analysis", prompt, content)

    def generate_structure(self, inputs: StructureInputs) -> AIResult:
        prompt = prompts.STRUCTURE
        text = prompt.render(inputs=prompts.json_block(prompts.structure_inputs(inputs)))
        return self._structured("ai/course_structure", prompt, [{"type": "text", "text": text}])

    def add_interactivity(
        self, structure: Mapping[str, Any], lessons: Sequence[LessonText], *, per_lesson: int
    ) -> AIResult:
        prompt = prompts.INTERACTIVITY
        inputs = prompts.json_block(prompts.interactivity_inputs(structure, lessons, per_lesson))
        text = prompt.render(inputs=inputs, per_lesson=per_lesson)
        return self._structured("ai/interactivity", prompt, [{"type": "text", "text": text}])

    # --- calls ---------------------------------------------------------------------------

    def _transcribe_chunk(self, path: Path, language: str) -> Any:
        extra: dict[str, Any] = {"language": language} if language else {}
        with self._sdk_errors("transcribe"), open(path, "rb") as handle:
            return self._client.audio.transcriptions.create(
                model=self.config.transcribe_model,
                file=handle,
                response_format="verbose_json",
                timestamp_granularities=["segment"],
                **extra,
            )

    def _meter(self, prompt: prompts.Prompt) -> Meter:
        return Meter(self.name, self.model, prompt.ref, prices=self.config.prices)

    def _structured(
        self,
        schema_name: str,
        prompt: prompts.Prompt,
        content: list[ChatCompletionContentPartParam],
    ) -> AIResult:
        meter = self._meter(prompt)
        data = self._answer(schema_name, prompt, content, meter)
        return AIResult(data, meter.as_dict())

    def _answer(
        self,
        schema_name: str,
        prompt: prompts.Prompt,
        content: list[ChatCompletionContentPartParam],
        meter: Meter,
    ) -> dict[str, Any]:
        """One structured chat completion (and its repair, if needed), metered on ``meter``."""
        format_args = self._format_args(schema_name)
        user: ChatCompletionMessageParam = {"role": "user", "content": content}
        if self.config.schema_format == "json_object":
            # llama-cpp-python's chat templates join strings: its text parts, as one string
            text = "\n".join(str(part.get("text", "")) for part in content)
            user = {"role": "user", "content": text}
        messages: list[ChatCompletionMessageParam] = [
            {"role": "system", "content": prompt.system},
            user,
        ]

        def ask(repair: RepairRequest | None) -> Reply:
            sent = list(messages)
            if repair is not None:
                sent += [
                    {"role": "assistant", "content": repair.previous},
                    {"role": "user", "content": repair.instruction},
                ]
            with self._sdk_errors(prompt.id):
                completion = self._client.chat.completions.create(
                    model=self.model, messages=sent, temperature=0.2, **format_args
                )
            return _reply(completion, prompt.id)

        return structured_answer(schema_name, ask, meter, prune=True)

    def _format_args(self, schema_name: str) -> dict[str, Any]:
        """The keyword arguments of a chat completion that ask for JSON in ``schema_name``."""
        args: dict[str, Any] = {}
        if self.config.max_output_tokens is not None:
            args["max_tokens"] = self.config.max_output_tokens
        schema = schemas.load(schema_name)
        if self.config.schema_format == "json_object":
            grammar_schema = subset_schema(schema, GRAMMAR_KEYWORDS)
            # not a response_format the SDK types know: sent as it is, in the body
            args["extra_body"] = {
                "response_format": {"type": "json_object", "schema": grammar_schema}
            }
            return args
        response_format: ResponseFormatJSONSchema = {
            "type": "json_schema",
            "json_schema": {
                "name": schema_name.rsplit("/", 1)[-1],
                "schema": openai_strict_schema(schema),
                "strict": True,
            },
        }
        args["response_format"] = response_format
        return args

    @contextlib.contextmanager
    def _sdk_errors(self, what: str) -> Iterator[None]:
        """SDK exceptions as the port's transient / permanent errors, keys redacted."""
        try:
            yield
        except ProviderError:
            raise
        except openai.APIStatusError as err:
            raise _mapped(err, what, self.config.api_key) from err
        except openai.APIConnectionError as err:  # APITimeoutError included
            kind = "timed out" if isinstance(err, openai.APITimeoutError) else "failed to connect"
            raise TransientProviderError(
                redact(f"{what}: OpenAI request {kind}: {err}", [self.config.api_key])
            ) from err
        except openai.OpenAIError as err:
            raise PermanentProviderError(
                redact(f"{what}: OpenAI error {type(err).__name__}: {err}", [self.config.api_key])
            ) from err


def _reply(completion: Any, what: str) -> Reply:
    usage = completion.usage
    input_tokens = int(getattr(usage, "prompt_tokens", 0) or 0)
    output_tokens = int(getattr(usage, "completion_tokens", 0) or 0)
    if not completion.choices:
        return Reply("", input_tokens, output_tokens)
    choice = completion.choices[0]
    refusal = getattr(choice.message, "refusal", None)
    if refusal:
        raise PermanentProviderError(f"{what}: OpenAI refused to answer: {refusal}")
    if choice.finish_reason == "content_filter":
        raise PermanentProviderError(f"{what}: OpenAI withheld the answer (content filter)")
    return Reply(choice.message.content or "", input_tokens, output_tokens)


def _mapped(err: openai.APIStatusError, what: str, key: str) -> ProviderError:
    code = int(err.status_code)
    body = err.body if isinstance(err.body, dict) else {}
    detail = body.get("error", body) if isinstance(body.get("error", body), dict) else {}
    reason = str(detail.get("code") or detail.get("type") or "")
    message = redact(
        f"{what}: OpenAI answered HTTP {code}{f' ({reason})' if reason else ''}: "
        f"{detail.get('message') or err.message}",
        [key],
    )
    if reason == "insufficient_quota":  # a 429 that no amount of waiting fixes
        return PermanentProviderError(message)
    if code in (408, 409, 429) or code >= 500:
        return TransientProviderError(message, retry_after_s=retry_after(err.response.headers))
    return PermanentProviderError(message)


def _language_code(name: str) -> str:
    """whisper's verbose_json names the language ("english"); the schema wants any string."""
    return name.strip().lower() or "und"
