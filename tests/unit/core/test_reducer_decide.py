"""apply/fold and decide on concrete histories: the DAG, fan-out, failure, redrive, upcast."""

from __future__ import annotations

import pytest

from statemachine.commands import CompleteCourse, FailCourse, ScheduleTask, to_event
from statemachine.decide import decide
from statemachine.envelope import seal
from statemachine.errors import TransitionNotAllowed
from statemachine.events import (
    CourseCancelled,
    CourseRedriven,
    TaskExhausted,
    TaskFailed,
    TaskStarted,
    TaskSucceeded,
)
from statemachine.pipeline import default_pipeline
from statemachine.reducer import apply, fold
from statemachine.state import CourseState
from statemachine.store.memory import MemoryStore
from tests.factories import new, requested


class Course:
    """A course driven by hand through a real (memory) store."""

    def __init__(self, course_id: str = "c1") -> None:
        self.id = course_id
        self.store = MemoryStore()
        self.store.append(course_id, 0, [requested()])

    @property
    def state(self) -> CourseState:
        return fold(self.store.load(self.id))

    def push(self, *events) -> CourseState:
        self.store.append(self.id, self.state.version, [new(e) for e in events])
        return self.state

    def decide_and_record(self) -> list:
        commands = decide(self.state, default_pipeline())
        if commands:
            self.push(*(to_event(c) for c in commands))
        return commands

    def run(self, name: str, **summary) -> None:
        key = self.state.task(name).idempotency_key
        self.push(TaskStarted(task=name, idempotency_key=key, attempt=1))
        self.run_started(name, **summary)

    def run_started(self, name: str, attempt: int = 1, **summary) -> None:
        key = self.state.task(name).idempotency_key
        self.push(
            TaskSucceeded(
                task=name,
                idempotency_key=key,
                attempt=attempt,
                outputs={},
                summary=summary,
                duration_ms=5,
            )
        )


def names(commands) -> list[str]:
    return [c.task for c in commands if isinstance(c, ScheduleTask)]


def test_first_command_schedules_prepare_video_only():
    c = Course()
    assert names(c.decide_and_record()) == ["prepare_video"]
    assert c.state.status == "running"
    assert decide(c.state, default_pipeline()) == []  # scheduled, not started: nothing new


def test_frames_and_audio_chunks_run_in_parallel_after_prepare_video():
    c = Course()
    c.decide_and_record()
    c.run("prepare_video", audio_chunks=2)
    assert names(c.decide_and_record()) == [
        "extract_frames",
        "transcribe_chunk#0",
        "transcribe_chunk#1",
    ]
    c.run("transcribe_chunk#1")
    assert names(decide(c.state, default_pipeline())) == []  # the stitch waits for every chunk
    c.run("transcribe_chunk#0")
    # ... and for the slides' text (each slide's range decoded again with it as the prompt)
    assert names(decide(c.state, default_pipeline())) == []
    c.run("extract_frames", shards=0)
    assert names(c.decide_and_record()) == ["transcribe"]
    c.run("transcribe")
    assert names(c.decide_and_record()) == ["analyze_video"]


def test_a_chunk_that_failed_retries_alone():
    c = Course()
    c.decide_and_record()
    c.run("prepare_video", audio_chunks=3)
    c.decide_and_record()
    c.run("transcribe_chunk#0")
    c.run("transcribe_chunk#2")
    key = c.state.task("transcribe_chunk#1").idempotency_key
    c.push(
        TaskStarted(task="transcribe_chunk#1", idempotency_key=key, attempt=1),
        TaskFailed(
            task="transcribe_chunk#1",
            idempotency_key=key,
            attempt=1,
            error_type="Boom",
            message="worker lost",
            retryable=True,
        ),
    )
    # the queue retries it; nothing else is redone
    assert names(decide(c.state, default_pipeline())) == []
    c.push(TaskStarted(task="transcribe_chunk#1", idempotency_key=key, attempt=2))
    c.run_started("transcribe_chunk#1", attempt=2)
    chunks = [c.state.task(f"transcribe_chunk#{i}") for i in range(3)]
    assert [t.attempts for t in chunks] == [1, 2, 1]
    c.run("extract_frames", shards=0)
    assert "transcribe" in names(c.decide_and_record())


def test_fan_out_and_fan_in():
    c = Course()
    c.decide_and_record()
    c.run("prepare_video")
    c.decide_and_record()
    c.run("extract_frames", shards=3)
    shards = c.decide_and_record()
    assert names(shards) == ["analyze_frames#0", "analyze_frames#1", "analyze_frames#2"]
    assert shards[0].idempotency_key == "c1:analyze_frames:0:1"
    c.run("analyze_frames#0")
    c.run("analyze_frames#1")
    assert names(decide(c.state, default_pipeline())) == []  # fan-in waits for every shard
    c.run("analyze_frames#2")
    assert names(c.decide_and_record()) == ["transcribe"]
    c.run("transcribe")
    assert names(c.decide_and_record()) == ["analyze_video"]
    c.run("analyze_video")
    assert names(c.decide_and_record()) == ["generate_structure"]


def test_zero_shards_skip_the_fan_out():
    c = Course()
    c.decide_and_record()
    c.run("prepare_video")
    c.decide_and_record()
    c.run("extract_frames", shards=0)
    assert names(c.decide_and_record()) == ["transcribe"]
    c.run("transcribe")
    c.decide_and_record()
    c.run("analyze_video")
    assert names(c.decide_and_record()) == ["generate_structure"]


def complete(c: Course) -> None:
    while c.state.status in ("requested", "running"):
        commands = c.decide_and_record()
        if any(isinstance(x, CompleteCourse | FailCourse) for x in commands):
            break
        for name, task in c.state.tasks.items():
            if task.status == "scheduled":
                c.run(name, shards=2) if name == "extract_frames" else c.run(name)


def test_a_course_whose_steps_all_succeeded_completes():
    c = Course()
    complete(c)
    assert c.state.status == "completed"
    assert len(c.state.tasks) == 9  # 7 plain steps, 2 frame shards, no audio chunks


def test_exhaustion_fails_the_course_and_redrive_continues_without_redoing():
    c = Course()
    c.decide_and_record()
    c.run("prepare_video")
    c.decide_and_record()
    c.run("extract_frames", shards=0)
    c.decide_and_record()
    key = c.state.task("transcribe").idempotency_key
    c.push(
        TaskStarted(task="transcribe", idempotency_key=key, attempt=1),
        TaskFailed(
            task="transcribe",
            idempotency_key=key,
            attempt=1,
            error_type="Boom",
            message="model crashed",
            retryable=True,
        ),
        TaskExhausted(task="transcribe", idempotency_key=key, attempts=1, error="boom"),
    )
    commands = c.decide_and_record()
    assert isinstance(commands[0], FailCourse) and commands[0].task == "transcribe"
    assert c.state.status == "failed"
    c.push(CourseRedriven(tasks=("transcribe",), reason="model fixed"))
    again = c.decide_and_record()
    assert names(again) == ["transcribe"]
    assert again[0].idempotency_key == "c1:transcribe:2"
    assert c.state.task("prepare_video").attempts == 1  # not redone
    with pytest.raises(TransitionNotAllowed, match="stale key"):
        c.push(TaskStarted(task="transcribe", idempotency_key=key, attempt=2))


def test_retrying_task_is_left_to_the_queue():
    c = Course()
    c.decide_and_record()
    key = c.state.task("prepare_video").idempotency_key
    c.push(
        TaskStarted(task="prepare_video", idempotency_key=key, attempt=1),
        TaskFailed(
            task="prepare_video",
            idempotency_key=key,
            attempt=1,
            error_type="Net",
            message="reset",
            retryable=True,
        ),
    )
    assert c.state.task("prepare_video").status == "retrying"
    assert decide(c.state, default_pipeline()) == []


def test_cancelled_course_decides_nothing_and_refuses_task_starts():
    c = Course()
    c.decide_and_record()
    c.push(CourseCancelled(reason="operator"))
    assert decide(c.state, default_pipeline()) == []
    key = c.state.task("prepare_video").idempotency_key
    with pytest.raises(TransitionNotAllowed) as err:
        c.push(TaskStarted(task="prepare_video", idempotency_key=key, attempt=1))
    assert err.value.state == "cancelled" and err.value.event == "TaskStarted"


def test_apply_is_fold_of_one():
    c = Course()
    c.decide_and_record()
    events = c.store.load("c1")
    assert apply(fold(events[:1]), events[1]) == fold(events)


def test_upcast_v1_course_requested_on_read():
    """A v1 CourseRequested (``video_url``, no variant) reads as v2; its hash still verifies."""
    import json

    from statemachine.audit import verify
    from statemachine.envelope import GENESIS_HASH, canonical, decode, digest

    body = {
        "course_id": "old",
        "version": 1,
        "type": "CourseRequested",
        "schema_version": 1,
        "occurred_at": "2025-01-01T00:00:00.000000Z",
        "actor": "legacy",
        "causation_id": None,
        "correlation_id": None,
        "idempotency_key": None,
        "data": {"video_url": "gs://b/old.mp4", "title": "Old", "language": "en", "options": {}},
        "prev_hash": GENESIS_HASH,
    }
    raw = canonical(body)
    env = decode(raw, digest(raw), json.loads)
    assert env.schema_version == 2
    assert env.data["video_uri"] == "gs://b/old.mp4" and "video_url" not in env.data
    assert env.data["variant"] == "cloudtasks"
    assert verify("old", [env]).events == 1
    assert fold([env]).request["video_uri"] == "gs://b/old.mp4"


def test_seal_chains_hashes():
    a = seal("c", 1, "0" * 64, requested())
    b = seal("c", 2, a.hash, requested())
    assert b.prev_hash == a.hash and len(a.hash) == 64 and a.hash != b.hash


def test_an_unknown_event_type_is_named_with_its_schema_version():
    """A history with an event this code does not know (written by a newer version): the
    error names the type and the version; the audit reports it at its version."""
    import json

    from statemachine.audit import verify
    from statemachine.envelope import canonical, decode, digest
    from statemachine.errors import IntegrityError, UnknownEventType
    from statemachine.events import from_data, schema_version

    first = seal("c", 1, "0" * 64, requested())
    body = {
        "course_id": "c",
        "version": 2,
        "type": "CourseArchived",
        "schema_version": 3,
        "occurred_at": "2026-01-01T00:00:00.000000Z",
        "actor": "future",
        "causation_id": None,
        "correlation_id": None,
        "idempotency_key": None,
        "data": {},
        "prev_hash": first.hash,
    }
    raw = canonical(body)
    future = decode(raw, digest(raw), json.loads)

    with pytest.raises(UnknownEventType) as caught:
        fold([first, future])
    assert (caught.value.event_type, caught.value.schema_version) == ("CourseArchived", 3)
    assert "'CourseArchived' (schema version 3)" in str(caught.value)
    assert not isinstance(caught.value, TransitionNotAllowed)  # not a refusal: not known

    with pytest.raises(IntegrityError, match="version 2: unknown event type 'CourseArchived'"):
        verify("c", [first, future])
    with pytest.raises(UnknownEventType, match="'CourseArchived'"):
        schema_version("CourseArchived")
    with pytest.raises(UnknownEventType) as caught:
        from_data("CourseArchived", {}, 3)
    assert caught.value.schema_version == 3
