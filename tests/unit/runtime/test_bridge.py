"""The bridge: ingest validates and is idempotent, advance schedules each task once (also from
8 threads on SQLite), a crash between append and dispatch heals, reconcile rescues, rollout."""

from __future__ import annotations

import json
import random
import threading
from collections import Counter

import pytest

from bridge.core import Bridge, InvalidRequest
from bridge.dispatch import task_name
from bridge.dispatch.local import LocalDispatcher
from bridge.runtime.embedded import embedded
from bridge.wire import course_id_for, variant_for
from handlers.registry import TransientStepError
from statemachine.audit import verify
from statemachine.errors import ConcurrencyConflict, TransitionNotAllowed
from statemachine.pipeline import default_pipeline
from statemachine.store.memory import MemoryStore
from statemachine.store.sqlite import SqliteStore
from tests.factories import requested, started, succeeded

from .conftest import (
    REQUEST,
    Env,
    RecordingDispatcher,
    ScriptedDeliver,
    Steps,
    runtime_with,
    settings,
)


def scheduled_per_task(store, course_id: str) -> Counter[str]:
    return Counter(e.data["task"] for e in store.load(course_id) if e.type == "TaskScheduled")


@pytest.fixture
def recording() -> RecordingDispatcher:
    return RecordingDispatcher()


@pytest.fixture
def bridge(clock, recording) -> Bridge:
    return Bridge(MemoryStore(), recording, default_pipeline(), clock)


# -- ingest ---------------------------------------------------------------------------------
GS = "gs://lectures/rivers.mp4"


@pytest.mark.parametrize(
    ("message", "field"),
    [
        ({}, "videoUri"),
        ({"videoUri": GS}, "title"),
        ({"videoUri": GS, "title": 5}, "title"),
        ({"videoUri": GS, "title": ""}, "title"),
        ({"videoUri": GS, "title": "t" * 301}, "title"),
        ({"videoUri": "ftp://host/video.mp4", "title": "t"}, "videoUri"),
        ({"videoUri": "gs://b/has space.mp4", "title": "t"}, "videoUri"),
        ({"videoUri": GS, "title": "t", "courseId": "../x"}, "courseId"),
        ({"videoUri": GS, "title": "t", "courseId": "a/b"}, "courseId"),
        ({"videoUri": GS, "title": "t", "language": "English"}, "language"),
        ({"videoUri": GS, "title": "t", "options": {"maxFrames": 0}}, "options/maxFrames"),
        ({"videoUri": GS, "title": "t", "options": {"provider": "bogus"}}, "options/provider"),
        (["not", "an", "object"], "is not of type 'object'"),
    ],
)
def test_an_invalid_request_names_its_field_and_writes_nothing(bridge, recording, message, field):
    with pytest.raises(InvalidRequest) as caught:
        bridge.ingest(message, message_id="m1")

    assert field in str(caught.value)
    assert any(field in e for e in caught.value.errors)
    assert bridge.store.courses() == []
    assert list(bridge.store.scan()) == []
    assert recording.accepted == []


def test_members_a_newer_publisher_adds_are_ignored_and_not_recorded(bridge):
    message = {"videoUri": GS, "title": "t", "priority": 1, "options": {"shell": "rm"}}
    course_id = bridge.ingest(message, message_id="m-newer")
    (requested, *_) = bridge.store.load(course_id)
    assert requested.data["options"] == {}
    assert "priority" not in requested.data and "shell" not in str(requested.data)


def test_the_course_id_is_deterministic_from_the_message_id(bridge, recording):
    first = bridge.ingest(REQUEST, message_id="msg-1")
    version = bridge.store.head(first).version
    again = bridge.ingest(REQUEST, message_id="msg-1")  # Pub/Sub redelivers
    other = bridge.ingest(REQUEST, message_id="msg-2")

    assert first == again == course_id_for("msg-1", REQUEST)
    assert other != first
    events = bridge.store.load(first)
    assert [e.type for e in events].count("CourseRequested") == 1
    assert bridge.store.head(first).version == version
    assert events[0].data["request_id"] == "msg-1"
    assert scheduled_per_task(bridge.store, first) == {"prepare_video": 1}
    assert recording.names()[task_name(f"{first}:prepare_video:1")] == 1


def test_the_course_id_without_a_message_id_comes_from_the_content_or_the_message(bridge):
    assert course_id_for(None, REQUEST) == course_id_for(None, dict(reversed(REQUEST.items())))
    assert course_id_for(None, REQUEST) != course_id_for(None, {**REQUEST, "title": "Other"})
    # nested keys too: the options {x, y} and {y, x} are one request
    xy = {**REQUEST, "options": {"maxFrames": 40, "language": "en"}}
    yx = {**REQUEST, "options": {"language": "en", "maxFrames": 40}}
    assert course_id_for(None, xy) == course_id_for(None, yx)
    assert course_id_for(None, xy) != course_id_for(None, {**xy, "options": {"maxFrames": 41}})
    # the same message is the same course, with or without its message id
    assert course_id_for(None, xy) == course_id_for(None, json.loads(json.dumps(xy)))
    assert course_id_for("m-1", xy) == course_id_for("m-1", yx) == course_id_for("m-1", {})
    assert bridge.ingest({**REQUEST, "courseId": "chosen-1"}, message_id="m") == "chosen-1"


def test_advancing_twice_schedules_nothing_twice(bridge, recording):
    course = bridge.ingest(REQUEST, message_id="m1")
    version = bridge.store.head(course).version

    assert bridge.advance(course) == []
    assert bridge.advance(course) == []

    assert bridge.store.head(course).version == version
    assert scheduled_per_task(bridge.store, course) == {"prepare_video": 1}
    # this process handed the waiting task to the queue already: it is not offered again
    assert len(recording.accepted) == 1
    assert recording.refused == []


def test_a_new_process_offers_waiting_tasks_again_and_the_queue_refuses_the_copy(
    bridge, recording, clock
):
    course = bridge.ingest(REQUEST, message_id="m1")
    restarted = Bridge(bridge.store, recording, default_pipeline(), clock)

    assert restarted.advance(course) == []

    # it cannot know whether the dead process dispatched it: it offers, the queue refuses
    assert len(recording.accepted) == 1
    assert len(recording.refused) == 1
    assert restarted.stats["deduplicated"] == 1


def test_advancing_an_unknown_course_does_nothing(bridge, recording):
    assert bridge.advance("nosuchcourse") == []
    assert recording.accepted == []


def test_eight_threads_advancing_at_once_schedule_each_task_once(tmp_path, clock):
    store = SqliteStore(tmp_path / "events.db", synchronous="NORMAL")
    dispatcher = RecordingDispatcher()
    bridge = Bridge(store, dispatcher, default_pipeline(), clock)
    courses = [f"course{n}" for n in range(4)]
    for course in courses:
        store.append(course, 0, [requested()])

    def stampede() -> None:
        barrier = threading.Barrier(8)
        errors: list[BaseException] = []

        def work(seed: int) -> None:
            order = list(courses)
            random.Random(seed).shuffle(order)
            try:
                barrier.wait()
                for course in order:
                    bridge.advance(course)
            except BaseException as err:  # surfaced below
                errors.append(err)

        threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        assert errors == []

    stampede()  # prepare_video
    for course in courses:
        v = store.head(course).version
        store.append(course, v, [started(course), succeeded(course, duration_s=60.0)])
    stampede()  # extract_frames, transcribe (no audio chunks: the stitch at once)
    for course in courses:
        v = store.head(course).version
        store.append(
            course,
            v,
            [started(course, "extract_frames"), succeeded(course, "extract_frames", shards=4)],
        )
    stampede()  # analyze_frames#0..3

    expected = {
        "prepare_video",
        "extract_frames",
        "transcribe",
        *(f"analyze_frames#{n}" for n in range(4)),
    }
    for course in courses:
        per_task = scheduled_per_task(store, course)
        assert set(per_task) == expected
        assert set(per_task.values()) == {1}, per_task
        verify(course, store.load(course), store.head(course))
    accepted = dispatcher.names()
    assert len(accepted) == len(courses) * len(expected)
    assert set(accepted.values()) == {1}
    # a thread that lost the race and found a task not yet handed over offered it again: the
    # queue refused every such copy by name (above: each name accepted once)
    assert all(r.name in accepted for r in dispatcher.refused)
    store.close()


def test_a_crash_between_append_and_dispatch_heals_on_the_next_advance(clock):
    deliver = ScriptedDeliver(clock)
    queue = LocalDispatcher(default_pipeline(), deliver, clock)

    class CrashOnce:
        crashed = False

        def dispatch(self, request):
            if not self.crashed:
                self.crashed = True
                raise RuntimeError("process died before the task reached the queue")
            queue.dispatch(request)

    bridge = Bridge(MemoryStore(), CrashOnce(), default_pipeline(), clock)
    with pytest.raises(RuntimeError, match="process died"):
        bridge.ingest(REQUEST, message_id="m1")
    course = course_id_for("m1", REQUEST)
    assert scheduled_per_task(bridge.store, course) == {"prepare_video": 1}
    assert queue.pending() == 0  # recorded, never dispatched

    assert bridge.advance(course) == []  # nothing new to decide, but the waiting task goes out
    assert queue.pending() == 1
    bridge.advance(course)  # handed over now: not offered a second time
    assert queue.pending() == 1
    assert queue.stats.deduplicated == 0
    assert bridge.stats["deduplicated"] == 0

    queue.run_until_idle()
    assert len(deliver.calls) == 1
    assert deliver.calls[0].header("X-CloudTasks-TaskName") == task_name(
        f"{course}:prepare_video:1"
    )
    assert scheduled_per_task(bridge.store, course) == {"prepare_video": 1}


def test_recover_re_enqueues_waiting_tasks_after_a_restart(tmp_path, clock):
    # The local queue lives in memory: a restart loses it; the SQLite history does not.
    def start(steps: Steps):
        cfg = settings(COURSEGEN_STORE="sqlite", COURSEGEN_SQLITE_SYNCHRONOUS="NORMAL")
        return embedded(tmp_path, settings=cfg, steps=steps.registry(), clock=clock)

    before = Steps()
    before.fail("prepare_video", TransientStepError("busy"))
    rt = start(before)
    retrying = rt.bridge.ingest(REQUEST, message_id="m1")
    rt.dispatcher.run_until_idle(max_deliveries=1)  # fails; its retry is lost with the process
    waiting = rt.bridge.ingest(REQUEST, message_id="m2")  # never delivered
    assert rt.store.head(retrying).snapshot["tasks"]["prepare_video"]["status"] == "retrying"
    rt.close()

    after = Steps()
    rt = start(after)
    assert rt.dispatcher.pending() == 0

    assert rt.bridge.recover() == {"courses": 2, "tasks": 1}
    rt.dispatcher.run_until_idle()

    assert rt.store.head(retrying).status == "completed"
    assert rt.store.head(waiting).status == "completed"
    assert after.calls["prepare_video"] == 2
    assert rt.bridge.recover() == {"courses": 0, "tasks": 0}
    rt.close()


# -- reconcile ------------------------------------------------------------------------------
@runtime_with(dispatch_follow_ups=False)  # the cloud's split: dispatch on notification
def test_reconcile_rescues_a_lost_notification_and_leaves_healthy_courses_alone(env: Env):
    lost = env.ingest("lost")
    env.lost.add(lost)  # every notification about it is dropped
    healthy = env.ingest("healthy")
    env.rt.dispatcher.run_until_idle()
    assert env.status(healthy) == "completed"
    assert env.status(lost) == "running"
    stuck = env.types(lost)
    # prepare_video done, the five tasks it unblocks (extract_frames, four audio chunks)
    # scheduled with it, nobody dispatched them
    assert stuck[-6:] == ["TaskSucceeded"] + ["TaskScheduled"] * 5
    waiting = env.ingest("waiting")  # healthy: its first task is in the queue
    env.clock.advance_to(env.clock.now() + 200)
    recent = env.ingest("recent")
    versions = env.versions()

    result = env.rt.bridge.reconcile(120)

    # lost and waiting; not recent, not done
    assert result == {"checked": 2, "rescued": 1, "abandoned": 0}
    assert env.types(lost) == stuck  # nothing left to record: only to dispatch
    assert env.rt.dispatcher.pending() >= 3
    after = env.versions()
    for course in (healthy, waiting, recent):
        assert after[course] == versions[course]

    for _ in range(20):  # the reconciler alone carries the lost course to the end
        env.rt.dispatcher.run_until_idle()
        env.clock.advance_to(env.clock.now() + 200)
        env.rt.bridge.reconcile(120)
        if env.status(lost) == "completed":
            break
    assert env.status(lost) == "completed"
    assert env.rt.bridge.stats["rescues"] >= 4
    for course in (healthy, waiting, recent, lost):
        verify(course, env.store.load(course), env.store.head(course))


def test_reconcile_ignores_courses_that_are_not_quiet_yet(env: Env):
    env.lost.add(env.ingest("lost"))
    env.rt.dispatcher.run_until_idle()
    assert env.rt.bridge.reconcile(3600) == {"checked": 0, "rescued": 0, "abandoned": 0}


# -- rollout --------------------------------------------------------------------------------
IDS = [course_id_for(f"m{n}", REQUEST) for n in range(1000)]


def test_variant_for_is_deterministic_and_honours_the_rollout_percent():
    assert {variant_for(c, 0) for c in IDS} == {"legacy"}
    assert {variant_for(c, 100) for c in IDS} == {"cloudtasks"}
    half = sum(variant_for(c, 50) == "cloudtasks" for c in IDS)
    assert 430 <= half <= 570
    assert [variant_for(c, 50) for c in IDS] == [variant_for(c, 50) for c in IDS]
    for low, high in ((10, 50), (50, 90)):  # raising the percent never moves a course back
        moved_back = [c for c in IDS if variant_for(c, low) == "cloudtasks"]
        assert all(variant_for(c, high) == "cloudtasks" for c in moved_back)


@pytest.mark.parametrize(("percent", "variant"), [(0, "legacy"), (100, "cloudtasks")])
def test_the_variant_picks_the_transport(clock, percent, variant):
    main, legacy = RecordingDispatcher(), RecordingDispatcher()
    bridge = Bridge(
        MemoryStore(),
        main,
        default_pipeline(),
        clock,
        rollout_percent=percent,
        legacy_dispatcher=legacy,
    )

    course = bridge.ingest(REQUEST, message_id="m1")

    assert bridge.store.head(course).variant == variant
    used, unused = (legacy, main) if variant == "legacy" else (main, legacy)
    assert len(used.accepted) == 1
    assert unused.accepted == []
    assert used.accepted[0].payload["data"]["variant"] == variant


def test_reconcile_exhausts_a_task_whose_handler_never_answered():
    """The handler died after TaskStarted on the last attempt and the queue gave up: the
    reconciler records TaskExhausted once the queue's limits have passed, and the course fails."""
    from bridge.runtime.clock import VirtualClock
    from bridge.runtime.embedded import embedded
    from bridge.tooling.synthetic import noop_steps
    from statemachine.envelope import NewEvent
    from statemachine.events import TaskStarted
    from statemachine.pipeline import default_pipeline
    from statemachine.store.memory import MemoryStore
    from statemachine.timefmt import iso

    clock = VirtualClock()
    pipe = default_pipeline()
    rt = embedded("/tmp/unused-reconcile", steps=noop_steps(pipe), clock=clock, store=MemoryStore())
    course = rt.bridge.ingest({"videoUri": "gs://b/v.mp4", "title": "T"}, message_id="m-dead")
    head = rt.store.head(course)
    task = head.snapshot["tasks"]["prepare_video"]
    retry = pipe.queues[task["queue"]].retry
    rt.store.append(
        course,
        head.version,
        [
            NewEvent(
                event=TaskStarted(
                    task="prepare_video", idempotency_key=task["key"], attempt=retry.max_attempts
                ),
                occurred_at=iso(clock.now()),
                actor="task-endpoint",
            )
        ],
    )
    assert rt.bridge.reconcile(60)["abandoned"] == 0  # too early: the queue may still deliver
    deadline = pipe.steps["prepare_video"].timeout_s  # the task's dispatch deadline
    clock.sleep(retry.max_retry_duration_s + retry.max_backoff_s + deadline + 1)
    assert rt.bridge.reconcile(60)["abandoned"] == 1
    state = rt.store.head(course)
    assert state.status == "failed"
    assert state.snapshot["tasks"]["prepare_video"]["status"] == "exhausted"


# -- errors that tell the truth ---------------------------------------------------------------
class RefusingStore(MemoryStore):
    """A store whose reducer refuses every TaskScheduled (as a reducer out of step with
    ``decide`` would), counting the appends it was asked for."""

    def __init__(self) -> None:
        super().__init__()
        self.refused = 0

    def append(self, course_id, expected_version, events, *, then=None, rebase=None):
        if any(e.type == "TaskScheduled" for e in events):
            self.refused += 1
            raise TransitionNotAllowed("requested", "TaskScheduled", "refused by the fake")
        return super().append(course_id, expected_version, events, then=then, rebase=rebase)


def test_a_refused_append_is_reported_at_once_with_its_event_and_state(clock, recording):
    store = RefusingStore()
    bridge = Bridge(store, recording, default_pipeline(), clock)
    store.append("c1", 0, [requested()])

    with pytest.raises(TransitionNotAllowed) as caught:
        bridge.advance("c1")

    assert store.refused == 1  # not retried: a refusal at a fixed version is deterministic
    assert (caught.value.state, caught.value.event) == ("requested", "TaskScheduled")
    assert "course c1 at version 1" in str(caught.value)
    assert recording.accepted == []


class ConflictingStore(MemoryStore):
    """A store that always has moved on by the time an append arrives."""

    def append(self, course_id, expected_version, events, *, then=None, rebase=None):
        if any(e.type == "TaskScheduled" for e in events):
            raise ConcurrencyConflict(course_id, expected_version, expected_version + 1)
        return super().append(course_id, expected_version, events, then=then, rebase=rebase)


def test_a_lost_race_is_retried_then_reported_with_the_versions_it_saw(clock, recording):
    store = ConflictingStore()
    bridge = Bridge(store, recording, default_pipeline(), clock)
    store.append("c1", 0, [requested()])

    with pytest.raises(ConcurrencyConflict) as caught:
        bridge.advance("c1")

    assert bridge.stats["conflicts"] == 50
    assert (caught.value.expected, caught.value.actual) == (1, 2)
