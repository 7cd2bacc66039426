"""The offline provider on synthetic edge cases: no slides, no speech, tiny lessons."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest

import schemas
from handlers.ai.offline import OfflineProvider
from handlers.ai.port import LessonText, StructureInputs
from handlers.ai.text import ranked_terms, term_counts
from tests.unit.ai.lessons import assert_grounded, lesson_texts, lessons_of

EMPTY_TRANSCRIPT = {"language": "en", "duration_s": 0.0, "segments": []}


@pytest.fixture(scope="module")
def provider() -> OfflineProvider:
    return OfflineProvider()


def transcript_of(*lines: tuple[float, float, str], duration: float = 60.0) -> dict[str, Any]:
    segments = [{"start": a, "end": b, "text": text} for a, b, text in lines]
    return {"language": "en", "duration_s": duration, "segments": segments}


def slide(t: float, title: str, *body: str, confidence: float = 0.95) -> dict[str, Any]:
    return {
        "name": f"frame_{round(t * 1000):08d}.jpg", "t": t, "title": title, "body": list(body),
        "title_confidence": confidence, "body_confidence": confidence,
    }  # fmt: skip


def structure_for(
    provider: OfflineProvider,
    transcript: Mapping[str, Any],
    slides: Sequence[Mapping[str, Any]],
    topics: Sequence[Mapping[str, Any]] = (),
    duration: float = 60.0,
) -> dict[str, Any]:
    analysis = {"summary": "", "key_terms": [], "topics": list(topics)}
    inputs = StructureInputs(
        title="Course", language="en", duration_s=duration, transcript=transcript,
        video_analysis=analysis, slides=slides,
    )  # fmt: skip
    data = dict(provider.generate_structure(inputs).data)
    schemas.validate("ai/course_structure", data)
    return data


TALK = transcript_of(
    (0.0, 10.0, "Photons strike the solar panel and free electrons."),
    (10.0, 20.0, "The inverter turns direct current into alternating current."),
    (20.0, 30.0, "Batteries store surplus energy for the night."),
    (30.0, 60.0, "Grid operators balance supply and demand every second."),
)


def test_no_slides_gives_lessons_from_the_topics(provider: OfflineProvider) -> None:
    topics = [{"start": 0.0, "end": 60.0, "title": "Solar Power", "summary": "", "key_terms": []}]
    lessons = lessons_of(structure_for(provider, TALK, [], topics))
    assert [(lesson["title"], lesson["start"], lesson["end"]) for lesson in lessons] == [
        ("Solar Power", 0.0, 60.0)
    ]
    assert lessons[0]["summary"].startswith("Photons strike the solar panel")


def test_no_slides_and_no_topics_still_gives_one_lesson(provider: OfflineProvider) -> None:
    lessons = lessons_of(structure_for(provider, TALK, []))
    assert [(lesson["title"], lesson["start"], lesson["end"]) for lesson in lessons] == [
        ("Part 1", 0.0, 60.0)
    ]


def test_repeated_untitled_and_fleeting_frames_do_not_split(provider: OfflineProvider) -> None:
    slides = [
        slide(0.0, "Solar Cells", "Photons free electrons"),
        slide(10.0, "Solar Celis", "Photons free electrons"),  # the same slide, read worse
        slide(12.0, ""),  # a transition frame with no title
        slide(18.0, "Flash Slide"),  # on screen for one second
        slide(19.0, "Inverters", "Direct to alternating current"),
        slide(25.0, "Noise", confidence=0.2),
        slide(30.0, "The Grid", "Balance supply and demand"),
    ]
    lessons = lessons_of(structure_for(provider, TALK, slides))
    assert [(lesson["title"], lesson["start"]) for lesson in lessons] == [
        ("Solar Cells", 0.0), ("Inverters", 19.0), ("The Grid", 30.0),
    ]  # fmt: skip
    assert lessons[0]["key_frames"] == [s["name"] for s in slides[:4]]


def test_a_late_first_slide_leaves_an_introduction(provider: OfflineProvider) -> None:
    lessons = lessons_of(structure_for(provider, TALK, [slide(20.0, "Batteries")]))
    assert [(lesson["title"], lesson["start"]) for lesson in lessons] == [
        ("Introduction", 0.0), ("Batteries", 20.0),
    ]  # fmt: skip


def test_many_lessons_make_modules_of_about_four(provider: OfflineProvider) -> None:
    slides = [slide(10.0 * i, f"Topic {chr(65 + i)}") for i in range(9)]
    built = structure_for(provider, TALK, slides, duration=90.0)
    assert [len(module["lessons"]) for module in built["modules"]] == [3, 3, 3]
    assert [module["title"] for module in built["modules"]] == ["Topic A", "Topic D", "Topic G"]


def test_empty_transcript_takes_text_and_questions_from_slides(
    provider: OfflineProvider,
) -> None:
    slides = [
        slide(0.0, "Solar Cells", "Photons free electrons", "Silicon wafers absorb light"),
        slide(20.0, "Inverters", "Direct current becomes alternating current"),
    ]
    built = structure_for(provider, EMPTY_TRANSCRIPT, slides, duration=40.0)
    first = lessons_of(built)[0]
    assert first["summary"] == "Solar Cells. Photons free electrons."
    assert "photons" in first["key_terms"]
    lessons = lesson_texts(built, EMPTY_TRANSCRIPT, slides)
    quizzes = provider.add_interactivity(built, lessons, per_lesson=2).data
    schemas.validate("ai/interactivity", quizzes)
    assert_grounded(quizzes, lessons)


def test_a_single_slide_course_uses_generic_distractors(provider: OfflineProvider) -> None:
    slides = [slide(0.0, "Solar Cells", "Photons free electrons")]
    built = structure_for(provider, TALK, slides)
    [lesson] = lessons_of(built)
    assert (lesson["title"], lesson["start"], lesson["end"]) == ("Solar Cells", 0.0, 60.0)
    lessons = lesson_texts(built, TALK, slides)
    quizzes = provider.add_interactivity(built, lessons, per_lesson=3).data
    schemas.validate("ai/interactivity", quizzes)
    assert_grounded(quizzes, lessons)
    assert all(len(q["choices"]) == 4 for q in quizzes["lessons"][0]["questions"])


def test_a_lesson_with_almost_no_words_still_gets_two_questions(
    provider: OfflineProvider,
) -> None:
    lessons = [LessonText(index=0, title="Intro", start=0, end=5, transcript="", slide_text="Wind")]
    quizzes = provider.add_interactivity({"modules": []}, lessons, per_lesson=2).data
    schemas.validate("ai/interactivity", quizzes)
    assert_grounded(quizzes, lessons)


def test_key_terms_put_distinctive_words_first() -> None:
    texts = ["the river floods the plain and the river", "the river cuts a valley"]
    assert ranked_terms(texts)[0][:3] == ["floods", "plain", "river"]
    assert (
        term_counts("gradient descent, gradient descent and gradient descent")["gradient descent"]
        == 6
    )


def test_analyze_video_without_speech_still_has_topics(provider: OfflineProvider) -> None:
    transcript = {"language": "en", "duration_s": 30.0, "segments": []}
    data = provider.analyze_video(Path("missing.mp4"), transcript, scene_times=[0.5, 12.0]).data
    schemas.validate("ai/video_analysis", data)
    assert [(t["start"], t["end"], t["title"]) for t in data["topics"]] == [
        (0.0, 12.0, "Part 1"), (12.0, 30.0, "Part 2"),
    ]  # fmt: skip


def test_slides_whose_titles_read_poorly_split_by_what_changed(provider: OfflineProvider) -> None:
    # One template, titles unreadable (low confidence) on two of four slides: the body text
    # still tells the slides apart, so none is merged into its neighbour.
    slides = [
        slide(0.0, "Solar Cells", "Photons free electrons", "Silicon wafers"),
        slide(15.0, "Inverters", "Direct to alternating current", confidence=0.3),
        slide(30.0, "Batteries", "Store surplus energy overnight", confidence=0.3),
        slide(45.0, "The Grid", "Balance supply and demand"),
    ]
    lessons = lessons_of(structure_for(provider, TALK, slides))
    assert [lesson["start"] for lesson in lessons] == [0.0, 15.0, 30.0, 45.0]


def test_an_overlay_that_adds_lines_is_the_same_slide(provider: OfflineProvider) -> None:
    slides = [
        slide(0.0, "Solar Cells", "Photons free electrons"),
        slide(8.0, "Solar Cells", "Photons free electrons", "Silicon wafers absorb light"),
        slide(30.0, "The Grid", "Balance supply and demand"),
    ]
    lessons = lessons_of(structure_for(provider, TALK, slides))
    assert [(lesson["title"], lesson["start"]) for lesson in lessons] == [
        ("Solar Cells", 0.0), ("The Grid", 30.0),
    ]  # fmt: skip


def test_a_slide_title_is_the_one_most_frames_read(provider: OfflineProvider) -> None:
    slides = [
        slide(0.0, "Solar Celis", "Photons free electrons", confidence=0.97),  # misread first
        slide(10.0, "Solar Cells", "Photons free electrons", confidence=0.9),
        slide(20.0, "Solar Cells", "Photons free electrons", confidence=0.9),
        slide(30.0, "The Grid", "Balance supply and demand"),
    ]
    lessons = lessons_of(structure_for(provider, TALK, slides))
    assert [lesson["title"] for lesson in lessons] == ["Solar Cells", "The Grid"]


def test_a_lesson_whose_slide_says_only_ocr_crumbs_still_gets_a_valid_quiz() -> None:
    """A silent test pattern reads as "4." on its only slide: no word to ask about, so the
    questions come from the lesson's title, and the quiz is valid (at least two questions)."""
    from handlers.ai.offline import quizzes

    lesson = LessonText(index=0, title="Part 1", start=0.0, end=6.0, transcript="", slide_text="4.")
    quiz = quizzes([lesson], per_lesson=2)
    schemas.validate("ai/interactivity", quiz)
    assert len(quiz["lessons"][0]["questions"]) >= 2


def test_a_talk_without_slides_is_cut_at_its_topic_shifts(provider: OfflineProvider) -> None:
    # A static speaker frame (its caption read as a title) and three topics, one after another.
    from tests.unit.ai.test_topics import SECTIONS, timed

    transcript = {"language": "en", "duration_s": 75.0, "segments": timed(SECTIONS)}
    speaker = [slide(0.0, "Dr Ada Byron"), slide(40.0, "Dr Ada Byron")]
    lessons = lessons_of(structure_for(provider, transcript, speaker, duration=75.0))
    assert [(lesson["title"], lesson["start"], lesson["end"]) for lesson in lessons] == [
        ("Solar Panel", 0.0, 25.0), ("River Erosion", 25.0, 50.0), ("Printing Press", 50.0, 75.0),
    ]  # fmt: skip


def test_slide_changes_win_over_the_transcripts_topics(provider: OfflineProvider) -> None:
    from tests.unit.ai.test_topics import SECTIONS, timed

    transcript = {"language": "en", "duration_s": 75.0, "segments": timed(SECTIONS)}
    slides = [slide(0.0, "Energy"), slide(40.0, "History")]
    lessons = lessons_of(structure_for(provider, transcript, slides, duration=75.0))
    assert [(lesson["title"], lesson["start"]) for lesson in lessons] == [
        ("Energy", 0.0), ("History", 40.0),
    ]  # fmt: skip
