"""The task endpoint: authenticate, validate, de-duplicate, run the step, record the result.

Answers follow Cloud Tasks' contract: 2xx acknowledges (success, duplicate, permanent failure
recorded), 503 asks for a retry with backoff. Direct callers get 4xx problem details (RFC 9457)
for bad requests; nothing about a bad request is ever written to a history.

Which step errors are worth a retry is decided by ``handlers.registry.is_transient``: an error
not known to be transient (a ``ValueError`` of a bad setting, a ``KeyError`` of a bug) is
recorded as a permanent failure at once.

A delivery the endpoint accepts becomes a ``Delivery`` (``_start``, ``handlers/outcomes.py``):
a frozen value holding the task, its attempt, the caller, the course as the delivery saw it,
and the first attempt's start while its TaskStarted waits (``handlers/starts.py``); when there
is nothing to run, ``_start`` answers instead. ``_run`` runs the step, ``_finish`` records its
result as the outcome ``handlers.outcomes.outcome`` chooses for the course as last seen.

``_append`` is one try at appending the chosen outcome with the follow-ups it unblocks, in
the same transaction (``append(then=)``, ``FollowUps.after``); ``_finish`` repeats it. After a
conflict the outcome is chosen again for the course as it is now; after a refusal
(``_refused``) the result is tried without its follow-ups, a refused transition is
acknowledged, and a success the history cannot hold is recorded as a permanent failure.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

import schemas
from handlers import analytics
from handlers.auth import Unauthorized
from handlers.outcomes import (
    Answer,
    Delivery,
    Record,
    Result,
    attempt_of,
    busy,
    failure_of,
    log_outcome,
    no_op,
    outcome,
    parse,
    problem,
    running,
    success_of,
    trace_of,
    unrecordable,
)
from handlers.progress import Checkpoint, StepCancelled
from handlers.registry import StepContext, StepFn, retry_after_of
from handlers.starts import Pending, StartRecorder
from statemachine.commands import idempotency_key
from statemachine.envelope import NewEvent
from statemachine.errors import ConcurrencyConflict, EventTooLarge, TransitionNotAllowed
from statemachine.events import (
    Event,
    TaskStarted,
    TaskSucceeded,
)
from statemachine.pipeline import Pipeline
from statemachine.ports import EventStore
from statemachine.state import CourseState, StateCache, TaskState
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
    # Course states by head, shared with the runtime's bridge (``StateCache``).
    states: StateCache = field(default_factory=StateCache)
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
        payload, bad = parse(body)
        if bad is not None:
            return bad
        bad = self._check_payload(payload)
        if bad is not None:
            return bad
        started = self._start(payload, attempt_of(headers, payload), caller, headers)
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
        return busy()

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
        done = no_op(course, task, key)
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
            trace=trace_of(headers),
            caller=caller,
            started_at=at,
            course=course,
            task=running(task, attempt, iso(at)),
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
            outcome: Result = success_of(d, result, t0, self.now())
        except StepCancelled as err:  # stopped at a checkpoint: nothing left to record
            if d.pending is not None:
                self._starts.settle(d.pending)
            return Answer(200, {"status": "stopped", "task": d.name, "detail": str(err)})
        except Exception as err:  # every failure is recorded; the class decides retry or not
            outcome = failure_of(d, err, t0, self.now())
            retry_after_s = retry_after_of(err)
        return self._finish(self._settled(d), outcome, retry_after_s=retry_after_s)

    def _settled(self, d: Delivery) -> Delivery:
        """The delivery once its step has ended: a pending start the recorder appended
        meanwhile is in the history now (the outcome goes after it)."""
        if d.pending is None:
            return d
        version = self._starts.settle(d.pending)
        return d if version is None else replace(d, pending=None, version=version)

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
        return busy()

    def _append(self, r: _Recording) -> _Recording | Answer:
        """One try at recording: the answer once the outcome is in the history (or needs no
        record), else where the next try stands."""
        d = r.delivery
        record = outcome(
            d, r.result, r.retry_after_s, last_try=lambda: self._last_try(d.task, d.attempt)
        )
        if isinstance(record, Answer):
            return record
        committed: list[Callable[[], None]] = []
        then = self._then(committed) if r.follow_ups else None
        try:
            version = self.store.append(
                d.course_id, d.version, self._events(d, record), then=then, rebase=_rebase(d)
            )
        except ConcurrencyConflict:
            return replace(r, delivery=self._reloaded(d))
        except (schemas.SchemaError, EventTooLarge, TransitionNotAllowed) as err:
            return self._refused(r, err, with_follow_ups=then is not None)
        log_outcome(d, record.events)
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
        return replace(r, result=unrecordable(r.result, err))

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
        return self.states.of(head.snapshot) if head else None

    def _record_start(self, pending: Pending) -> int | None:
        """The recorder's TaskStarted of a first attempt still running: the version after
        it, or None if there is nothing to record (the task has moved on meanwhile)."""
        for _ in range(_APPEND_TRIES):
            course = self._state(pending.course_id)
            task = course.task(pending.name) if course is not None else None
            if course is None or task is None or no_op(course, task, pending.key) is not None:
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


def _nothing() -> None:
    pass


@dataclass(frozen=True, slots=True, kw_only=True)
class _Recording:
    """Where recording a step's result stands between tries: the delivery as it last saw the
    course, the result (an unrecordable success becomes a permanent failure), and whether the
    follow-ups still go with it."""

    delivery: Delivery
    result: Result
    retry_after_s: float | None
    follow_ups: bool


def _rebase(d: Delivery) -> Callable[[Mapping[str, Any]], bool] | None:
    """Whether a first attempt's outcome, decided on the course at ``d.version``, holds on a
    newer head as is: the course's status and this task are as they were (what moved the
    head is the result of a sibling task). Then it goes after that head without a reload and
    a second try. Only with ``d.pending``: then the history's task at ``d.version`` is the
    one ``d.course`` holds (a TaskStarted already appended is not in ``d.course``)."""
    if d.pending is None:
        return None
    status = d.course.status
    seen = d.course.task(d.name)
    if seen is None:
        return None
    before = seen.to_snapshot()

    def rebase(snapshot: Mapping[str, Any]) -> bool:
        same: bool = snapshot["status"] == status and snapshot["tasks"].get(d.name) == before
        return same

    return rebase
