"""The task endpoint: authenticate, validate, de-duplicate, run the step, record the result.

Answers follow Cloud Tasks' contract: 2xx acknowledges (success, duplicate, permanent failure
recorded), 503 asks for a retry with backoff. Direct callers get 4xx problem details (RFC 9457)
for bad requests; nothing about a bad request is ever written to a history.

Which step errors are worth a retry is decided by ``handlers.registry.is_transient``: an error
not known to be transient (a ``ValueError`` of a bad setting, a ``KeyError`` of a bug) is
recorded as a permanent failure at once.

A delivery the endpoint accepts becomes a ``Delivery`` (``_start``): a frozen value holding
the task, its attempt, the caller, the course as the delivery saw it, and the first attempt's
start while its TaskStarted waits (``handlers/starts.py``); when there is nothing to run,
``_start`` answers instead. ``_run`` runs the step, ``_finish`` records its result as one of
these outcomes, chosen by ``_outcome`` for the course as last seen, each a function building
its events and its answer from the Delivery:

- ``_succeeded``: TaskSucceeded, 200;
- ``_retried``: a transient failure: TaskFailed, 503 (with the provider's Retry-After);
- ``_failed``: a permanent failure, or any failure once the course has failed: TaskFailed, 200;
- ``_exhausted``: a transient failure of the queue's last try: TaskFailed and TaskExhausted, 200;
- ``_mooted``: a result for a course cancelled while the step ran: TaskMooted, 200;
- ``_duplicate``: nothing to record (a concurrent delivery recorded the outcome, a newer
  generation exists, the course stopped): 200, no event.

``_append`` is one try at appending the chosen outcome with the follow-ups it unblocks, in
the same transaction (``append(then=)``, ``FollowUps.after``); ``_finish`` repeats it. After a
conflict the outcome is chosen again for the course as it is now; after a refusal
(``_refused``) the result is tried without its follow-ups, a refused transition is
acknowledged, and a success the history cannot hold is recorded as a permanent failure.
"""

from __future__ import annotations

import json
import logging
import math
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
from handlers.registry import StepContext, StepFn, StepResult, is_transient, retry_after_of
from handlers.starts import Pending, StartRecorder
from statemachine.commands import idempotency_key
from statemachine.envelope import NewEvent
from statemachine.errors import ConcurrencyConflict, EventTooLarge, TransitionNotAllowed
from statemachine.events import (
    Event,
    TaskExhausted,
    TaskFailed,
    TaskMooted,
    TaskStarted,
    TaskSucceeded,
)
from statemachine.pipeline import Pipeline
from statemachine.ports import EventStore
from statemachine.state import CourseState, TaskState
from statemachine.timefmt import iso, parse_iso

log = logging.getLogger("coursegen.endpoint")

MAX_BODY_BYTES = 1024 * 1024  # a Cloud Tasks task is at most 1 MB
_APPEND_TRIES = 50
RECORD_START_AFTER_S = 0.1  # see ``TaskEndpoint.record_start_after_s``

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


def _busy() -> Answer:
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


@dataclass(frozen=True)
class TaskEndpoint:
    """The task endpoint of one service; every part given at construction, none replaced
    after (frozen): ``follow`` is the bridge that decides what a result unblocks."""

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
    record_start_after_s: float = RECORD_START_AFTER_S
    answers: Counter[str] = field(default_factory=Counter)
    _starts: StartRecorder = field(init=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_starts", StartRecorder(self._record_start))  # frozen

    def handle(self, headers: Mapping[str, str], body: bytes, url: str = "") -> Answer:
        # One unit of work: the delivery's appends reach the disk together, before it answers
        # (and before the bridge dispatches what they unblocked), not one fsync per append.
        with self.store.deferring():
            answer = self._handle(headers, body, url)
        self.answers[str(answer.body.get("status", answer.status))] += 1
        return answer

    def handle_later(
        self,
        headers: Mapping[str, str],
        body: bytes,
        reply: Callable[[Answer], None],
        url: str = "",
    ) -> None:
        """``handle`` without waiting for the fsync: ``reply`` gets the answer once the
        delivery's appends are durable (after what they unblocked is dispatched), perhaps on
        the store's syncer thread, sharing one fsync with the deliveries that ended meanwhile
        (group commit). An error is raised here, and ``reply`` is never called."""
        answered: list[Answer] = []

        def durable() -> None:
            answer = answered[0]
            self.answers[str(answer.body.get("status", answer.status))] += 1
            reply(answer)

        with self.store.deferring(then=durable):
            answered.append(self._handle(headers, body, url))

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
        started = self._start(payload, _attempt(headers, payload), caller, headers)
        return started if isinstance(started, Answer) else self._run(started)

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

    def _start(
        self, payload: Mapping[str, Any], attempt: int, caller: str, headers: Mapping[str, str]
    ) -> Delivery | Answer:
        """The delivery, its TaskStarted recorded, or left for later (a first attempt, see
        handlers/starts.py: ``Delivery.pending``); or the answer when there is nothing to run."""
        at = self.now()
        for _ in range(_APPEND_TRIES):
            try:
                return self._try_start(payload, attempt, caller, headers, at)
            except ConcurrencyConflict:
                continue
        return _busy()

    def _try_start(
        self,
        payload: Mapping[str, Any],
        attempt: int,
        caller: str,
        headers: Mapping[str, str],
        at: float,
    ) -> Delivery | Answer:
        course_id, name, key = (
            payload["courseId"],
            payload["data"]["task"],
            payload["idempotencyKey"],
        )
        course = self._state(course_id)
        if course is None:
            return problem(404, "Unknown course", f"no course {course_id!r}")
        task = course.task(name)
        if task is None:
            return problem(404, "Unknown task", f"course {course_id} has no task {name!r}")
        done = _no_op(course, task, key)
        if done is not None:
            return done
        version, pending = course.version, None
        if self._defers_start(task, attempt):
            pending = self._starts.add(course_id, name, key, attempt, at, self.record_start_after_s)
        else:
            started = TaskStarted(task=name, idempotency_key=key, attempt=attempt)
            try:
                version = self.store.append(course_id, course.version, [self._new(started, key)])
            except TransitionNotAllowed as err:
                return Answer(200, {"status": "ignored", "detail": str(err)})
        return Delivery(
            course_id=course_id,
            name=name,
            key=key,
            step=task.step,
            shard=payload["data"].get("shard"),
            attempt=attempt,
            payload=payload,
            trace=_trace(headers),
            caller=caller,
            started_at=at,
            course=course,
            task=_running(task, attempt, iso(at)),
            version=version,
            pending=pending,
        )

    def _defers_start(self, task: TaskState, attempt: int) -> bool:
        """Whether TaskStarted waits (a first attempt: with its result or the recorder's); a
        queue's last attempt is counted now: a crash must still count it."""
        last = self.pipeline.queues[task.queue].retry.max_attempts <= attempt
        return attempt == 1 and not last and self.record_start_after_s > 0

    def _run(self, d: Delivery) -> Answer:
        analytics.emit(
            "task_started",
            course_id=d.course_id,
            step=d.step,
            attempt=d.attempt,
            variant=d.course.variant,
            trace=d.trace,
            task=d.name,
        )
        t0 = self.now()
        retry_after_s = None
        checkpoint = Checkpoint(
            self.store, d.course_id, d.name, d.key, d.attempt, self._event(d.key), self.now
        )
        try:
            ctx = StepContext(d.course, d.task, d.attempt, self.services, progress=checkpoint)
            result = self.steps[d.step](ctx)
            outcome: Result = _success_of(d, result, t0, self.now())
        except StepCancelled as err:  # stopped at a checkpoint: nothing left to record
            if d.pending is not None:
                self._starts.settle(d.pending)
            return Answer(200, {"status": "stopped", "task": d.name, "detail": str(err)})
        except Exception as err:  # every failure is recorded; the class decides retry or not
            outcome = _failure_of(d, err, t0, self.now())
            retry_after_s = retry_after_of(err)
        return self._finish(self._settled(d), outcome, retry_after_s=retry_after_s)

    def _settled(self, d: Delivery) -> Delivery:
        """The delivery once its step has ended: a pending start the recorder appended
        meanwhile is in the history now (the outcome goes after it)."""
        if d.pending is None:
            return d
        version = self._starts.settle(d.pending)
        return d if version is None else replace(d, pending=None, version=version)

    def _outcome(self, d: Delivery, result: Result, retry_after_s: float | None) -> Record | Answer:
        """What ``result`` comes to for the course as ``d`` last saw it (chosen again after
        every conflict: the course may have been cancelled or failed meanwhile)."""
        already = _duplicate(d)
        if already is not None:
            return already
        if d.course.status in _MOOT_COURSES:  # cancelled while the step ran
            return _mooted(d, result)
        if isinstance(result, TaskSucceeded):
            return _succeeded(d, result)
        if not result.retryable or d.course.status in _STOPPED_COURSES:
            return _failed(d, result)
        if self._last_try(d.task, d.attempt):
            return _exhausted(d, result)
        return _retried(d, result, retry_after_s)

    def _finish(self, d: Delivery, result: Result, *, retry_after_s: float | None = None) -> Answer:
        """Record the outcome of ``result`` (after our TaskStarted, or with it: ``d.pending``)
        with what it unblocks, trying again while others move the course on."""
        # The first try goes at the version our TaskStarted left; reload only on a conflict.
        at = _Recording(delivery=d, result=result, retry_after_s=retry_after_s, follow_ups=True)
        for _ in range(_APPEND_TRIES):
            tried = self._append(at)
            if isinstance(tried, Answer):
                return tried
            at = tried
        return _busy()

    def _append(self, r: _Recording) -> _Recording | Answer:
        """One try at recording: the answer once the outcome is in the history (or needs no
        record), else where the next try stands."""
        d = r.delivery
        record = self._outcome(d, r.result, r.retry_after_s)
        if isinstance(record, Answer):
            return record
        committed: list[Callable[[], None]] = []
        then = self._then(committed) if r.follow_ups else None
        try:
            version = self.store.append(d.course_id, d.version, self._events(d, record), then=then)
        except ConcurrencyConflict:
            return replace(r, delivery=self._reloaded(d))
        except (schemas.SchemaError, EventTooLarge, TransitionNotAllowed) as err:
            return self._refused(r, err, with_follow_ups=then is not None)
        self._log(d, record.events)
        for done in committed:
            done()
        self.notify(d.course_id, version)
        return record.answer

    def _refused(
        self, r: _Recording, err: Exception, *, with_follow_ups: bool
    ) -> _Recording | Answer:
        """After the history refused an append: try without the follow-ups (maybe theirs:
        never lose the result to them), or acknowledge a refusal, or record an unrecordable
        success as a permanent failure; anything else is raised."""
        name = r.delivery.name
        if with_follow_ups:
            log.error("recording %s with its follow-ups failed; alone now", name, exc_info=err)
            return replace(r, follow_ups=False)
        if isinstance(err, TransitionNotAllowed):
            # Decided on the course as it is at this version, so not a race: say so, and
            # acknowledge (a retry would be refused the same way).
            log.error("the result of %s cannot be recorded: %s", name, err)
            return Answer(200, {"status": "ignored", "task": name, "detail": str(err)})
        if not isinstance(r.result, TaskSucceeded):
            raise err
        # A result the history cannot hold would fail the same way on every retry: record a
        # permanent failure instead of leaving the task running for ever.
        return replace(r, result=_unrecordable(r.result, err))

    def _events(self, d: Delivery, record: Record) -> list[NewEvent]:
        """The record's events as appended: after the delivery's TaskStarted when that is not
        in the history yet (stamped when the attempt began)."""
        new = [self._new(e, d.key) for e in record.events]
        if d.pending is not None and record.with_start:
            started = TaskStarted(task=d.name, idempotency_key=d.key, attempt=d.attempt)
            new.insert(0, self._new(started, d.key, at=d.started_at))
        return new

    def _reloaded(self, d: Delivery) -> Delivery:
        """The delivery seeing the course as it is now (others appended meanwhile)."""
        course = self._state(d.course_id)
        assert course is not None
        task = course.task(d.name)
        assert task is not None
        return replace(d, course=course, task=task, version=course.version)

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

    def _log(self, d: Delivery, events: Sequence[Event]) -> None:
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


# A result for a course in one of these states is recorded as TaskMooted (terminal, the course
# does not move); for a failed course it is recorded as is (real work a redrive keeps), but
# never retried by the queue; for a paused one as is (nothing new is scheduled until resume).
_MOOT_COURSES = frozenset({"cancelled"})
_STOPPED_COURSES = frozenset({"failed"})
_STOPPED_DETAIL = (
    "the course has failed: the attempt is recorded; an operator's redrive runs it again"
)


@dataclass(frozen=True, slots=True, kw_only=True)
class _Recording:
    """Where recording a step's result stands between tries: the delivery as it last saw the
    course, the result (an unrecordable success becomes a permanent failure), and whether the
    follow-ups still go with it."""

    delivery: Delivery
    result: Result
    retry_after_s: float | None
    follow_ups: bool


# -- outcomes: what a step's result comes to, its events and its answer ------------------------
@dataclass(frozen=True, slots=True)
class Record:
    """What one outcome appends, and the delivery's answer once it is in the history."""

    events: tuple[Event, ...]
    answer: Answer
    with_start: bool = True  # goes after a pending TaskStarted (a moot result needs none)


def _succeeded(d: Delivery, result: TaskSucceeded) -> Record:
    return Record((result,), Answer(200, {"status": "succeeded", "task": d.name}))


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
    return Record((failure,), Answer(200, {"status": "failed", "task": d.name, "detail": detail}))


def _exhausted(d: Delivery, failure: TaskFailed) -> Record:
    """A transient failure of the queue's last try: recorded, and the task given up."""
    given_up = TaskExhausted(
        task=d.name, idempotency_key=d.key, attempts=d.attempt, error=failure.message
    )
    answer = Answer(200, {"status": "exhausted", "task": d.name, "detail": failure.message})
    return Record((failure, given_up), answer)


def _mooted(d: Delivery, result: Result) -> Record:
    """A result for a course cancelled while the step ran: TaskMooted, no TaskStarted."""
    what = "succeeded" if isinstance(result, TaskSucceeded) else "failed"
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
    answer = Answer(200, {"status": "moot", "task": d.name, "detail": moot.detail})
    return Record((moot,), answer, with_start=False)


def _duplicate(d: Delivery) -> Answer | None:
    """The answer when this delivery has nothing to record: a concurrent one recorded the
    task's outcome, a newer generation exists, or the course has stopped."""
    if d.pending is not None:  # our TaskStarted is not in the history: check as a start does
        return _no_op(d.course, d.task, d.key, stopped_ok=d.course.status in _MOOT_COURSES)
    if d.task.idempotency_key != d.key or d.task.status != "running":
        return Answer(200, {"status": "duplicate", "task": d.name})
    return None


def _no_op(
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
    if task.status == "succeeded":
        return Answer(200, {"status": "duplicate", "task": task.name})
    if task.status in ("failed", "exhausted"):
        return Answer(200, {"status": "already-failed", "task": task.name})
    if task.status == "moot":
        return Answer(200, {"status": "moot", "task": task.name, "detail": "recorded as moot"})
    if course.status not in ("running", "paused") and not stopped_ok:
        return Answer(
            200,
            {"status": "ignored", "task": task.name, "detail": f"the course is {course.status}"},
        )
    return None


# -- results: a step's return or error as the event that records it --------------------------
Result = TaskSucceeded | TaskFailed


def _success_of(d: Delivery, result: StepResult, t0: float, t1: float) -> TaskSucceeded:
    return TaskSucceeded(
        task=d.name,
        idempotency_key=d.key,
        attempt=d.attempt,
        outputs=dict(result.outputs),
        summary=dict(result.summary),
        duration_ms=max(0, int((t1 - t0) * 1000)),
        metering=dict(result.metering),
    )


def _failure_of(d: Delivery, err: Exception, t0: float, t1: float) -> TaskFailed:
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


def _unrecordable(result: TaskSucceeded, err: Exception) -> TaskFailed:
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


def _trace(headers: Mapping[str, str]) -> str | None:
    value = header(headers, "X-Cloud-Trace-Context") or header(headers, "traceparent")
    if not value:
        return None
    if "/" in value:
        return value.split("/", 1)[0]
    parts = value.split("-")
    return parts[1] if len(parts) >= 3 else None
