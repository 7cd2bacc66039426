"""The AI port: what the steps ask of a provider (offline, Gemini, OpenAI), one Protocol.

Every method returns an ``AIResult`` whose ``data`` matches its schema under ``schemas/ai/``
(validated by the caller with ``schemas.validate``) and whose ``metering`` says what the call
cost, so replay shows exactly what produced an output.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

# Called as work goes on with (seconds done, seconds in all); it may raise to stop the work
# (a cancelled course). Providers that cannot tell call it once, at the end, or never.
Checkpoint = Callable[[float, float], None]


@dataclass(frozen=True, slots=True)
class AIResult:
    data: Mapping[str, Any]
    # provider, model, prompt_version, input_tokens, output_tokens, cost_usd, calls
    metering: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class FrameInput:
    name: str
    t: float  # seconds into the video
    path: Path  # a local JPEG


@dataclass(frozen=True, slots=True)
class StructureInputs:
    title: str
    language: str
    duration_s: float
    transcript: Mapping[str, Any]  # schemas/ai/transcript.json
    video_analysis: Mapping[str, Any]  # schemas/ai/video_analysis.json
    slides: Sequence[Mapping[str, Any]]  # frames of schemas/ai/frame_analysis.json, time order


@dataclass(frozen=True, slots=True)
class LessonText:
    index: int
    title: str
    start: float
    end: float
    transcript: str  # the lesson's spoken text
    slide_text: str  # the lesson's slide titles and bullets


class AIProvider(Protocol):
    name: str

    def transcribe(
        self, audio: Path, *, language: str, checkpoint: Checkpoint | None = None
    ) -> AIResult:
        """schemas/ai/transcript.json"""
        ...

    def analyze_video(
        self,
        video: Path,
        transcript: Mapping[str, Any],
        *,
        scene_times: Sequence[float],
        checkpoint: Checkpoint | None = None,
    ) -> AIResult:
        """schemas/ai/video_analysis.json; a long lecture may go in windows, ``checkpoint``
        called after each (it may raise to stop: a cancelled course)."""
        ...

    def analyze_frames(self, frames: Sequence[FrameInput]) -> AIResult:
        """schemas/ai/frame_analysis.json"""
        ...

    def generate_structure(self, inputs: StructureInputs) -> AIResult:
        """schemas/ai/course_structure.json"""
        ...

    def add_interactivity(
        self, structure: Mapping[str, Any], lessons: Sequence[LessonText], *, per_lesson: int
    ) -> AIResult:
        """schemas/ai/interactivity.json"""
        ...


class ProviderError(Exception):
    """Base of provider failures; ``retryable`` tells the queue whether to try again."""

    retryable = True

    def __init__(
        self,
        message: str,
        *,
        retry_after_s: float | None = None,
        metering: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s
        self.metering = dict(metering or {})  # what the failed calls cost (still paid for)


class TransientProviderError(ProviderError):
    """Rate limit, 5xx, timeout, connection error."""


class PermanentProviderError(ProviderError):
    """Authentication, permission, invalid request, refusal, or output invalid twice."""

    retryable = False
