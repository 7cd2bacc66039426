"""``coursegen run`` end to end on the embedded default: the sample lecture, and bad inputs."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner

import schemas
from bridge.cli import main
from bridge.ops.replay import check
from handlers.media.speech import word_error_rate
from statemachine.store.sqlite import SqliteStore

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "samples" / "lecture.mp4"
TRUTH = json.loads((ROOT / "samples" / "ground_truth.json").read_text())

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]


def run(video: Path, tmp: Path, *extra: str) -> tuple[int, dict]:
    result = CliRunner().invoke(
        main,
        [
            "run",
            str(video),
            "--json",
            "--data",
            str(tmp / "data"),
            "--out",
            str(tmp / "out"),
            *extra,
        ],
    )
    assert result.output.strip(), result.exception
    return result.exit_code, json.loads(result.output[result.output.index("{") :])


@pytest.fixture(scope="module")
def sample_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("sample")
    code, summary = run(SAMPLE, tmp, "--title", "How Rivers Shape Landscapes")
    return tmp, code, summary


def test_the_sample_becomes_a_course(sample_run):
    tmp, code, summary = sample_run
    assert code == 0 and summary["status"] == "completed"
    course = json.loads((tmp / "out" / "course.json").read_text())
    schemas.validate("course", course)
    html = (tmp / "out" / "course.html").read_text()
    assert "Rivers" in html and "<details" in html
    assert list((tmp / "out" / "media" / "frames").glob("*.jpg"))
    assert summary["lessons"] == len(TRUTH["slides"])
    assert set(summary["step_seconds"]) == set(schemas.pipeline()["steps"])


def lessons(tmp: Path) -> list[dict]:
    course = json.loads((tmp / "out" / "course.json").read_text())
    return [lesson for m in course["modules"] for lesson in m["lessons"]]


def test_lesson_boundaries_within_two_seconds_of_slide_changes(sample_run):
    tmp, _, _ = sample_run
    found = [lesson["start"] for lesson in lessons(tmp)]
    for slide in TRUTH["slides"]:
        assert min(abs(slide["start"] - t) for t in found) <= 2.0, slide["title"]


def test_slide_titles_recovered(sample_run):
    tmp, _, _ = sample_run
    titles = {lesson["title"].lower() for lesson in lessons(tmp)}
    exact = sum(1 for s in TRUTH["slides"] if s["title"].lower() in titles)
    assert exact >= 3 * len(TRUTH["slides"]) // 4 + 1


def test_transcript_word_error_rate(sample_run):
    tmp, _, _ = sample_run
    spoken = " ".join(lesson["transcript"] for lesson in lessons(tmp))
    truth = " ".join(s["spoken"] for s in TRUTH["slides"])
    assert word_error_rate(truth, spoken) <= 0.15


def test_every_lesson_has_two_grounded_questions(sample_run):
    tmp, _, _ = sample_run
    for lesson in lessons(tmp):
        assert len(lesson["quiz"]) >= 2
        for q in lesson["quiz"]:
            assert (
                q["answer"].lower() in (lesson["transcript"] + " " + lesson["title"]).lower()
                or q["kind"] == "multiple_choice"
            )


def test_the_history_verifies_and_the_cli_reports(sample_run):
    tmp, _, summary = sample_run
    store = SqliteStore(tmp / "data" / "events.db")
    assert check(store, summary["course_id"]).ok
    status = CliRunner().invoke(
        main, ["status", summary["course_id"], "--json", "--data", str(tmp / "data")]
    )
    view = json.loads(status.output)
    assert view["status"] == "completed"
    assert {t["task"].split("#")[0] for t in view["tasks"]} == set(schemas.pipeline()["steps"])


def make(tmp: Path, kind: str) -> Path:
    ffmpeg = __import__("imageio_ffmpeg").get_ffmpeg_exe()
    path = tmp / f"{kind}.mp4"
    if kind == "empty":
        path.write_bytes(b"")
    elif kind == "text":
        path.write_text("this is not a video\n" * 50)
    elif kind == "truncated":
        data = SAMPLE.read_bytes()
        path.write_bytes(data[: len(data) // 2])
    elif kind == "soundless":
        subprocess.run(
            [
                ffmpeg,
                "-v",
                "error",
                "-y",
                "-f",
                "lavfi",
                "-i",
                "testsrc=size=320x240:rate=5:duration=6",
                "-pix_fmt",
                "yuv420p",
                str(path),
            ],
            check=True,
        )
    elif kind == "portrait":
        subprocess.run(
            [
                ffmpeg,
                "-v",
                "error",
                "-y",
                "-i",
                str(SAMPLE),
                "-t",
                "8",
                "-vf",
                "scale=360:640",
                "-c:a",
                "copy",
                str(path),
            ],
            check=True,
        )
    return path


@pytest.mark.parametrize(
    "kind,phrase",
    [
        ("empty", "empty"),
        ("text", "not_video"),
        ("truncated", "truncated"),
    ],
)
def test_bad_videos_fail_permanently_with_a_clear_reason(tmp_path, kind, phrase):
    code, summary = run(make(tmp_path, kind), tmp_path)
    assert code == 1 and summary["status"] == "failed"
    failure = summary["failure"]
    assert failure["task"] == "prepare_video" and phrase in failure["reason"]
    store = SqliteStore(tmp_path / "data" / "events.db")
    assert check(store, summary["course_id"]).ok  # the history is intact
    events = store.load(summary["course_id"])
    assert sum(e.type == "TaskStarted" for e in events) == 1  # permanent: no retry storm


def test_a_video_over_the_size_limit_is_refused(tmp_path, monkeypatch):
    monkeypatch.setenv("COURSEGEN_MAX_VIDEO_BYTES", "1000")
    code, summary = run(SAMPLE, tmp_path)
    assert code == 1 and summary["failure"]["task"] == "prepare_video"
    assert "exceeds 1000 bytes" in summary["failure"]["reason"]


@pytest.mark.parametrize("kind", ["soundless", "portrait"])
def test_odd_but_valid_videos_complete(tmp_path, kind):
    code, summary = run(make(tmp_path, kind), tmp_path)
    assert code == 0, summary.get("failure")
    course = json.loads((tmp_path / "out" / "course.json").read_text())
    schemas.validate("course", course)


def test_a_missing_file_is_a_usage_error(tmp_path):
    result = CliRunner().invoke(main, ["run", str(tmp_path / "nope.mp4")])
    assert result.exit_code == 2 and "does not exist" in result.output


def test_output_folder_is_rewritten_cleanly(tmp_path, sample_run):
    src, _, _ = sample_run
    shutil.copytree(src / "out", tmp_path / "out")
    assert (tmp_path / "out" / "course.json").exists()
    frames = tmp_path / "out" / "media" / "frames"
    stale = frames / "frame_99999999.jpg"
    stale.write_bytes(b"a frame of an older run")
    (tmp_path / "out" / "course.json").write_text("{}")
    code, _ = run(SAMPLE, tmp_path, "--title", "How Rivers Shape Landscapes")
    assert code == 0
    assert not stale.exists()
    expected = sorted(p.name for p in (src / "out" / "media" / "frames").glob("*.jpg"))
    assert sorted(p.name for p in frames.glob("*.jpg")) == expected
    schemas.validate("course", json.loads((tmp_path / "out" / "course.json").read_text()))


@pytest.mark.parametrize("provider", ["gemini", "openai"])
def test_the_sample_completes_with_a_cloud_provider_against_the_stub(
    tmp_path, monkeypatch, provider
):
    from tests.unit.ai.stub_server import start_stub

    stub = start_stub(auto=True)
    try:
        monkeypatch.setenv("GEMINI_API_KEY", "sk-test-secret-gemini")
        monkeypatch.setenv("OPENAI_API_KEY", "sk-test-secret-openai")
        monkeypatch.setenv("COURSEGEN_GEMINI_BASE_URL", stub.gemini_base_url)
        monkeypatch.setenv("COURSEGEN_OPENAI_BASE_URL", stub.openai_base_url)
        code, summary = run(SAMPLE, tmp_path, "--provider", provider)
    finally:
        stub.stop()
    assert code == 0, summary.get("failure")
    status = json.loads(
        CliRunner()
        .invoke(main, ["status", summary["course_id"], "--json", "--data", str(tmp_path / "data")])
        .output
    )
    assert status["cost_usd"] > 0
    assert {t["provider"] for t in status["tasks"] if t["task"] == "transcribe"} == {provider}
    for path in (tmp_path / "data").rglob("*"):
        if path.is_file() and path.suffix in (".db", ".json", ".html", "-wal"):
            assert b"sk-test-secret" not in path.read_bytes(), path


def test_the_human_summary_names_the_files_or_the_failing_step(tmp_path):
    ok = CliRunner().invoke(
        main, ["run", str(SAMPLE), "--data", str(tmp_path / "d1"), "--out", str(tmp_path / "o1")]
    )
    assert ok.exit_code == 0
    assert "completed" in ok.output and "course_html:" in ok.output
    assert "coursegen replay" in ok.output
    bad = CliRunner().invoke(
        main,
        [
            "run",
            str(make(tmp_path, "text")),
            "--data",
            str(tmp_path / "d2"),
            "--out",
            str(tmp_path / "o2"),
        ],
    )
    assert bad.exit_code == 1
    assert "failed in step prepare_video" in bad.output and "not_video" in bad.output
