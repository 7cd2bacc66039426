"""quiz_check: the deterministic gate every local-model question passes before a learner sees it."""

from __future__ import annotations

from handlers.ai.port import LessonText
from handlers.ai.quiz_check import check_question, grounded, keep_passing, lesson_material

MATERIAL = lesson_material(
    LessonText(
        index=0,
        title="Rivers and erosion",
        start=0.0,
        end=30.0,
        transcript="A river carries sediment downstream. Erosion deepens valleys over time. "
        "Meanders form where the current slows on the inside bend.",
        slide_text="Deltas form at the river mouth",
    )
)


def mc(
    answer="sediment", choices=("sediment", "lava", "pollen"), prompt="What does a river carry?"
):
    return {
        "kind": "multiple_choice",
        "prompt": prompt,
        "choices": list(choices),
        "answer": answer,
        "explanation": "The lesson says so.",
    }


def cloze(prompt="Erosion deepens ____ over time.", answer="valleys", choices=()):
    return {
        "kind": "cloze",
        "prompt": prompt,
        "choices": list(choices),
        "answer": answer,
        "explanation": "",
    }


def test_a_grounded_multiple_choice_question_passes_with_the_answer_spelled_as_its_choice():
    verdict = check_question(mc(answer="  Sediment "), MATERIAL)
    assert verdict.passed, verdict.problems
    assert verdict.question["answer"] == "sediment"


def test_an_answer_that_is_not_one_of_the_choices_is_refused():
    verdict = check_question(mc(answer="sand"), MATERIAL)
    assert not verdict.passed
    assert "the answer is not one of the choices" in verdict.problems


def test_repeated_choices_and_too_few_choices_are_refused():
    same = check_question(mc(choices=("sediment", "Sediment", "lava")), MATERIAL)
    few = check_question(mc(choices=("sediment", "lava")), MATERIAL)
    assert "two choices are the same" in same.problems
    assert any("needs 3 or 4" in p for p in few.problems)


def test_an_answer_the_lesson_does_not_state_is_refused_even_when_it_is_a_choice():
    verdict = check_question(mc(answer="lava", prompt="What flows from a volcano?"), MATERIAL)
    assert verdict.problems == ("the answer 'lava' is not stated in the lesson",)


def test_a_cloze_needs_a_blank_and_must_not_give_its_answer_away():
    no_blank = check_question(cloze(prompt="Erosion deepens what over time?"), MATERIAL)
    given = check_question(cloze(prompt="Erosion deepens valleys ____ over time."), MATERIAL)
    assert "the cloze prompt has no blank (___)" in no_blank.problems
    assert "the prompt gives the answer away" in given.problems
    assert check_question(cloze(), MATERIAL).passed


def test_a_cloze_with_choices_must_have_its_answer_among_them():
    verdict = check_question(cloze(choices=("deltas", "meanders", "rivers")), MATERIAL)
    assert "the answer is not one of the choices" in verdict.problems


def test_an_unknown_kind_and_empty_fields_are_refused():
    verdict = check_question(
        {"kind": "essay", "prompt": " ", "answer": "", "choices": []}, MATERIAL
    )
    assert len(verdict.problems) == 3


def test_grounding_takes_the_whole_answer_or_every_content_word_in_either_number():
    assert grounded("the river mouth", MATERIAL)
    assert grounded("valley", MATERIAL)  # the lesson says "valleys"
    assert grounded("meanders and deltas", MATERIAL)
    assert not grounded("glaciers and deltas", MATERIAL)
    assert not grounded("the", "No article said here.")  # no content word to find


def test_a_many_word_answer_needs_its_words_said_together_not_scattered_over_the_lesson():
    # the sample's meanders lesson as tiny.en heard it, with "meanders" said far from the rest
    said = (
        "on flat round river forms the enders and bends water flows faster on the outer bank "
        "and wears it away while sand settles on the inner bank when a bend is cut off it "
        "becomes a quiet oxbow lake " + "the river keeps moving downstream " * 3 + "meanders"
    )
    assert not grounded("Bends are faster than meanders", said)
    assert grounded("faster on the outer bend", said)  # not verbatim: "bank" comes between
    assert grounded("outer bank wears away", said)


def test_keep_passing_drops_failures_and_repeats_and_stops_at_the_limit():
    questions = [
        mc(),
        mc(prompt="Which material moves with the water?"),  # same answer again
        mc(answer="lava", prompt="Which is hot?"),  # not grounded
        cloze(),
        cloze(prompt="____ form where the current slows.", answer="Meanders"),
    ]
    kept, refused = keep_passing(questions, MATERIAL, limit=2)
    assert [q["answer"] for q in kept] == ["sediment", "valleys"]
    assert [v.problems[0] for v in refused] == [
        "another question has its prompt or answer",
        "the answer 'lava' is not stated in the lesson",
    ]
