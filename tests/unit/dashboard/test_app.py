"""The ``coursegen serve`` app in-process: JSON API, outputs, errors, limits, the local stack."""

from __future__ import annotations

import base64
import json
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bridge.runtime.embedded import embedded
from bridge.settings import Settings
from bridge.tooling.synthetic import noop_steps
from bridge.web.dashboard import data as dashboard_data
from bridge.web.dashboard.stack import Stack, local_stack
from handlers.registry import StepContext, StepResult
from statemachine.pipeline import default_pipeline

TOKEN = "unit-operator-token"
SETTINGS = {"COURSEGEN_STORE": "sqlite", "COURSEGEN_OPERATOR_TOKEN": TOKEN}
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def _run(data: Path, title: str, *, fail: str | None = None) -> str:
    """A course through the embedded runtime until it stops (``fail``: that step fails)."""
    steps = dict(noop_steps(default_pipeline()))
    if fail:

        def broken(ctx: StepContext) -> StepResult:
            raise type("Broken", (Exception,), {"retryable": False})("it broke")

        steps[fail] = broken
    rt = embedded(data, steps=steps, settings=Settings.from_env(SETTINGS))
    try:
        course_id = rt.bridge.ingest(
            {"videoUri": "https://example.com/v.mp4", "title": title},
            message_id=f"t-{uuid.uuid4()}",
        )
        rt.dispatcher.start(2)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if rt.store.head(course_id).status in ("completed", "failed"):
                break
            time.sleep(0.02)
        rt.dispatcher.wait_idle(5)
    finally:
        rt.close()
    return course_id


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Any, Stack, dict[str, str]]]:
    data = tmp_path_factory.mktemp("dash")
    ids = {"done": _run(data, "Rivers"), "broken": _run(data, "Glaciers", fail="transcribe")}
    artifacts = data / "artifacts" / ids["done"]
    (artifacts / "media" / "frames").mkdir(parents=True)
    (artifacts / "course.html").write_text("<!doctype html><p>Rivers</p>")
    (artifacts / "media" / "frames" / "f0001.jpg").write_bytes(b"\xff\xd8\xff\xd9")
    (data / "secret.txt").write_text("not an output")
    stack = local_stack(data, settings=Settings.from_env(SETTINGS), workers=0)
    try:
        yield stack.app.test_client(), stack, ids
    finally:
        stack.close()


def test_course_list_with_filters(world) -> None:
    client, _, ids = world
    rows = client.get("/api/courses").json["courses"]
    assert {r["course_id"] for r in rows} == set(ids.values())
    row = next(r for r in rows if r["course_id"] == ids["done"])
    assert row["status"] == "completed" and row["percent"] == 100 and row["progress"] == "15/15"
    assert row["variant"] == "cloudtasks" and row["age_s"] >= 0
    failed = client.get("/api/courses?status=failed").json["courses"]
    assert [r["course_id"] for r in failed] == [ids["broken"]]
    assert client.get("/api/courses?q=RIVER").json["count"] == 1
    assert client.get("/api/courses?variant=legacy").json["count"] == 0
    assert client.get("/api/courses?limit=1").json["count"] == 1


@pytest.mark.parametrize(
    "query",
    ["status=bogus", "limit=0", "limit=abc", "limit=501", "variant=a%2Fb", "q=" + "x" * 201],
)
def test_bad_filters_are_400_problems(world, query: str) -> None:
    client, _, _ = world
    response = client.get(f"/api/courses?{query}")
    assert response.status_code == 400
    assert response.mimetype == "application/problem+json"
    assert response.json["status"] == 400


def test_course_detail_highlights_and_links(world) -> None:
    client, _, ids = world
    body = client.get(f"/api/courses/{ids['done']}").json
    assert body["highlight"]["course"] == {"completed": "completed"}
    assert set(body["highlight"]["pipeline"].values()) == {"succeeded"}
    assert body["badges"]["task"] == {"succeeded": "15"}
    assert body["links"]["files"] == {"course.html": f"/courses/{ids['done']}/outputs/course.html"}
    assert body["links"]["frames"] == [f"/courses/{ids['done']}/outputs/media/frames/f0001.jpg"]
    broken = client.get(f"/api/courses/{ids['broken']}").json
    assert broken["status"] == "failed"
    assert broken["steps"]["transcribe"] == "failed"
    assert broken["steps"]["finalize"] == "waiting"


def test_event_log_is_verified_and_pages_by_version(world) -> None:
    client, stack, ids = world
    log = client.get(f"/api/courses/{ids['done']}/events").json
    head = stack.runtime.store.head(ids["done"])
    assert log["verification"]["ok"] is True
    assert log["verification"]["events"] == head.version == len(log["events"])
    later = client.get(f"/api/courses/{ids['done']}/events?after=30").json["events"]
    assert [e["version"] for e in later] == list(range(31, head.version + 1))


def test_gantt_has_a_bar_per_attempt(world) -> None:
    client, _, ids = world
    g = client.get(f"/api/courses/{ids['done']}/gantt").json
    assert len(g["bars"]) == 15 and {b["outcome"] for b in g["bars"]} == {"succeeded"}
    assert g["rows"][0] == "prepare_video" and g["rows"][-1] == "finalize"
    for bar in g["bars"]:
        assert bar["queued_s"] <= bar["start_s"] <= bar["end_s"] <= g["span_s"]
    broken = client.get(f"/api/courses/{ids['broken']}/gantt").json
    assert {b["outcome"] for b in broken["bars"] if b["task"] == "transcribe"} == {"failed"}


def test_attempt_bars_follow_retries_and_redeliveries() -> None:
    class E:
        def __init__(self, t: float, type_: str, **data: Any) -> None:
            self.occurred_at = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(1000 + t)) + "Z"
            self.type, self.data = type_, data

    events = [
        E(0, "TaskScheduled", task="a"),
        E(1, "TaskStarted", task="a", attempt=1),
        E(2, "TaskFailed", task="a", attempt=1, retryable=True),
        E(4, "TaskStarted", task="a", attempt=2),
        E(5, "TaskStarted", task="a", attempt=3),  # the answer to attempt 2 was lost
        E(7, "TaskSucceeded", task="a", attempt=3),
    ]
    bars = dashboard_data.attempt_bars(events, 1000.0)
    assert [(b["attempt"], b["outcome"]) for b in bars] == [
        (1, "retrying"),
        (2, "lost"),
        (3, "succeeded"),
    ]
    assert bars[0]["queued_s"] == 0 and bars[1]["queued_s"] == 2 and bars[2]["queued_s"] is None


def test_pages_render(world) -> None:
    client, _, ids = world
    page = client.get("/")
    assert page.status_code == 200 and b'id="courses"' in page.data
    assert "script-src 'self'" in page.headers["Content-Security-Policy"]
    course = client.get(f"/courses/{ids['done']}")
    assert course.status_code == 200
    assert course.data.count(b"<svg") == 3
    assert b'class="node terminal st-completed hl" data-node="completed"' in course.data
    svg = client.get(f"/diagrams/pipeline.svg?course={ids['broken']}")
    assert svg.mimetype == "image/svg+xml" and b"st-failed" in svg.data
    assert client.get("/diagrams/nope.svg").status_code == 404
    assert client.get("/diagrams/task.svg?course=ghost").status_code == 404


def test_outputs_are_served_sandboxed(world) -> None:
    client, _, ids = world
    html = client.get(f"/courses/{ids['done']}/outputs/course.html")
    assert html.status_code == 200 and html.data.startswith(b"<!doctype html>")
    assert html.headers["Content-Security-Policy"].startswith("sandbox")
    frame = client.get(f"/courses/{ids['done']}/outputs/media/frames/f0001.jpg")
    assert frame.status_code == 200 and frame.mimetype == "image/jpeg"


@pytest.mark.parametrize(
    "path",
    [
        "/courses/{done}/outputs/course.json",  # known name, but not written
        "/courses/{done}/outputs/..%2F..%2Fsecret.txt",
        "/courses/{done}/outputs/media/frames/..%2F..%2F..%2Fsecret.txt",
        "/courses/{done}/outputs/media/frames/.hidden.jpg",
        "/courses/..%2F/outputs/course.html",
        "/courses/{done}/outputs/events.db",
        "/courses/%00/outputs/course.html",
    ],
)
def test_outputs_refuse_anything_else(world, path: str) -> None:
    client, _, ids = world
    response = client.get(path.format(done=ids["done"]))
    assert response.status_code == 404
    assert b"not an output" not in response.data


@pytest.mark.parametrize("course_id", ["ghost", "a" * 129, "..", "x%2Fy", "%E2%98%83"])
def test_unknown_courses_are_404_problems(world, course_id: str) -> None:
    client, _, _ = world
    for suffix in ("", "/events", "/gantt"):
        response = client.get(f"/api/courses/{course_id}{suffix}")
        assert response.status_code == 404, suffix
        assert response.mimetype == "application/problem+json"


@pytest.mark.parametrize(
    "path",
    [
        "/tasks",
        "/pubsub/course-requests",
        "/pubsub/course-events",
        "/reconcile",
        "/operator/courses/abc/cancel",
    ],
)
def test_every_post_caps_the_body_before_reading_it(world, path: str) -> None:
    client, _, _ = world
    response = client.post(path, data=b"x" * (1024 * 1024 + 1), headers=AUTH)
    assert response.status_code == 413
    assert response.json["title"] == "Payload too large"


def test_push_routes_need_the_operator_token(world) -> None:
    client, _, _ = world
    envelope = {"message": {"data": base64.b64encode(b"{}").decode(), "messageId": "m1"}}
    assert client.post("/pubsub/course-events", json=envelope).status_code == 401
    wrong = {"Authorization": "Bearer nope"}
    assert client.post("/pubsub/course-events", json=envelope, headers=wrong).status_code == 401
    answer = client.post("/pubsub/course-events", json=envelope, headers=AUTH)
    assert answer.status_code == 200 and answer.json["status"] == "rejected"


def test_operator_routes_are_mounted(world) -> None:
    client, _, ids = world
    body = {"reason": "unit test"}
    assert client.post(f"/operator/courses/{ids['done']}/cancel", json=body).status_code == 401
    refused = client.post(f"/operator/courses/{ids['done']}/cancel", json=body, headers=AUTH)
    assert refused.status_code == 409  # a completed course cannot be cancelled


def test_tasks_route_is_the_task_endpoint(world) -> None:
    client, _, _ = world
    response = client.post("/tasks", data=b"{}")
    assert response.status_code == 401
    assert response.mimetype == "application/problem+json"


def test_unknown_routes_and_methods_are_problems(world) -> None:
    client, _, _ = world
    assert client.get("/nope").json["status"] == 404
    response = client.delete("/api/courses")
    assert response.status_code == 405 and "GET" in response.headers["Allow"]
    assert json.loads(response.data)["title"] == "Method not allowed"
