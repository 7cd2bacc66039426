"""Deterministic checks of a quiz question a model wrote: well formed, answer among the options,
answer stated in the lesson. A question that fails any check is not shown to a learner."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from handlers.ai.port import LessonText
from handlers.ai.text import STOPWORDS, mentions

MIN_CHOICES = 3
MAX_CHOICES = 4
BLANK = re.compile(r"_{3,}")
# A many-word answer is stated when all its content words fall within this many words.
GROUNDING_WINDOW = 15
_WORD = re.compile(r"[^\W_]+(?:['-][^\W_]+)*")


@dataclass(frozen=True, slots=True)
class Verdict:
    """A question with its answer spelled as its choice, or the reasons it was refused."""

    question: Mapping[str, Any]
    problems: tuple[str, ...]

    @property
    def passed(self) -> bool:
        return not self.problems


def lesson_material(lesson: LessonText) -> str:
    """What a question may be grounded in: the lesson's title, spoken text and slide text."""
    return "\n".join(t for t in (lesson.title, lesson.transcript, lesson.slide_text) if t)


def check_question(question: Mapping[str, Any], material: str) -> Verdict:
    """Check one question against its lesson's text (see the module's docstring)."""
    kind = str(question.get("kind", ""))
    prompt = " ".join(str(question.get("prompt", "")).split())
    answer = " ".join(str(question.get("answer", "")).split())
    choices = [" ".join(str(c).split()) for c in question.get("choices") or ()]
    problems: list[str] = []
    if kind not in ("multiple_choice", "cloze"):
        problems.append(f"kind {kind!r} is neither multiple_choice nor cloze")
    if not prompt:
        problems.append("the prompt is empty")
    if not answer:
        problems.append("the answer is empty")
    if any(not c for c in choices):
        problems.append("a choice is empty")
    folded = [c.casefold() for c in choices]
    if len(set(folded)) != len(folded):
        problems.append("two choices are the same")
    if kind == "multiple_choice" and not MIN_CHOICES <= len(choices) <= MAX_CHOICES:
        problems.append(f"{len(choices)} choices (a multiple-choice question needs 3 or 4)")
    if (kind == "multiple_choice" or choices) and answer.casefold() not in folded:
        problems.append("the answer is not one of the choices")
    else:
        answer = next((c for c in choices if c.casefold() == answer.casefold()), answer)
    if kind == "cloze" and not BLANK.search(prompt):
        problems.append("the cloze prompt has no blank (___)")
    if answer and mentions(BLANK.sub(" ", prompt), answer):
        problems.append("the prompt gives the answer away")
    if answer and not grounded(answer, material):
        problems.append(f"the answer {answer!r} is not stated in the lesson")
    checked = {**question, "prompt": prompt, "answer": answer, "choices": choices}
    return Verdict(checked, tuple(problems))


def grounded(answer: str, material: str) -> bool:
    """Whether the lesson states ``answer``: the whole answer occurs in it, or every content
    word of the answer does (a plural or singular form counts) within GROUNDING_WINDOW words
    of each other: speech comes unpunctuated, so "one sentence" is a stretch of words."""
    if mentions(material, answer):
        return True
    words = {_stem(w) for w in _WORD.findall(answer.casefold()) if w not in STOPWORDS}
    if not words:
        return False
    said = [_stem(w) for w in _WORD.findall(material.casefold())]
    last_seen: dict[str, int] = {}
    for i, word in enumerate(said):
        if word in words:
            last_seen[word] = i
            if len(last_seen) == len(words) and i - min(last_seen.values()) < GROUNDING_WINDOW:
                return True
    return False


def _stem(word: str) -> str:
    for suffix in ("ies", "es", "s"):
        if len(word) > len(suffix) + 2 and word.endswith(suffix):
            return word[: -len(suffix)] + ("y" if suffix == "ies" else "")
    return word


def keep_passing(
    questions: Sequence[Mapping[str, Any]], material: str, limit: int
) -> tuple[list[dict[str, Any]], list[Verdict]]:
    """The questions that pass, at most ``limit``, no two with the same prompt or answer;
    and the verdicts of the ones refused."""
    kept: list[dict[str, Any]] = []
    refused: list[Verdict] = []
    seen: set[str] = set()
    for question in questions:
        verdict = check_question(question, material)
        keys = {
            "prompt:" + str(verdict.question["prompt"]).casefold(),
            "answer:" + str(verdict.question["answer"]).casefold(),
        }
        if verdict.passed and keys & seen:
            verdict = Verdict(verdict.question, ("another question has its prompt or answer",))
        if not verdict.passed:
            refused.append(verdict)
            continue
        if len(kept) < limit:
            kept.append(dict(verdict.question))
            seen |= keys
    return kept, refused
