"""The local provider: quiz questions from a small instruction model on this machine, every one
checked, the offline generator filling in for what fails; every other step offline.

The model runs behind an OpenAI-compatible server on loopback (llama-cpp-python's
``llama_cpp.server``; see docs/ai.md "Local model (optional)"), reached through the OpenAI
provider with a JSON-schema grammar. Nothing here needs the model: a lesson whose call fails,
or whose questions fail ``quiz_check``, gets the offline questions instead.
"""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from handlers.ai.offline import OfflineProvider
from handlers.ai.openai_provider import OpenAIConfig, OpenAIProvider
from handlers.ai.port import (
    AIProvider,
    AIResult,
    Checkpoint,
    FrameInput,
    LessonText,
    ProviderError,
    StructureInputs,
    TransientProviderError,
)
from handlers.ai.quiz_check import keep_passing, lesson_material

DEFAULT_URL = "http://127.0.0.1:8080/v1"
DEFAULT_MODEL = "qwen2.5-coder-0.5b-instruct-q4_k_m"
DEFAULT_MAX_TOKENS = 1024
log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class LocalConfig:
    base_url: str = DEFAULT_URL
    model: str = DEFAULT_MODEL
    timeout_s: float = 300.0
    max_output_tokens: int = DEFAULT_MAX_TOKENS


def loopback_url(url: str) -> str:
    """``url`` if it names this machine (127.0.0.0/8, ::1, localhost); ValueError otherwise:
    the local provider never sends a lesson off the machine."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.scheme not in ("http", "https") or not host:
        raise ValueError(f"COURSEGEN_LOCAL_MODEL_URL={url!r} is not an http(s) URL")
    if host == "localhost":
        return url
    try:
        if ipaddress.ip_address(host).is_loopback:
            return url
    except ValueError:
        pass
    raise ValueError(
        f"COURSEGEN_LOCAL_MODEL_URL={url!r}: the local model must listen on loopback "
        "(127.0.0.1, ::1 or localhost)"
    )


class LocalProvider:
    """The AI port with ``add_interactivity`` asked of the local model, lesson by lesson."""

    name = "local"

    def __init__(self, config: LocalConfig, offline: AIProvider | None = None) -> None:
        self.config = config
        self.model = config.model
        self._offline: AIProvider = offline or OfflineProvider()
        self._chat = OpenAIProvider(
            OpenAIConfig(
                api_key="sk-no-key-local-model",  # the server takes any key; the SDK wants one
                model=config.model,
                base_url=loopback_url(config.base_url),
                timeout_s=config.timeout_s,
                max_retries=0,  # a lesson that fails falls back at once
                schema_format="json_object",
                max_output_tokens=config.max_output_tokens,
            )
        )

    def __repr__(self) -> str:
        return f"LocalProvider(model={self.model!r}, base_url={self.config.base_url!r})"

    def transcribe(
        self, audio: Path, *, language: str, checkpoint: Checkpoint | None = None
    ) -> AIResult:
        return self._offline.transcribe(audio, language=language, checkpoint=checkpoint)

    def analyze_video(
        self,
        video: Path,
        transcript: Mapping[str, Any],
        *,
        scene_times: Sequence[float],
        checkpoint: Checkpoint | None = None,
    ) -> AIResult:
        return self._offline.analyze_video(
            video, transcript, scene_times=scene_times, checkpoint=checkpoint
        )

    def analyze_frames(self, frames: Sequence[FrameInput]) -> AIResult:
        return self._offline.analyze_frames(frames)

    def generate_structure(self, inputs: StructureInputs) -> AIResult:
        return self._offline.generate_structure(inputs)

    def add_interactivity(
        self, structure: Mapping[str, Any], lessons: Sequence[LessonText], *, per_lesson: int
    ) -> AIResult:
        count = max(2, per_lesson)
        fallback = self._offline.add_interactivity(structure, lessons, per_lesson=count)
        offline_by_lesson = {q["lesson"]: q["questions"] for q in fallback.data["lessons"]}
        tally = _Tally(self.model)
        out = []
        reachable = True
        for lesson in lessons:
            spare = list(offline_by_lesson.get(lesson.index, ()))
            asked: list[Mapping[str, Any]] = []
            if reachable:
                try:
                    asked = self._ask(structure, lesson, count, tally)
                except TransientProviderError as err:
                    # Not answering at all (not running, timed out): the other lessons would
                    # wait as long for nothing, so the rest of the course is offline.
                    log.warning("local model unreachable; offline quiz from here on: %s", err)
                    reachable = False
                    tally.failed_lessons += 1
                except ProviderError as err:
                    log.warning("local model failed on lesson %d: %s", lesson.index, err)
                    tally.failed_lessons += 1
            kept, refused = keep_passing(asked, lesson_material(lesson), count)
            tally.model_questions += len(asked)
            tally.passed += len(kept)
            tally.refused += len(refused)
            for verdict in refused:
                log.info("refused a local-model question: %s", "; ".join(verdict.problems))
            questions = _filled(kept, spare, count)
            tally.offline_questions += sum(q not in kept for q in questions)
            out.append({"lesson": lesson.index, "questions": questions})
        return AIResult({"lessons": out}, tally.metering())

    def _ask(
        self, structure: Mapping[str, Any], lesson: LessonText, count: int, tally: _Tally
    ) -> list[Mapping[str, Any]]:
        """The model's questions for one lesson, however many lessons its answer names."""
        try:
            result = self._chat.add_interactivity(structure, [lesson], per_lesson=count)
        except ProviderError as err:
            tally.add(err.metering)
            raise
        tally.add(result.metering)
        return [q for entry in result.data.get("lessons", ()) for q in entry["questions"]]


def _filled(
    kept: list[dict[str, Any]], spare: Sequence[Mapping[str, Any]], count: int
) -> list[dict[str, Any]]:
    """The model's questions that passed, then offline ones on other answers up to ``count``;
    the offline questions alone when those do not reach ``count`` (answers collided)."""
    questions = list(kept)
    answers = {str(q["answer"]).casefold() for q in kept}
    for question in spare:
        if len(questions) >= count:
            break
        if str(question["answer"]).casefold() not in answers:
            questions.append(dict(question))
            answers.add(str(question["answer"]).casefold())
    if len(questions) < min(count, len(spare)):
        return [dict(q) for q in spare]
    return questions


@dataclass(slots=True)
class _Tally:
    """What the model was asked and how its questions fared, for the step's metering."""

    model: str
    prompt_version: str = "n/a"
    input_tokens: int = 0
    output_tokens: int = 0
    calls: int = 0
    model_questions: int = 0
    passed: int = 0
    refused: int = 0
    offline_questions: int = 0
    failed_lessons: int = 0

    def add(self, metering: Mapping[str, Any]) -> None:
        self.prompt_version = str(metering.get("prompt_version") or self.prompt_version)
        self.input_tokens += int(metering.get("input_tokens", 0) or 0)
        self.output_tokens += int(metering.get("output_tokens", 0) or 0)
        self.calls += int(metering.get("calls", 0) or 0)

    def metering(self) -> dict[str, Any]:
        return {
            "provider": "local",
            "model": self.model,
            "prompt_version": self.prompt_version,
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
            "cost_usd": 0.0,
            "calls": self.calls,
            "model_questions": self.model_questions,
            "questions_passed": self.passed,
            "questions_refused": self.refused,
            "questions_offline": self.offline_questions,
            "lessons_failed": self.failed_lessons,
        }
