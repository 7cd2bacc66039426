"""The offline provider on the sample lecture (the product's quality targets) and on edge cases."""

from __future__ import annotations

import itertools
import json
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

import schemas
from handlers.ai.offline import OfflineProvider
from handlers.ai.port import FrameInput, LessonText, StructureInputs
from handlers.ai.text import ranked_terms, term_counts
from handlers.course import compose_course, render_html
from handlers.media.ffmpeg import ffmpeg_exe, prepare
from handlers.media.frames import Frame, extract_frames

SAMPLES = Path(__file__).resolve().parents[3] / "samples"
TITLE = "How Rivers Shape Landscapes"
BOUNDARY_TOLERANCE_S = 2.0
EMPTY_TRANSCRIPT = {"language": "en", "duration_s": 0.0, "segments": []}


@dataclass(frozen=True, kw_only=True, slots=True)
class SampleRun:
    """What each AI step of the pipeline made of samples/lecture.mp4."""

    ground_truth: Mapping[str, Any]
    duration_s: float
    frames: tuple[Frame, ...]
    transcript: Mapping[str, Any]
    frame_analysis: Mapping[str, Any]
    video_analysis: Mapping[str, Any]
    structure: Mapping[str, Any]
    lessons: tuple[LessonText, ...]
    interactivity: Mapping[str, Any]
    metering: Mapping[str, Mapping[str, Any]]


def lesson_texts(
    structure: Mapping[str, Any],
    transcript: Mapping[str, Any],
    slides: Sequence[Mapping[str, Any]],
) -> list[LessonText]:
    """What the add_interactivity step hands the provider: each lesson's speech joined without
    punctuation, and its slides' titles and bullets (footer included) on one line."""
    lessons = [lesson for module in structure["modules"] for lesson in module["lessons"]]
    out = []
    for i, lesson in enumerate(lessons):
        start, end = float(lesson["start"]), float(lesson["end"])
        spoken = " ".join(
            s["text"] for s in transcript["segments"] if start <= (s["start"] + s["end"]) / 2 < end
        )
        shown = " ".join(
            " ".join([f["title"], *f["body"]]) for f in slides if start <= f["t"] < end
        )
        out.append(
            LessonText(
                index=i, title=lesson["title"], start=start, end=end,
                transcript=spoken, slide_text=shown,
            )
        )  # fmt: skip
    return out


@pytest.fixture(scope="module")
def provider() -> OfflineProvider:
    return OfflineProvider()


@pytest.fixture(scope="module")
def sample_run(tmp_path_factory: pytest.TempPathFactory, provider: OfflineProvider) -> SampleRun:
    """The real media functions and every provider method on the sample, computed once:
    about five seconds, most of it Whisper."""
    sample = SAMPLES / "lecture.mp4"
    assert sample.is_file(), "run `python samples/make_lecture.py` to build the sample"
    work = tmp_path_factory.mktemp("sample")
    prepared = prepare(sample, work)
    assert prepared.audio is not None
    frames = tuple(extract_frames(prepared.video, work / "frames", scene_threshold=0.03))
    said = provider.transcribe(prepared.audio, language="en")
    seen = provider.analyze_frames([FrameInput(name=f.name, t=f.t, path=f.path) for f in frames])
    scenes = [f.t for f in frames if f.kind == "scene"]
    analysed = provider.analyze_video(prepared.video, said.data, scene_times=scenes)
    inputs = StructureInputs(
        title=TITLE, language="en", duration_s=prepared.info.duration_s,
        transcript=said.data, video_analysis=analysed.data, slides=seen.data["frames"],
    )  # fmt: skip
    built = provider.generate_structure(inputs)
    lessons = tuple(lesson_texts(built.data, said.data, seen.data["frames"]))
    quizzes = provider.add_interactivity(built.data, lessons, per_lesson=2)
    results = {
        "transcribe": said, "analyze_frames": seen, "analyze_video": analysed,
        "generate_structure": built, "add_interactivity": quizzes,
    }  # fmt: skip
    return SampleRun(
        ground_truth=json.loads((SAMPLES / "ground_truth.json").read_text()),
        duration_s=prepared.info.duration_s,
        frames=frames,
        transcript=said.data,
        frame_analysis=seen.data,
        video_analysis=analysed.data,
        structure=built.data,
        lessons=lessons,
        interactivity=quizzes.data,
        metering={step: result.metering for step, result in results.items()},
    )


def lessons_of(structure: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    return [lesson for module in structure["modules"] for lesson in module["lessons"]]


def material(lesson: LessonText) -> str:
    return f"{lesson.transcript}\n{lesson.slide_text}".lower()


def assert_grounded(quizzes: Mapping[str, Any], lessons: Sequence[LessonText]) -> None:
    """At least two questions a lesson; each answer in the lesson's text, no distractor in it."""
    by_index = {entry["lesson"]: entry["questions"] for entry in quizzes["lessons"]}
    assert sorted(by_index) == [lesson.index for lesson in lessons]
    for lesson in lessons:
        text = material(lesson)
        assert len(by_index[lesson.index]) >= 2, lesson.title
        for question in by_index[lesson.index]:
            assert question["answer"].lower() in text, (lesson.title, question)
            assert question["answer"] in question["choices"]
            assert len(question["choices"]) >= 2
            assert len(set(question["choices"])) == len(question["choices"])
            for choice in question["choices"]:
                if choice != question["answer"]:
                    assert choice.lower() not in text, (lesson.title, choice)
            if question["kind"] == "cloze":
                assert "_____" in question["prompt"]
                assert question["answer"].lower() not in question["prompt"].lower()


# --- the sample lecture -------------------------------------------------------------------


def test_every_output_validates_against_its_schema(sample_run: SampleRun) -> None:
    schemas.validate("ai/transcript", sample_run.transcript)
    schemas.validate("ai/frame_analysis", sample_run.frame_analysis)
    schemas.validate("ai/video_analysis", sample_run.video_analysis)
    schemas.validate("ai/course_structure", sample_run.structure)
    schemas.validate("ai/interactivity", sample_run.interactivity)


def test_metering_says_offline_and_free(sample_run: SampleRun) -> None:
    assert sample_run.metering["transcribe"]["model"] == "faster-whisper tiny.en int8"
    for metering in sample_run.metering.values():
        assert metering["provider"] == "offline"
        assert metering["cost_usd"] == 0.0
        assert metering["calls"] == 1


def test_lesson_starts_fall_within_two_seconds_of_slide_changes(sample_run: SampleRun) -> None:
    slides = sample_run.ground_truth["slides"]
    lessons = lessons_of(sample_run.structure)
    assert len(lessons) == len(slides)
    for lesson, slide in zip(lessons, slides, strict=True):
        assert abs(lesson["start"] - slide["start"]) <= BOUNDARY_TOLERANCE_S, lesson
        assert abs(lesson["end"] - slide["end"]) <= BOUNDARY_TOLERANCE_S, lesson


def test_at_least_four_of_five_slide_titles_become_lesson_titles(sample_run: SampleRun) -> None:
    found = {lesson["title"].lower() for lesson in lessons_of(sample_run.structure)}
    truth = [slide["title"].lower() for slide in sample_run.ground_truth["slides"]]
    assert sum(title in found for title in truth) >= 4


def test_lessons_tile_the_video_and_carry_their_frames(sample_run: SampleRun) -> None:
    lessons = lessons_of(sample_run.structure)
    assert lessons[0]["start"] == 0.0
    assert lessons[-1]["end"] == pytest.approx(sample_run.duration_s)
    for before, after in itertools.pairwise(lessons):
        assert before["end"] == after["start"]
    frames = {f.name: f.t for f in sample_run.frames}
    for lesson in lessons:
        assert lesson["key_frames"] and lesson["key_terms"] and lesson["summary"]
        assert all(lesson["start"] <= frames[name] < lesson["end"] for name in lesson["key_frames"])


def test_video_topics_follow_scene_changes(sample_run: SampleRun) -> None:
    topics = sample_run.video_analysis["topics"]
    scenes = [f.t for f in sample_run.frames if f.kind == "scene" and f.t > 0]
    assert [topic["start"] for topic in topics] == [0.0, *scenes]
    assert topics[-1]["end"] == pytest.approx(sample_run.duration_s)
    assert all(topic["summary"] and topic["key_terms"] for topic in topics)
    assert topics[0]["title"].lower() == "rivers carry water"


def test_questions_are_grounded_in_their_own_lesson(sample_run: SampleRun) -> None:
    assert_grounded(sample_run.interactivity, sample_run.lessons)


def test_structure_and_quizzes_are_deterministic(
    sample_run: SampleRun, provider: OfflineProvider
) -> None:
    inputs = StructureInputs(
        title=TITLE, language="en", duration_s=sample_run.duration_s,
        transcript=sample_run.transcript, video_analysis=sample_run.video_analysis,
        slides=sample_run.frame_analysis["frames"],
    )  # fmt: skip
    assert provider.generate_structure(inputs).data == sample_run.structure
    again = provider.add_interactivity(sample_run.structure, sample_run.lessons, per_lesson=2)
    assert again.data == sample_run.interactivity


def test_more_questions_when_asked(sample_run: SampleRun, provider: OfflineProvider) -> None:
    more = provider.add_interactivity(sample_run.structure, sample_run.lessons, per_lesson=4)
    schemas.validate("ai/interactivity", more.data)
    assert all(len(entry["questions"]) >= 4 for entry in more.data["lessons"])
    assert_grounded(more.data, sample_run.lessons)


def test_the_sample_becomes_a_valid_course_page(sample_run: SampleRun, tmp_path: Path) -> None:
    frames = [
        {"name": f.name, "t": f.t, "ref": f"file://{tmp_path}/frames/{f.name}"}
        for f in sample_run.frames
    ]
    request = {"video_uri": "gs://bucket/lecture.mp4", "title": TITLE, "language": "en"}
    course = compose_course(
        "sample-1", request, sample_run.duration_s, sample_run.structure,
        sample_run.interactivity, sample_run.transcript, frames, {"coursegen": "0.1.0"},
    )  # fmt: skip
    schemas.validate("course", course)
    page = render_html(course, frames_base=f"file://{tmp_path}/")
    assert 'src="frames/frame_00015600.jpg"' in page
    assert "00:15 &ndash; 00:32" in page


# --- synthetic edge cases -----------------------------------------------------------------


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


def test_silence_gives_an_empty_transcript(provider: OfflineProvider, tmp_path: Path) -> None:
    silent = tmp_path / "silent.wav"
    command = [ffmpeg_exe(), "-v", "error", "-f", "lavfi", "-i", "anullsrc=r=16000:cl=mono"]
    subprocess.run([*command, "-t", "3", str(silent)], check=True)
    result = provider.transcribe(silent, language="en")
    schemas.validate("ai/transcript", result.data)
    assert result.data["segments"] == []


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
