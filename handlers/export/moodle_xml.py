"""Moodle XML (question bank import): every lesson's quiz, one category per lesson.

multiple_choice -> ``multichoice`` (single answer, 100 % for the right choice); cloze ->
``shortanswer`` (case-insensitive). The explanation is the general feedback and the feedback
of each answer. Texts are ``plain_text`` so Moodle shows markup as text; the XML writer
escapes it. The structure is what Moodle's importer (question/format/xml/format.php) reads;
schemas/moodle/quiz.xsd writes it down and the tests validate against it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from xml.etree import ElementTree as ET

from handlers.export.gift import category_path

PLAIN = "plain_text"


def render(course: Mapping[str, Any]) -> bytes:
    quiz = ET.Element("quiz")
    quiz.append(ET.Comment(" exported by coursegen "))
    for module in course["modules"]:
        for lesson in module["lessons"]:
            if not lesson.get("quiz"):
                continue
            category = ET.SubElement(quiz, "question", type="category")
            _text(
                ET.SubElement(category, "category"), category_path(course["title"], lesson["title"])
            )
            for n, question in enumerate(lesson["quiz"], start=1):
                quiz.append(_question(f"{lesson['id']}-q{n}", lesson, question))
    ET.indent(quiz)
    body: bytes = ET.tostring(quiz, encoding="utf-8", xml_declaration=False)
    return b'<?xml version="1.0" encoding="UTF-8"?>\n' + body + b"\n"


def _text(parent: ET.Element, value: str) -> ET.Element:
    ET.SubElement(parent, "text").text = value
    return parent


def _formatted(parent: ET.Element, tag: str, value: str) -> ET.Element:
    return _text(ET.SubElement(parent, tag, format=PLAIN), value)


def _question(name: str, lesson: Mapping[str, Any], question: Mapping[str, Any]) -> ET.Element:
    answer = str(question["answer"])
    choices = [str(c) for c in question.get("choices", ())]
    explanation = str(question.get("explanation") or "")
    choice = question["kind"] == "multiple_choice" and answer in choices
    element = ET.Element("question", type="multichoice" if choice else "shortanswer")
    _text(ET.SubElement(element, "name"), f"{name} {lesson['title']}")
    _formatted(element, "questiontext", str(question["prompt"]))
    _formatted(element, "generalfeedback", explanation)
    ET.SubElement(element, "defaultgrade").text = "1.0000000"
    ET.SubElement(element, "penalty").text = "0.3333333"
    ET.SubElement(element, "hidden").text = "0"
    ET.SubElement(element, "idnumber").text = name
    if choice:
        ET.SubElement(element, "single").text = "true"
        ET.SubElement(element, "shuffleanswers").text = "true"
        ET.SubElement(element, "answernumbering").text = "abc"
        ET.SubElement(element, "showstandardinstruction").text = "0"
        _formatted(element, "correctfeedback", "Correct. " + explanation)
        _formatted(element, "partiallycorrectfeedback", explanation)
        _formatted(element, "incorrectfeedback", f"The answer is {answer}. {explanation}")
        for option in choices:
            right = option == answer
            _answer(element, option, 100 if right else 0, explanation)
    else:
        ET.SubElement(element, "usecase").text = "0"
        _answer(element, answer, 100, explanation)
    return element


def _answer(question: ET.Element, text: str, fraction: int, feedback: str) -> None:
    answer = _text(ET.SubElement(question, "answer", fraction=str(fraction), format=PLAIN), text)
    _formatted(answer, "feedback", feedback)
