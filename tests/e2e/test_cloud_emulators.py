"""End to end on the real emulators: Pub/Sub push -> bridge -> Cloud Tasks -> steps -> Firestore.

The bridge app and the task endpoint are served on 127.0.0.1 (werkzeug, in threads). The
emulators cannot mint OIDC tokens: the Cloud Tasks emulator forwards the task's own headers, so
tasks carry an HMAC token (``signer``) that the endpoint checks; the Pub/Sub emulator's pushes
carry nothing, so the bridge routes accept any caller here (OIDC is tested in
tests/integration/test_oidc.py).
"""

from __future__ import annotations

import dataclasses
import json
import threading
import time
from collections.abc import Mapping

import pytest
from flask import Flask, Response, request

from bridge.pubsub import make_publisher
from bridge.runtime.cloud import cloud_runtime
from bridge.settings import Settings
from bridge.tooling.synthetic import noop_steps
from bridge.web.bridge_app import create_bridge_app
from handlers.auth import HmacVerifier, allow_all, sign
from handlers.registry import StepContext, StepFn, StepResult, TransientStepError
from statemachine.audit import verify
from statemachine.pipeline import default_pipeline
from tests.emulators import (
    create_queues,
    fresh_firestore_store,
    need,
    serve,
    tasks_client,
    unique,
)

pytestmark = [pytest.mark.emulator, pytest.mark.slow, pytest.mark.timeout(300)]

REGION = "europe-west1"
SECRET = b"e2e-secret"
TIMEOUT_S = 120.0


def task_app(holder: dict) -> Flask:
    """The task endpoint as a service, like main.run_task."""
    app = Flask("steps")

    @app.post("/<step>")
    def run(step: str) -> Response:
        answer = holder["rt"].endpoint.handle(
            dict(request.headers), request.get_data(), request.url
        )
        return Response(json.dumps(answer.body), answer.status, mimetype="application/json")

    return app


def flaky(step: StepFn, failures: int) -> StepFn:
    left = {"n": failures}
    lock = threading.Lock()

    def run(ctx: StepContext) -> StepResult:
        with lock:
            if left["n"] > 0:
                left["n"] -= 1
                raise TransientStepError("upstream unavailable (503)")
        return step(ctx)

    return run


@pytest.fixture
def stack():
    """Emulator resources of a fresh project, and a function that starts the services."""
    need("PUBSUB_EMULATOR_HOST")
    need("CLOUD_TASKS_EMULATOR_HOST")
    store = fresh_firestore_store()
    project = store.client.project
    pipeline = default_pipeline()
    create_queues(tasks_client(), project, REGION, pipeline.queues)
    from google.cloud import pubsub_v1

    publisher = make_publisher()
    subscriber = pubsub_v1.SubscriberClient()
    for topic in ("course-requests", "course-events", "course-requests-dead-letter"):
        publisher.create_topic(name=publisher.topic_path(project, topic))
    with serve(_Lazy()) as tasks_url:
        yield {
            "store": store,
            "project": project,
            "pipeline": pipeline,
            "publisher": publisher,
            "subscriber": subscriber,
            "tasks_url": tasks_url,
        }
    subscriber.close()


class _Lazy:
    """A WSGI app whose target is set after the server has a port."""

    app = None

    def __call__(self, environ, start_response):
        return _Lazy.app(environ, start_response)


def start(stack: dict, steps: Mapping[str, StepFn]):
    project, store = stack["project"], stack["store"]
    holder: dict = {}
    _Lazy.app = task_app(holder)
    urls = {name: f"{stack['tasks_url']}/{name}" for name in stack["pipeline"].steps}
    settings = Settings.from_env(
        {},
        COURSEGEN_STORE="firestore",
        GOOGLE_CLOUD_PROJECT=project,
        COURSEGEN_DISPATCHER="cloudtasks",
        COURSEGEN_REGION=REGION,
        COURSEGEN_STEP_URLS=json.dumps(urls),
        COURSEGEN_AUTH="hmac",
        COURSEGEN_TASK_SECRET=SECRET.decode(),
    )
    rt = cloud_runtime(
        settings,
        steps=steps,
        store=store,
        tasks_client=tasks_client(),
        publisher=stack["publisher"],
        task_signer=lambda body: sign(SECRET, body, int(time.time()) + 3600),
    )
    assert isinstance(rt.verify, HmacVerifier)
    holder["rt"] = rt
    return rt, create_bridge_app(lambda: dataclasses.replace(rt, verify=allow_all))


def subscribe_push(stack: dict, topic: str, endpoint: str) -> None:
    sub, project = stack["subscriber"], stack["project"]
    sub.create_subscription(
        request={
            "name": sub.subscription_path(project, unique(topic)),
            "topic": stack["publisher"].topic_path(project, topic),
            "push_config": {"push_endpoint": endpoint},
            "enable_message_ordering": topic == "course-events",
            "ack_deadline_seconds": 60,
        }
    )


def run_course(stack: dict, steps: Mapping[str, StepFn], course_id: str) -> list:
    rt, bridge_app = start(stack, steps)
    with serve(bridge_app) as bridge_url:
        subscribe_push(stack, "course-requests", bridge_url + "/pubsub/course-requests")
        subscribe_push(stack, "course-events", bridge_url + "/pubsub/course-events")
        message = {
            "courseId": course_id,
            "videoUri": "gs://lectures/rivers.mp4",
            "title": "Rivers of Europe",
        }
        topic = stack["publisher"].topic_path(stack["project"], "course-requests")
        stack["publisher"].publish(topic, json.dumps(message).encode()).result(30)
        deadline = time.time() + TIMEOUT_S
        while time.time() < deadline:
            head = rt.store.head(course_id)
            if head is not None and head.status in ("completed", "failed"):
                break
            time.sleep(0.3)
    head = rt.store.head(course_id)
    assert head is not None, "the course request never reached the bridge"
    assert head.status == "completed", head.snapshot
    events = rt.store.load(course_id)
    assert verify(course_id, events, head).events == len(events)
    return events


def test_a_course_completes_through_the_emulators(stack):
    events = run_course(stack, noop_steps(stack["pipeline"]), "e2e-course")
    types = [e.type for e in events]
    assert types[0] == "CourseRequested" and types[-1] == "CourseCompleted"
    succeeded = {e.data["task"] for e in events if e.type == "TaskSucceeded"}
    assert {"prepare_video", "transcribe", "finalize", "analyze_frames#0"} <= succeeded
    assert "TaskFailed" not in types


def test_a_step_that_fails_twice_is_retried_and_the_history_shows_it(stack):
    steps = dict(noop_steps(stack["pipeline"]))
    steps["prepare_video"] = flaky(steps["prepare_video"], failures=2)
    events = run_course(stack, steps, "e2e-retry")
    outcomes = [
        (e.type, e.data.get("attempt"))
        for e in events
        if e.data.get("task") == "prepare_video"
        and e.type in ("TaskStarted", "TaskFailed", "TaskSucceeded")
    ]
    assert outcomes == [
        ("TaskStarted", 1),
        ("TaskFailed", 1),
        ("TaskStarted", 2),
        ("TaskFailed", 2),
        ("TaskStarted", 3),
        ("TaskSucceeded", 3),
    ]
    failed = [e for e in events if e.type == "TaskFailed"]
    assert all(e.data["retryable"] and "503" in e.data["message"] for e in failed)
