"""Delayed scheduling, where users need it: a request's notBefore, a resume at a time, a
provider's Retry-After; the legacy transport cannot delay and says so (or reroutes)."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from bridge.core import InvalidRequest
from bridge.dispatch import TaskRequest
from bridge.dispatch.firestore_trigger import CannotDelay, LegacyTriggerDispatcher
from bridge.dispatch.local import retry_after
from bridge.ops import operations
from bridge.runtime.clock import VirtualClock
from bridge.runtime.embedded import embedded
from handlers.registry import TransientStepError
from statemachine.envelope import canonical
from statemachine.events import CourseRequested, CourseResumed, TaskScheduled, to_data
from statemachine.store.memory import MemoryStore
from statemachine.timefmt import iso, parse_iso

from .conftest import T0, Env, Steps, settings

HOUR = 3600.0


def scheduled(env: Env, course_id: str) -> list[dict]:
    return [e.data for e in env.store.load(course_id) if e.type == "TaskScheduled"]


def started_at(env: Env, course_id: str, task: str) -> float:
    for e in env.store.load(course_id):
        if e.type == "TaskStarted" and e.data["task"] == task:
            return parse_iso(e.occurred_at)
    raise AssertionError(f"{task} never started")


def test_a_request_with_not_before_starts_its_course_then(env: Env) -> None:
    # an hour from now, written with a UTC+2 offset: any RFC 3339 offset, recorded in UTC
    when = datetime.fromtimestamp(T0 + HOUR, timezone(timedelta(hours=2))).isoformat()
    assert when.endswith("+02:00")
    course = env.ingest("overnight", notBefore=when)
    requested = env.store.load(course)[0]
    assert requested.data["not_before"] == iso(parse_iso(when))
    first, *_ = scheduled(env, course)
    assert first["task"] == "prepare_video" and first["not_before"] == iso(parse_iso(when))
    assert env.rt.dispatcher.pending() == 1

    assert env.rt.run_until_idle(until=parse_iso(when) - 1) == 0  # held by the queue
    assert env.steps.calls["prepare_video"] == 0
    env.rt.run_until_idle()
    assert env.status(course) == "completed"
    assert started_at(env, course, "prepare_video") >= parse_iso(when)
    later = scheduled(env, course)[1:]
    assert later and all("not_before" not in d for d in later)  # the hold was the start's


def test_a_bad_not_before_is_refused_and_nothing_is_written(env: Env) -> None:
    for bad in ("tomorrow", "2026-13-45T25:00:00Z", "2026-01-31T22:00:00"):
        with pytest.raises(InvalidRequest) as caught:
            env.ingest(f"bad-{bad}", notBefore=bad)
        assert "notBefore" in str(caught.value.errors)
    assert env.store.courses() == []


def test_events_without_the_new_field_serialise_exactly_as_before() -> None:
    old = CourseRequested(video_uri="gs://b/v.mp4", title="T", request_id="m1")
    assert canonical(to_data(old)) == canonical(
        {
            "video_uri": "gs://b/v.mp4",
            "title": "T",
            "language": "en",
            "options": {},
            "request_id": "m1",
            "variant": "cloudtasks",
        }
    )
    assert "not_before" not in to_data(CourseResumed(reason="r"))
    task = TaskScheduled(
        task="t", step="t", shard=None, generation=1, idempotency_key="k", queue="q"
    )
    assert "not_before" not in to_data(task)


def test_resume_at_a_time_holds_what_is_due_on_its_queue(env: Env) -> None:
    course = env.ingest("held")
    operations.pause(env.store, env.rt.bridge, course, operator="ann", reason="look first")
    env.rt.run_until_idle()
    assert env.status(course) == "paused"
    waiting = {d["task"] for d in scheduled(env, course)}
    assert waiting == {"prepare_video"}

    at = iso(env.clock.now() + 2 * HOUR)
    result = operations.resume(
        env.store, env.rt.bridge, course, operator="ann", reason="tonight", at=at
    )
    # what prepare_video unblocks: the frames and the audio chunks (4 with the no-op steps)
    assert result["at"] == at and set(result["scheduled"]) == {
        "extract_frames",
        *(f"transcribe_chunk#{i}" for i in range(4)),
    }
    held = [d for d in scheduled(env, course) if d["task"] in result["scheduled"]]
    assert {d["not_before"] for d in held} == {at}
    assert env.rt.run_until_idle(until=parse_iso(at) - 1) == 0  # nothing polls: it waits
    env.rt.run_until_idle()
    assert env.status(course) == "completed"
    assert min(started_at(env, course, t) for t in result["scheduled"]) >= parse_iso(at)


def test_a_resume_time_must_be_a_time(env: Env) -> None:
    course = env.ingest("held")
    operations.pause(env.store, env.rt.bridge, course, operator="ann", reason="r")
    with pytest.raises(operations.InvalidOperation):
        operations.resume(env.store, env.rt.bridge, course, operator="a", reason="r", at="soon")
    with pytest.raises(operations.InvalidOperation):
        operations.perform(
            "pause", env.store, env.rt.bridge, course, operator="a", reason="r", at=iso(T0)
        )


def test_a_retry_after_on_a_503_holds_the_retry_that_long(env: Env) -> None:
    env.steps.fail("prepare_video", TransientStepError("rate limited", retry_after_s=95.5))
    course = env.ingest("limited")
    env.rt.run_until_idle()
    assert env.status(course) == "completed"
    starts = [
        parse_iso(e.occurred_at)
        for e in env.store.load(course)
        if e.type == "TaskStarted" and e.data["task"] == "prepare_video"
    ]
    assert len(starts) == 2
    assert starts[1] - starts[0] >= 96  # the header's whole seconds, not the queue's 10 s
    assert env.rt.dispatcher.stats.retry_after == 1


def test_retry_after_reads_seconds_and_http_dates() -> None:
    assert retry_after({"retry-after": "120"}, T0) == 120
    assert retry_after({"Retry-After": "Thu, 01 Jan 2099 00:00:00 GMT"}, T0) == 24 * HOUR
    assert retry_after({"Retry-After": "soon"}, T0) is None
    assert retry_after({}, T0) is None


def test_the_legacy_transport_reroutes_a_delayed_task_to_cloud_tasks(tmp_path: Path) -> None:
    clock = VirtualClock()
    steps = Steps()
    rt = embedded(
        tmp_path,
        settings=settings(COURSEGEN_ROLLOUT_PERCENT="0", COURSEGEN_LEGACY_TRIGGER_ENABLED="true"),
        steps=steps.registry(),
        clock=clock,
        store=MemoryStore(),
    )
    try:
        at = iso(T0 + HOUR)
        course = rt.bridge.ingest(
            {"videoUri": "gs://b/v.mp4", "title": "Night", "notBefore": at}, message_id="n1"
        )
        assert rt.store.head(course).variant == "legacy"
        legacy = rt.bridge.legacy_dispatcher
        assert isinstance(legacy, LegacyTriggerDispatcher) and legacy.rerouted == 1
        assert rt.legacy is not None and rt.legacy.created == 0
        assert rt.run_until_idle(until=T0 + HOUR - 1) == 0
        rt.run_until_idle()
        assert rt.store.head(course).status == "completed"
        assert rt.legacy.created > 0  # the rest of the course took the legacy transport
    finally:
        rt.close()


def test_without_a_fallback_the_legacy_transport_refuses_to_run_a_task_early() -> None:
    clock = VirtualClock()
    written: list[str] = []

    class Documents:
        def create(self, doc_id: str, data: object) -> None:
            written.append(doc_id)

    legacy = LegacyTriggerDispatcher(Documents(), clock)
    request = TaskRequest(
        queue="q",
        name="t1",
        step="prepare_video",
        payload=json.loads('{"courseId": "c1"}'),
        deadline_s=60,
        schedule_time=clock.now() + 60,
    )
    with pytest.raises(CannotDelay, match="cannot hold task t1 of course c1"):
        legacy.dispatch(request)
    assert written == []
