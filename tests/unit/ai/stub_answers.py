"""Canned answers of the AI HTTP stub: Gemini and OpenAI response bodies, error bodies, and
valid documents for every schemas/ai schema (auto mode), built from the prompt's inputs."""

from __future__ import annotations

import array
import io
import json
import re
import time
import uuid
import wave
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Canned:
    """One scripted answer."""

    status: int = 200
    body: Any = None  # dict/list -> JSON; str/bytes -> as is
    headers: Mapping[str, str] = field(default_factory=dict)
    delay_s: float = 0.0  # sleep before answering (client timeouts)


# --- canned answers ------------------------------------------------------------------------


def camel_keys(document: Any) -> Any:
    """``document`` with every key in lowerCamelCase. Google's JSON parser takes both
    spellings and google-genai sends some nested parts snake_case (``fileData.file_uri``)."""
    if isinstance(document, dict):
        return {_camel(str(k)): camel_keys(v) for k, v in document.items()}
    if isinstance(document, list):
        return [camel_keys(v) for v in document]
    return document


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(w[:1].upper() + w[1:] for w in rest)


def _as_text(doc: Any) -> str:
    return doc if isinstance(doc, str) else json.dumps(doc)


def gemini_answer(
    doc: Any, *, prompt_tokens: int = 120, output_tokens: int = 80, finish_reason: str = "STOP"
) -> Canned:
    """A generateContent answer whose text is ``doc`` (JSON-encoded unless a str)."""
    return Canned(
        body={
            "candidates": [
                {
                    "content": {"role": "model", "parts": [{"text": _as_text(doc)}]},
                    "finishReason": finish_reason,
                    "index": 0,
                }
            ],
            "usageMetadata": {
                "promptTokenCount": prompt_tokens,
                "candidatesTokenCount": output_tokens,
                "totalTokenCount": prompt_tokens + output_tokens,
            },
            "modelVersion": "stub",
        }
    )


def gemini_blocked(reason: str = "SAFETY") -> Canned:
    return Canned(
        body={
            "promptFeedback": {"blockReason": reason},
            "usageMetadata": {"promptTokenCount": 10, "totalTokenCount": 10},
        }
    )


def openai_answer(
    doc: Any,
    *,
    prompt_tokens: int = 120,
    completion_tokens: int = 80,
    refusal: str | None = None,
    finish_reason: str = "stop",
    model: str = "stub",
) -> Canned:
    """A chat.completion whose message content is ``doc`` (JSON-encoded unless a str)."""
    message: dict[str, Any] = {
        "role": "assistant",
        "content": None if refusal else _as_text(doc),
        "refusal": refusal,
    }
    return Canned(
        body={
            "id": f"chatcmpl-{uuid.uuid4().hex[:12]}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": model,
            "choices": [
                {"index": 0, "message": message, "finish_reason": finish_reason, "logprobs": None}
            ],
            "usage": {
                "prompt_tokens": prompt_tokens,
                "completion_tokens": completion_tokens,
                "total_tokens": prompt_tokens + completion_tokens,
            },
        }
    )


def openai_transcription(
    segments: Sequence[tuple[float, float, str]], *, duration: float, language: str = "english"
) -> Canned:
    """A verbose_json transcription with ``segments`` as (start, end, text)."""
    return Canned(body=_verbose_json(segments, duration, language))


def _verbose_json(
    segments: Sequence[tuple[float, float, str]], duration: float, language: str
) -> dict[str, Any]:
    return {
        "task": "transcribe",
        "language": language,
        "duration": duration,
        "text": " ".join(t for _, _, t in segments),
        "segments": [
            {
                "id": i,
                "seek": 0,
                "start": a,
                "end": b,
                "text": t,
                "tokens": [1, 2],
                "temperature": 0.0,
                "avg_logprob": -0.2,
                "compression_ratio": 1.1,
                "no_speech_prob": 0.01,
            }
            for i, (a, b, t) in enumerate(segments)
        ],
        "usage": {"type": "duration", "seconds": duration},
    }


_GOOGLE_STATUS = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    429: "RESOURCE_EXHAUSTED",
    500: "INTERNAL",
    503: "UNAVAILABLE",
}
_OPENAI_TYPE = {
    400: "invalid_request_error",
    401: "invalid_request_error",
    403: "permission_denied",
    404: "not_found",
    429: "rate_limit_exceeded",
    500: "server_error",
    503: "server_error",
}


def gemini_error(status: int, message: str = "stub error", **headers: str) -> Canned:
    body = {
        "error": {
            "code": status,
            "message": message,
            "status": _GOOGLE_STATUS.get(status, "UNKNOWN"),
        }
    }
    return Canned(status=status, body=body, headers=_headers(headers))


def openai_error(
    status: int, message: str = "stub error", *, code: str | None = None, **headers: str
) -> Canned:
    body = {
        "error": {
            "message": message,
            "type": _OPENAI_TYPE.get(status, "error"),
            "param": None,
            "code": code,
        }
    }
    return Canned(status=status, body=body, headers=_headers(headers))


def _headers(kwargs: Mapping[str, str]) -> dict[str, str]:
    """retry_after_ms="5" -> {"retry-after-ms": "5"}."""
    return {k.replace("_", "-"): v for k, v in kwargs.items()}


# --- canned documents for auto mode ---------------------------------------------------------

_FINGERPRINTS = {
    frozenset({"language", "duration_s", "segments"}): "transcript",
    frozenset({"summary", "key_terms", "topics"}): "video_analysis",
    frozenset({"frames"}): "frame_analysis",
    frozenset({"title", "summary", "modules"}): "course_structure",
    frozenset({"lessons"}): "interactivity",
}
_FENCED = re.compile(r"```json\n(.*?)\n```", re.DOTALL)


def schema_kind(schema: Mapping[str, Any] | None) -> str | None:
    """Which schemas/ai document a response schema asks for, by its required fields."""
    if not schema:
        return None
    return _FINGERPRINTS.get(frozenset(schema.get("required", ())))


def prompt_inputs(text: str) -> dict[str, Any]:
    """The fenced JSON inputs block of a prompt (see handlers.ai.prompts.json_block)."""
    match = _FENCED.search(text)
    if not match:
        return {}
    try:
        found = json.loads(match.group(1))
    except json.JSONDecodeError:
        return {}
    return found if isinstance(found, dict) else {}


def voiced_regions(
    wav_bytes: bytes, *, window_s: float = 0.05
) -> tuple[float, list[tuple[float, float]]]:
    """(duration, loud regions) of a 16-bit PCM WAV: a stand-in for speech recognition."""
    try:
        with wave.open(io.BytesIO(wav_bytes)) as w:
            rate, channels, width = w.getframerate(), w.getnchannels(), w.getsampwidth()
            frames = w.readframes(w.getnframes())
    except (wave.Error, EOFError):
        return 0.0, []
    if width != 2:
        return 0.0, []
    samples = array.array("h", frames[: len(frames) // 2 * 2])
    step = max(1, int(rate * window_s)) * channels
    duration = len(samples) / channels / rate
    regions: list[tuple[float, float]] = []
    start: float | None = None
    for i in range(0, len(samples), step):
        window = samples[i : i + step]
        loud = max((abs(v) for v in window), default=0) > 1000
        t = i / channels / rate
        if loud and start is None:
            start = t
        elif not loud and start is not None:
            regions.append((start, t))
            start = None
    if start is not None:
        regions.append((start, duration))
    merged: list[tuple[float, float]] = []
    for a, b in regions:  # join loud stretches split by a single quiet window
        if merged and a - merged[-1][1] < 0.15:
            merged[-1] = (merged[-1][0], b)
        else:
            merged.append((a, b))
    return round(duration, 3), [(round(a, 2), round(b, 2)) for a, b in merged]


def canned_document(
    kind: str, inputs: Mapping[str, Any], *, audio: bytes | None = None
) -> dict[str, Any]:
    """A valid document of ``schemas/ai/<kind>.json``, consistent with the prompt's inputs."""
    duration = float(inputs.get("duration_s") or 60.0)
    if kind == "transcript":
        length, regions = voiced_regions(audio or b"")
        if not regions:
            length, regions = length or duration, [(0.0, min(duration, 5.0))]
        segments = [
            {"start": a, "end": b, "text": f"Stub sentence {i + 1}."}
            for i, (a, b) in enumerate(regions)
        ]
        return {"language": "en", "duration_s": length, "segments": segments}
    if kind == "video_analysis":
        part = inputs.get("part")  # one window of a long lecture (handlers/ai/windows.py)
        if isinstance(part, Mapping):
            return _window_analysis(part)
        half = round(duration / 2, 3)
        return {
            "summary": "A stub lecture.",
            "key_terms": ["stub", "lecture"],
            "topics": [
                {
                    "start": 0.0,
                    "end": half,
                    "title": "First part",
                    "summary": "The start.",
                    "key_terms": ["stub"],
                },
                {
                    "start": half,
                    "end": duration,
                    "title": "Second part",
                    "summary": "The end.",
                    "key_terms": ["lecture"],
                },
            ],
        }
    if kind == "frame_analysis":
        return {
            "frames": [
                {
                    "name": str(f["name"]),
                    "t": float(f["t"]),
                    "title": f"Slide {i + 1}",
                    "body": ["First point", "Second point"],
                    "title_confidence": 0.9,
                    "body_confidence": 0.8,
                }
                for i, f in enumerate(inputs.get("frames", []))
            ]
        }
    if kind == "course_structure":
        return _structure(inputs, duration)
    if kind == "interactivity":
        per = max(2, int(inputs.get("per_lesson") or 2))
        return {
            "lessons": [
                {
                    "lesson": int(lesson["index"]),
                    "questions": [
                        {
                            "kind": "multiple_choice",
                            "prompt": f"Stub question {q + 1} on {lesson['title']}?",
                            "choices": ["Alpha", "Beta", "Gamma"],
                            "answer": "Alpha",
                            "explanation": "The lesson says so.",
                        }
                        for q in range(per)
                    ],
                }
                for lesson in inputs.get("lessons", [])
            ]
        }
    raise KeyError(f"no canned document for {kind!r}")


def _window_analysis(part: Mapping[str, Any]) -> dict[str, Any]:
    """One topic for the window, and a summary naming how far the lecture has got."""
    number, start, end = int(part["number"]), float(part["start_s"]), float(part["end_s"])
    return {
        "summary": f"Stub summary of the lecture up to {end:g} s.",
        "key_terms": ["stub", f"part {number}"],
        "topics": [
            {
                "start": start,
                "end": end,
                "title": f"Part {number}",
                "summary": f"Part {number} of the lecture.",
                "key_terms": [f"part {number}"],
            }
        ],
    }


def _structure(inputs: Mapping[str, Any], duration: float) -> dict[str, Any]:
    half = round(duration / 2, 3)
    slides = inputs.get("slides") or []
    lessons = []
    for i, (start, end) in enumerate(((0.0, half), (half, duration))):
        frames = [str(s["name"]) for s in slides if start <= float(s.get("t") or 0) < end]
        lessons.append(
            {
                "title": f"Lesson {i + 1}",
                "start": start,
                "end": end,
                "summary": f"Part {i + 1} of the lecture.",
                "key_frames": frames[:3],
                "key_terms": ["stub"],
            }
        )
    return {
        "title": str(inputs.get("title") or "Stub course"),
        "summary": "A stub course.",
        "modules": [{"title": "Module 1", "lessons": lessons}],
    }
