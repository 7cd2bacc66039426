"""The bridge's HTTP app: push envelopes, malformed messages acked and dead-lettered, auth."""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass, field, replace

import pytest

from bridge.core import Bridge
from bridge.dispatch import TaskRequest
from bridge.runtime.clock import VirtualClock
from bridge.settings import Settings
from bridge.web.bridge_app import create_bridge_app
from handlers.auth import Unauthorized, allow_all
from handlers.media.ssrf import hostile_uri
from statemachine.pipeline import default_pipeline
from statemachine.store.memory import MemoryStore


class RecordingDispatcher:
    def __init__(self) -> None:
        self.requests: list[TaskRequest] = []

    def dispatch(self, request: TaskRequest) -> None:
        self.requests.append(request)


@dataclass
class FakeRuntime:
    """What the app needs of bridge.runtime.cloud.CloudRuntime: a real Bridge on a memory store."""

    bridge: Bridge
    verify: object = allow_all
    dead: list[tuple[bytes, str, dict]] = field(default_factory=list)
    quiet_s: float = 300.0
    fail_dead_letter: bool = False
    settings: Settings = field(default_factory=lambda: Settings.from_env({}))

    def dead_letter(self, data: bytes, reason: str, attributes=None) -> None:
        if self.fail_dead_letter:
            raise RuntimeError("pubsub unavailable")
        self.dead.append((data, reason, dict(attributes or {})))


@pytest.fixture
def rt() -> FakeRuntime:
    store = MemoryStore()
    bridge = Bridge(store, RecordingDispatcher(), default_pipeline(), VirtualClock())
    return FakeRuntime(bridge)


@pytest.fixture
def client(rt):
    return create_bridge_app(lambda: rt).test_client()


def push(data: bytes | str, message_id: str = "m-1", **extra) -> dict:
    text = data if isinstance(data, str) else base64.b64encode(data).decode()
    message = {
        "data": text,
        "attributes": {},
        "messageId": message_id,
        "publishTime": "2026-11-28T10:00:00Z",
    }
    return {
        "message": message,
        "subscription": "projects/p/subscriptions/s",
        "deliveryAttempt": 1,
        **extra,
    }


def request_(**fields) -> bytes:
    base = {"videoUri": "gs://lectures/a.mp4", "title": "Rivers"}
    base.update(fields)
    return json.dumps({k: v for k, v in base.items() if v is not None}).encode()


def test_a_course_request_is_ingested_and_dispatched(client, rt):
    r = client.post("/pubsub/course-requests", json=push(request_(courseId="c1")))
    assert r.status_code == 200 and r.json == {"status": "accepted", "courseId": "c1"}
    assert rt.bridge.store.head("c1").status == "running"
    assert [q.step for q in rt.bridge.dispatcher.requests] == ["prepare_video"]


def test_a_redelivered_request_is_harmless(client, rt):
    for _ in range(3):
        assert client.post("/pubsub/course-requests", json=push(request_())).status_code == 200
    (course_id,) = [h.course_id for h in rt.bridge.store.courses()]
    types = [e.type for e in rt.bridge.store.load(course_id)]
    assert types.count("CourseRequested") == 1 and types.count("TaskScheduled") == 1


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        ("%%%not-base64%%%", "not valid base64"),
        (b"\xff\xfe not json", "not JSON"),
        (b"[1, 2]", "JSON object"),
        (request_(title=None), "title"),
        (request_(language=7), "invalid course request"),
        (request_(courseId="../../etc"), "hostile courseId"),
        (request_(courseId="a" * 300), "hostile courseId"),
        (request_(videoUri="file:///etc/passwd"), "hostile videoUri"),
        (request_(videoUri="/etc/passwd"), "hostile videoUri"),
        (request_(videoUri="http://example.com/a.mp4"), "scheme"),
        (request_(videoUri="https://169.254.169.254/computeMetadata/v1/"), "non-public"),
        (request_(videoUri="https://metadata.google.internal/x"), "internal host"),
        (request_(videoUri="https://user:pw@example.com/a.mp4"), "credentials"),
        (request_(videoUri="https://[::1]/a.mp4"), "non-public"),
        (request_(videoUri="gs://lectures/"), "names a bucket but no object"),
        (request_(videoUri="gs://lectures"), "names a bucket but no object"),
        (request_(videoUri="gs://lectures/a/../../b.mp4"), "unsafe object name"),
    ],
)
def test_a_malformed_request_is_acked_dead_lettered_and_never_written(
    client, rt, data, reason, caplog
):
    r = client.post("/pubsub/course-requests", json=push(data, message_id="bad-1"))
    assert r.status_code == 200 and r.json["status"] == "rejected"
    assert reason in r.json["reason"]
    assert rt.bridge.store.courses() == [] and rt.bridge.dispatcher.requests == []
    ((dead_data, dead_reason, attrs),) = rt.dead
    assert reason in dead_reason
    assert attrs["source"] == "course-requests" and attrs["messageId"] == "bad-1"
    if isinstance(data, bytes):
        assert dead_data == data  # the original bytes, as published
    errors = [rec for rec in caplog.records if rec.levelname == "ERROR"]
    assert sum(reason in rec.getMessage() for rec in errors) == 1  # the reason, logged once


def test_a_hostile_message_id_is_rejected(client, rt):
    r = client.post("/pubsub/course-requests", json=push(request_(), message_id="x\ny<script>"))
    assert r.json["status"] == "rejected" and "messageId" in r.json["reason"]


def test_a_body_that_is_not_a_push_envelope_is_a_400_problem(client, rt):
    r = client.post("/pubsub/course-requests", data=b"not json")
    assert r.status_code == 400 and r.content_type == "application/problem+json"
    assert r.json["title"] == "Not a push envelope"
    r = client.post("/pubsub/course-requests", json={"msg": {}})
    assert r.status_code == 400


def test_a_body_over_one_mebibyte_is_413_before_parsing(client, rt):
    r = client.post("/pubsub/course-requests", data=b"x" * (1024 * 1024 + 1))
    assert r.status_code == 413 and r.json["status"] == 413
    assert rt.dead == []


def test_if_the_dead_letter_publish_fails_pubsub_delivers_again(client, rt):
    rt.fail_dead_letter = True
    r = client.post("/pubsub/course-requests", json=push(b"not json"))
    assert r.status_code == 503 and r.json["title"] == "Dead-letter publish failed"


def test_unauthenticated_callers_get_401_and_nothing_happens(rt):
    def refuse(headers, body, url):
        raise Unauthorized("missing Authorization header")

    rt.verify = refuse
    client = create_bridge_app(lambda: rt).test_client()
    for path in ("/pubsub/course-requests", "/pubsub/course-events", "/reconcile"):
        r = client.post(path, json=push(request_()))
        assert r.status_code == 401 and "Authorization" in r.json["detail"]
    assert rt.bridge.store.courses() == []


def test_a_course_event_advances_the_course(client, rt):
    client.post("/pubsub/course-requests", json=push(request_(courseId="c1")))
    note = json.dumps({"courseId": "c1", "version": 2}).encode()
    r = client.post("/pubsub/course-events", json=push(note))
    assert r.status_code == 200 and r.json["courseId"] == "c1"


@pytest.mark.parametrize("data", [b"{}", b'{"courseId": "../x"}', b"nope"])
def test_a_malformed_course_event_is_acked_and_dead_lettered(client, rt, data):
    r = client.post("/pubsub/course-events", json=push(data))
    assert r.status_code == 200 and r.json["status"] == "rejected"
    assert rt.dead[0][2]["source"] == "course-events"


def test_reconcile_reports_what_it_did(client, rt):
    r = client.post("/reconcile")
    assert r.status_code == 200 and r.json == {
        "status": "reconciled",
        "checked": 0,
        "rescued": 0,
        "abandoned": 0,
    }


def test_a_transient_failure_is_a_503_problem(rt):
    class Broken:
        def head(self, course_id):
            raise ConnectionError("firestore unavailable")

    rt.bridge = replace(rt.bridge, store=Broken())
    client = create_bridge_app(lambda: rt).test_client()
    r = client.post("/pubsub/course-events", json=push(b'{"courseId": "c1", "version": 1}'))
    assert r.status_code == 503 and "firestore unavailable" in r.json["detail"]


def test_unknown_routes_and_methods_are_problems(client):
    assert client.get("/pubsub/course-requests").status_code == 405
    assert client.post("/nowhere").json["status"] == 404


def test_hostile_uri_accepts_ordinary_sources():
    assert hostile_uri("gs://bucket/lectures/a b.mp4") is not None  # whitespace
    assert hostile_uri("gs://bucket/lectures/a.mp4") is None
    assert hostile_uri("https://cdn.example.com/a.mp4?sig=1") is None
    assert hostile_uri("https://8.8.8.8/a.mp4") is None
