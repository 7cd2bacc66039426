"""The bridge: ingest requests, advance courses (fold -> decide -> append -> dispatch).

Recovery and reconciliation live in ``bridge/reconcile.py``, the wire formats (task payload,
course ids, variants) in ``bridge/wire.py``.

``advance`` is idempotent: concurrent or repeated calls schedule nothing twice, because every
TaskScheduled is appended at an expected version (a loser reloads and decides again) and
every dispatch is named by the task's idempotency key (the queue refuses a second one).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import schemas
from bridge import reconcile as reconcile_module
from bridge import tenancy
from bridge.dispatch import AlreadyExists, Dispatcher, TaskRequest, task_name
from bridge.partition import WHOLE, Partition
from bridge.tenancy import Admission
from bridge.wire import course_id_for, scheduled_view, task_payload, variant_for
from handlers import analytics
from statemachine.commands import Command, CompleteCourse, FailCourse, ScheduleTask, to_event
from statemachine.decide import decide
from statemachine.envelope import NewEvent
from statemachine.errors import ConcurrencyConflict, TransitionNotAllowed
from statemachine.events import CourseQueued, CourseRequested
from statemachine.lifecycle import TERMINAL_COURSE, CourseStatus, TaskStatus
from statemachine.pipeline import Pipeline, Pipelines
from statemachine.ports import Clock, EventStore
from statemachine.state import DEFAULT_TENANT, CourseState, StateCache, TaskState
from statemachine.timefmt import iso, parse_iso

log = logging.getLogger("coursegen.bridge")

_TRIES = 50

# Courses whose scheduled tasks are handed to the queue (a queued course has none yet).
_DISPATCHING = frozenset({CourseStatus.REQUESTED, CourseStatus.RUNNING, CourseStatus.PAUSED})


def _nothing() -> None:
    pass


def _remember(memory: dict[str, Any], key: str, value: Any) -> None:
    """Set ``key`` in a bounded memory (the oldest key forgotten first); caller locks."""
    memory.pop(key, None)
    memory[key] = value
    if len(memory) > _MEMORY_MAX:
        del memory[next(iter(memory))]


_MEMORY_MAX = 100_000  # task names handed to a queue, courses settled: the newest remembered


class InvalidRequest(ValueError):
    """A course request that cannot be accepted; ``errors`` name the fields."""

    def __init__(self, message: str, errors: list[str] | None = None) -> None:
        super().__init__(message)
        self.errors = errors or [message]


@dataclass(frozen=True)
class Bridge:
    """Every part given at construction, none replaced after (frozen): the transports
    (``dispatcher``; ``legacy_dispatcher`` for legacy-variant courses) and whether ``after``
    dispatches the follow-ups it decides (``dispatch_follow_ups``)."""

    store: EventStore
    dispatcher: Dispatcher
    pipeline: Pipeline
    clock: Clock
    rollout_percent: int = 100
    legacy_dispatcher: Dispatcher | None = None
    stats: dict[str, int] = field(
        default_factory=lambda: {
            "advances": 0,
            "scheduled": 0,
            "dispatched": 0,
            "deduplicated": 0,
            "conflicts": 0,
            "rescues": 0,
            "settled": 0,
        }
    )
    # Whether ``after``'s follow-ups are dispatched by this bridge once committed (False in a
    # service that runs steps only: the bridge service dispatches on the notification).
    dispatch_follow_ups: bool = True
    # Every pipeline version a course may be pinned to, ``pipeline`` current (new courses are
    # pinned to it); None: ``Pipelines.serving(pipeline)``. Each course is decided on its own.
    pipelines: Pipelines | None = None
    # Tenants' fair shares (bridge/tenancy.py): None, when no limit is set, costs nothing.
    admission: Admission | None = None
    # Course states by head, shared with the runtime's endpoint (``StateCache``).
    states: StateCache = field(default_factory=StateCache)
    # The courses this process recovers and reconciles (bridge/partition.py): all of them,
    # unless several processes share one embedded store.
    partition: Partition = WHOLE
    _handed: dict[str, None] = field(default_factory=dict, repr=False)
    _settled: dict[str, int] = field(default_factory=dict, repr=False)
    _handed_lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def __post_init__(self) -> None:
        if self.pipelines is None:
            object.__setattr__(self, "pipelines", Pipelines.serving(self.pipeline))
        elif self.pipelines.latest != self.pipeline:
            raise ValueError("the bridge's pipeline must be its registry's current one")

    def pipeline_of(self, state: CourseState) -> Pipeline:
        """The pipeline ``state``'s course is pinned to (``UnknownPipeline``: not stored)."""
        assert self.pipelines is not None  # set at construction
        return self.pipelines.of(state)

    # -- ingest -------------------------------------------------------------------------
    def ingest(
        self,
        message: Mapping[str, Any],
        *,
        message_id: str | None = None,
        actor: str = "pubsub",
        tenant: str | None = None,
    ) -> str:
        """Accept a "course requested" message; the course id (existing one on redelivery).

        ``tenant``: the message's ``tenant`` attribute (Pub/Sub), if any; the body's
        ``tenant`` says the same, and the two may not disagree."""
        with self.store.deferring():  # one fsync for the request and its first task
            return self._ingest(_with_tenant(message, tenant), message_id, actor)

    def _ingest(self, message: Mapping[str, Any], message_id: str | None, actor: str) -> str:
        try:  # the caller logs a refusal once, with the message's id
            schemas.validate("course_request", message)
        except schemas.SchemaError as err:
            raise InvalidRequest(f"invalid course request: {err}", err.errors) from None
        message = schemas.known_fields("course_request", message)
        course_id = message.get("courseId") or course_id_for(message_id, message)
        tenant = message.get("tenant", DEFAULT_TENANT)
        variant = variant_for(course_id, self.rollout_percent)
        event = CourseRequested(
            video_uri=message["videoUri"],
            title=message["title"],
            language=message.get("language", "en"),
            options=dict(message.get("options", {})),
            request_id=message_id,
            variant=variant,
            not_before=_not_before(message.get("notBefore")),
            pipeline_version=self.pipeline.version,
            pipeline_digest=self.pipeline.digest,
            tenant=None if tenant == DEFAULT_TENANT else tenant,
        )
        new = NewEvent(
            event=event,
            occurred_at=iso(self.clock.now()),
            actor=actor,
            causation_id=message_id,
            correlation_id=course_id,
            idempotency_key=f"request:{message_id or course_id}",
        )
        committed: list[Callable[[], None]] = []
        version = None
        then = self._then(committed)
        entered: list[str] = []
        if self.admission is not None and self.admission.gated:
            then = self._admit_or_queue(tenant, then, entered)
        try:  # the request and the first task it needs (or its place in line), at once
            version = self.store.append(course_id, 0, [new], then=then)
        except ConcurrencyConflict:
            log.info("course %s already requested; redelivery ignored", course_id)
            if entered and self.admission is not None:  # this call's place, not the first's
                self.admission.undo(course_id, tenant)
        except BaseException:
            if entered and self.admission is not None:
                self.admission.undo(course_id, tenant)
            raise
        else:
            analytics.emit("course_requested", course_id=course_id, variant=variant, actor=actor)
            for done in committed:
                done()
        self.advance(course_id, version)
        return course_id

    def _admit_or_queue(
        self,
        tenant: str,
        then: Callable[[Mapping[str, Any]], Sequence[NewEvent]],
        entered: list[str],
    ) -> Callable[[Mapping[str, Any]], Sequence[NewEvent]]:
        """``then`` of a new course that passes admission: its first task if its tenant has
        room, else ``CourseQueued`` (in the request's transaction: never one without the
        other). ``entered`` records that this call took a place in the ledger."""
        admission = self.admission
        assert admission is not None

        def admit_or_queue(snapshot: Mapping[str, Any]) -> Sequence[NewEvent]:
            course_id = snapshot["course_id"]
            place, fresh = admission.enter(course_id, tenant)
            if fresh:
                entered.append(course_id)
            if place is None:
                return then(snapshot)
            position, reason = place
            queued = CourseQueued(tenant=tenant, position=position, reason=reason)
            return [self.new_event(queued, f"{course_id}@{snapshot['version']}", course_id)]

        return admit_or_queue

    def new_event(self, event: Any, cause: str, course_id: str, key: str | None = None) -> NewEvent:
        """``event`` as the bridge appends it now, caused by ``cause`` (``COURSE@VERSION``)."""
        return NewEvent(
            event=event,
            occurred_at=iso(self.clock.now()),
            actor="bridge",
            causation_id=cause,
            correlation_id=course_id,
            idempotency_key=key,
        )

    def admit_waiting(self) -> list[str]:
        """Admit every queued course that fits now (``tenancy.admit_waiting``)."""
        return tenancy.admit_waiting(self)

    def _settle(self, state: CourseState, commands: Sequence[Command]) -> None:
        """A course that ended gives its place to the next one waiting (if it held one)."""
        admission = self.admission
        if admission is None:
            return
        ended = state.status in TERMINAL_COURSE or any(
            isinstance(c, CompleteCourse | FailCourse) for c in commands
        )
        if ended and admission.release(state.course_id, state.tenant):
            self.admit_waiting()

    def after(self, snapshot: Mapping[str, Any]) -> tuple[list[NewEvent], Callable[[], None]]:
        """What ``decide`` wants of a course whose history has reached ``snapshot``: as events
        to append in the same transaction as what led there (``EventStore.append(then=)``),
        and what to do once they are committed: count and log them and, if this bridge
        dispatches (``dispatch_follow_ups``), dispatch what is waiting, so that the notified
        ``advance`` of the resulting version has nothing left to do and is skipped."""
        state = self.states.of(snapshot)
        commands = decide(state, self.pipeline_of(state))
        if self.admission is not None:  # (and what the state spent is counted)
            commands = list(self.admission.hold(state, commands, self.pipeline_of(state)))
        if not commands and not self.dispatch_follow_ups:
            return [], _nothing

        def committed() -> None:
            self.stats["scheduled"] += sum(isinstance(c, ScheduleTask) for c in commands)
            self._log(state, commands)
            if self.dispatch_follow_ups:
                self._dispatch_waiting(state, commands)
                # the course at this version is decided and dispatched: ``advance`` of it,
                # next, has nothing left to do
                with self._handed_lock:
                    _remember(self._settled, state.course_id, state.version + len(commands))
                # the notified ``advance`` is skipped (settled): the place freed is given here
                self._settle(state, commands)

        return self._events(state, commands), committed

    def _then(
        self, committed: list[Callable[[], None]]
    ) -> Callable[[Mapping[str, Any]], Sequence[NewEvent]]:
        """An ``append(then=)`` deciding with ``after``; ``committed`` ends up holding what to
        run once the append returned (the last call's: the one that was committed)."""

        def then(snapshot: Mapping[str, Any]) -> Sequence[NewEvent]:
            events, done = self.after(snapshot)
            committed[:] = [done]
            return events

        return then

    def _events(self, state: CourseState, commands: list[Command]) -> list[NewEvent]:
        now = iso(self.clock.now())
        return [
            NewEvent(
                event=to_event(c),
                occurred_at=now,
                actor="bridge",
                causation_id=f"{state.course_id}@{state.version}",
                correlation_id=state.course_id,
                idempotency_key=c.idempotency_key if isinstance(c, ScheduleTask) else None,
            )
            for c in commands
        ]

    # -- advance ------------------------------------------------------------------------
    def advance(self, course_id: str, version: int | None = None) -> list[Command]:
        """Record what ``decide`` wants, then dispatch every scheduled task not yet started.

        ``version``: the version a notification is about; nothing to do if this bridge has
        already decided and dispatched the course at it (``after``'s follow-ups)."""
        return self.advance_counted(course_id, version)[0]

    def advance_counted(
        self, course_id: str, version: int | None = None
    ) -> tuple[list[Command], int]:
        """``advance``, and how many waiting tasks it handed to a queue."""
        self.stats["advances"] += 1
        if version is not None and self._settled.get(course_id) == version:
            self.stats["settled"] += 1
            return [], 0
        conflict = ConcurrencyConflict(course_id, -1, -1)
        for _ in range(_TRIES):
            state = self.state(course_id)
            if state is None:
                return [], 0
            commands = decide(state, self.pipeline_of(state))
            if self.admission is not None:
                commands = list(self.admission.hold(state, commands, self.pipeline_of(state)))
            if commands:
                try:
                    self.store.append(course_id, state.version, self._events(state, commands))
                except ConcurrencyConflict as err:  # others moved on: decide again
                    self.stats["conflicts"] += 1
                    conflict = err
                    continue
                except TransitionNotAllowed as err:
                    # At the version it was decided at, a refusal is deterministic (a bug in
                    # decide or in the reducer): retrying would be refused the same way.
                    raise TransitionNotAllowed(
                        err.state,
                        err.event,
                        f"course {course_id} at version {state.version}: {err.detail}",
                    ) from err
                self.stats["scheduled"] += sum(isinstance(c, ScheduleTask) for c in commands)
                self._log(state, commands)
            waiting = self._dispatch_waiting(state, commands)
            if self.admission is not None:
                self._settle(state, commands)  # an ended course's place goes to the next
            return commands, waiting
        raise conflict  # the last real conflict, after _TRIES decisions lost their race

    def _dispatch_waiting(self, state: CourseState, commands: list[Command]) -> int:
        """Dispatch the tasks just scheduled and any scheduled earlier but not yet started
        (a crash between an append and its dispatch, a lost notification of a result that
        scheduled them); the queue de-duplicates by name. How many earlier ones it offered."""
        if any(not isinstance(c, ScheduleTask) for c in commands):
            return 0
        if state.status not in _DISPATCHING:
            return 0
        waiting = 0
        for task in state.tasks.values():
            # A scheduled task this process has not handed to the queue (it crashed between
            # the append and the dispatch, or the dispatch failed): hand it over now.
            if task.status == TaskStatus.SCHEDULED and not self._handed_over(task):
                self.dispatch(state, task)
                waiting += 1
        for c in commands:
            assert isinstance(c, ScheduleTask)
            self.dispatch(state, scheduled_view(state, c, iso(self.clock.now())))
        return waiting

    def dispatch(self, state: CourseState, task: TaskState) -> None:
        """Hand ``task`` to its queue, named by its idempotency key (a repeat is refused)."""
        step = self.pipeline_of(state).steps[task.step]
        request = TaskRequest(
            queue=task.queue,
            name=task_name(task.idempotency_key),
            step=task.step,
            payload=task_payload(state, task),
            deadline_s=float(step.timeout_s),
            schedule_time=parse_iso(task.not_before) if task.not_before else None,
        )
        transport = self.dispatcher
        if state.variant == "legacy" and self.legacy_dispatcher is not None:
            transport = self.legacy_dispatcher
        # Nothing leaves the process before the history that caused it is durable: now, after
        # a sync, or (a unit that answers later) after the fsync that covers the unit.
        self.store.when_durable(lambda: self._hand(transport, request))
        with self._handed_lock:  # handed over, or to be once durable: not to be offered again
            _remember(self._handed, request.name, None)

    def _hand(self, transport: Dispatcher, request: TaskRequest) -> None:
        try:
            transport.dispatch(request)
            self.stats["dispatched"] += 1
        except AlreadyExists:
            self.stats["deduplicated"] += 1
        except Exception:  # not handed over after all: a later advance offers it again
            with self._handed_lock:
                self._handed.pop(request.name, None)
            raise

    def _handed_over(self, task: TaskState) -> bool:
        """Whether this process already gave the queue this task (the queue holds it now)."""
        if task.idempotency_key is None:
            return False
        return task_name(task.idempotency_key) in self._handed

    def state(self, course_id: str) -> CourseState | None:
        """The course as its head records it (None: no such course)."""
        head = self.store.head(course_id)
        return self.states.of(head.snapshot) if head else None

    def _log(self, state: CourseState, commands: list[Command]) -> None:
        for c in commands:
            if isinstance(c, ScheduleTask):
                analytics.emit(
                    "task_created",
                    course_id=state.course_id,
                    step=c.step,
                    variant=state.variant,
                    task=c.task,
                    queue=c.queue,
                    generation=c.generation,
                )
            else:
                analytics.emit(
                    "course_completed" if isinstance(c, CompleteCourse) else "course_failed",
                    course_id=state.course_id,
                    variant=state.variant,
                )

    # -- recovery (bridge/reconcile.py) ----------------------------------------------------
    def recover(self, *, limit: int = 100_000) -> dict[str, int]:
        """Re-enqueue the waiting tasks of every active course (``reconcile.recover``)."""
        return reconcile_module.recover(self, limit=limit)

    def reconcile(self, quiet_s: float, *, limit: int = 1000) -> dict[str, int]:
        """Advance every course quiet for ``quiet_s`` (``reconcile.reconcile``)."""
        return reconcile_module.reconcile(self, quiet_s, limit=limit)


Notify = Callable[[str, int], None]


def _with_tenant(message: Mapping[str, Any], tenant: str | None) -> Mapping[str, Any]:
    """``message`` with the ``tenant`` attribute as its body's ``tenant`` (checked then by the
    request's schema, like an id); an InvalidRequest if the two disagree."""
    if tenant is None:
        return message
    body = message.get("tenant")
    if body is not None and body != tenant:
        raise InvalidRequest(
            f"tenant {body!r:.80} in the message and {tenant!r:.80} in its attributes differ",
            ["tenant"],
        )
    return {**message, "tenant": tenant}


def _not_before(value: str | None) -> str | None:
    """A request's ``notBefore`` (RFC 3339, any offset) as the store's UTC ISO text."""
    if value is None:
        return None
    try:
        return iso(parse_iso(value.replace("t", "T").replace(" ", "T")))
    except (ValueError, OverflowError, OSError):
        raise InvalidRequest(
            f"notBefore {value!r} is not an RFC 3339 time", ["notBefore"]
        ) from None
