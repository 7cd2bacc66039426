"""The task endpoint: results recorded once, Cloud Tasks answers (200 / 503), and a clear 4xx
problem for every kind of bad request, none of which writes anything to any history."""

from __future__ import annotations

import errno
import json
import socket
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import pytest

from bridge.runtime.embedded import embedded
from bridge.tooling.synthetic import noop_steps
from handlers.ai.port import TransientProviderError
from handlers.auth import sign
from handlers.endpoint import MAX_BODY_BYTES
from handlers.outcomes import Answer
from handlers.registry import PermanentStepError, TransientStepError
from handlers.steps.common import call
from statemachine.envelope import NewEvent
from statemachine.events import CourseCancelled, CourseRedriven
from statemachine.pipeline import default_pipeline
from statemachine.store.memory import MemoryStore
from statemachine.timefmt import iso

from .conftest import SECRET, T0, Env, Steps, settings

VIDEO_QUEUE = default_pipeline().queues["video-preparation-queue"].retry


def last_events(env: Env, course_id: str, n: int) -> list[Any]:
    return list(env.store.load(course_id))[-n:]


def operator(env: Env, course_id: str, event: Any) -> int:
    head = env.store.head(course_id)
    assert head is not None
    new = NewEvent(event=event, occurred_at=iso(env.clock.now()), actor="operator")
    return env.store.append(course_id, head.version, [new])


# -- results --------------------------------------------------------------------------------
def test_success_records_started_and_succeeded_and_notifies(env):
    course = env.ingest("m1")
    before = env.store.head(course).version

    answer = env.post(env.payload(course))

    assert answer.status == 200
    assert answer.body == {"status": "succeeded", "task": "prepare_video"}
    started, succeeded = env.store.load(course, after=before)[:2]
    assert (started.type, succeeded.type) == ("TaskStarted", "TaskSucceeded")
    assert started.data["attempt"] == 1
    assert succeeded.data["idempotency_key"] == f"{course}:prepare_video:1"
    assert started.actor == succeeded.actor == "task-endpoint"
    # extract_frames and the four audio chunks were scheduled in the same append; the bridge
    # heard of it
    assert env.types(course)[before + 2 :] == ["TaskScheduled"] * 5
    assert (course, before + 7) in env.rt.notifications


def test_a_duplicate_delivery_of_a_succeeded_task_does_nothing(env):
    course = env.ingest("m1")
    payload = env.payload(course)
    assert env.post(payload).status == 200
    versions = env.versions()

    for retry in (0, 3):
        answer = env.post(payload, retry=retry)
        assert answer.status == 200
        assert answer.body == {"status": "duplicate", "task": "prepare_video"}

    assert env.versions() == versions
    assert env.steps.calls["prepare_video"] == 1
    assert env.rt.endpoint.answers["duplicate"] == 2


def test_a_transient_error_answers_503_and_records_a_retryable_failure(env):
    course = env.ingest("m1")
    env.steps.fail("prepare_video", TransientStepError("storage busy"))

    answer = env.post(env.payload(course))

    assert answer.status == 503
    assert answer.headers["Content-Type"] == "application/problem+json"
    assert answer.body["detail"] == "storage busy"
    (failed,) = last_events(env, course, 1)
    assert failed.type == "TaskFailed"
    assert failed.data["retryable"] is True
    assert failed.data["error_type"] == "TransientStepError"
    task = env.store.head(course).snapshot["tasks"]["prepare_video"]
    assert task["status"] == "retrying"
    assert env.status(course) == "running"

    retried = env.post(env.payload(course), retry=1)  # the queue's retry succeeds
    assert retried.body["status"] == "succeeded"
    assert [e.data["attempt"] for e in env.store.load(course) if e.type == "TaskStarted"] == [1, 2]


@pytest.mark.parametrize(
    "error",
    [
        KeyError("frames"),
        ValueError("COURSEGEN_MAX_VIDEO_BYTES must be an integer, got '4GB'"),
        TypeError("unsupported operand"),
        FileNotFoundError(errno.ENOENT, "no such file"),
        RuntimeError("tesseract is not installed"),
    ],
    ids=type,
)
def test_an_unexpected_error_is_permanent_at_once_and_says_where_it_came_from(env, error):
    course = env.ingest("m1")
    env.steps.fail("prepare_video", error)

    answer = env.post(env.payload(course))

    assert answer.status == 200  # the queue must not burn its attempts on it
    assert answer.body["status"] == "failed"
    failed, course_failed = last_events(env, course, 2)
    assert failed.data["error_type"] == type(error).__name__
    assert failed.data["retryable"] is False
    assert failed.data["message"].startswith(f"{type(error).__name__}: ")
    assert " at " in failed.data["message"]
    assert course_failed.type == "CourseFailed"
    assert env.steps.calls["prepare_video"] == 1


class ProviderHttpError(Exception):
    """An HTTP stack's error as the SDKs raise it: a status code, no ``retryable``."""

    def __init__(self, status_code: int) -> None:
        super().__init__(f"HTTP {status_code}")
        self.status_code = status_code


class Timeout(OSError):
    """Shaped like requests' Timeout: an OSError without an errno, named for what it is."""


class ReadTimeout(Timeout):
    pass


@pytest.mark.parametrize(
    "error",
    [
        ConnectionResetError(errno.ECONNRESET, "reset by peer"),
        TimeoutError("timed out"),
        OSError(errno.ENETUNREACH, "network is unreachable"),
        socket.gaierror(socket.EAI_AGAIN, "temporary failure in name resolution"),
        ReadTimeout("read timed out"),
        ProviderHttpError(503),
        ProviderHttpError(429),
    ],
    ids=repr,
)
def test_a_known_transient_error_answers_503_and_is_retried(env, error):
    course = env.ingest("m1")
    env.steps.fail("prepare_video", error)

    answer = env.post(env.payload(course))

    assert answer.status == 503
    (failed,) = last_events(env, course, 1)
    assert failed.data["retryable"] is True
    assert env.status(course) == "running"


def test_an_http_error_that_no_retry_fixes_is_permanent(env):
    course = env.ingest("m1")
    env.steps.fail("prepare_video", ProviderHttpError(400))

    assert env.post(env.payload(course)).status == 200
    assert env.status(course) == "failed"


def test_a_permanent_error_is_recorded_answers_200_and_fails_the_course(env):
    course = env.ingest("m1")
    env.steps.fail("prepare_video", PermanentStepError("not a video"))

    answer = env.post(env.payload(course))

    assert answer.status == 200
    assert answer.body["status"] == "failed"
    failed, course_failed = last_events(env, course, 2)
    assert failed.type == "TaskFailed"
    assert failed.data["retryable"] is False
    assert course_failed.type == "CourseFailed"  # the advance the notification triggered
    assert course_failed.data["task"] == "prepare_video"
    assert env.status(course) == "failed"


def test_the_last_allowed_attempt_failing_records_exhaustion(env):
    course = env.ingest("m1")
    env.steps.fail("prepare_video", TransientStepError("still busy"))

    answer = env.post(env.payload(course), retry=VIDEO_QUEUE.max_attempts - 1)

    assert answer.status == 200  # nothing left to retry: the queue must stop
    assert answer.body["status"] == "exhausted"
    started, failed, exhausted, course_failed = last_events(env, course, 4)
    assert started.data["attempt"] == VIDEO_QUEUE.max_attempts
    assert (failed.type, exhausted.type) == ("TaskFailed", "TaskExhausted")
    assert exhausted.data["attempts"] == VIDEO_QUEUE.max_attempts
    assert course_failed.type == "CourseFailed"
    assert "exhausted its attempts" in course_failed.data["reason"]


def test_an_attempt_whose_retry_would_pass_the_retry_duration_is_the_last(env):
    course = env.ingest("m1")
    env.steps.fail("prepare_video", TransientStepError("busy"), TransientStepError("busy"))
    assert env.post(env.payload(course)).status == 503

    env.clock.advance_to(T0 + VIDEO_QUEUE.max_retry_duration_s)
    answer = env.post(env.payload(course), retry=1)

    assert answer.body["status"] == "exhausted"
    assert env.status(course) == "failed"


def test_a_lost_last_attempt_does_not_strand_the_task(env):
    # Attempts 1-4 fail; the 5th never reaches the endpoint (connection reset). Cloud Tasks
    # keeps retrying until the retry duration has passed too, so a 6th attempt settles it.
    env.steps.fail("prepare_video", *(TransientStepError("busy") for _ in range(4)))
    inner = env.rt.dispatcher.deliver
    calls = 0

    def flaky(request, headers, body):
        nonlocal calls
        if request.step == "prepare_video":
            calls += 1
            if calls == VIDEO_QUEUE.max_attempts:
                raise ConnectionResetError("no answer")
        return inner(request, headers, body)

    env.rt.dispatcher.deliver = flaky
    course = env.ingest("m1")

    env.rt.dispatcher.run_until_idle()

    attempts = [
        e.data["attempt"]
        for e in env.store.load(course)
        if e.type == "TaskStarted" and e.data["task"] == "prepare_video"
    ]
    assert attempts == [1, 2, 3, 4, 6]
    assert env.status(course) == "completed"


def test_a_cancelled_course_ignores_its_tasks(env):
    course = env.ingest("m1")
    version = operator(env, course, CourseCancelled(reason="changed my mind"))

    answer = env.post(env.payload(course))

    assert answer.status == 200
    assert answer.body["status"] == "ignored"
    assert env.store.head(course).version == version
    assert "TaskStarted" not in env.types(course)
    assert env.steps.calls["prepare_video"] == 0


def test_a_stale_generation_after_a_redrive_is_superseded(env):
    course = env.ingest("m1")
    env.steps.fail("prepare_video", PermanentStepError("source refused"))
    old = env.payload(course)
    env.post(old)
    assert env.status(course) == "failed"
    operator(env, course, CourseRedriven(tasks=("prepare_video",), reason="source fixed"))
    env.rt.bridge.advance(course)
    new = env.payload(course)
    assert new["idempotencyKey"] == f"{course}:prepare_video:2"
    version = env.store.head(course).version

    answer = env.post(old, retry=2)

    assert answer.status == 200
    assert answer.body["status"] == "superseded"
    assert env.store.head(course).version == version
    assert env.steps.calls["prepare_video"] == 1
    assert env.post(new).body["status"] == "succeeded"
    assert env.status(course) == "running"


@pytest.mark.parametrize(
    "rename",
    [str.lower, str.upper, lambda name: name.swapcase()],
    ids=["lower", "upper", "swapped"],
)
def test_headers_are_read_whatever_their_case(env, rename):
    course = env.ingest("m1")
    body = json.dumps(env.payload(course)).encode()
    headers = {rename(k): v for k, v in env.headers(body, retry=2).items()}

    answer = env.rt.endpoint.handle(headers, body, "local://prepare_video")

    assert answer.status == 200
    started = next(e for e in env.store.load(course) if e.type == "TaskStarted")
    assert started.data["attempt"] == 3


@pytest.mark.parametrize("count", ["", "abc", "-1", "²", "9" * 5000])
def test_a_nonsense_retry_count_falls_back_to_the_payload_attempt(env, count):
    course = env.ingest("m1")
    body = json.dumps(env.payload(course)).encode()
    headers = {**env.headers(body), "X-CloudTasks-TaskRetryCount": count}

    answer = env.rt.endpoint.handle(headers, body, "")

    assert answer.status == 200
    started = next(e for e in env.store.load(course) if e.type == "TaskStarted")
    assert started.data["attempt"] == 1


def test_a_service_for_one_step_refuses_the_others(env):
    course = env.ingest("m1")
    endpoint = replace(env.rt.endpoint, only_step="transcribe")
    body = json.dumps(env.payload(course)).encode()

    answer = endpoint.handle(env.headers(body), body, "")

    assert answer.status == 404
    assert "runs transcribe" in answer.body["detail"]
    assert "TaskStarted" not in env.types(course)


def test_the_dispatcher_and_endpoint_complete_a_course_with_lowercased_headers(env):
    # Proxies lower-case header names: the whole course still runs on the embedded runtime.
    inner = env.rt.dispatcher.deliver
    env.rt.dispatcher.deliver = lambda request, headers, body: inner(
        request, {k.lower(): v for k, v in headers.items()}, body
    )
    course = env.ingest("m1")

    env.rt.dispatcher.run_until_idle()

    assert env.status(course) == "completed"
    assert env.types(course).count("TaskSucceeded") == 15
    assert set(env.rt.endpoint.answers) == {"succeeded"}


# -- bad requests -----------------------------------------------------------------------------
Request = tuple[dict[str, str], bytes]
Build = Callable[[Env, dict[str, Any], str], Request]


def signed(env: Env, body: bytes) -> Request:
    return env.headers(body), body


def payload_with(**changes: Any) -> Build:
    def build(env: Env, payload: dict[str, Any], other: str) -> Request:
        changed = {**payload, **changes}
        return signed(env, json.dumps(changed).encode())

    return build


def data_with(**changes: Any) -> Build:
    def build(env: Env, payload: dict[str, Any], other: str) -> Request:
        changed = {**payload, "data": {**payload["data"], **changes}}
        return signed(env, json.dumps(changed).encode())

    return build


def without(field: str) -> Build:
    def build(env: Env, payload: dict[str, Any], other: str) -> Request:
        return signed(env, json.dumps({k: v for k, v in payload.items() if k != field}).encode())

    return build


def raw(body: bytes) -> Build:
    return lambda env, payload, other: signed(env, body)


def with_auth(value: str | None) -> Build:
    def build(env: Env, payload: dict[str, Any], other: str) -> Request:
        body = json.dumps(payload).encode()
        headers = env.headers(body)
        if value is None:
            del headers["Authorization"]
        else:
            headers["Authorization"] = value
        return headers, body

    return build


def token(make: Callable[[Env, bytes], str]) -> Build:
    def build(env: Env, payload: dict[str, Any], other: str) -> Request:
        body = json.dumps(payload).encode()
        return {**env.headers(body), "Authorization": f"Bearer {make(env, body)}"}, body

    return build


def too_large(env: Env, payload: dict[str, Any], other: str) -> Request:
    body = json.dumps({**payload, "pad": "x" * MAX_BODY_BYTES}).encode()
    return signed(env, body)


def replayed(env: Env, payload: dict[str, Any], other: str) -> Request:
    # The token of the other course's genuine task, sent with a body of our own.
    genuine = json.dumps(env.payload(other)).encode()
    body = json.dumps(payload).encode()
    return {**env.headers(genuine), "X-CloudTasks-TaskRetryCount": "0"}, body


def other_course_key(env: Env, payload: dict[str, Any], other: str) -> Request:
    changed = {**payload, "idempotencyKey": f"{other}:prepare_video:1"}
    return signed(env, json.dumps(changed).encode())


def consistent(course_id: str, step: str = "prepare_video", shard: int | None = None) -> Build:
    def build(env: Env, payload: dict[str, Any], other: str) -> Request:
        task = step if shard is None else f"{step}#{shard}"
        middle = step if shard is None else f"{step}:{shard}"
        changed = {
            **payload,
            "courseId": course_id,
            "taskType": step,
            "data": {"task": task, "shard": shard, "generation": 1},
            "idempotencyKey": f"{course_id}:{middle}:1",
        }
        return signed(env, json.dumps(changed).encode())

    return build


def for_own_course(step: str, shard: int | None = None) -> Build:
    def build(env: Env, payload: dict[str, Any], other: str) -> Request:
        return consistent(payload["courseId"], step, shard)(env, payload, other)

    return build


BAD_REQUESTS: list[tuple[str, Build, int, str]] = [
    ("body-over-1-MiB", too_large, 413, "at most 1048576"),
    ("no-authorization", with_auth(None), 401, "missing Authorization"),
    ("basic-scheme", with_auth("Basic dXNlcjpwYXNz"), 401, "Bearer"),
    ("empty-bearer", with_auth("Bearer "), 401, "Bearer"),
    ("malformed-token", with_auth("Bearer not-a-token"), 401, "malformed"),
    ("wrong-version", with_auth("Bearer v2.1.abc"), 401, "malformed"),
    ("non-ascii-expiry", with_auth("Bearer v1.\u00b2.abc"), 401, "malformed"),
    ("huge-expiry", with_auth("Bearer v1." + "9" * 5000 + ".abc"), 401, "malformed"),
    ("forged", token(lambda env, body: sign(b"guessed", body, int(T0 + 600))), 401, "match"),
    ("expired", token(lambda env, body: sign(SECRET, body, int(T0 - 1))), 401, "expired"),
    (
        "expiry-edited",
        token(lambda env, body: sign(SECRET, body, int(T0 - 1)).replace("v1.", "v1.9", 1)),
        401,
        "match",
    ),
    ("token-of-another-body", replayed, 401, "does not match"),
    ("not-json", raw(b"courseId=c1&taskType=prepare_video"), 400, "not JSON"),
    ("not-utf8", raw(b"\xff\xfe{}"), 400, "not JSON"),
    ("empty-body", raw(b""), 400, "not JSON"),
    ("nested-too-deep", raw(b"[" * 200_000), 400, "nests too deeply"),
    ("not-an-object", raw(b"[1, 2, 3]"), 422, "is not of type 'object'"),
    ("missing-field", without("idempotencyKey"), 422, "'idempotencyKey' is a required property"),
    ("missing-data-task", data_with(task=None), 422, "data/task"),
    ("attempt-as-string", payload_with(attempt="1"), 422, "attempt"),
    ("attempt-zero", payload_with(attempt=0), 422, "attempt"),
    ("generation-as-string", data_with(generation="1"), 422, "data/generation"),
    ("unknown-field", payload_with(extra=True), 422, "'extra' was unexpected"),
    ("huge-course-id", payload_with(courseId="c" * 100_000), 422, "courseId"),
    ("huge-created", payload_with(created="2026-" + "1" * 10_000), 422, "created"),
    ("dotdot-course-id", payload_with(courseId="../x"), 422, "courseId"),
    ("slash-course-id", payload_with(courseId="a/b"), 422, "courseId"),
    ("slash-task", data_with(task="a/b"), 422, "data/task"),
    ("dotdot-task-type", payload_with(taskType="../etc"), 422, "taskType"),
    ("unknown-task-type", for_own_course("teleport"), 422, "no step named 'teleport'"),
    ("task-not-of-its-type", data_with(task="transcribe"), 422, "data.task must be"),
    ("key-of-another-generation", payload_with(idempotencyKey="x:prepare_video:2"), 422, "must be"),
    ("key-of-another-course", other_course_key, 422, "idempotencyKey must be"),
    ("unknown-course", consistent("nosuchcourse"), 404, "no course 'nosuchcourse'"),
    ("unknown-task", for_own_course("transcribe"), 404, "has no task 'transcribe'"),
    ("unknown-shard", for_own_course("analyze_frames", shard=3), 404, "analyze_frames#3"),
]


@pytest.mark.parametrize(
    ("build", "status", "detail"),
    [pytest.param(b, s, d, id=name) for name, b, s, d in BAD_REQUESTS],
)
def test_a_bad_request_gets_a_clear_problem_and_writes_nothing(env, build, status, detail):
    course = env.ingest("m1")
    other = env.ingest("m2", title="Glaciers")
    versions = env.versions()
    events = sum(len(history) for _, history in env.store.scan())
    headers, body = build(env, env.payload(course), other)

    answer: Answer = env.rt.endpoint.handle(headers, body, "local://prepare_video")

    assert answer.status == status
    assert answer.headers["Content-Type"] == "application/problem+json"
    assert answer.body["status"] == status
    assert answer.body["title"]
    assert detail in answer.body["detail"]
    assert env.versions() == versions
    assert sum(len(history) for _, history in env.store.scan()) == events
    assert sum(env.steps.calls.values()) == 0
    assert env.rt.notifications == []


def test_schema_problems_list_each_field(env):
    course = env.ingest("m1")
    payload = {**env.payload(course), "attempt": "1", "courseId": "../x", "extra": 1}
    body = json.dumps(payload).encode()

    answer = env.rt.endpoint.handle(env.headers(body), body, "")

    assert answer.status == 422
    errors = answer.body["errors"]
    assert any(e.startswith("attempt:") for e in errors)
    assert any(e.startswith("courseId:") for e in errors)
    assert any("'extra' was unexpected" in e for e in errors)


# -- a provider's Retry-After -----------------------------------------------------------------
def test_a_providers_retry_after_reaches_the_queues_answer(tmp_path, clock):
    def busy() -> Any:
        raise TransientProviderError("HTTP 429 (rate limited)", retry_after_s=7.2)

    steps = dict(noop_steps(default_pipeline()))
    steps["prepare_video"] = lambda ctx: call(ctx, "ai/structure", busy)
    rt = embedded(tmp_path, settings=settings(), steps=steps, clock=clock, store=MemoryStore())
    env = Env(rt, clock, Steps(), set())
    course = env.ingest("m1")

    answer = env.post(env.payload(course))

    assert answer.status == 503
    assert answer.headers["Retry-After"] == "8"  # whole seconds, rounded up
    assert answer.body["retryAfter"] == 7.2
    assert answer.body["detail"] == "prepare_video: HTTP 429 (rate limited)"
    (failed,) = last_events(env, course, 1)
    assert failed.data["retryable"] is True
    rt.close()


def test_a_transient_error_without_retry_after_answers_a_plain_503(env):
    course = env.ingest("m1")
    env.steps.fail("prepare_video", TransientStepError("busy"))
    answer = env.post(env.payload(course))
    assert answer.status == 503
    assert "Retry-After" not in answer.headers and "retryAfter" not in answer.body
