"""Inputs the fuzzing and hostile-input runs turned up, each answered as it must be."""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

import pytest

import schemas
from bridge.web.bridge_app import create_bridge_app
from handlers.media.ssrf import hostile_uri
from handlers.registry import StepResult
from statemachine.envelope import NewEvent
from statemachine.events import CourseRedriven, CourseRequested, TaskSucceeded
from statemachine.store.appending import prepare_append
from tests.reliability.conftest import World, push_envelope


def deliver(world: World, result: StepResult) -> Any:
    steps = {**world.endpoint.steps, "prepare_video": lambda ctx: result}
    endpoint = replace(world.endpoint, steps=steps)  # built once: a new one, not a patch
    body = json.dumps(world.payload("course0")).encode()
    return endpoint.handle(world.headers(body), body, "local://prepare_video")


@pytest.mark.parametrize(
    "result",
    [
        StepResult(summary={"fps": float("inf")}),  # canonical JSON has no Infinity
        StepResult(summary={"ratio": float("nan")}),
        StepResult(outputs={"video": 5}),  # type: ignore[dict-item]  # not a reference
        StepResult(summary={"log": "x" * 1_000_000}),  # over the 900 KiB event limit
    ],
    ids=["infinity", "nan", "output-not-a-string", "too-large"],
)
def test_a_result_the_history_cannot_hold_fails_the_task_permanently(
    world: World, result: StepResult
) -> None:
    """A result whose event cannot be appended is a permanent TaskFailed, answered 200: a 500
    would have the queue retry it until it gave up, leaving the task running and the course
    stalled."""
    answer = deliver(world, result)
    assert answer.status == 200 and answer.body["status"] == "failed"
    events = list(world.store.load("course0"))
    assert [e.type for e in events[-2:]] == ["TaskStarted", "TaskFailed"]
    failed = events[-1].data
    assert failed["retryable"] is False and failed["error_type"] == "UnrecordableResult"
    world.bridge.advance("course0")  # what the notification does: the course fails, clearly
    head = world.store.head("course0")
    assert head is not None and head.status == "failed"


@pytest.mark.parametrize(
    "event",
    [
        TaskSucceeded(
            task="t",
            idempotency_key="k",
            attempt=1,
            outputs={},
            summary={"x": 1e400},
            duration_ms=1,
        ),
        CourseRedriven(tasks=None, reason="r"),  # type: ignore[arg-type]
    ],
    ids=["infinity", "tasks-not-a-sequence"],
)
def test_data_that_cannot_be_canonical_json_is_a_schema_error(event: Any) -> None:
    first = NewEvent(
        event=CourseRequested(video_uri="gs://b/a", title="T"), occurred_at="x", actor="t"
    )
    snapshot = prepare_append("c1", None, 0, [first]).snapshot
    new = NewEvent(event=event, occurred_at="2026-11-28T10:00:00Z", actor="t")
    with pytest.raises(schemas.SchemaError):
        prepare_append("c1", snapshot, 1, [new])


def test_deeply_nested_json_is_refused_not_retried(world: World) -> None:
    """Refused (400) or parked (200, rejected), never a 5xx: Pub/Sub would deliver the poison
    message again and again."""
    client = create_bridge_app(lambda: world).test_client()
    r = client.post("/pubsub/course-requests", data=b"[" * 100_000)
    assert r.status_code == 400
    r = client.post("/pubsub/course-requests", json=push_envelope(b"[" * 100_000))
    assert r.status_code == 200 and r.json["status"] == "rejected"


@pytest.mark.parametrize(
    "host",
    ["2130706433", "0x7f000001", "0177.0.0.1", "127.1", "[64:ff9b::a9fe:a9fe]", "a.localhost"],
)
def test_numeric_and_wrapped_loopback_hosts_are_hostile_at_ingestion(host: str) -> None:
    reason = hostile_uri(f"https://{host}/lecture.mp4")
    # refused for where it points, not for some other flaw of the URI
    assert reason in (f"non-public address {host.strip('[]')}", f"internal host {host!r}")
