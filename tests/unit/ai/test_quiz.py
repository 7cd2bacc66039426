"""The offline quiz's rules: questions on ideas, answers stated, distractors of the answer's
kind, one question per sentence."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import schemas
from handlers.ai.port import LessonText
from handlers.ai.quiz import answer_kind, by_lesson, material, quizzes
from handlers.ai.text import mentions, sentences


def lesson(index: int, title: str, transcript: str, slide_text: str = "") -> LessonText:
    return LessonText(index=index, title=title, start=index * 30.0, end=index * 30.0 + 30.0,
                      transcript=transcript, slide_text=slide_text)  # fmt: skip


COURSE = (
    lesson(
        0,
        "Compilers",
        "A compiler is a program that turns source code into machine code. "
        "Compilers check types because type errors are cheaper to fix early. "
        "An optimising compiler is slower than a simple interpreter. "
        "The compiler builds a syntax tree.",
        "Compilers\nReads source code\nBuilds a syntax tree\nEmits machine instructions",
    ),
    lesson(
        1,
        "Hash Functions",
        "A hash function is a function that maps data to a fixed size value. "
        "Hash tables stay fast because a good hash spreads keys evenly. "
        "A cryptographic hash is harder to reverse than a checksum. "
        "The hash function returns a digest.",
        "Hash Functions\nMaps data to a number\nSpreads keys evenly\nDetects changed files",
    ),
    lesson(
        2,
        "River Erosion",
        "Erosion is the process that wears rock away over time. "
        "Valleys deepen because fast water carries heavy stones. "
        "A steep river is stronger than a slow stream. "
        "The river erosion moves sand to the sea.",
        "River Erosion\nWears rock away\nCarries sand to the sea\nCarves deep valleys",
    ),
)


def quiz_of(lessons: Sequence[LessonText], per_lesson: int = 5) -> dict[int, list[Any]]:
    data = quizzes(lessons, per_lesson)
    schemas.validate("ai/interactivity", data)
    return {i: list(q) for i, q in by_lesson(data).items()}


def answers(questions: Sequence[Mapping[str, Any]]) -> list[str]:
    return [str(q["answer"]) for q in questions]


def test_questions_ask_about_definitions_causes_comparisons_and_bullets() -> None:
    questions = quiz_of(COURSE)[0]
    by_prompt = {q["prompt"]: q["answer"] for q in questions}
    assert by_prompt['According to the lesson "Compilers", what is a compiler?'] == (
        "a program that turns source code into machine code"
    )
    assert by_prompt[
        'According to the lesson "Compilers", why is it that compilers check types?'
    ] == ("type errors are cheaper to fix early")
    assert by_prompt[
        'Complete the comparison from the lesson "Compilers": "An optimising compiler is slower'
        ' than …"'
    ] == ("a simple interpreter")
    bullets = [q for q in questions if q["prompt"].startswith("Which of these is a point on")]
    assert bullets and bullets[0]["answer"] in COURSE[0].slide_text.splitlines()


def test_distractors_are_answers_of_the_same_kind_from_other_lessons() -> None:
    quiz = quiz_of(COURSE)
    definition = next(q for q in quiz[0] if q["prompt"].endswith("what is a compiler?"))
    others = {"a function that maps data to a fixed size value",
              "the process that wears rock away over time"}  # fmt: skip
    assert set(definition["choices"]) - {definition["answer"]} == others
    bullet = next(q for q in quiz[1] if q["prompt"].startswith("Which of these is a point on"))
    other_bullets = {line for le in (COURSE[0], COURSE[2]) for line in le.slide_text.splitlines()}
    assert set(bullet["choices"]) - {bullet["answer"]} <= other_bullets


def test_a_number_is_asked_against_numbers_and_a_phrase_against_phrases() -> None:
    assert answer_kind("1969") == answer_kind("forty two") == ("number", 0)
    assert answer_kind("machine code") == ("term", 2)
    assert answer_kind("routing tables") == ("terms", 2)
    assert answer_kind("hashing") == ("terming", 1)
    lessons = [
        lesson(0, "Moon", "Apollo landed near the sea. The first landing came in 1969."),
        lesson(1, "Mars", "Rovers reached Mars with airbags. The first rover came in 1997."),
        lesson(2, "Venus", "Probes reached Venus and melted. The first probe came in 1970."),
    ]
    clozes = [q for qs in quiz_of(lessons, per_lesson=6).values() for q in qs if
              q["kind"] == "cloze"]  # fmt: skip
    numbers = [q for q in clozes if answer_kind(q["answer"])[0] == "number"]
    assert numbers, clozes
    for question in clozes:
        kind = answer_kind(question["answer"])
        assert all(answer_kind(c) == kind for c in question["choices"]), question


def test_every_answer_is_stated_in_its_lesson_and_no_distractor_is() -> None:
    quiz = quiz_of(COURSE)
    for le in COURSE:
        text = material(le)
        assert len(quiz[le.index]) >= 2
        for question in quiz[le.index]:
            assert mentions(text, question["answer"]), question
            assert question["answer"] in question["choices"]
            wrong = [c for c in question["choices"] if c != question["answer"]]
            assert wrong and not any(mentions(text, c) for c in wrong), question
            assert len({c.lower() for c in question["choices"]}) == len(question["choices"])


def test_no_two_questions_come_from_one_sentence() -> None:
    quiz = quiz_of(COURSE, per_lesson=8)
    for le in COURSE:
        units = [*sentences(le.transcript), *le.slide_text.splitlines()]
        asked_from = []
        for question in quiz[le.index]:
            source = question["explanation"].removeprefix('The lesson says: "').rstrip('"')
            if question["explanation"].startswith("The lesson says"):
                asked_from.append(source.rstrip(".…").lstrip("…").lower())
        assert len(asked_from) == len(set(asked_from)), asked_from
        # and each one is a real sentence or slide line of the lesson
        assert all(any(a[:20] in u.lower() for u in units) for a in asked_from), asked_from


def test_a_sentence_with_several_terms_gives_one_question() -> None:
    only = lesson(0, "Solar", "Photons hit silicon cells and free electrons in solar panels.")
    questions = quiz_of([only, COURSE[1]], per_lesson=4)[0]
    from_sentence = [q for q in questions if q["explanation"].startswith("The lesson says")]
    assert len(from_sentence) == 1
    assert len(questions) == 4  # the rest ask which term the lesson names, still grounded
    assert all(mentions(only.transcript, q["answer"]) for q in questions)


def test_a_lessons_questions_take_the_kinds_in_turn() -> None:
    prompts = [q["prompt"] for q in quiz_of(COURSE, per_lesson=5)[0]]
    assert [p.split(",")[0].split(":")[0] for p in prompts] == [
        'According to the lesson "Compilers"',
        'According to the lesson "Compilers"',
        'Complete the comparison from the lesson "Compilers"',
        'Which of these is a point on the slide "Compilers"?',
        'Complete the statement from the lesson "Compilers"',
    ]


def test_the_decks_template_lines_are_never_asked_or_offered() -> None:
    footed = [
        lesson(le.index, le.title, le.transcript, f"{le.slide_text}\nComputing Ideas {n}/3")
        for n, le in enumerate(COURSE, start=1)
    ]
    for questions in quiz_of(footed, per_lesson=8).values():
        for question in questions:
            assert not any("Computing Ideas" in c for c in question["choices"]), question
