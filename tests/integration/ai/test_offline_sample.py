"""The offline provider on the sample lecture (the product's quality targets) and on silence,
with the real ffmpeg, Whisper and tesseract; its synthetic edge cases are in tests/unit/ai."""

from __future__ import annotations

import itertools
import json
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

import schemas
from handlers.ai.offline import OfflineProvider
from handlers.ai.port import FrameInput, LessonText, StructureInputs
from handlers.course import compose_course, render_html
from handlers.media.ffmpeg import ffmpeg_exe, prepare
from handlers.media.frames import Frame, extract_frames
from tests.unit.ai.lessons import assert_grounded, lesson_texts, lessons_of

SAMPLES = Path(__file__).resolve().parents[3] / "samples"
TITLE = "How Rivers Shape Landscapes"
BOUNDARY_TOLERANCE_S = 2.0
pytestmark = pytest.mark.timeout(300)  # the first test sets up sample_run: the whole pipeline


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


@pytest.fixture(scope="module")
def provider() -> OfflineProvider:
    return OfflineProvider()


@pytest.fixture(scope="module")
def sample_run(tmp_path_factory: pytest.TempPathFactory, provider: OfflineProvider) -> SampleRun:
    """The real media functions and every provider method on the sample, computed once:
    about 12 s on two cores, most of it Whisper."""
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


def test_silence_gives_an_empty_transcript(provider: OfflineProvider, tmp_path: Path) -> None:
    silent = tmp_path / "silent.wav"
    command = [ffmpeg_exe(), "-v", "error", "-f", "lavfi", "-i", "anullsrc=r=16000:cl=mono"]
    subprocess.run([*command, "-t", "3", str(silent)], check=True)
    result = provider.transcribe(silent, language="en")
    schemas.validate("ai/transcript", result.data)
    assert result.data["segments"] == []
