"""``coursegen export`` on a course the pipeline made (the sample lecture, embedded store), the
exports finalize writes by default, and the refusal of a course that is not completed."""

from __future__ import annotations

import json
import uuid
import zipfile
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from bridge.cli import main
from bridge.runtime.embedded import embedded
from bridge.settings import Settings
from statemachine.store.sqlite import SqliteStore
from tests.export_support import schema_for

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "samples" / "lecture.mp4"

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]


@pytest.fixture(scope="module")
def made(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    tmp = tmp_path_factory.mktemp("export")
    result = CliRunner().invoke(
        main,
        ["run", str(SAMPLE), "--json", "--data", str(tmp / "data"), "--out", str(tmp / "out")],
    )
    summary = json.loads(result.output[result.output.index("{") :])
    assert summary["status"] == "completed", summary
    return tmp, summary


def test_finalize_writes_captions_the_learner_page_and_the_default_exports(
    made: tuple[Path, dict[str, Any]],
) -> None:
    tmp, summary = made
    head = SqliteStore(tmp / "data" / "events.db").head(summary["course_id"])
    outputs = head.snapshot["tasks"]["finalize"]["outputs"]
    assert {"course", "html", "captions", "scorm12", "webvtt"} <= set(outputs)
    folder = Path(outputs["course"].removeprefix("file://")).parent
    html = (folder / "course.html").read_text()
    assert 'src="media/video.mp4"' in html and 'src="course.vtt"' in html
    assert (folder / "media" / "video.mp4").exists()  # relative to the page
    assert (folder / "course.vtt").read_text().startswith("WEBVTT")
    course = json.loads((folder / "course.json").read_text())
    segments = [s for m in course["modules"] for les in m["lessons"] for s in les["segments"]]
    assert segments and all(s["end"] >= s["start"] for s in segments)
    assert zipfile.ZipFile(outputs["scorm12"].removeprefix("file://")).testzip() is None


def test_export_all_formats_from_the_store(made: tuple[Path, dict[str, Any]]) -> None:
    from lxml import etree

    tmp, summary = made
    out = tmp / "exports"
    args = ["export", summary["course_id"], "--format", "all", "--out", str(out)]
    result = CliRunner().invoke(main, [*args, "--data", str(tmp / "data"), "--json"])
    assert result.exit_code == 0, result.output
    files = {fmt: Path(path) for fmt, path in json.loads(result.output).items()}
    assert set(files) == {"scorm12", "scorm2004", "gift", "moodle-xml", "webvtt"}
    for fmt, version in (("scorm12", "1.2"), ("scorm2004", "2004")):
        archive = zipfile.ZipFile(files[fmt])
        assert schema_for(version).validate(etree.fromstring(archive.read("imsmanifest.xml")))
        assert "media/video.mp4" in archive.namelist()
        assert any(n.startswith("media/frames/") for n in archive.namelist())
        lessons = [n for n in archive.namelist() if n.startswith("lessons/")]
        assert len(lessons) == summary["lessons"]
    assert files["gift"].read_text().count("::") >= 2 * summary["questions"]
    assert files["webvtt"].read_text().startswith("WEBVTT")


def test_export_of_a_course_not_completed_is_refused(tmp_path: Path) -> None:
    settings = Settings.from_env({"COURSEGEN_STORE": "sqlite"})
    rt = embedded(tmp_path / "data", settings=settings)
    try:
        message = {"videoUri": "https://example.com/v.mp4", "title": "Not yet"}
        course_id = rt.bridge.ingest(message, message_id=f"x-{uuid.uuid4()}", actor="test")
    finally:
        rt.close()
    args = ["export", course_id, "--format", "scorm12", "--out", str(tmp_path / "o")]
    result = CliRunner().invoke(main, [*args, "--data", str(tmp_path / "data")])
    assert result.exit_code == 1
    assert "not completed" in result.output and course_id in result.output
    assert not (tmp_path / "o").exists()
    nope = ["export", "nope", "--format", "gift", "--out", str(tmp_path / "o")]
    missing = CliRunner().invoke(main, [*nope, "--data", str(tmp_path / "data")])
    assert missing.exit_code == 1 and "no course 'nope'" in missing.output
