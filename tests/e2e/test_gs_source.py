"""A course whose video is a gs:// URI, on the embedded runtime: the bucket is a folder named
by COURSEGEN_LOCAL_BUCKETS, and the whole pipeline runs on the sample lecture."""

from __future__ import annotations

import json
import shutil
import time
import uuid
from pathlib import Path

import pytest

import schemas
from bridge.ops.views import course_status
from bridge.runtime.embedded import Runtime, embedded
from bridge.settings import Settings
from handlers.media.ffmpeg import probe
from statemachine.store.sqlite import SqliteStore

SAMPLE = Path(__file__).resolve().parents[2] / "samples" / "lecture.mp4"

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]


def run_gs(tmp: Path, uri: str, **settings: str) -> tuple[Runtime, str, dict]:
    """Ingest a request for ``uri`` and run the course until it stops."""
    bucket = tmp / "bucket"
    if not bucket.exists():
        (bucket / "term-1").mkdir(parents=True)
        shutil.copy(SAMPLE, bucket / "term-1" / "lecture.mp4")
    env = {"COURSEGEN_LOCAL_BUCKETS": f"lectures={bucket}", **settings}
    rt = embedded(tmp / "data", settings=Settings.from_env(env))
    try:
        message = {"videoUri": uri, "title": "How Rivers Shape Landscapes", "language": "en"}
        course_id = rt.bridge.ingest(message, message_id=f"gs-{uuid.uuid4()}")
        rt.dispatcher.start(2)
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline:
            head = rt.store.head(course_id)
            if head.status in ("completed", "failed") and rt.dispatcher.pending() == 0:
                break
            time.sleep(0.1)
    finally:
        rt.close()
    return rt, course_id, course_status(rt.store, course_id) or {}


def test_a_course_from_a_gs_video_completes(tmp_path: Path) -> None:
    uri = "gs://lectures/term-1/lecture.mp4"
    rt, course_id, view = run_gs(tmp_path, uri)
    assert view["status"] == "completed", view.get("failure")
    assert {t["task"].split("#")[0] for t in view["tasks"]} == set(schemas.pipeline()["steps"])
    folder = rt.artifacts.root / course_id
    course = json.loads((folder / "course.json").read_text())
    schemas.validate("course", course)
    assert course["source"]["video_uri"] == uri
    assert [m for m in course["modules"] if m["lessons"]]
    prepared = probe(folder / "media" / "video.mp4", max_bytes=10**9, max_seconds=3600)
    original = probe(SAMPLE, max_bytes=10**9, max_seconds=3600)
    assert abs(prepared.duration_s - original.duration_s) < 1.0
    assert (folder / "media" / "audio.wav").stat().st_size > 0
    assert not list((tmp_path / "data").rglob("source.bin"))  # the fetched copy is cleaned up
    assert (tmp_path / "bucket" / "term-1" / "lecture.mp4").read_bytes() == SAMPLE.read_bytes()


@pytest.mark.parametrize(
    ("uri", "settings", "phrase"),
    [
        ("gs://elsewhere/lecture.mp4", {}, "'elsewhere' is not mapped"),
        ("gs://lectures/term-1/missing.mp4", {}, "no such object"),
        ("gs://lectures/term-1/lecture.mp4", {"COURSEGEN_MAX_VIDEO_BYTES": "1000"}, "over 1000"),
    ],
)
def test_a_gs_video_that_cannot_be_read_fails_once_with_a_clear_reason(
    tmp_path: Path, uri: str, settings: dict[str, str], phrase: str
) -> None:
    _, course_id, view = run_gs(tmp_path, uri, **settings)
    assert view["status"] == "failed"
    assert view["failure"]["task"] == "prepare_video" and phrase in view["failure"]["reason"]
    events = SqliteStore(tmp_path / "data" / "events.db").load(course_id)
    assert sum(e.type == "TaskStarted" for e in events) == 1  # permanent: no retries
