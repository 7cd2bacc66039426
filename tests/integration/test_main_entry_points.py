"""main.py's functions-framework entry points, wired by bridge.runtime.cloud to the emulators."""

from __future__ import annotations

import base64
import json
import sys
import time
from pathlib import Path

import pytest
from cloudevents.http import CloudEvent

from bridge.settings import SettingError
from tests.emulators import create_queues, need, reset_firestore, serve, tasks_client, unique

MAIN = str(Path(__file__).resolve().parents[2] / "main.py")
ENTRY_POINTS = {
    "bridge": "http",
    "run_task": "http",
    "ingest_course_request": "cloudevent",
    "on_course_event": "cloudevent",
    "legacy_step_created": "cloudevent",
}


@pytest.mark.parametrize(("target", "kind"), ENTRY_POINTS.items())
def test_every_entry_point_registers_without_building_anything(target, kind, monkeypatch):
    import functions_framework

    # A runtime built from this environment fails at once: registering must not build one.
    monkeypatch.setenv("COURSEGEN_STORE", "nowhere")
    app = functions_framework.create_app(target=target, source=MAIN, signature_type=kind)
    assert app.name == target
    assert "/" in {rule.rule for rule in app.url_map.iter_rules()}
    main = sys.modules["main"]  # main.py as functions-framework loaded it
    with pytest.raises(SettingError, match="COURSEGEN_STORE='nowhere'"):
        main.runtime()  # built on first use, from the environment


def pubsub_event(data: bytes, message_id: str) -> CloudEvent:
    attributes = {
        "type": "google.cloud.pubsub.topic.v1.messagePublished",
        "source": "//pubsub.googleapis.com/projects/p/topics/course-requests",
    }
    message = {"data": base64.b64encode(data).decode(), "messageId": message_id}
    return CloudEvent(attributes, {"message": message, "subscription": "projects/p/subs/s"})


@pytest.fixture
def cloud(monkeypatch):
    """main's runtime on the emulators (Firestore, Pub/Sub, Cloud Tasks), for a fresh project."""
    need("FIRESTORE_EMULATOR_HOST")
    need("PUBSUB_EMULATOR_HOST")
    need("CLOUD_TASKS_EMULATOR_HOST")
    from google.cloud import pubsub_v1

    import main
    from bridge.pubsub import make_publisher
    from statemachine.pipeline import default_pipeline

    project = unique("main")
    reset_firestore(project)
    create_queues(tasks_client(), project, "europe-west1", default_pipeline().queues)
    publisher, subscriber = make_publisher(), pubsub_v1.SubscriberClient()
    dead_sub = subscriber.subscription_path(project, "dead")
    for topic in ("course-events", "course-requests-dead-letter"):
        publisher.create_topic(name=publisher.topic_path(project, topic))
    subscriber.create_subscription(
        name=dead_sub, topic=publisher.topic_path(project, "course-requests-dead-letter")
    )
    delivered: list[bytes] = []

    def steps_app(environ, start_response):
        delivered.append(environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0)))
        start_response("200 OK", [("Content-Type", "application/json")])
        return [b"{}"]

    with serve(steps_app) as steps_url:
        env = {
            "GOOGLE_CLOUD_PROJECT": project,
            "COURSEGEN_STORE": "firestore",
            "COURSEGEN_DISPATCHER": "cloudtasks",
            "COURSEGEN_AUTH": "none",
            "COURSEGEN_STEP_URLS": json.dumps({"prepare_video": steps_url}),
            "COURSEGEN_ARTIFACTS": str(Path("/tmp") / unique("artifacts")),
        }
        for key, value in env.items():
            monkeypatch.setenv(key, value)
        main.reset()  # a fresh process, as far as main can tell
        yield main, subscriber, dead_sub, delivered
        main.reset()
    subscriber.close()


@pytest.mark.emulator
def test_ingest_course_request_accepts_a_good_event_and_dispatches(cloud):
    main, _, _, delivered = cloud
    body = json.dumps({"courseId": "m1", "videoUri": "gs://b/a.mp4", "title": "T"}).encode()
    main.ingest_course_request(pubsub_event(body, "id-1"))
    head = main.runtime().store.head("m1")
    assert head is not None and head.status == "running"
    for _ in range(100):
        if delivered:
            break
        time.sleep(0.1)
    assert json.loads(delivered[0])["taskType"] == "prepare_video"


@pytest.mark.emulator
def test_ingest_course_request_dead_letters_a_malformed_event(cloud):
    main, subscriber, dead_sub, _ = cloud
    main.ingest_course_request(pubsub_event(b"not json", "id-2"))
    response = subscriber.pull(subscription=dead_sub, max_messages=1, timeout=10)
    (received,) = response.received_messages
    assert received.message.data == b"not json"
    assert "not JSON" in received.message.attributes["reason"]
    assert main.runtime().store.courses() == []


@pytest.mark.emulator
def test_run_task_answers_through_the_task_endpoint(cloud):
    import functions_framework

    main = cloud[0]
    client = functions_framework.create_app(target="run_task", source=MAIN).test_client()
    payload = {
        "courseId": "nobody",
        "taskType": "prepare_video",
        "attempt": 1,
        "data": {"task": "prepare_video", "generation": 1},
        "created": "2026-11-28T10:00:00Z",
        "idempotencyKey": "nobody:prepare_video:1",
    }
    r = client.post("/", json=payload)
    assert r.status_code == 404 and r.json["title"] == "Unknown course"
    r = client.post("/", data=b"x" * (1024 * 1024 + 1))
    assert r.status_code == 413
    assert main.runtime().endpoint.only_step is None
