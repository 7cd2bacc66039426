"""What a task delivery comes to: the delivery as the endpoint accepted it, the outcome its
step's result is recorded as (its events and its answer), and the answers themselves.

``outcome`` chooses, for the course as the delivery last saw it, one of:

- ``_succeeded``: TaskSucceeded, 200;
- ``_retried``: a transient failure: TaskFailed, 503 (with the provider's Retry-After);
- ``_failed``: a permanent failure, or any failure once the course has failed: TaskFailed, 200;
- ``_exhausted``: a transient failure of the queue's last try: TaskFailed and TaskExhausted, 200;
- ``_mooted``: a result for a course cancelled while the step ran: TaskMooted, 200;
- ``_duplicate``: nothing to record (a concurrent delivery recorded the outcome, a newer
  generation exists, the course stopped): 200, no event.
"""

from __future__ import annotations

import json
import math
import traceback
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import schemas
from handlers import analytics
from handlers.auth import header
from handlers.registry import StepResult, is_transient
from handlers.starts import Pending
from statemachine.events import Event, TaskExhausted, TaskFailed, TaskMooted, TaskSucceeded
from statemachine.lifecycle import BROKEN_TASK, CourseStatus, TaskStatus
from statemachine.state import CourseState, TaskState


@dataclass(frozen=True, slots=True)
class Answer:
    status: int
    body: Mapping[str, Any]
    headers: Mapping[str, str] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300


def problem(status: int, title: str, detail: str, **extra: Any) -> Answer:
    body = {"type": "about:blank", "title": title, "status": status, "detail": detail, **extra}
    return Answer(status, body, {"Content-Type": "application/problem+json"})


def busy() -> Answer:
    return problem(503, "Busy", "the course is changing too fast; retry later")


@dataclass(frozen=True, slots=True, kw_only=True)
class Delivery:
    """One delivery of a task the endpoint accepted: who sent what, and the course as the
    delivery last saw it (``course``, ``task``, ``version``: where its next append goes).

    ``pending`` is a first attempt's start not in the history yet (``handlers/starts.py``):
    while it is set, the outcome's append carries TaskStarted too, stamped ``started_at``.
    """

    course_id: str
    name: str  # the task: its step, or step#shard
    key: str  # the task's idempotency key
    step: str
    shard: int | None
    attempt: int
    payload: Mapping[str, Any]
    trace: str | None  # from the queue's trace headers
    caller: str  # as the verifier named it
    started_at: float  # when the delivery began (the endpoint's clock)
    course: CourseState
    task: TaskState  # at first as our TaskStarted leaves it (``_running``)
    version: int  # the course version the next append expects
    pending: Pending | None = None


# A result for a course in one of these states is recorded as TaskMooted (terminal, the course
# does not move); for a failed course it is recorded as is (real work a redrive keeps), but
# never retried by the queue; for a paused one as is (nothing new is scheduled until resume).
MOOT_COURSES = frozenset({CourseStatus.CANCELLED})
_STOPPED_COURSES = frozenset({CourseStatus.FAILED})
_STARTED = frozenset({CourseStatus.RUNNING, CourseStatus.PAUSED})
_STOPPED_DETAIL = (
    "the course has failed: the attempt is recorded; an operator's redrive runs it again"
)


def outcome(
    d: Delivery, result: Result, retry_after_s: float | None, *, last_try: Callable[[], bool]
) -> Record | Answer:
    """What ``result`` comes to for the course as ``d`` last saw it (chosen again after
    every conflict: the course may have been cancelled or failed meanwhile); ``last_try``:
    whether the queue gives up after this attempt."""
    already = _duplicate(d)
    if already is not None:
        return already
    if d.course.status in MOOT_COURSES:  # cancelled while the step ran
        return _mooted(d, result)
    if isinstance(result, TaskSucceeded):
        return _succeeded(d, result)
    if not result.retryable or d.course.status in _STOPPED_COURSES:
        return _failed(d, result)
    if last_try():
        return _exhausted(d, result)
    return _retried(d, result, retry_after_s)


# -- outcomes: what a step's result comes to, its events and its answer ------------------------
@dataclass(frozen=True, slots=True)
class Record:
    """What one outcome appends, and the delivery's answer once it is in the history."""

    events: tuple[Event, ...]
    answer: Answer
    with_start: bool = True  # goes after a pending TaskStarted (a moot result needs none)


def _succeeded(d: Delivery, result: TaskSucceeded) -> Record:
    return Record((result,), Answer(200, {"status": TaskStatus.SUCCEEDED, "task": d.name}))


def _retried(d: Delivery, failure: TaskFailed, retry_after_s: float | None) -> Record:
    """A transient failure: 503, so that the queue retries it with backoff."""
    title = "Step failed; retry later"
    if retry_after_s is None:
        return Record((failure,), problem(503, title, failure.message, task=d.name))
    # what the provider asked for (Cloud Tasks keeps to its queue's backoff; a direct caller
    # or another queue may honour it)
    answer = problem(503, title, failure.message, task=d.name, retryAfter=retry_after_s)
    headers = {**answer.headers, "Retry-After": str(math.ceil(retry_after_s))}
    return Record((failure,), replace(answer, headers=headers))


def _failed(d: Delivery, failure: TaskFailed) -> Record:
    """A permanent failure, or any failure once the course has failed: recorded and
    acknowledged (for a failed course, an operator's redrive runs the task again)."""
    stopped = d.course.status in _STOPPED_COURSES
    detail = _STOPPED_DETAIL if stopped else failure.message
    return Record(
        (failure,), Answer(200, {"status": TaskStatus.FAILED, "task": d.name, "detail": detail})
    )


def _exhausted(d: Delivery, failure: TaskFailed) -> Record:
    """A transient failure of the queue's last try: recorded, and the task given up."""
    given_up = TaskExhausted(
        task=d.name, idempotency_key=d.key, attempts=d.attempt, error=failure.message
    )
    answer = Answer(
        200, {"status": TaskStatus.EXHAUSTED, "task": d.name, "detail": failure.message}
    )
    return Record((failure, given_up), answer)


def _mooted(d: Delivery, result: Result) -> Record:
    """A result for a course cancelled while the step ran: TaskMooted, no TaskStarted."""
    what = TaskStatus.SUCCEEDED if isinstance(result, TaskSucceeded) else TaskStatus.FAILED
    detail = f"the course is {d.course.status}: the step {what}, recorded as moot"
    if isinstance(result, TaskFailed):
        detail += f" ({result.message})"
    moot = TaskMooted(
        task=result.task,
        idempotency_key=result.idempotency_key,
        attempt=result.attempt,
        outcome=what,
        detail=detail[:4000],
        duration_ms=result.duration_ms,
        metering=dict(result.metering),
    )
    answer = Answer(200, {"status": TaskStatus.MOOT, "task": d.name, "detail": moot.detail})
    return Record((moot,), answer, with_start=False)


def _duplicate(d: Delivery) -> Answer | None:
    """The answer when this delivery has nothing to record: a concurrent one recorded the
    task's outcome, a newer generation exists, or the course has stopped."""
    if d.pending is not None:  # our TaskStarted is not in the history: check as a start does
        return no_op(d.course, d.task, d.key, stopped_ok=d.course.status in MOOT_COURSES)
    if d.task.idempotency_key != d.key or d.task.status != TaskStatus.RUNNING:
        return Answer(200, {"status": "duplicate", "task": d.name})
    return None


def no_op(
    course: CourseState, task: TaskState, key: str, *, stopped_ok: bool = False
) -> Answer | None:
    if task.idempotency_key != key:
        return Answer(
            200,
            {
                "status": "superseded",
                "task": task.name,
                "detail": "a newer generation of this task exists",
            },
        )
    if task.status == TaskStatus.SUCCEEDED:
        return Answer(200, {"status": "duplicate", "task": task.name})
    if task.status in BROKEN_TASK:
        return Answer(200, {"status": "already-failed", "task": task.name})
    if task.status == TaskStatus.MOOT:
        return Answer(
            200, {"status": TaskStatus.MOOT, "task": task.name, "detail": "recorded as moot"}
        )
    if course.status not in _STARTED and not stopped_ok:
        return Answer(
            200,
            {"status": "ignored", "task": task.name, "detail": f"the course is {course.status}"},
        )
    return None


# -- results: a step's return or error as the event that records it --------------------------
Result = TaskSucceeded | TaskFailed


def success_of(d: Delivery, result: StepResult, t0: float, t1: float) -> TaskSucceeded:
    return TaskSucceeded(
        task=d.name,
        idempotency_key=d.key,
        attempt=d.attempt,
        outputs=dict(result.outputs),
        summary=dict(result.summary),
        duration_ms=max(0, int((t1 - t0) * 1000)),
        metering=dict(result.metering),
    )


def failure_of(d: Delivery, err: Exception, t0: float, t1: float) -> TaskFailed:
    retryable = is_transient(err)  # see handlers/registry.py: unexpected errors are permanent
    message = str(err) or type(err).__name__
    if not hasattr(err, "retryable"):  # an unexpected error: keep where it came from
        frame = traceback.extract_tb(err.__traceback__)[-1:]
        where = f" at {frame[0].filename}:{frame[0].lineno}" if frame else ""
        message = f"{type(err).__name__}: {message}{where}"
    spent = getattr(err, "metering", None)  # paid calls count even when the attempt fails
    return TaskFailed(
        task=d.name,
        idempotency_key=d.key,
        attempt=d.attempt,
        error_type=type(err).__name__,
        message=message[:4000],
        retryable=retryable,
        duration_ms=max(0, int((t1 - t0) * 1000)),
        metering=dict(spent) if isinstance(spent, Mapping) else {},
    )


def unrecordable(result: TaskSucceeded, err: Exception) -> TaskFailed:
    return TaskFailed(
        task=result.task,
        idempotency_key=result.idempotency_key,
        attempt=result.attempt,
        error_type="UnrecordableResult",
        message=f"the step's result cannot be recorded: {err}"[:4000],
        retryable=False,
        duration_ms=result.duration_ms,
        metering=dict(result.metering),
    )


def log_outcome(d: Delivery, events: Sequence[Event]) -> None:
    """One analytics line per recorded outcome event."""
    for e in events:
        kind = {
            TaskSucceeded: "task_succeeded",
            TaskFailed: "task_failed",
            TaskExhausted: "task_exhausted",
            TaskMooted: "task_mooted",
        }[type(e)]
        extra: dict[str, Any] = {}
        if isinstance(e, TaskSucceeded | TaskFailed):
            extra["duration_ms"] = e.duration_ms
        if isinstance(e, TaskSucceeded | TaskFailed) and e.metering.get("cost_usd") is not None:
            extra["cost_usd"] = e.metering["cost_usd"]
        if isinstance(e, TaskFailed):
            extra.update(error_type=e.error_type, retryable=e.retryable)
        analytics.emit(
            kind,
            course_id=d.course_id,
            step=d.step,
            attempt=d.attempt,
            variant=d.course.variant,
            trace=d.trace,
            task=d.name,
            **extra,
        )


# -- the request: what a delivery says, read once at the edge -----------------------------
def parse(body: bytes) -> tuple[Any, Answer | None]:
    try:
        payload = json.loads(body)
    except (ValueError, UnicodeDecodeError) as err:
        return None, problem(400, "Malformed JSON", f"the body is not JSON: {err}")
    except RecursionError:
        return None, problem(400, "Malformed JSON", "the body nests too deeply")
    try:
        schemas.validate("task_payload", payload)
    except schemas.SchemaError as err:
        return None, problem(422, "Invalid task payload", str(err), errors=err.errors)
    return payload, None


def attempt_of(headers: Mapping[str, str], payload: Mapping[str, Any]) -> int:
    retries = (header(headers, "X-CloudTasks-TaskRetryCount") or "").strip()
    if 0 < len(retries) <= 6 and retries.isascii() and retries.isdigit():
        return int(retries) + 1
    attempt: int = payload["attempt"]
    return attempt


def running(task: TaskState, attempt: int, now: str) -> TaskState:
    """The task as our TaskStarted left it (saves reloading the course)."""
    return replace(
        task,
        status=TaskStatus.RUNNING,
        attempts=task.attempts + 1,
        last_attempt=attempt,
        started_at=task.started_at or now,
    )


def trace_of(headers: Mapping[str, str]) -> str | None:
    value = header(headers, "X-Cloud-Trace-Context") or header(headers, "traceparent")
    if not value:
        return None
    if "/" in value:
        return value.split("/", 1)[0]
    parts = value.split("-")
    return parts[1] if len(parts) >= 3 else None
