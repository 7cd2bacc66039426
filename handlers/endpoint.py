"""The task endpoint: authenticate, validate, de-duplicate, run the step, record the result.

Answers follow Cloud Tasks' contract: 2xx acknowledges (success, duplicate, permanent failure
recorded), 503 asks for a retry with backoff. Direct callers get 4xx problem details (RFC 9457)
for bad requests; nothing about a bad request is ever written to a history.
"""

from __future__ import annotations

import json
import logging
import time
import traceback
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

import schemas
from handlers import analytics
from handlers.auth import Unauthorized, header
from handlers.progress import Checkpoint, StepCancelled
from handlers.registry import StepContext, StepFn, StepResult
from handlers.starts import Pending, StartRecorder
from statemachine.commands import idempotency_key
from statemachine.envelope import NewEvent
from statemachine.errors import ConcurrencyConflict, EventTooLarge, TransitionNotAllowed
from statemachine.events import Event, TaskExhausted, TaskFailed, TaskStarted, TaskSucceeded
from statemachine.pipeline import Pipeline
from statemachine.ports import EventStore
from statemachine.state import CourseState, TaskState
from statemachine.timefmt import iso, parse_iso

log = logging.getLogger("coursegen.endpoint")

MAX_BODY_BYTES = 1024 * 1024  # a Cloud Tasks task is at most 1 MB
_APPEND_TRIES = 50

Verifier = Callable[[Mapping[str, str], bytes, str], str]
Notify = Callable[[str, int], None]


class FollowUps(Protocol):
    """Who decides what a recorded result unblocks, in the result's own transaction (the
    bridge: ``Bridge.after``): the events to append with it, and what to run once committed."""

    def after(
        self, snapshot: Mapping[str, Any]
    ) -> tuple[Sequence[NewEvent], Callable[[], None]]: ...


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


@dataclass
class TaskEndpoint:
    store: EventStore
    steps: Mapping[str, StepFn]
    pipeline: Pipeline
    verify: Verifier
    notify: Notify
    services: Any
    now: Callable[[], float] = time.time
    only_step: str | None = None
    follow: FollowUps | None = None
    # A first attempt's TaskStarted goes in with its result when the step ends within this
    # many seconds, else a background recorder appends it then (``handlers/starts.py``);
    # 0 records every start before the step runs.
    record_start_after_s: float = 0.1
    answers: Counter[str] = field(default_factory=Counter)
    _starts: StartRecorder = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._starts = StartRecorder(self._record_start)

    def handle(self, headers: Mapping[str, str], body: bytes, url: str = "") -> Answer:
        # One unit of work: the delivery's appends reach the disk together, before it answers
        # (and before the bridge dispatches what they unblocked), not one fsync per append.
        with self.store.deferring():
            answer = self._handle(headers, body, url)
        self.answers[str(answer.body.get("status", answer.status))] += 1
        return answer

    def _handle(self, headers: Mapping[str, str], body: bytes, url: str) -> Answer:
        if len(body) > MAX_BODY_BYTES:
            return problem(413, "Payload too large", f"task bodies are at most {MAX_BODY_BYTES}")
        try:
            caller = self.verify(headers, body, url)
        except Unauthorized as err:
            return problem(401, "Unauthorized", str(err))
        payload, bad = _parse(body)
        if bad is not None:
            return bad
        bad = self._check_payload(payload)
        if bad is not None:
            return bad
        attempt = _attempt(headers, payload)
        return self._run(payload, attempt, caller, headers)

    def _check_payload(self, p: Mapping[str, Any]) -> Answer | None:
        step, data = p["taskType"], p["data"]
        if step not in self.pipeline.steps or step not in self.steps:
            return problem(422, "Unknown task type", f"no step named {step!r}")
        if self.only_step and step != self.only_step:
            return problem(404, "Wrong service", f"this service runs {self.only_step}, not {step}")
        shard = data.get("shard")
        expected_task = step if shard is None else f"{step}#{shard}"
        if data["task"] != expected_task:
            return problem(422, "Inconsistent payload", f"data.task must be {expected_task!r}")
        key = idempotency_key(p["courseId"], step, shard, data["generation"])
        if p["idempotencyKey"] != key:
            return problem(422, "Inconsistent payload", f"idempotencyKey must be {key!r}")
        return None

    def _run(
        self, p: Mapping[str, Any], attempt: int, caller: str, headers: Mapping[str, str]
    ) -> Answer:
        course_id, name, key = p["courseId"], p["data"]["task"], p["idempotencyKey"]
        at = self.now()
        started = self._start(course_id, name, key, attempt, now=attempt > 1)
        if isinstance(started, Answer):
            return started
        course, task, version, recorded = started
        pending = None
        if not recorded:
            pending = self._starts.add(course_id, name, key, attempt, at, self.record_start_after_s)
        task = _running(task, attempt, iso(at))
        trace = _trace(headers)
        analytics.emit(
            "task_started",
            course_id=course_id,
            step=task.step,
            attempt=attempt,
            variant=course.variant,
            trace=trace,
            task=name,
        )
        t0 = self.now()
        try:
            new = self._event(key)
            checkpoint = Checkpoint(self.store, course_id, name, key, attempt, new, self.now)
            ctx = StepContext(course, task, attempt, self.services, progress=checkpoint)
            result = self.steps[task.step](ctx)
            outcome: Event = _succeeded(task, attempt, result, t0, self.now())
        except StepCancelled as err:  # stopped at a checkpoint: nothing left to record
            if pending is not None:
                self._starts.settle(pending)
            return Answer(200, {"status": "stopped", "task": name, "detail": str(err)})
        except Exception as err:  # every failure is recorded; the class decides retry or not
            outcome = _failed(task, attempt, err, t0, self.now())
        start_at: float | None = None
        if pending is not None:
            recorded = self._starts.settle(pending)
            if recorded is None:
                start_at = at  # not in the history yet: it goes in with the result
            else:
                version = recorded
        return self._finish(
            course_id, name, key, attempt, outcome, trace, course, task, version, start_at
        )

    def _start(
        self, course_id: str, name: str, key: str, attempt: int, *, now: bool = True
    ) -> Answer | tuple[CourseState, TaskState, int, bool]:
        """Record TaskStarted, or leave it for later (``now`` false: a first attempt, see
        handlers/starts.py); the course and task as they were, the version after it, and
        whether it was recorded."""
        for _ in range(_APPEND_TRIES):
            course = self._state(course_id)
            if course is None:
                return problem(404, "Unknown course", f"no course {course_id!r}")
            task = course.task(name)
            if task is None:
                return problem(404, "Unknown task", f"course {course_id} has no task {name!r}")
            done = _no_op(course, task, key)
            if done is not None:
                return done
            last = self.pipeline.queues[task.queue].retry.max_attempts <= attempt
            if not now and not last and self.record_start_after_s > 0:
                # later (a queue's last attempt is counted now: a crash must still count it)
                return course, task, course.version, False
            started = TaskStarted(task=name, idempotency_key=key, attempt=attempt)
            try:
                version = self.store.append(course_id, course.version, [self._new(started, key)])
            except ConcurrencyConflict:
                continue
            except TransitionNotAllowed as err:
                return Answer(200, {"status": "ignored", "detail": str(err)})
            return course, task, version, True
        return problem(503, "Busy", "the course is changing too fast; retry later")

    def _finish(
        self,
        course_id: str,
        name: str,
        key: str,
        attempt: int,
        outcome: Event,
        trace: str | None,
        course: CourseState,
        task: TaskState,
        version: int,
        start_at: float | None = None,
    ) -> Answer:
        """Append the outcome (after our TaskStarted, or with it: ``start_at``, its time)."""
        # First try at the version our TaskStarted left; reload only when others moved on.
        follow_ups = True
        for _ in range(_APPEND_TRIES):
            if start_at is not None:
                done = _no_op(course, task, key)
                if done is not None:  # a concurrent delivery recorded an outcome, or so
                    return done
            elif task.idempotency_key != key or task.status != "running":
                # A concurrent delivery already recorded this task's outcome.
                return Answer(200, {"status": "duplicate", "task": name})
            events = [outcome]
            if (
                isinstance(outcome, TaskFailed)
                and outcome.retryable
                and self._last_try(task, attempt)
            ):
                events.append(
                    TaskExhausted(
                        task=name, idempotency_key=key, attempts=attempt, error=outcome.message
                    )
                )
            committed: list[Callable[[], None]] = []
            then = self._then(committed) if follow_ups else None
            new = [self._new(e, key) for e in events]
            if start_at is not None:
                started = TaskStarted(task=name, idempotency_key=key, attempt=attempt)
                new.insert(0, self._new(started, key, at=start_at))
            try:
                version = self.store.append(course_id, version, new, then=then)
            except ConcurrencyConflict:
                fresh = self._state(course_id)
                assert fresh is not None
                current = fresh.task(name)
                assert current is not None
                course, task, version = fresh, current, fresh.version
                continue
            except (schemas.SchemaError, EventTooLarge, TransitionNotAllowed) as err:
                if then is not None:  # maybe the follow-ups': never lose the result to them
                    log.exception("recording %s with its follow-ups failed; alone now", name)
                    follow_ups = False
                    continue
                if isinstance(err, TransitionNotAllowed) or not isinstance(outcome, TaskSucceeded):
                    raise
                # A result the history cannot hold would fail the same way on every retry:
                # record a permanent failure instead of leaving the task running for ever.
                outcome = _unrecordable(outcome, err)
                continue
            self._log(course, task, attempt, events, trace)
            for done in committed:
                done()
            self.notify(course_id, version)
            return _answer(name, events[-1])
        return problem(503, "Busy", "the course is changing too fast; retry later")

    def _then(
        self, committed: list[Callable[[], None]]
    ) -> Callable[[Mapping[str, Any]], Sequence[NewEvent]] | None:
        """The result's follow-ups (``append(then=)``), if a decider is wired; ``committed``
        ends up holding what to run once the append returned (its last call's)."""
        follow = self.follow
        if follow is None:
            return None

        def then(snapshot: Mapping[str, Any]) -> Sequence[NewEvent]:
            try:
                events, done = follow.after(snapshot)
            except Exception:  # never lose a result to a decision: the bridge decides later
                log.exception("deciding the follow-ups of a result failed; recording it alone")
                events, done = [], _nothing
            committed[:] = [done]
            return events

        return then

    def _last_try(self, task: TaskState, attempt: int) -> bool:
        """Whether the queue will give up after this attempt (max attempts or retry duration)."""
        retry = self.pipeline.queues[task.queue].retry
        if attempt >= retry.max_attempts:
            return True
        if retry.max_retry_duration_s <= 0 or task.started_at is None:
            return False
        first = parse_iso(task.started_at)  # the queue counts from the first attempt
        return self.now() + retry.backoff(attempt) - first > retry.max_retry_duration_s

    def _state(self, course_id: str) -> CourseState | None:
        head = self.store.head(course_id)
        return CourseState.of(head.snapshot) if head else None

    def _record_start(self, pending: Pending) -> int | None:
        """The recorder's TaskStarted of a first attempt still running: the version after
        it, or None if there is nothing to record (the task has moved on meanwhile)."""
        for _ in range(_APPEND_TRIES):
            course = self._state(pending.course_id)
            task = course.task(pending.name) if course is not None else None
            if course is None or task is None or _no_op(course, task, pending.key) is not None:
                return None
            started = TaskStarted(
                task=pending.name, idempotency_key=pending.key, attempt=pending.attempt
            )
            try:
                return self.store.append(
                    pending.course_id,
                    course.version,
                    [self._new(started, pending.key, at=pending.at)],
                )
            except ConcurrencyConflict:
                continue
            except TransitionNotAllowed:
                return None
        return None

    def _event(self, key: str) -> Callable[[Event], NewEvent]:
        return lambda event: self._new(event, key)

    def _new(self, event: Event, key: str, *, at: float | None = None) -> NewEvent:
        return NewEvent(
            event=event,
            occurred_at=iso(self.now() if at is None else at),
            actor="task-endpoint",
            causation_id=key,
            correlation_id=key.split(":", 1)[0],
            idempotency_key=key,
        )

    def _log(
        self,
        course: CourseState,
        task: TaskState,
        attempt: int,
        events: list[Event],
        trace: str | None,
    ) -> None:
        for e in events:
            kind = {
                TaskSucceeded: "task_succeeded",
                TaskFailed: "task_failed",
                TaskExhausted: "task_exhausted",
            }[type(e)]
            extra: dict[str, Any] = {}
            if isinstance(e, TaskSucceeded | TaskFailed):
                extra["duration_ms"] = e.duration_ms
            if isinstance(e, TaskSucceeded) and e.metering.get("cost_usd") is not None:
                extra["cost_usd"] = e.metering["cost_usd"]
            if isinstance(e, TaskFailed):
                extra.update(error_type=e.error_type, retryable=e.retryable)
            analytics.emit(
                kind,
                course_id=course.course_id,
                step=task.step,
                attempt=attempt,
                variant=course.variant,
                trace=trace,
                task=task.name,
                **extra,
            )


def _nothing() -> None:
    pass


def _parse(body: bytes) -> tuple[Any, Answer | None]:
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


def _attempt(headers: Mapping[str, str], payload: Mapping[str, Any]) -> int:
    retries = (header(headers, "X-CloudTasks-TaskRetryCount") or "").strip()
    if 0 < len(retries) <= 6 and retries.isascii() and retries.isdigit():
        return int(retries) + 1
    attempt: int = payload["attempt"]
    return attempt


def _running(task: TaskState, attempt: int, now: str) -> TaskState:
    """The task as our TaskStarted left it (saves reloading the course)."""
    return replace(
        task,
        status="running",
        attempts=task.attempts + 1,
        last_attempt=attempt,
        started_at=task.started_at or now,
    )


def _no_op(course: CourseState, task: TaskState, key: str) -> Answer | None:
    if task.idempotency_key != key:
        return Answer(
            200,
            {
                "status": "superseded",
                "task": task.name,
                "detail": "a newer generation of this task exists",
            },
        )
    if task.status == "succeeded":
        return Answer(200, {"status": "duplicate", "task": task.name})
    if task.status in ("failed", "exhausted"):
        return Answer(200, {"status": "already-failed", "task": task.name})
    if course.status not in ("running", "paused"):
        return Answer(
            200,
            {"status": "ignored", "task": task.name, "detail": f"the course is {course.status}"},
        )
    return None


def _succeeded(
    task: TaskState, attempt: int, result: StepResult, t0: float, t1: float
) -> TaskSucceeded:
    return TaskSucceeded(
        task=task.name,
        idempotency_key=task.idempotency_key,
        attempt=attempt,
        outputs=dict(result.outputs),
        summary=dict(result.summary),
        duration_ms=max(0, int((t1 - t0) * 1000)),
        metering=dict(result.metering),
    )


def _failed(task: TaskState, attempt: int, err: Exception, t0: float, t1: float) -> TaskFailed:
    retryable = bool(getattr(err, "retryable", True))
    message = str(err) or type(err).__name__
    if not hasattr(err, "retryable"):  # an unexpected error: keep where it came from
        frame = traceback.extract_tb(err.__traceback__)[-1:]
        where = f" at {frame[0].filename}:{frame[0].lineno}" if frame else ""
        message = f"{type(err).__name__}: {message}{where}"
    return TaskFailed(
        task=task.name,
        idempotency_key=task.idempotency_key,
        attempt=attempt,
        error_type=type(err).__name__,
        message=message[:4000],
        retryable=retryable,
        duration_ms=max(0, int((t1 - t0) * 1000)),
    )


def _unrecordable(result: TaskSucceeded, err: Exception) -> TaskFailed:
    return TaskFailed(
        task=result.task,
        idempotency_key=result.idempotency_key,
        attempt=result.attempt,
        error_type="UnrecordableResult",
        message=f"the step's result cannot be recorded: {err}"[:4000],
        retryable=False,
        duration_ms=result.duration_ms,
    )


def _answer(name: str, last: Event) -> Answer:
    if isinstance(last, TaskSucceeded):
        return Answer(200, {"status": "succeeded", "task": name})
    if isinstance(last, TaskExhausted):
        return Answer(200, {"status": "exhausted", "task": name, "detail": last.error})
    assert isinstance(last, TaskFailed)
    if last.retryable:
        return problem(503, "Step failed; retry later", last.message, task=name)
    return Answer(200, {"status": "failed", "task": name, "detail": last.message})


def _trace(headers: Mapping[str, str]) -> str | None:
    value = header(headers, "X-Cloud-Trace-Context") or header(headers, "traceparent")
    if not value:
        return None
    if "/" in value:
        return value.split("/", 1)[0]
    parts = value.split("-")
    return parts[1] if len(parts) >= 3 else None
