"""A/B rollout and switchover: at 50 % both transports complete courses with identical outputs;
at 100 % with the legacy trigger disabled nothing is written for the legacy transport."""

from __future__ import annotations

import json
from pathlib import Path

from bridge.dispatch import AlreadyExists, TaskRequest
from bridge.dispatch.firestore_trigger import (
    LegacyDisabled,
    LegacyTriggerDispatcher,
    LocalStepDocuments,
    _event_data,
    document_fields,
    step_document,
)
from bridge.ops.stats import collect, summarize
from bridge.wire import variant_for

from .conftest import Ops, make_ops

COURSES = 16


def outputs_of(ops: Ops, course_id: str) -> dict[str, tuple]:
    """Each task's outputs and summary, with the course id taken out (it differs per course)."""
    head = ops.store.head(course_id)
    found = {}
    for name, t in head.snapshot["tasks"].items():
        text = json.dumps([t["outputs"], t["summary"], t["status"]], sort_keys=True)
        found[name] = text.replace(course_id, "COURSE")
    return found


def test_half_the_courses_take_the_legacy_transport_with_identical_results(tmp_path: Path):
    ops = make_ops(
        tmp_path,
        COURSEGEN_ROLLOUT_PERCENT="50",
        COURSEGEN_LEGACY_TRIGGER_ENABLED="true",
    )
    try:
        ids = [ops.ingest(f"ab-{i}") for i in range(COURSES)]
        ops.run()
        variants = {c: ops.store.head(c).variant for c in ids}
        assert set(variants.values()) == {"legacy", "cloudtasks"}
        assert all(variants[c] == variant_for(c, 50) for c in ids)  # deterministic from the id
        assert {ops.status(c) for c in ids} == {"completed"}
        legacy = [c for c in ids if variants[c] == "legacy"]
        cloud = [c for c in ids if variants[c] == "cloudtasks"]
        # Each legacy task went through a step document, and nothing else did.
        tasks_of = {c: len(ops.store.head(c).snapshot["tasks"]) for c in ids}
        assert ops.rt.legacy is not None
        assert ops.rt.legacy.created == sum(tasks_of[c] for c in legacy)
        assert ops.rt.dispatcher.stats.dispatched == sum(tasks_of[c] for c in cloud)
        reference = outputs_of(ops, cloud[0])
        for course in legacy + cloud:
            assert outputs_of(ops, course) == reference
        # The variant is in each course's history, and stats compare the two.
        first = ops.store.load(legacy[0])[0]
        assert (first.type, first.data["variant"]) == ("CourseRequested", "legacy")
        rows = summarize(collect(ops.store.scan()))["variants"]
        assert {r["variant"]: r["completed"] for r in rows} == {
            "cloudtasks": len(cloud),
            "legacy": len(legacy),
        }
    finally:
        ops.rt.close()


def test_switchover_sends_nothing_to_the_legacy_transport(tmp_path: Path):
    ops = make_ops(
        tmp_path,
        COURSEGEN_ROLLOUT_PERCENT="100",
        COURSEGEN_LEGACY_TRIGGER_ENABLED="false",
    )
    try:
        assert ops.rt.legacy is None
        fallback = ops.rt.bridge.legacy_dispatcher
        assert isinstance(fallback, LegacyDisabled)
        ids = [ops.ingest(f"all-{i}") for i in range(COURSES)]
        ops.run()
        assert {ops.store.head(c).variant for c in ids} == {"cloudtasks"}
        assert {ops.status(c) for c in ids} == {"completed"}
        assert fallback.fallbacks == 0  # not one task was offered to the legacy transport
    finally:
        ops.rt.close()


def test_a_legacy_course_left_at_switchover_finishes_on_cloud_tasks(tmp_path: Path):
    ops = make_ops(tmp_path, COURSEGEN_ROLLOUT_PERCENT="0")  # legacy variant, trigger disabled
    try:
        course = ops.ingest("late")
        assert ops.store.head(course).variant == "legacy"
        ops.run()
        assert ops.status(course) == "completed"
        fallback = ops.rt.bridge.legacy_dispatcher
        assert fallback.fallbacks == len(ops.store.head(course).snapshot["tasks"])
    finally:
        ops.rt.close()


def test_a_step_document_is_written_once(clock) -> None:
    docs = LocalStepDocuments(lambda doc: None, clock, pipeline=None)  # type: ignore[arg-type]
    dispatcher = LegacyTriggerDispatcher(docs, clock)
    request = TaskRequest("q", "t123", "finalize", {"courseId": "c1", "idempotencyKey": "k"}, 60)
    dispatcher.dispatch(request)
    try:
        dispatcher.dispatch(request)
        raise AssertionError("a second document of one task was written")
    except AlreadyExists:
        pass
    doc = docs.documents["t123"]
    assert json.loads(doc["payload"]) == dict(request.payload)
    assert (doc["expire_at"] - doc["created"]).days == 7
    assert dispatcher.written == 1


def test_the_eventarc_document_event_decodes(clock) -> None:
    from google.cloud.firestore_v1 import _helpers
    from google.cloud.firestore_v1.types import Document

    payload = {"courseId": "c1", "taskType": "finalize", "idempotencyKey": "c1:finalize:1"}
    request = TaskRequest("q", "t9", "finalize", payload, 60)
    data = step_document(request, clock.now())
    document = Document(
        name="projects/p/databases/(default)/documents/legacy_steps/t9",
        fields=_helpers.encode_dict(data),
    )
    event_data = _event_data()
    raw = event_data.serialize(event_data(value=document))
    fields = document_fields(raw)
    assert json.loads(fields["payload"]) == payload
    assert fields["name"] == "t9"
    as_json = {"value": {"name": document.name, "fields": {"payload": {"stringValue": "{}"}}}}
    assert document_fields(as_json)["payload"] == "{}"
    one = {"arrayValue": {"values": [{"doubleValue": 1.0}]}}
    vector = {"__type__": {"stringValue": "__vector__"}, "value": one}  # not a map of fields
    for bad in (b"\xff\xff", {"value": {}}, "text", {"value": {"fields": vector}}):
        try:
            document_fields(bad)
            raise AssertionError(f"{bad!r} decoded")
        except ValueError:
            pass


def test_the_legacy_transport_retries_and_exhausts_like_the_queue(tmp_path: Path):
    from handlers.registry import TransientStepError

    ops = make_ops(tmp_path, COURSEGEN_ROLLOUT_PERCENT="0", COURSEGEN_LEGACY_TRIGGER_ENABLED="1")
    try:
        ops.steps.fail("prepare_video", TransientStepError("flaky"))
        course = ops.ingest("flaky")
        ops.run()
        assert ops.status(course) == "completed"
        task = ops.store.head(course).snapshot["tasks"]["prepare_video"]
        assert task["attempts"] == 2
        started = [e.data["attempt"] for e in ops.store.load(course) if e.type == "TaskStarted"]
        assert started[:2] == [1, 2]  # attempt numbers come from the history
        ops.steps.fail("prepare_video", *[TransientStepError("down")] * 20)
        broken = ops.ingest("down")
        ops.run()
        assert ops.status(broken) == "failed"
        task = ops.store.head(broken).snapshot["tasks"]["prepare_video"]
        retry = ops.rt.pipeline.queues[task["queue"]].retry
        assert (task["status"], task["attempts"]) == ("exhausted", retry.max_attempts)
        assert ops.rt.legacy.pending() == 0
    finally:
        ops.rt.close()


def test_main_legacy_step_created_runs_the_step_of_a_new_document(tmp_path: Path):
    from cloudevents.http import CloudEvent
    from google.cloud.firestore_v1 import _helpers
    from google.cloud.firestore_v1.types import Document

    import main

    ops = make_ops(tmp_path, COURSEGEN_ROLLOUT_PERCENT="0", COURSEGEN_LEGACY_TRIGGER_ENABLED="1")
    try:
        main.use_runtime(ops.rt)  # the process's runtime, prebuilt
        course = ops.ingest("eventarc")
        (doc_id,) = ops.rt.legacy.documents  # written, not yet triggered
        data = ops.rt.legacy.documents[doc_id]
        document = Document(name=f"x/legacy_steps/{doc_id}", fields=_helpers.encode_dict(data))
        event_data = _event_data()
        event = CloudEvent(
            {
                "type": "google.cloud.firestore.document.v1.created",
                "source": "//firestore.googleapis.com/projects/p/databases/(default)",
                "datacontenttype": "application/protobuf",
            },
            event_data.serialize(event_data(value=document)),
        )
        main.legacy_step_created(event)
        task = ops.store.head(course).snapshot["tasks"]["prepare_video"]
        assert (task["status"], task["attempts"]) == ("succeeded", 1)
        main.legacy_step_created(event)  # Eventarc delivers at least once: a no-op
        assert ops.store.head(course).snapshot["tasks"]["prepare_video"]["attempts"] == 1
        main.legacy_step_created(CloudEvent(event.get_attributes(), b"garbage"))  # acknowledged
    finally:
        main.reset()
        ops.rt.close()
