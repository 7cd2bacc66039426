"""Versioned prompt templates for the AI providers, in one place.

Each prompt has an id and a version; ``Prompt.ref`` ("structure@1") goes into the metering of
every call, so a step's events say exactly which wording produced an output. Change the text
of a prompt only together with its version.

Inputs travel as one fenced JSON block (```json ... ```) so a model, a log reader and the test
stub all read them the same way.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from string import Template
from typing import Any

from handlers.ai.port import FrameInput, LessonText, StructureInputs

_JSON_ONLY = (
    "Answer with one JSON object that matches the given JSON schema exactly: every required "
    "field, no other fields, no prose, no Markdown."
)


@dataclass(frozen=True, slots=True)
class Prompt:
    id: str
    version: int
    system: str
    template: str  # string.Template: $name placeholders, so JSON braces need no escaping

    @property
    def ref(self) -> str:
        return f"{self.id}@{self.version}"

    def render(self, **fields: Any) -> str:
        return Template(self.template).substitute(
            {k: v if isinstance(v, str) else str(v) for k, v in fields.items()}
        )


def json_block(document: Any) -> str:
    """``document`` as a fenced JSON block (the inputs of a prompt)."""
    return "```json\n" + json.dumps(document, ensure_ascii=False, indent=1) + "\n```"


TRANSCRIBE = Prompt(
    "transcribe",
    1,
    "You transcribe lecture audio verbatim. " + _JSON_ONLY,
    "Transcribe the attached lecture audio (language: $language). Split it into segments of "
    "one or two sentences; give each segment's start and end in seconds from the beginning of "
    "the audio, in order, without overlaps. Set duration_s to the length of the audio and "
    "language to the spoken language code.",
)

ANALYZE_VIDEO = Prompt(
    "analyze_video",
    1,
    "You analyse recorded lectures for course authors. " + _JSON_ONLY,
    "Watch the attached lecture video. Using the picture, the sound and the inputs below, "
    "split it into topics in time order: each with start and end in seconds, a short title, "
    "a one-sentence summary and its key terms. Also give a summary of the whole lecture and "
    "its key terms. Scene changes (seconds) usually mark slide changes.\n\n$inputs",
)

ANALYZE_VIDEO_FROM_TRANSCRIPT = Prompt(
    "analyze_video_text",
    1,
    "You analyse recorded lectures for course authors. " + _JSON_ONLY,
    "Here is the timed transcript of a lecture and the times (seconds) where the picture "
    "changes, usually slide changes. Split the lecture into topics in time order: each with "
    "start and end in seconds, a short title, a one-sentence summary and its key terms. Also "
    "give a summary of the whole lecture and its key terms.\n\n$inputs",
)

# One window of a long lecture (handlers/ai/windows.py): the part it covers, the summary of
# the parts before it, and times on the whole lecture's clock.
_WINDOW = (
    "This is part $number of $count of a long lecture: from $start_s to $end_s seconds. The "
    "inputs give the summary of the lecture before this part (summary_so_far, empty for the "
    "first part) and the last topic found before it (previous_topic; repeat its title exactly "
    "if this part opens by continuing it). Give every time in seconds from the start of the "
    "whole lecture, inside this part. Split this part into topics in time order: each with "
    "start and end, a short title, a one-sentence summary and its key terms. Set summary to a "
    "summary of the whole lecture so far (summary_so_far and this part together) and "
    "key_terms to this part's key terms."
)

ANALYZE_VIDEO_WINDOW = Prompt(
    "analyze_video_window",
    1,
    "You analyse recorded lectures for course authors. " + _JSON_ONLY,
    "Watch the attached part of a lecture video, using the picture, the sound and the inputs "
    "below (its timed transcript, and scene changes, which usually mark slide changes). "
    + _WINDOW
    + "\n\n$inputs",
)

ANALYZE_VIDEO_TEXT_WINDOW = Prompt(
    "analyze_video_text_window",
    1,
    "You analyse recorded lectures for course authors. " + _JSON_ONLY,
    "Below are the timed transcript of part of a lecture and the times (seconds) where the "
    "picture changes, usually slide changes. " + _WINDOW + "\n\n$inputs",
)

ANALYZE_FRAMES = Prompt(
    "analyze_frames",
    1,
    "You read the text on lecture slides. " + _JSON_ONLY,
    "Each image below is a key frame of a lecture video, introduced by its name and time. For "
    "every frame, in the same order, give its name and t exactly as introduced, the slide title "
    "(empty if none), the bullet or body lines as a list, and your confidence (0..1) in the "
    "title and in the body.\n\n$inputs",
)

STRUCTURE = Prompt(
    "structure",
    1,
    "You design online courses from recorded lectures. " + _JSON_ONLY,
    "Design the structure of an online course from the lecture described below. Group it into "
    "modules of lessons; lessons follow the lecture in time order, do not overlap, and together "
    "cover 0..duration_s seconds. For each lesson give start and end (seconds), a title, a "
    "summary, key_frames (names of slide frames inside the lesson) and key_terms. Write in the "
    "course language.\n\n$inputs",
)

INTERACTIVITY = Prompt(
    "interactivity",
    1,
    "You write quiz questions for online courses. " + _JSON_ONLY,
    "Write $per_lesson quiz questions for every lesson below (lesson = its index). Questions "
    "are multiple_choice (3 or 4 choices, answer is one of them) or cloze (a prompt with ____ "
    "and no choices). Ground every answer in the lesson's own transcript or slides and explain "
    "it in one sentence.\n\n$inputs",
)

REPAIR = Prompt(
    "repair",
    1,
    "",
    "Your previous answer does not match the JSON schema. Problems:\n$errors\n\nAnswer again "
    "with the complete corrected JSON object only.",
)

PROMPTS: dict[str, Prompt] = {
    p.id: p
    for p in (
        TRANSCRIBE,
        ANALYZE_VIDEO,
        ANALYZE_VIDEO_FROM_TRANSCRIPT,
        ANALYZE_VIDEO_WINDOW,
        ANALYZE_VIDEO_TEXT_WINDOW,
        ANALYZE_FRAMES,
        STRUCTURE,
        INTERACTIVITY,
        REPAIR,
    )
}


def prompt(prompt_id: str) -> Prompt:
    try:
        return PROMPTS[prompt_id]
    except KeyError:
        raise KeyError(f"no prompt named {prompt_id!r}") from None


# --- the inputs each prompt shows (shared by the providers) --------------------------------


def transcript_lines(transcript: Mapping[str, Any]) -> str:
    """The transcript as ``[start-end] text`` lines: compact and still timed."""
    return "\n".join(
        f"[{float(s['start']):.1f}-{float(s['end']):.1f}] {str(s['text']).strip()}"
        for s in transcript.get("segments", ())
    )


def video_inputs(transcript: Mapping[str, Any], scene_times: Sequence[float]) -> dict[str, Any]:
    return {
        "duration_s": float(transcript.get("duration_s", 0.0)),
        "language": transcript.get("language", ""),
        "scene_times": [round(float(t), 2) for t in scene_times],
        "transcript": transcript_lines(transcript),
    }


def frames_inputs(frames: Sequence[FrameInput]) -> dict[str, Any]:
    return {"frames": [{"name": f.name, "t": round(float(f.t), 3)} for f in frames]}


def structure_inputs(inputs: StructureInputs) -> dict[str, Any]:
    return {
        "title": inputs.title,
        "language": inputs.language,
        "duration_s": float(inputs.duration_s),
        "video_analysis": dict(inputs.video_analysis),
        "slides": [
            {
                "name": s.get("name"),
                "t": s.get("t"),
                "title": s.get("title", ""),
                "body": list(s.get("body", ())),
            }
            for s in inputs.slides
        ],
        "transcript": transcript_lines(inputs.transcript),
    }


def interactivity_inputs(
    structure: Mapping[str, Any], lessons: Sequence[LessonText], per_lesson: int
) -> dict[str, Any]:
    return {
        "course_title": structure.get("title", ""),
        "per_lesson": per_lesson,
        "lessons": [
            {
                "index": lesson.index,
                "title": lesson.title,
                "start": lesson.start,
                "end": lesson.end,
                "transcript": lesson.transcript,
                "slides": lesson.slide_text,
            }
            for lesson in lessons
        ],
    }
