"""Gemini (google-genai) behind the AI port.

Media (the lecture video, the audio to transcribe) goes through the Files API: a resumable
upload, then ``files.get`` until the file is ACTIVE (bounded), then ``generate_content`` with
the file as a part. A lecture longer than ``video_window_s`` is analysed in windows
(handlers/ai/windows.py): one upload, then one request per window, the file part clipped to
the window by ``video_metadata`` start and end offsets, each request carrying the summary of
the windows before it. Key frames go inline as image parts. Every call asks for
``application/json`` constrained by the schema under ``schemas/ai/`` and the answer is
validated (one repair request). The SDK does not retry unless told to: ``HttpRetryOptions``
is set explicitly, and the timeout is in milliseconds.
"""

from __future__ import annotations

import contextlib
import logging
import mimetypes
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from google import genai
from google.genai import errors as genai_errors
from google.genai import types

import schemas
from handlers.ai import prompts, windows
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
    Meter,
    RepairRequest,
    Reply,
    gemini_schema,
    redact,
    retry_after,
    structured_answer,
    transport_errors,
)

log = logging.getLogger(__name__)

DEFAULT_MODEL = "gemini-2.5-flash"
# Gemini 2.5 Flash takes about 45 minutes of video with audio in one request (its 1M-token
# context at about 300 tokens a second: 258 a frame at 1 fps, 32 of audio); a 30-minute window
# is about 540k tokens, leaving room for the transcript, the prompt and the answer.
VIDEO_WINDOW_S = 1800.0
RETRY_STATUS_CODES = (408, 429, 500, 502, 503, 504)
# A finish reason that means the model refused; retrying the same input will not help.
REFUSALS = frozenset(
    {
        "SAFETY",
        "PROHIBITED_CONTENT",
        "BLOCKLIST",
        "SPII",
        "RECITATION",
        "IMAGE_SAFETY",
        "IMAGE_PROHIBITED_CONTENT",
        "MODEL_ARMOR",
    }
)


@dataclass(frozen=True, slots=True)
class GeminiConfig:
    api_key: str = field(repr=False)
    model: str = DEFAULT_MODEL
    base_url: str | None = None  # a local stub or a proxy; None: Google's endpoint
    timeout_s: float = 300.0  # per HTTP request
    attempts: int = 4  # HTTP attempts per request, the first included
    initial_delay_s: float = 1.0
    max_delay_s: float = 30.0
    jitter_s: float = 1.0
    poll_interval_s: float = 5.0  # longest wait between files.get while PROCESSING
    poll_timeout_s: float = 600.0
    prices: Mapping[str, Price] | None = None
    video_window_s: float = VIDEO_WINDOW_S  # the longest part of a video one request gets


class GeminiProvider:
    name = "gemini"

    def __init__(self, config: GeminiConfig) -> None:
        if not config.api_key:
            raise PermanentProviderError("GEMINI_API_KEY is not set: the gemini provider needs it")
        self.config = config
        self.model = config.model
        self._client = genai.Client(
            api_key=config.api_key,
            http_options=types.HttpOptions(
                base_url=config.base_url or None,
                timeout=int(config.timeout_s * 1000),
                retry_options=types.HttpRetryOptions(
                    attempts=config.attempts,
                    initial_delay=config.initial_delay_s,
                    max_delay=config.max_delay_s,
                    jitter=config.jitter_s,
                    http_status_codes=list(RETRY_STATUS_CODES),
                ),
            ),
        )

    def __repr__(self) -> str:
        return f"GeminiProvider(model={self.model!r})"

    # --- the port ------------------------------------------------------------------------

    def transcribe(
        self, audio: Path, *, language: str, checkpoint: Checkpoint | None = None
    ) -> AIResult:
        # One request per chunk: no progress to report inside it (checkpoint is not called).
        prompt = prompts.TRANSCRIBE
        meter = self._meter(prompt)
        with self._uploaded(Path(audio), "audio/wav") as file:
            parts = [_file_part(file), types.Part(text=prompt.render(language=language or "auto"))]
            data = self._generate("ai/transcript", prompt, parts, meter)
        return AIResult(data, meter.as_dict())

    def analyze_video(
        self,
        video: Path,
        transcript: Mapping[str, Any],
        *,
        scene_times: Sequence[float],
        checkpoint: Checkpoint | None = None,
    ) -> AIResult:
        duration = windows.lecture_seconds(transcript, scene_times)
        parts = windows.parts_needed(duration, max_s=self.config.video_window_s)
        if parts == 1:  # one request, as for any short lecture
            prompt = prompts.ANALYZE_VIDEO
            meter = self._meter(prompt)
            inputs = prompts.json_block(prompts.video_inputs(transcript, scene_times))
            with self._uploaded(Path(video), "video/mp4") as file:
                question = [_file_part(file), types.Part(text=prompt.render(inputs=inputs))]
                data = self._generate("ai/video_analysis", prompt, question, meter)
            return AIResult(data, meter.as_dict())
        prompt = prompts.ANALYZE_VIDEO_WINDOW
        meter = self._meter(prompt)
        with self._uploaded(Path(video), "video/mp4") as file:

            def ask(window: windows.Window, inputs: Mapping[str, Any]) -> Mapping[str, Any]:
                text = prompt.render(
                    number=window.index + 1,
                    count=window.count,
                    start_s=f"{window.start_s:g}",
                    end_s=f"{window.end_s:g}",
                    inputs=prompts.json_block(inputs),
                )
                clip = _file_part(file, start_s=window.start_s, end_s=window.end_s)
                return self._generate(
                    "ai/video_analysis", prompt, [clip, types.Part(text=text)], meter
                )

            plan = windows.plan(duration, parts, scene_times)
            data = windows.analyze_in_windows(
                plan, transcript, scene_times, ask, checkpoint=checkpoint
            )
        return AIResult(data, meter.as_dict())

    def analyze_frames(self, frames: Sequence[FrameInput]) -> AIResult:
        prompt = prompts.ANALYZE_FRAMES
        meter = self._meter(prompt)
        inputs = prompts.json_block(prompts.frames_inputs(frames))
        parts = [types.Part(text=prompt.render(inputs=inputs))]
        for frame in frames:
            parts.append(types.Part(text=f"frame {frame.name} at t={float(frame.t):.3f}"))
            parts.append(
                types.Part.from_bytes(data=frame.path.read_bytes(), mime_type="image/jpeg")
            )
        data = self._generate("ai/frame_analysis", prompt, parts, meter)
        return AIResult(data, meter.as_dict())

    def generate_structure(self, inputs: StructureInputs) -> AIResult:
        prompt = prompts.STRUCTURE
        meter = self._meter(prompt)
        text = prompt.render(inputs=prompts.json_block(prompts.structure_inputs(inputs)))
        data = self._generate("ai/course_structure", prompt, [types.Part(text=text)], meter)
        return AIResult(data, meter.as_dict())

    def add_interactivity(
        self, structure: Mapping[str, Any], lessons: Sequence[LessonText], *, per_lesson: int
    ) -> AIResult:
        prompt = prompts.INTERACTIVITY
        meter = self._meter(prompt)
        inputs = prompts.json_block(prompts.interactivity_inputs(structure, lessons, per_lesson))
        text = prompt.render(inputs=inputs, per_lesson=per_lesson)
        data = self._generate("ai/interactivity", prompt, [types.Part(text=text)], meter)
        return AIResult(data, meter.as_dict())

    # --- calls ---------------------------------------------------------------------------

    def _meter(self, prompt: prompts.Prompt) -> Meter:
        return Meter(self.name, self.model, prompt.ref, prices=self.config.prices)

    def _generate(
        self, schema_name: str, prompt: prompts.Prompt, parts: list[types.Part], meter: Meter
    ) -> dict[str, Any]:
        config = types.GenerateContentConfig(
            system_instruction=prompt.system or None,
            response_mime_type="application/json",
            response_json_schema=gemini_schema(schemas.load(schema_name)),
            temperature=0.2,
        )
        question = types.Content(role="user", parts=parts)

        def ask(repair: RepairRequest | None) -> Reply:
            contents = [question]
            if repair is not None:
                contents += [
                    types.Content(role="model", parts=[types.Part(text=repair.previous)]),
                    types.Content(role="user", parts=[types.Part(text=repair.instruction)]),
                ]
            with self._sdk_errors(prompt.id):
                response = self._client.models.generate_content(
                    model=self.model, contents=contents, config=config
                )
            return self._reply(response, prompt.id)

        return structured_answer(schema_name, ask, meter)

    def _reply(self, response: types.GenerateContentResponse, what: str) -> Reply:
        usage = response.usage_metadata
        input_tokens = (usage.prompt_token_count or 0) if usage else 0
        output_tokens = (
            ((usage.candidates_token_count or 0) + (usage.thoughts_token_count or 0))
            if usage
            else 0
        )
        feedback = response.prompt_feedback
        if feedback is not None and feedback.block_reason is not None:
            reason = _enum_name(feedback.block_reason)
            detail = f": {feedback.block_reason_message}" if feedback.block_reason_message else ""
            raise PermanentProviderError(f"{what}: Gemini blocked the prompt ({reason}){detail}")
        if not response.candidates:
            return Reply("", input_tokens, output_tokens)
        candidate = response.candidates[0]
        finish = _enum_name(candidate.finish_reason)
        if finish in REFUSALS:
            raise PermanentProviderError(f"{what}: Gemini refused to answer (finish {finish})")
        parts = (candidate.content.parts or []) if candidate.content else []
        text = "".join(p.text for p in parts if p.text and not p.thought)
        return Reply(text, input_tokens, output_tokens)

    @contextlib.contextmanager
    def _uploaded(self, path: Path, fallback_mime: str) -> Iterator[types.File]:
        """The file uploaded through the Files API and ACTIVE; deleted afterwards."""
        mime = mimetypes.guess_type(path.name)[0] or fallback_mime
        with self._sdk_errors("upload"):
            file = self._client.files.upload(
                file=path, config=types.UploadFileConfig(mime_type=mime, display_name=path.name)
            )
            file = self._wait_active(file, path.name)
        try:
            yield file
        finally:
            self._forget(file)

    def _wait_active(self, file: types.File, label: str) -> types.File:
        deadline = time.monotonic() + self.config.poll_timeout_s
        polls = 0
        while True:
            state = _enum_name(file.state)
            if state == "ACTIVE":
                return file
            if state == "FAILED":
                detail = file.error.message if file.error and file.error.message else "no detail"
                raise PermanentProviderError(f"Gemini could not process {label}: {detail}")
            if time.monotonic() >= deadline:
                raise TransientProviderError(
                    f"Gemini is still processing {label} after {self.config.poll_timeout_s:.0f} s"
                )
            # Short files are ready in a moment; long videos take minutes: back off to the cap.
            time.sleep(min(self.config.poll_interval_s, 0.25 * 2**polls))
            polls += 1
            file = self._client.files.get(name=str(file.name))

    def _forget(self, file: types.File) -> None:
        try:
            self._client.files.delete(name=str(file.name))
        except Exception as err:  # the file expires after 48 h anyway
            log.info("could not delete Gemini file %s: %s", file.name, type(err).__name__)

    @contextlib.contextmanager
    def _sdk_errors(self, what: str) -> Iterator[None]:
        """SDK exceptions as the port's transient / permanent errors, keys redacted."""
        try:
            yield
        except ProviderError:
            raise
        except genai_errors.APIError as err:
            raise _mapped(err, what, self.config.api_key) from err
        except transport_errors() as err:
            message = redact(
                f"{what}: Gemini request failed: {type(err).__name__}: {err}", [self.config.api_key]
            )
            raise TransientProviderError(message) from err


def _mapped(err: genai_errors.APIError, what: str, key: str) -> ProviderError:
    code = int(err.code or 0)
    message = redact(
        f"{what}: Gemini answered HTTP {code} {err.status or ''}: {err.message or ''}".strip(),
        [key],
    )
    if code in (408, 429) or code >= 500:
        headers = getattr(getattr(err, "response", None), "headers", None)
        return TransientProviderError(message, retry_after_s=retry_after(headers))
    return PermanentProviderError(message)


def _file_part(
    file: types.File, *, start_s: float | None = None, end_s: float | None = None
) -> types.Part:
    """The uploaded file as a part; a video clipped to start..end seconds when given."""
    part = types.Part.from_uri(file_uri=str(file.uri), mime_type=file.mime_type)
    if start_s is None or end_s is None:
        return part
    clip = types.VideoMetadata(start_offset=f"{start_s:.3f}s", end_offset=f"{end_s:.3f}s")
    return part.model_copy(update={"video_metadata": clip})


def _enum_name(value: Any) -> str | None:
    if value is None:
        return None
    return str(getattr(value, "name", value))
