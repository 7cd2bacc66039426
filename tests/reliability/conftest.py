"""Reliability fixtures: a small world of courses on SQLite behind every entry point."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from bridge.core import Bridge
from bridge.dispatch import AlreadyExists, TaskRequest
from bridge.runtime.clock import SystemClock
from bridge.settings import Settings
from bridge.tooling.synthetic import noop_steps
from bridge.wire import task_payload
from handlers.auth import HmacVerifier, allow_all, sign
from handlers.endpoint import TaskEndpoint
from statemachine.pipeline import default_pipeline
from statemachine.state import CourseState
from statemachine.store.sqlite import SqliteStore

SECRET = b"reliability-secret"
REQUEST = {"videoUri": "gs://lectures/rivers.mp4", "title": "Rivers"}


class RecordingDispatcher:
    """Keeps the tasks the bridge dispatches (nothing runs them unless a test posts them)."""

    def __init__(self) -> None:
        self.requests: list[TaskRequest] = []

    def dispatch(self, request: TaskRequest) -> None:
        if any(r.name == request.name for r in self.requests):
            raise AlreadyExists(request.name)
        self.requests.append(request)


@dataclass
class World:
    """What bridge.runtime.cloud's runtime offers the entry points, on a real SQLite store."""

    store: SqliteStore
    bridge: Bridge
    endpoint: TaskEndpoint
    settings: Settings
    verify: Any = allow_all
    quiet_s: float = 300.0
    dead: list[tuple[bytes, str, dict[str, str]]] = field(default_factory=list)
    notified: list[tuple[str, int]] = field(default_factory=list)

    def dead_letter(self, data: bytes, reason: str, attributes: Any = None) -> None:
        self.dead.append((data, reason, dict(attributes or {})))

    def versions(self) -> dict[str, int]:
        return {h.course_id: h.version for h in self.store.courses()}

    def event_count(self) -> int:
        return sum(len(events) for _, events in self.store.scan())

    def fingerprint(self) -> tuple[dict[str, int], int, int]:
        """Every course's version, every event, every dispatch: equal before and after a
        hostile input means nothing was written anywhere."""
        return self.versions(), self.event_count(), len(self.bridge.dispatcher.requests)

    def payload(self, course_id: str, task: str = "prepare_video") -> dict[str, Any]:
        head = self.store.head(course_id)
        assert head is not None
        state = CourseState.from_snapshot(head.snapshot)
        found = state.task(task)
        assert found is not None
        return task_payload(state, found)

    def headers(self, body: bytes, expires_in: float = 600) -> dict[str, str]:
        token = sign(SECRET, body, int(SystemClock().now() + expires_in))
        return {"Content-Type": "application/json", "Authorization": f"Bearer {token}"}


def make_world(root: Path, courses: int = 2) -> World:
    store = SqliteStore(root / "events.db")
    pipeline = default_pipeline()
    clock = SystemClock()
    bridge = Bridge(store, RecordingDispatcher(), pipeline, clock)
    world_holder: dict[str, World] = {}

    def notify(course_id: str, version: int) -> None:
        world_holder["w"].notified.append((course_id, version))

    endpoint = TaskEndpoint(
        store=store,
        steps=noop_steps(pipeline),
        pipeline=pipeline,
        verify=HmacVerifier(SECRET, clock.now),
        notify=notify,
        services=None,
        now=clock.now,
    )
    settings = Settings.from_env({"COURSEGEN_STORE": "sqlite"})
    world = World(store, bridge, endpoint, settings)
    world_holder["w"] = world
    for i in range(courses):
        bridge.ingest({**REQUEST, "courseId": f"course{i}"}, message_id=f"seed-{i}")
    return world


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    w = make_world(tmp_path)
    yield w
    w.store.close()


def push_envelope(data: bytes | str | None, message_id: str = "m-1") -> dict[str, Any]:
    """A Pub/Sub push envelope; ``data`` bytes are base64-encoded, a str is sent as is."""
    message: dict[str, Any] = {"attributes": {}, "messageId": message_id}
    if data is not None:
        message["data"] = data if isinstance(data, str) else base64.b64encode(data).decode()
    return {"message": message, "subscription": "projects/p/subscriptions/s"}


def as_json(fields: Mapping[str, Any]) -> bytes:
    return json.dumps(dict(fields)).encode()
