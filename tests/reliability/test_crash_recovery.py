"""SIGKILL the embedded runtime mid-step, between a result and its advance, and mid-append."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from bridge.wire import course_id_for
from statemachine.store.sqlite import SqliteStore
from tests.reliability.crash_driver import MESSAGE_ID
from tests.reliability.helpers import (
    SAMPLE,
    assert_artifacts_whole,
    assert_course_output,
    assert_history_sound,
    finish,
    kill_at,
)

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]

COURSE = course_id_for(MESSAGE_ID, {"videoUri": str(SAMPLE), "title": "Crash Test Lecture"})

# Each chain kills one process after another in the same data folder, then lets one finish.
# (point, seconds to wait after reaching it before the kill)
CHAINS = {
    "steps": [
        ("commit:CourseRequested", 0.0),  # the very first append, uncommitted
        ("step:extract_frames", 0.3),  # ffmpeg is writing frames
        ("step:transcribe_chunk", 1.0),  # whisper is decoding a chunk
        # work done and written, result not recorded (a first attempt's start is recorded
        # once it has run 0.1 s: handlers/starts.py)
        ("after-step:analyze_video", 0.3),
        ("rename:course.json", 0.0),  # the temporary course.json is complete, not renamed
    ],
    "bookkeeping": [
        ("before-dispatch:prepare_video", 0.0),  # result + what it unblocks, not dispatched
        # a chunk's result's append, uncommitted (whisper runs long enough for its start to be
        # recorded first; the stitch, transcribe, is too quick: its start goes with its result)
        ("commit:TaskSucceeded:transcribe_chunk#0", 0.0),
        ("commit:TaskStarted:generate_structure", 0.0),
        ("before-dispatch:generate_structure", 0.0),
        ("commit:CourseCompleted", 0.0),  # finalize's result and CourseCompleted, uncommitted
    ],
}


def events(data: Path) -> list:
    store = SqliteStore(data / "events.db")
    try:
        return list(store.load(COURSE))
    finally:
        store.close()


def step_statuses(data: Path, step: str) -> list[str]:
    """The statuses of the tasks of ``step`` (a fan-out has one a shard)."""
    store = SqliteStore(data / "events.db")
    try:
        head = store.head(COURSE)
        tasks = head.snapshot["tasks"].values() if head else ()
        return [t["status"] for t in tasks if t["step"] == step]
    finally:
        store.close()


def assert_left_as_killed(data: Path, point: str) -> None:
    """What the kill at ``point`` left behind is what that point means."""
    kind, _, arg = point.partition(":")
    history = events(data)
    last = history[-1] if history else None
    if kind == "commit":
        etype, _, task = arg.partition(":")
        found = [e for e in history if e.type == etype and e.data.get("task", task) == task]
        assert not found, f"the killed append of {arg} was committed"
    elif kind == "before-dispatch":
        done = [
            i for i, e in enumerate(history) if e.type == "TaskSucceeded" and e.data["task"] == arg
        ]
        assert done, f"{arg}'s result was not committed"
        after = history[done[-1] + 1 :]
        assert after and all(e.actor == "bridge" for e in after)  # what it unblocks, with it
        assert last is not None and last.type in ("TaskScheduled", "CourseCompleted")
    elif kind in ("step", "after-step"):
        assert "running" in step_statuses(data, arg)  # started, and no result recorded
        if point == "step:extract_frames":  # killed mid-ffmpeg: its scratch folder remains
            frames = data / "artifacts" / COURSE / "media" / "frames"
            assert list(frames.glob(".frames-*"))
    elif kind == "rename":
        folder = data / "artifacts" / COURSE
        assert not (folder / arg).exists()
        assert list(folder.glob(f".{arg}.*")), "the temporary file should be left behind"


@pytest.mark.parametrize("chain", sorted(CHAINS))
def test_killed_runs_resume_to_one_sound_course(tmp_path: Path, chain: str) -> None:
    data = tmp_path / "data"
    data.mkdir()
    started = time.monotonic()
    for point, delay in CHAINS[chain]:
        ran = kill_at(data, point, delay=delay)
        print(f"\n  killed at {point} after {ran:.1f} s")
        assert_left_as_killed(data, point)
    summary = finish(data)
    print(f"\n{chain}: {len(CHAINS[chain])} kills, completed in {time.monotonic() - started:.1f} s")

    assert summary["status"] == "completed", summary
    assert summary["course_id"] == COURSE and summary["resumed"]
    store = SqliteStore(data / "events.db")
    try:
        assert_history_sound(store, COURSE)  # verifies; each task's result recorded once
        started_twice = [e.data["task"] for e in store.load(COURSE) if e.type == "TaskStarted"]
        assert len(started_twice) > len(set(started_twice))  # killed steps really ran again
    finally:
        store.close()
    leftovers = assert_artifacts_whole(data / "artifacts")
    assert_course_output(data / "artifacts", COURSE)
    if chain == "steps":
        assert any(p.name.startswith(".course.json.") for p in leftovers)
