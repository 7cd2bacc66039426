"""Hostile course requests on both ingestion paths, Pub/Sub push and CloudEvent: acked, parked."""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from cloudevents.http import CloudEvent

from bridge.web.bridge_app import MAX_BODY_BYTES, create_bridge_app
from tests.reliability.conftest import REQUEST, World, as_json, push_envelope

MAIN = str(Path(__file__).resolve().parents[2] / "main.py")


def request_with(**fields: Any) -> bytes:
    return as_json({k: v for k, v in {**REQUEST, **fields}.items() if v is not None})


SSRF_URIS = [
    "file:///etc/passwd",
    "file://localhost/root/.ssh/id_rsa",
    "/etc/shadow",
    "http://example.com/plain-http.mp4",
    "ftp://example.com/a.mp4",
    "https://127.0.0.1/a.mp4",
    "https://localhost/a.mp4",
    "https://foo.localhost/a.mp4",
    "https://10.0.0.8/a.mp4",
    "https://172.16.5.4/a.mp4",
    "https://192.168.1.1/a.mp4",
    "https://100.64.0.1/a.mp4",  # carrier-grade NAT
    "https://0.0.0.0/a.mp4",
    "https://169.254.169.254/computeMetadata/v1/",
    "https://metadata.google.internal/computeMetadata/v1/",
    "https://metadata/computeMetadata/v1/",
    "https://[::1]/a.mp4",
    "https://[fe80::1]/a.mp4",
    "https://[fd00::1]/a.mp4",
    "https://[::ffff:169.254.169.254]/a.mp4",
    "https://[64:ff9b::a9fe:a9fe]/a.mp4",  # NAT64 of 169.254.169.254
    "https://2130706433/a.mp4",  # 127.0.0.1, decimal
    "https://0x7f000001/a.mp4",  # 127.0.0.1, hex
    "https://0177.0.0.1/a.mp4",  # 127.0.0.1, octal
    "https://127.1/a.mp4",  # 127.0.0.1, short form
    "https://user:secret@example.com/a.mp4",
    "https://example.com/a b.mp4",
    "https://example.com/a\x00.mp4",
]

# (name, message.data: bytes to base64-encode, or a str sent as is, or None; reason fragment)
HOSTILE: list[tuple[str, bytes | str | None, str]] = [
    ("no-data", None, "missing"),
    ("empty-data", "", "missing"),
    ("invalid-base64", "%%%not base64%%%", "base64"),
    ("bad-padding", "abc", "base64"),
    ("base64-of-binary", b"\xff\xfe\x00\x01", "not JSON"),
    ("truncated-json", b'{"videoUri": "gs://a/b.mp4", "title": ', "not JSON"),
    ("nan", b"NaN", "JSON object"),
    ("json-array", b"[1, 2]", "JSON object"),
    ("json-null", b"null", "JSON object"),
    ("json-string", b'"gs://a/b.mp4"', "JSON object"),
    ("deep-nesting", b"[" * 100_000, "nests too deeply"),
    ("empty-object", b"{}", "required"),
    ("missing-title", request_with(title=None), "title"),
    ("missing-video", request_with(videoUri=None), "videoUri"),
    ("title-a-number", request_with(title=7), "title"),
    ("video-a-list", request_with(videoUri=["gs://a/b.mp4"]), "videoUri"),
    ("options-a-string", request_with(options="fast"), "options"),
    ("option-wrong-type", request_with(options={"maxFrames": "10"}), "maxFrames"),
    ("option-out-of-range", request_with(options={"maxFrames": 10**9}), "maxFrames"),
    ("language-a-number", request_with(language=7), "language"),
    ("language-injection", request_with(language="en;rm"), "language"),
    ("course-id-a-number", request_with(courseId=12), "courseId"),
    ("huge-title", request_with(title="t" * 700_000), "title"),
    ("huge-video-uri", request_with(videoUri="gs://b/" + "a" * 5000), "videoUri"),
    ("huge-course-id", request_with(courseId="c" * 300), "courseId"),
    ("course-id-dotdot", request_with(courseId="../../etc/passwd"), "courseId"),
    ("course-id-slash", request_with(courseId="a/b"), "courseId"),
    ("course-id-backslash", request_with(courseId="a\\b"), "courseId"),
    ("course-id-dot", request_with(courseId=".hidden"), "courseId"),
    ("course-id-nul", request_with(courseId="c\x00"), "courseId"),
    ("course-id-encoded", request_with(courseId="%2e%2e%2fetc"), "courseId"),
] + [(f"ssrf-{i}", request_with(videoUri=uri), "videoUri") for i, uri in enumerate(SSRF_URIS)]

CASES = [pytest.param(data, reason, id=name) for name, data, reason in HOSTILE]


def assert_parked(world: World, before: Any, reason: str, data: bytes | str | None) -> None:
    assert world.fingerprint() == before  # no history, head or dispatch written anywhere
    ((parked, why, attributes),) = world.dead
    assert reason in why or reason.lower() in why.lower(), why
    assert attributes["source"] == "course-requests"
    if isinstance(data, bytes):
        assert parked == data  # the original bytes, for whoever reads the dead letters


@pytest.mark.parametrize(("data", "reason"), CASES)
def test_pubsub_push_acks_and_dead_letters_every_hostile_request(
    world: World, data: bytes | str | None, reason: str
) -> None:
    client = create_bridge_app(lambda: world).test_client()
    before = world.fingerprint()

    r = client.post("/pubsub/course-requests", json=push_envelope(data, "bad-1"))

    assert r.status_code == 200, r.json  # anything else and Pub/Sub delivers it again
    assert r.json["status"] == "rejected" and r.json["reason"]
    assert_parked(world, before, reason, data)


@pytest.mark.parametrize(("data", "reason"), CASES)
def test_cloudevent_ingestion_dead_letters_every_hostile_request(
    world: World, main_on_world: Callable[[], Any], data: bytes | str | None, reason: str
) -> None:
    main = main_on_world()
    before = world.fingerprint()
    attributes = {
        "type": "google.cloud.pubsub.topic.v1.messagePublished",
        "source": "//pubsub.googleapis.com/projects/p/topics/course-requests",
    }

    main.ingest_course_request(CloudEvent(attributes, push_envelope(data, "bad-1")))  # no raise

    assert_parked(world, before, reason, data)


def test_a_newer_publishers_fields_are_ignored_and_nothing_of_them_is_recorded(
    world: World,
) -> None:
    """Forward compatibility: unknown members of the request, its options, the message's
    attributes and the envelope neither refuse the message nor reach the history."""
    client = create_bridge_app(lambda: world).test_client()
    data = request_with(
        courseId="newer-publisher",
        callback="https://evil.example/",
        options={"shell": "rm -rf /", "maxFrames": 12, "future": {"nested": True}},
    )
    envelope = push_envelope(data, "newer-1")
    envelope["message"]["attributes"] = {"schemaRevision": "7", "traceparent": "00-ab-cd-01"}
    envelope["message"]["orderingKey"] = "k"
    envelope["deliveryAttempt"] = 1
    envelope["someFutureEnvelopeField"] = {"x": 1}

    r = client.post("/pubsub/course-requests", json=envelope)

    assert r.status_code == 200 and r.json["status"] == "accepted", r.json
    assert world.dead == []
    (first, *_) = world.store.load("newer-publisher")
    stored = first.data
    assert stored["options"] == {"maxFrames": 12}
    assert "callback" not in stored and "shell" not in json.dumps(stored)
    assert "schemaRevision" not in json.dumps([e.data for e in world.store.load("newer-publisher")])


def test_known_fields_of_the_wrong_type_are_still_refused(world: World) -> None:
    client = create_bridge_app(lambda: world).test_client()
    before = world.fingerprint()
    data = request_with(options={"maxFrames": "12", "future": 1})
    r = client.post("/pubsub/course-requests", json=push_envelope(data, "newer-2"))
    assert r.status_code == 200 and r.json["status"] == "rejected"
    assert_parked(world, before, "maxFrames", data)


@pytest.mark.parametrize(
    "payload",
    [None, "just a string", ["a", "list"], {"message": "not an object"}, {"message": None}, {}],
    ids=["none", "string", "list", "message-string", "message-null", "empty"],
)
def test_cloudevent_payloads_that_are_not_pubsub_messages_are_parked(
    world: World, main_on_world: Callable[[], Any], payload: Any
) -> None:
    main = main_on_world()
    before = world.fingerprint()
    event = CloudEvent({"type": "t", "source": "//s"}, payload)
    main.ingest_course_request(event)
    assert world.fingerprint() == before and len(world.dead) == 1


def test_data_that_is_not_a_string_is_parked(world: World) -> None:
    client = create_bridge_app(lambda: world).test_client()
    before = world.fingerprint()
    for data in (12345, ["x"], {"a": 1}, True):
        envelope = push_envelope(None)
        envelope["message"]["data"] = data
        r = client.post("/pubsub/course-requests", json=envelope)
        assert r.status_code == 200 and r.json["status"] == "rejected"
    assert world.fingerprint() == before and len(world.dead) == 4


@pytest.mark.parametrize(
    "body",
    [b"", b"not json", b"[]", b'{"message": 1}', b'{"msg": {}}', b"\xff" * 100, b"[" * 100_000],
    ids=["empty", "text", "array", "message-number", "no-message", "binary", "deep-nesting"],
)
def test_bodies_that_are_not_push_envelopes_are_4xx_problems(world: World, body: bytes) -> None:
    client = create_bridge_app(lambda: world).test_client()
    before = world.fingerprint()
    r = client.post("/pubsub/course-requests", data=body, content_type="application/json")
    assert 400 <= r.status_code < 500, r.data[:200]
    assert r.content_type == "application/problem+json" and r.json["detail"]
    assert world.fingerprint() == before


def test_a_huge_body_is_413_before_it_is_read(world: World) -> None:
    client = create_bridge_app(lambda: world).test_client()
    before = world.fingerprint()
    big = json.dumps(push_envelope(b"x" * MAX_BODY_BYTES)).encode()
    for path in ("/pubsub/course-requests", "/pubsub/course-events", "/reconcile"):
        r = client.post(path, data=big, content_type="application/json")
        assert r.status_code == 413 and r.json["status"] == 413
    # Chunked, with no Content-Length to check up front: cut off once past the cap.
    r = client.post(
        "/pubsub/course-requests",
        input_stream=io.BytesIO(big),
        headers={"Transfer-Encoding": "chunked", "Content-Type": "application/json"},
        environ_base={"wsgi.input_terminated": True},  # what gunicorn sets for chunked bodies
    )
    assert r.status_code == 413
    assert world.fingerprint() == before and world.dead == []


@pytest.mark.parametrize(
    "message_id", ["../x", "a/b", "x\ny", "<script>", "m" * 200, "\u202e", "a b"]
)
def test_hostile_message_ids_are_parked(world: World, message_id: str) -> None:
    client = create_bridge_app(lambda: world).test_client()
    before = world.fingerprint()
    r = client.post("/pubsub/course-requests", json=push_envelope(request_with(), message_id))
    assert r.status_code == 200 and r.json["status"] == "rejected"
    assert world.fingerprint() == before


def test_a_good_request_still_gets_through(world: World) -> None:
    """The control: the same app accepts an ordinary request, so rejections are not blanket."""
    client = create_bridge_app(lambda: world).test_client()
    r = client.post("/pubsub/course-requests", json=push_envelope(request_with(), "ok-1"))
    assert r.status_code == 200 and r.json["status"] == "accepted"
    assert len(world.versions()) == 3 and world.dead == []


def test_cloudevent_function_over_http_never_answers_5xx_for_garbage(
    world: World, main_on_world: Callable[[], Any]
) -> None:
    import functions_framework

    app = functions_framework.create_app(
        target="ingest_course_request", source=MAIN, signature_type="cloudevent"
    )
    main_on_world()
    client = app.test_client()
    before = world.fingerprint()
    binary = {
        "ce-id": "1",
        "ce-specversion": "1.0",
        "ce-source": "//pubsub.googleapis.com/projects/p/topics/course-requests",
        "ce-type": "google.cloud.pubsub.topic.v1.messagePublished",
    }
    hostile = json.dumps(push_envelope(request_with(courseId="../x"))).encode()
    answers = [
        client.post("/", data=b"garbage", content_type="application/json").status_code,
        client.post("/", data=b"{}", headers=binary, content_type="application/json").status_code,
        client.post("/", data=hostile, headers=binary, content_type="application/json").status_code,
    ]
    assert all(a < 500 for a in answers), answers
    assert answers[-1] == 200 and len(world.dead) >= 1
    assert world.fingerprint() == before
