"""``coursegen run gs://BUCKET/OBJECT`` on a laptop: COURSEGEN_LOCAL_BUCKETS maps the bucket
to a folder; a URI it cannot serve is a usage error naming what to set, before any course."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from bridge.cli import main

SAMPLE = Path(__file__).resolve().parents[2] / "samples" / "lecture.mp4"
pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]


@pytest.fixture
def bucket(tmp_path: Path) -> Path:
    folder = tmp_path / "bucket"
    (folder / "term-1").mkdir(parents=True)
    shutil.copy(SAMPLE, folder / "term-1" / "rivers_and-lakes.mp4")
    return folder


def test_a_gs_video_in_a_mapped_bucket_becomes_a_course(bucket: Path, tmp_path: Path) -> None:
    env = {"COURSEGEN_LOCAL_BUCKETS": f"lectures={bucket}", "COURSEGEN_STORE": "sqlite"}
    args = ["run", "gs://lectures/term-1/rivers_and-lakes.mp4", "--json"]
    args += ["--data", str(tmp_path / "data"), "--out", str(tmp_path / "out")]
    result = CliRunner().invoke(main, args, env=env)
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["status"] == "completed"
    course = json.loads((tmp_path / "out" / "course.json").read_text())
    assert course["source"]["video_uri"] == "gs://lectures/term-1/rivers_and-lakes.mp4"
    assert course["title"] == "Rivers And Lakes"


@pytest.mark.parametrize(
    ("uri", "says"),
    [
        ("gs://lectures", "names a bucket but no object"),
        ("gs://other/term-1/rivers_and-lakes.mp4", "COURSEGEN_LOCAL_BUCKETS=other=FOLDER"),
        ("gs://lectures/term-1/missing.mp4", "no file"),
        ("gs://lectures/../etc/passwd", ".."),
    ],
)
def test_a_gs_uri_that_cannot_be_served_is_a_usage_error(
    bucket: Path, tmp_path: Path, uri: str, says: str
) -> None:
    env = {"COURSEGEN_LOCAL_BUCKETS": f"lectures={bucket}", "COURSEGEN_STORE": "sqlite"}
    data = tmp_path / "data"
    result = CliRunner().invoke(main, ["run", uri, "--data", str(data)], env=env)
    assert result.exit_code == 2, result.output
    assert says in result.output and "Traceback" not in result.output
    assert not (data / "events.db").exists()  # refused before any course was requested
