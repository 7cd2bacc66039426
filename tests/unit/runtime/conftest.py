"""Fakes and fixtures for the runtime tests: a virtual clock, one-queue pipelines, scripted
deliveries, controllable steps, a recording dispatcher and an embedded runtime on memory."""

from __future__ import annotations

import json
import threading
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

import schemas
from bridge.dispatch import AlreadyExists, TaskRequest, task_name
from bridge.runtime.clock import VirtualClock
from bridge.runtime.embedded import Runtime, embedded
from bridge.settings import Settings
from bridge.tooling.synthetic import noop_steps
from bridge.wire import task_payload
from handlers.auth import sign
from handlers.endpoint import TaskEndpoint
from handlers.outcomes import Answer
from handlers.registry import StepContext, StepFn, StepResult
from statemachine.pipeline import Pipeline, default_pipeline, parse
from statemachine.state import CourseState
from statemachine.store.memory import MemoryStore

SECRET = b"runtime-test-secret"
T0 = VirtualClock().now()  # where every virtual clock starts
REQUEST = {"videoUri": "gs://lectures/rivers.mp4", "title": "Rivers"}


# -- pipelines ----------------------------------------------------------------------------
def one_queue_pipeline(
    *,
    max_attempts: int = 9,
    min_backoff: float = 10,
    max_backoff: float = 300,
    max_doublings: int = 3,
    max_retry_duration: float = 0,
    rate: float = 500,
    max_concurrent: int = 1000,
    queues: Sequence[str] = ("q",),
) -> Pipeline:
    """A schema-valid pipeline whose queues all share one retry and rate configuration."""
    queue = {
        "retry": {
            "maxAttempts": max_attempts,
            "minBackoffSeconds": min_backoff,
            "maxBackoffSeconds": max_backoff,
            "maxDoublings": max_doublings,
            "maxRetryDurationSeconds": max_retry_duration,
        },
        "rateLimits": {"maxDispatchesPerSecond": rate, "maxConcurrentDispatches": max_concurrent},
    }
    doc = {
        "version": 1,
        "queues": {name: queue for name in queues},
        "steps": {
            "finalize": {
                "queue": queues[0],
                "after": [],
                "resources": {"memory": "512Mi", "cpu": 1, "timeoutSeconds": 60, "concurrency": 1},
            }
        },
    }
    schemas.validate("pipeline.schema", doc)
    return parse(doc)


def task_request(
    n: int = 1,
    *,
    queue: str = "q",
    deadline_s: float = 60.0,
    schedule_time: float | None = None,
) -> TaskRequest:
    key = f"course{n}:finalize:1"
    payload = {"courseId": f"course{n}", "taskType": "finalize", "idempotencyKey": key}
    return TaskRequest(
        queue=queue,
        name=task_name(key),
        step="finalize",
        payload=payload,
        deadline_s=deadline_s,
        schedule_time=schedule_time,
    )


# -- deliveries -----------------------------------------------------------------------------
@dataclass(frozen=True)
class Call:
    at: float  # relative to T0
    request: TaskRequest
    headers: Mapping[str, str]
    body: bytes

    def header(self, name: str) -> str:
        return self.headers[name]


Outcome = int | BaseException | Callable[[], int]


@dataclass
class ScriptedDeliver:
    """Answers each delivery from ``script`` (then ``default``) and records every call.

    An outcome is a status, an exception to raise (no response), or a callable run inside the
    delivery (it may ``clock.sleep`` to run long) that returns the status.
    """

    clock: Any
    script: list[Outcome] = field(default_factory=list)
    default: Outcome = 200
    calls: list[Call] = field(default_factory=list)

    def __call__(self, request: TaskRequest, headers: Mapping[str, str], body: bytes) -> int:
        self.calls.append(Call(self.clock.now() - T0, request, dict(headers), body))
        outcome = self.script.pop(0) if self.script else self.default
        if isinstance(outcome, BaseException):
            raise outcome
        if callable(outcome):
            return outcome()
        return outcome

    def times(self) -> list[float]:
        return [c.at for c in self.calls]


class RecordingDispatcher:
    """A dispatcher fake: records every request and refuses a name it has seen (like the
    queue's de-duplication, with no window)."""

    def __init__(self) -> None:
        self.accepted: list[TaskRequest] = []
        self.refused: list[TaskRequest] = []
        self._lock = threading.Lock()

    def dispatch(self, request: TaskRequest) -> None:
        with self._lock:
            if any(r.name == request.name for r in self.accepted):
                self.refused.append(request)
                raise AlreadyExists(request.name)
            self.accepted.append(request)

    def names(self) -> Counter[str]:
        with self._lock:
            return Counter(r.name for r in self.accepted)


# -- steps ----------------------------------------------------------------------------------
class Steps:
    """The synthetic no-op steps, counting calls; ``fail(step, *errors)`` makes the next calls
    of ``step`` raise those errors in turn."""

    def __init__(self, pipeline: Pipeline | None = None) -> None:
        self.base = noop_steps(pipeline or default_pipeline())
        self.calls: Counter[str] = Counter()
        self.failures: dict[str, list[Exception]] = {}
        self._registry: dict[str, StepFn] = {}

    def fail(self, step: str, *errors: Exception) -> None:
        self.failures.setdefault(step, []).extend(errors)

    def registry(self) -> Mapping[str, StepFn]:
        def make(name: str) -> StepFn:
            def step(ctx: StepContext) -> StepResult:
                self.calls[name] += 1
                pending = self.failures.get(name)
                if pending:
                    raise pending.pop(0)
                return self.base[name](ctx)

            return step

        self._registry = {name: make(name) for name in self.base}
        return self._registry

    def replace(self, name: str, step: StepFn) -> StepFn:
        """Run ``step`` for ``name`` from now on (not counted, never failing on its own): the
        registry the runtime was built with is this object's. The step it replaces."""
        replaced = self._registry[name]
        self._registry[name] = step
        return replaced


# -- the embedded runtime -------------------------------------------------------------------
def settings(**extra: str) -> Settings:
    return Settings.from_env(
        {"COURSEGEN_STORE": "memory", "COURSEGEN_TASK_SECRET": SECRET.decode(), **extra}
    )


@dataclass
class Env:
    """An embedded runtime on a virtual clock and a memory store, with helpers to post tasks."""

    rt: Runtime
    clock: VirtualClock
    steps: Steps
    lost: set[str]  # courses whose notifications are dropped

    @property
    def store(self) -> MemoryStore:
        store = self.rt.store
        assert isinstance(store, MemoryStore)
        return store

    def ingest(self, message_id: str, **fields: Any) -> str:
        return self.rt.bridge.ingest({**REQUEST, **fields}, message_id=message_id)

    def payload(self, course_id: str, task: str = "prepare_video") -> dict[str, Any]:
        head = self.store.head(course_id)
        assert head is not None
        state = CourseState.from_snapshot(head.snapshot)
        found = state.task(task)
        assert found is not None, f"{course_id} has no task {task}"
        return task_payload(state, found)

    def headers(self, body: bytes, *, retry: int | None = 0, expires_in: float = 600) -> dict:
        headers = {
            "Content-Type": "application/json",
            "Authorization": f"Bearer {sign(SECRET, body, int(self.clock.now() + expires_in))}",
        }
        if retry is not None:
            headers["X-CloudTasks-TaskRetryCount"] = str(retry)
        return headers

    def post(
        self,
        payload: Mapping[str, Any],
        *,
        retry: int | None = 0,
        via: TaskEndpoint | None = None,
    ) -> Answer:
        """Post ``payload`` to the runtime's endpoint (or ``via``, one built from it)."""
        body = json.dumps(payload).encode()
        endpoint = via or self.rt.endpoint
        return endpoint.handle(self.headers(body, retry=retry), body, "local://test")

    def types(self, course_id: str) -> list[str]:
        return [e.type for e in self.store.load(course_id)]

    def status(self, course_id: str) -> str:
        head = self.store.head(course_id)
        assert head is not None
        return head.status

    def versions(self) -> dict[str, int]:
        return {h.course_id: h.version for h in self.store.courses()}


@pytest.fixture
def clock() -> VirtualClock:
    return VirtualClock()


def runtime_with(**options: Any) -> pytest.MarkDecorator:
    """Run the test on an ``env`` whose runtime ``embedded`` builds with ``options`` (the
    runtime is wired at construction: nothing in it is replaced afterwards)."""
    label = ",".join(f"{k}={v}" for k, v in options.items())
    return pytest.mark.parametrize("env", [options], indirect=True, ids=[label])


@pytest.fixture
def env(request: pytest.FixtureRequest, tmp_path: Path, clock: VirtualClock) -> Iterator[Env]:
    steps = Steps()
    lost: set[str] = set()
    rt = embedded(
        tmp_path,
        settings=settings(),
        steps=steps.registry(),
        clock=clock,
        store=MemoryStore(),
        notify_filter=lambda course_id, version: course_id not in lost,
        **getattr(request, "param", {}),
    )
    yield Env(rt, clock, steps, lost)
    rt.close()
