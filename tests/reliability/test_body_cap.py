"""One body guard in every app: over the cap is 413, declared or chunked, and nothing is read
past it; a structured or binary CloudEvent reaches ``serve``'s and the bridge's push routes."""

from __future__ import annotations

import base64
import io
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bridge.settings import Settings
from bridge.web.bridge_app import create_bridge_app
from bridge.web.dashboard.stack import local_stack
from handlers.body import MAX_BODY_BYTES, BodyTooLarge, read_body
from tests.reliability.conftest import REQUEST, World, as_json, push_envelope

MAIN = str(Path(__file__).resolve().parents[2] / "main.py")
CHUNKED = {"Transfer-Encoding": "chunked", "Content-Type": "application/json"}
TERMINATED = {"wsgi.input_terminated": True}  # what gunicorn sets for a chunked body


class Body:
    def __init__(self, data: bytes, declared: int | None) -> None:
        self.stream = io.BytesIO(data)
        self.content_length = declared


@pytest.mark.parametrize(
    ("size", "declared", "ok"),
    [(10, 10, True), (10, None, True), (64, None, True), (65, None, False), (10, 65, False)],
)
def test_read_body_refuses_a_body_over_the_cap_declared_or_not(
    size: int, declared: int | None, ok: bool
) -> None:
    request = Body(b"x" * size, declared)
    if ok:
        assert read_body(request, 64) == b"x" * size
    else:
        with pytest.raises(BodyTooLarge):
            read_body(request, 64)
        assert request.stream.tell() <= 65  # never read more than one byte past the cap


@pytest.fixture
def serve_client(tmp_path: Path) -> Iterator[Any]:
    token = "tok"
    settings = Settings.from_env({"COURSEGEN_STORE": "sqlite", "COURSEGEN_OPERATOR_TOKEN": token})
    stack = local_stack(tmp_path, settings=settings, workers=0)
    try:
        yield stack.app.test_client(), {"Authorization": f"Bearer {token}"}, stack
    finally:
        stack.close()


def _huge() -> bytes:
    return b'{"pad": "' + b"a" * (MAX_BODY_BYTES + 10) + b'"}'


def test_serve_refuses_a_chunked_task_body_over_the_cap(serve_client: Any) -> None:
    client, auth, stack = serve_client
    r = client.post(
        "/tasks",
        input_stream=io.BytesIO(_huge()),
        headers={**CHUNKED, **auth},
        environ_base=TERMINATED,
    )
    assert r.status_code == 413, r.data
    assert stack.runtime.store.courses() == []


def test_serve_refuses_a_chunked_push_body_over_the_cap(serve_client: Any) -> None:
    client, auth, _ = serve_client
    r = client.post(
        "/pubsub/course-requests",
        input_stream=io.BytesIO(_huge()),
        headers={**CHUNKED, **auth},
        environ_base=TERMINATED,
    )
    assert r.status_code == 413


def test_the_bridge_app_refuses_a_chunked_body_over_the_cap(world: World) -> None:
    client = create_bridge_app(lambda: world).test_client()
    before = world.fingerprint()
    r = client.post(
        "/pubsub/course-requests",
        input_stream=io.BytesIO(_huge()),
        headers=CHUNKED,
        environ_base=TERMINATED,
    )
    assert r.status_code == 413
    assert world.fingerprint() == before


def test_the_task_function_refuses_a_chunked_body_over_the_cap(
    world: World, request: pytest.FixtureRequest
) -> None:
    import functions_framework

    app = functions_framework.create_app(target="run_task", source=MAIN)
    entry = sys.modules["main"]
    entry.use_runtime(world)
    request.addfinalizer(entry.reset)
    before = world.fingerprint()
    r = app.test_client().post(
        "/", input_stream=io.BytesIO(_huge()), headers=CHUNKED, environ_base=TERMINATED
    )
    assert r.status_code == 413
    assert world.fingerprint() == before


def _cloudevent(data: bytes, message_id: str) -> dict[str, Any]:
    return {
        "specversion": "1.0",
        "id": message_id,
        "type": "google.cloud.pubsub.topic.v1.messagePublished",
        "source": "//pubsub.googleapis.com/projects/p/topics/course-requests",
        "datacontenttype": "application/json",
        "data": push_envelope(data, message_id),
    }


def test_serve_ingests_a_structured_cloudevent(serve_client: Any) -> None:
    client, auth, stack = serve_client
    body = json.dumps(_cloudevent(as_json({**REQUEST, "courseId": "ce-structured"}), "ce-1"))
    r = client.post(
        "/pubsub/course-requests",
        data=body,
        headers={**auth, "Content-Type": "application/cloudevents+json"},
    )
    assert r.status_code == 200 and r.json["status"] == "accepted", r.json
    assert stack.runtime.store.head("ce-structured") is not None


def test_serve_ingests_a_binary_cloudevent(serve_client: Any) -> None:
    client, auth, stack = serve_client
    event = _cloudevent(as_json({**REQUEST, "courseId": "ce-binary"}), "ce-2")
    headers = {
        **auth,
        "Content-Type": "application/json",
        "ce-specversion": "1.0",
        "ce-id": "ce-2",
        "ce-type": event["type"],
        "ce-source": event["source"],
    }
    r = client.post("/pubsub/course-requests", data=json.dumps(event["data"]), headers=headers)
    assert r.status_code == 200 and r.json["status"] == "accepted", r.json
    assert stack.runtime.store.head("ce-binary") is not None


def test_a_structured_cloudevent_without_specversion_is_a_bad_request(serve_client: Any) -> None:
    client, auth, _ = serve_client
    payload = base64.b64encode(as_json(REQUEST)).decode()
    body = json.dumps({"data": {"message": {"data": payload}}})
    r = client.post(
        "/pubsub/course-requests",
        data=body,
        headers={**auth, "Content-Type": "application/cloudevents+json"},
    )
    assert r.status_code == 400 and "CloudEvent" in r.json["title"]
