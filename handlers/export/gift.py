"""GIFT (Moodle's plain-text question format): every lesson's quiz, one category per lesson.

A multiple-choice question lists its choices (= right, ~ wrong); a cloze becomes a short
answer, written as a missing word where its prompt has a blank. The explanation is the
question's general feedback (####). Text is ``[plain]`` so Moodle shows markup as text, and
GIFT's special characters are escaped with a backslash.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

SPECIAL = re.compile(r"([\\~=#{}:])")
BLANK = re.compile(r"_{3,}")


def escape(text: str) -> str:
    """GIFT text: ~ = # { } : and \\ take a backslash; a line break is written \\n."""
    escaped = SPECIAL.sub(r"\\\1", str(text))
    return escaped.replace("\r\n", "\n").replace("\r", "\n").replace("\n", "\\n")


def category_path(*parts: str) -> str:
    """A Moodle category path; a "/" inside a name is doubled (Moodle's escape)."""
    names = (" ".join(str(p).split()).replace("/", "//") for p in parts)
    return "$course$/top/" + "/".join(names)


def render(course: Mapping[str, Any]) -> str:
    blocks = [f"// {' '.join(str(course['title']).split())}: quizzes exported by coursegen"]
    for module in course["modules"]:
        for lesson in module["lessons"]:
            if not lesson.get("quiz"):
                continue
            blocks.append("$CATEGORY: " + category_path(course["title"], lesson["title"]))
            for n, question in enumerate(lesson["quiz"], start=1):
                blocks.append(_question(f"{lesson['id']}-q{n}", question))
    return "\n\n".join(blocks) + "\n"


def _question(name: str, question: Mapping[str, Any]) -> str:
    prompt, answer = str(question["prompt"]), str(question["answer"])
    feedback = str(question.get("explanation") or "")
    general = f"\n####{escape(feedback)}" if feedback else ""
    choices = [str(c) for c in question.get("choices", ())]
    head = f"::{escape(name)}::[plain]"
    if question["kind"] == "multiple_choice" and answer in choices:
        options = "\n".join(
            ("=" if choice == answer else "~") + escape(choice) for choice in choices
        )
        return f"{head}{escape(prompt)} {{\n{options}{general}\n}}"
    block = f"{{\n={escape(answer)}{general}\n}}"
    match = BLANK.search(prompt)
    if match:  # a missing word: the answer box stands where the blank is
        before, after = prompt[: match.start()], prompt[match.end() :]
        return f"{head}{escape(before)}{block}{escape(after)}"
    return f"{head}{escape(prompt)} {block}"
