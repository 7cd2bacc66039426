"""Hostile calls to the task endpoint over HTTP (main.run_task) and to the operator routes."""

from __future__ import annotations

import io
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from bridge.web.bridge_app import create_bridge_app
from handlers.auth import sign
from handlers.endpoint import MAX_BODY_BYTES
from tests.reliability.conftest import SECRET, World

MAIN = str(Path(__file__).resolve().parents[2] / "main.py")


@pytest.fixture
def task_client(main_on_world: Callable[[], Any]) -> Iterator[Any]:
    """main.run_task served by functions-framework, on the world's runtime."""
    import functions_framework

    app = functions_framework.create_app(target="run_task", source=MAIN)
    main_on_world()
    yield app.test_client()


Request = tuple[dict[str, str], bytes]
Build = Callable[[World], Request]


def signed(body: bytes) -> Request:
    token = sign(SECRET, body, 4_102_444_800)  # 2100: valid, so only the payload is judged
    return {"Content-Type": "application/json", "Authorization": f"Bearer {token}"}, body


def payload_of(world: World, course: str = "course0") -> dict[str, Any]:
    return world.payload(course)


def changed(**fields: Any) -> Build:
    return lambda w: signed(json.dumps({**payload_of(w), **fields}).encode())


def changed_data(**fields: Any) -> Build:
    def build(w: World) -> Request:
        p = payload_of(w)
        return signed(json.dumps({**p, "data": {**p["data"], **fields}}).encode())

    return build


def auth(value: str | None) -> Build:
    def build(w: World) -> Request:
        headers, body = signed(json.dumps(payload_of(w)).encode())
        if value is None:
            del headers["Authorization"]
        else:
            headers["Authorization"] = value
        return headers, body

    return build


def token_for(make: Callable[[bytes], str]) -> Build:
    def build(w: World) -> Request:
        body = json.dumps(payload_of(w)).encode()
        return {"Content-Type": "application/json", "Authorization": f"Bearer {make(body)}"}, body

    return build


def lifted_token(w: World) -> Request:
    """course1's genuine token, carrying course0's task."""
    genuine = json.dumps(payload_of(w, "course1")).encode()
    headers, _ = signed(genuine)
    return headers, json.dumps(payload_of(w)).encode()


def other_course_key(w: World) -> Request:
    return changed(idempotencyKey=payload_of(w, "course1")["idempotencyKey"])(w)


def other_course_id(w: World) -> Request:
    return changed(courseId="course1")(w)


CASES: list[tuple[str, Build, int]] = [
    ("no-authorization", auth(None), 401),
    ("basic-auth", auth("Basic YTpi"), 401),
    ("garbage-token", auth("Bearer ../../etc/passwd"), 401),
    ("forged", token_for(lambda b: sign(b"guess", b, 4_102_444_800)), 401),
    ("expired", token_for(lambda b: sign(SECRET, b, 1_000_000_000)), 401),
    ("lifted-from-another-task", lifted_token, 401),
    ("not-json", lambda w: signed(b"taskType=prepare_video"), 400),
    ("binary", lambda w: signed(b"\x00\xff" * 50), 400),
    ("deep-nesting", lambda w: signed(b"[" * 100_000), 400),
    ("json-array", lambda w: signed(b"[]"), 422),
    ("json-null", lambda w: signed(b"null"), 422),
    ("missing-field", lambda w: signed(json.dumps({"courseId": "course0"}).encode()), 422),
    ("unknown-field", changed(callback="https://evil.example/"), 422),
    ("attempt-a-string", changed(attempt="1"), 422),
    ("attempt-negative", changed(attempt=-1), 422),
    ("data-a-list", changed(data=[]), 422),
    ("generation-a-float", changed_data(generation=1.5), 422),
    ("huge-course-id", changed(courseId="c" * 200_000), 422),
    ("course-id-dotdot", changed(courseId="../course1"), 422),
    ("course-id-slash", changed(courseId="course0/../course1"), 422),
    ("course-id-nul", changed(courseId="course0\x00"), 422),
    ("task-type-path", changed(taskType="../../bin/sh"), 422),
    ("task-path", changed_data(task="prepare_video/../finalize"), 422),
    ("other-course-key", other_course_key, 422),
    ("other-course-id", other_course_id, 422),
    ("unknown-step", changed_data(task="teleport"), 422),
]


@pytest.mark.parametrize(("build", "status"), [pytest.param(b, s, id=n) for n, b, s in CASES])
def test_run_task_refuses_hostile_requests_and_writes_nothing(
    world: World, task_client: Any, build: Build, status: int
) -> None:
    headers, body = build(world)
    before = world.fingerprint()

    r = task_client.post("/", data=body, headers=headers)

    assert r.status_code == status, r.json
    assert r.content_type == "application/problem+json"
    assert r.json["status"] == status and r.json["title"] and r.json["detail"]
    assert world.fingerprint() == before and world.notified == []


def test_run_task_answers_413_before_reading_a_huge_body(world: World, task_client: Any) -> None:
    before = world.fingerprint()
    headers, body = signed(b"{" + b" " * (MAX_BODY_BYTES + 10) + b"}")
    r = task_client.post("/", data=body, headers=headers)
    assert r.status_code == 413
    chunked = {**headers, "Transfer-Encoding": "chunked"}
    r = task_client.post(
        "/",
        input_stream=io.BytesIO(body * 3),
        headers=chunked,
        environ_base={"wsgi.input_terminated": True},  # what gunicorn sets for chunked bodies
    )
    assert r.status_code == 413
    assert world.fingerprint() == before


def test_a_replayed_delivery_is_acknowledged_and_changes_nothing(
    world: World, task_client: Any
) -> None:
    headers, body = signed(json.dumps(payload_of(world)).encode())
    first = task_client.post("/", data=body, headers=headers)
    assert first.status_code == 200 and first.json["status"] == "succeeded"
    before = world.fingerprint()
    for _ in range(3):  # the very same request, token and all, again
        again = task_client.post("/", data=body, headers=headers)
        assert again.status_code == 200 and again.json["status"] == "duplicate"
    assert world.fingerprint() == before


# -- operator routes ----------------------------------------------------------------------
OPERATOR_TOKEN = "operator-secret-token"


@pytest.fixture
def operator_client(world: World) -> Any:
    from dataclasses import replace

    values = {**world.settings.values, "COURSEGEN_OPERATOR_TOKEN": OPERATOR_TOKEN}
    try:
        world.settings = replace(world.settings, values=values)
        world.settings.get("COURSEGEN_OPERATOR_TOKEN")
    except KeyError:
        pytest.skip("no operator routes yet")
    app = create_bridge_app(lambda: world)
    if not any(r.rule.startswith("/operator") for r in app.url_map.iter_rules()):
        pytest.skip("no operator routes yet")
    return app.test_client()


GOOD = {"Authorization": f"Bearer {OPERATOR_TOKEN}", "Content-Type": "application/json"}
OPERATOR_CASES: list[tuple[str, str, dict[str, str], bytes]] = [
    ("no-auth", "/operator/courses/course0/cancel", {}, b'{"reason": "x"}'),
    ("wrong-token", "/operator/courses/course0/cancel", {"Authorization": "Bearer no"}, b"{}"),
    ("not-json", "/operator/courses/course0/cancel", GOOD, b"reason=x"),
    ("deep-nesting", "/operator/courses/course0/pause", GOOD, b"[" * 100_000),
    ("array", "/operator/courses/course0/cancel", GOOD, b'["reason"]'),
    ("reason-a-number", "/operator/courses/course0/cancel", GOOD, b'{"reason": 7}'),
    ("no-reason", "/operator/courses/course0/cancel", GOOD, b"{}"),
    ("unknown-op", "/operator/courses/course0/delete", GOOD, b'{"reason": "x"}'),
    ("id-dotdot", "/operator/courses/..%2Fcourse1/cancel", GOOD, b'{"reason": "x"}'),
    ("id-encoded-slash", "/operator/courses/a%2Fb/cancel", GOOD, b'{"reason": "x"}'),
    ("id-too-long", "/operator/courses/" + "c" * 300 + "/cancel", GOOD, b'{"reason": "x"}'),
    ("unknown-course", "/operator/courses/nosuch/cancel", GOOD, b'{"reason": "x"}'),
    ("bad-step", "/operator/courses/course0/redrive", GOOD, b'{"reason": "x", "step": "../x"}'),
    ("huge-body", "/operator/courses/course0/cancel", GOOD, b'{"reason": "' + b"r" * 2**20 + b'"}'),
]


@pytest.mark.parametrize(
    ("path", "headers", "body"), [pytest.param(p, h, b, id=n) for n, p, h, b in OPERATOR_CASES]
)
def test_operator_routes_refuse_hostile_requests_and_write_nothing(
    world: World, operator_client: Any, path: str, headers: dict[str, str], body: bytes
) -> None:
    before = world.fingerprint()
    r = operator_client.post(path, data=body, headers=headers)
    assert 400 <= r.status_code < 500, (r.status_code, r.data[:300])
    assert r.content_type == "application/problem+json" and r.json["detail"]
    assert world.fingerprint() == before
